-- stft, resample, mel filter banks, MelSpectrogram and amplitude_to_db
-- against PyTorch 1.13 / torchaudio 0.13 (tests/ref/gen_audio.py ->
-- tests/ref/audio.json): outputs and input gradients; finite-difference
-- checks (twice for stft); the FFT on many sizes; argument errors.
local nn = require 'nnlua'
local support = require 'support'

local ref = support.reference('audio')
local near = support.near

-- fixture options: integers as Lua integers, JSON null dropped
local function options(o)
  local out = {}
  for k, v in pairs(o) do
    if v ~= nil and v ~= require('cjson').null then out[k] = math.tointeger(v) or v end
  end
  return out
end

local function check_grad(c, x, y, tol)
  near(c.output, y, 'output', tol)
  ;(y * nn.tensor(c.proj)):sum():backward()
  near(c.grad, x.grad, 'input gradient', tol)
end

describe('stft against torch.stft', function()
  for _, c in ipairs(ref.stft) do
    it(c.name, function()
      local o = options(c.options)
      if c.window ~= require('cjson').null then o.window = nn.tensor(c.window) end
      local x = nn.tensor(c.x):requires_grad_()
      check_grad(c, x, nn.stft(x, o), 2e-5)
    end)
  end
end)

describe('resample against torchaudio', function()
  for _, c in ipairs(ref.resample) do
    it(c.name, function()
      local x = nn.tensor(c.x):requires_grad_()
      check_grad(c, x, nn.audio.resample(x, math.tointeger(c.orig), math.tointeger(c.new), options(c.options)), 2e-5)
    end)
  end
end)

describe('mel filter banks against torchaudio', function()
  for _, c in ipairs(ref.mel) do
    it(c.name, function()
      local a = c.args
      local fb = nn.audio.mel_filterbank(math.tointeger(a[1]), a[2], a[3], math.tointeger(a[4]),
        math.tointeger(a[5]), options(c.options))
      near(c.output, fb, 'filter bank', 1e-5)
    end)
  end
end)

describe('MelSpectrogram and amplitude_to_db against torchaudio', function()
  for _, c in ipairs(ref.melspec) do
    it(c.name, function()
      local x = nn.tensor(c.x):requires_grad_()
      local m = nn.audio.MelSpectrogram(options(c.options))
      check_grad(c, x, m(x), 2e-5)
    end)
  end
  for _, c in ipairs(ref.amplitude_to_db) do
    it(c.name, function()
      local x = nn.tensor(c.x):requires_grad_()
      check_grad(c, x, nn.audio.amplitude_to_db(x, options(c.options)), 1e-5)
    end)
  end
end)

describe('audio features', function()
  -- a direct DFT in double precision, to check the FFT on sizes the
  -- fixtures do not cover (primes, odd composites, large radix-4 runs)
  local function dft_magnitudes(v, n)
    local out = {}
    for k = 0, n // 2 do
      local re, im = 0, 0
      for j = 0, n - 1 do
        re = re + v[j + 1] * math.cos(2 * math.pi * j * k / n)
        im = im - v[j + 1] * math.sin(2 * math.pi * j * k / n)
      end
      out[k + 1] = { re, im }
    end
    return out
  end

  it('computes the DFT of every frame size', function()
    nn.manual_seed(3)
    for _, n in ipairs({ 1, 2, 3, 4, 5, 6, 8, 12, 13, 16, 25, 30, 64, 97, 100, 128, 210, 256, 1024 }) do
      local x = nn.randn(n)
      local y = nn.stft(x, { n_fft = n, hop_length = n, center = false })
      local want = dft_magnitudes(x:totable(), n)
      near({ want }, y:view(1, n // 2 + 1, 2), 'DFT of ' .. n .. ' points', 1e-5 * math.max(1, math.log(n)))
    end
  end)

  it('stft passes first and second finite-difference checks', function()
    nn.manual_seed(4)
    local w = nn.audio.hann_window(12)
    local x = nn.randn(2, 30):requires_grad_()
    local f = function(v) return nn.stft(v, { n_fft = 16, hop_length = 5, win_length = 12, window = w }) end
    assert(nn.gradcheck(f, { x }))
    assert(nn.gradgradcheck(function(v) return f(v) ^ 2 end, { x }, { atol = 2e-3, rtol = 2e-2 }))
    assert(nn.gradcheck(function(v) return nn.audio.resample(v, 3, 2) end, { nn.randn(2, 20):requires_grad_() }))
    local m = nn.audio.MelSpectrogram { sample_rate = 8000, n_fft = 32, n_mels = 6 }
    assert(nn.gradcheck(function(v) return m(v) end, { nn.randn(40):requires_grad_() }, { rtol = 3e-2 }))
  end)

  it('makes torch windows', function()
    near({ 0, 0.25, 0.75, 1, 0.75, 0.25 }, nn.audio.hann_window(6), 'periodic hann')
    near({ 0, 0.75, 0.75, 0 }, nn.audio.hann_window(4, { periodic = false }), 'symmetric hann')
    near({ 0.08, 0.54, 1, 0.54 }, nn.audio.hamming_window(4), 'hamming')
  end)

  it('rejects bad arguments naming them', function()
    local x = nn.randn(2, 50)
    local function fails(pattern, f, ...)
      local ok, err = pcall(f, ...)
      assert(not ok, 'expected an error matching ' .. pattern)
      assert(tostring(err):find(pattern), tostring(err))
    end
    fails('n_fft is required', nn.stft, x, {})
    fails("unknown option 'nfft'", nn.stft, x, { nfft = 4 })
    fails('stft expects an f32 signal', nn.stft, nn.randn(2, 2, 50), { n_fft = 8 })
    fails('reflect padding of 32 needs a signal longer', nn.stft, nn.randn(20), { n_fft = 64 })
    fails('shorter than n_fft', nn.stft, nn.randn(20), { n_fft = 64, center = false })
    fails('window 5 must have win_length 8 points', nn.stft, x, { n_fft = 8, window = nn.ones(5) })
    fails('win_length must be an integer in 1..8', nn.stft, x, { n_fft = 8, win_length = 9 })
    fails('pad_mode must be one of constant, reflect, replicate, circular, got mirror', nn.stft, x,
      { n_fft = 8, pad_mode = 'mirror' })
    fails('rates 0 and 8000 must be', nn.audio.resample, x, 0, 8000)
    fails('rolloff 2 must be in', nn.audio.resample, x, 2, 1, { rolloff = 2 })
    fails('need 0 <= f_min < f_max', nn.audio.mel_filterbank, 65, 100, 50, 8, 16000)
    fails("norm must be one of none, slaney, got area", nn.audio.mel_filterbank, 65, 0, 50, 8, 16000, { norm = 'area' })
    fails('power must be a positive number', nn.audio.spectrogram, x, { n_fft = 8, power = 0 })
    fails("unknown option 'nmels'", nn.audio.MelSpectrogram, { nmels = 3 })
  end)
end)
