--- nn.audio: reading sound and the features audio models take, with
--- torchaudio's definitions and defaults.
---
---   local wave, rate = nn.audio.read('call.ogg', { rate = 16000, mono = true })
---   local mel = nn.audio.MelSpectrogram { sample_rate = 16000, n_mels = 64 }
---   local db = nn.audio.amplitude_to_db(mel(wave), { top_db = 80 })
---
--- The transforms are differentiable in the signal (stft has a double
--- backward too); windows and filter banks are constants.
local nn = require 'nnlua'
local Module = require('nnlua.module').Module

local M = {}

M.stft = nn.stft
M.resample = nn.resample
M.mel_filterbank = nn.mel_filterbank

local check_read = nn.define_options('audio.read', { 'rate', 'mono' })

--- read(path[, {rate =, mono = false}]) -> signal (channels, samples), rate.
--- Ogg Vorbis or WAV; with rate, resampled to it; mono averages the channels
--- into (1, samples).
function M.read(path, o)
  o = check_read(o)
  if type(path) ~= 'string' then error('audio.read: path must be a string', 2) end
  local x, rate = require('nnlua.image')._call('audio.read', nn._read_audio, path)
  if o and o.mono and x:size(1) > 1 then x = x:mean(1, true) end
  if o and o.rate and o.rate ~= rate then
    if math.type(o.rate) ~= 'integer' or o.rate < 1 then
      error('audio.read: rate must be a positive integer, got ' .. tostring(o.rate), 2)
    end
    x, rate = nn.resample(x, rate, o.rate), o.rate
  end
  return x, rate
end

local function cosine_window(name, a0, n, o, level)
  if math.type(n) ~= 'integer' or n < 1 then
    error(name .. ': window length must be a positive integer, got ' .. tostring(n), level + 1)
  end
  local periodic = not (o and o.periodic == false)
  local d = periodic and n or n - 1
  local w = {}
  for i = 0, n - 1 do w[i + 1] = d == 0 and 1 or a0 - (1 - a0) * math.cos(2 * math.pi * i / d) end
  return nn.tensor(w)
end

local check_window = nn.define_options('audio.window', { 'periodic' })

--- hann_window(n[, {periodic = true}]) and hamming_window: as torch's
function M.hann_window(n, o) return cosine_window('hann_window', 0.5, n, check_window(o), 2) end
function M.hamming_window(n, o) return cosine_window('hamming_window', 0.54, n, check_window(o), 2) end

local SPEC_KEYS = { 'n_fft', 'hop_length', 'win_length', 'window', 'center', 'pad_mode', 'normalized', 'power' }
local check_spec = nn.define_options('audio.spectrogram', SPEC_KEYS)

-- the stft options of a spectrogram's (defaults as torchaudio: n_fft 400,
-- a periodic Hann window of win_length)
local function stft_options(o)
  local n_fft = o.n_fft or 400
  local win = o.win_length or n_fft
  local window = o.window
  if window == nil or window == 'hann' then window = M.hann_window(win)
  elseif window == 'hamming' then window = M.hamming_window(win)
  elseif window == 'ones' or window == false then window = nil end
  return { n_fft = n_fft, hop_length = o.hop_length or win // 2, win_length = win, window = window,
           center = o.center, pad_mode = o.pad_mode, normalized = o.normalized }
end

local function power_of(s, power)
  local p = s:select(-1, 1) ^ 2 + s:select(-1, 2) ^ 2
  if power == 2 then return p end
  if power == 1 then return (p + 1e-20):sqrt() end -- sqrt is not differentiable at 0
  return (p + 1e-20) ^ (power / 2)
end

--- spectrogram(x[, {n_fft = 400, win_length = n_fft, hop_length = win_length // 2,
--- window = 'hann' | 'hamming' | 'ones' | tensor, center, pad_mode, normalized,
--- power = 2}]) -> (..., n_fft // 2 + 1, frames), as torchaudio's Spectrogram
function M.spectrogram(x, o)
  o = check_spec(o) or {}
  local power = o.power == nil and 2 or o.power
  if type(power) ~= 'number' or power <= 0 then
    error('audio.spectrogram: power must be a positive number, got ' .. tostring(power), 2)
  end
  return power_of(nn.stft(x, stft_options(o)), power)
end

local MEL_KEYS = { 'sample_rate', 'n_fft', 'win_length', 'hop_length', 'f_min', 'f_max', 'n_mels',
                   'window', 'power', 'normalized', 'center', 'pad_mode', 'norm', 'mel_scale' }

--- MelSpectrogram{sample_rate = 16000, n_fft = 400, win_length, hop_length,
--- f_min = 0, f_max = sample_rate / 2, n_mels = 128, window, power = 2,
--- normalized, center, pad_mode, norm, mel_scale}: x (..., L) -> (..., n_mels,
--- frames), torchaudio.transforms.MelSpectrogram; the filter bank is the
--- buffer `fb` (n_freqs, n_mels)
local MelSpectrogram = Module:extend()
MelSpectrogram._name = 'MelSpectrogram'
M.MelSpectrogram = MelSpectrogram
local check_mel = nn.define_options('MelSpectrogram', MEL_KEYS)
function MelSpectrogram:_init(o)
  o = check_mel(o) or {}
  local rate = o.sample_rate or 16000
  local n_fft = o.n_fft or 400
  self.stft = stft_options(o)
  self.power = o.power or 2
  self:register_buffer('fb', nn.mel_filterbank(n_fft // 2 + 1, o.f_min or 0, o.f_max or rate / 2,
    o.n_mels or 128, rate, { norm = o.norm, mel_scale = o.mel_scale }))
end
function MelSpectrogram:forward(x)
  local spec = power_of(nn.stft(x, self.stft), self.power)
  return spec:transpose(-1, -2):matmul(self.fb):transpose(-1, -2)
end

local check_db = nn.define_options('audio.amplitude_to_db', { 'multiplier', 'amin', 'ref', 'top_db' })

--- amplitude_to_db(x[, {multiplier = 10, amin = 1e-10, ref = 1, top_db}]):
--- multiplier log10(max(x, amin) / ref), floored at top_db below the
--- maximum of each item's last three dims (torchaudio's amplitude_to_DB;
--- multiplier 10 for power, 20 for magnitude)
function M.amplitude_to_db(x, o)
  o = check_db(o) or {}
  local mult, amin, ref = o.multiplier or 10, o.amin or 1e-10, o.ref or 1
  local db = x:clamp(amin, math.huge):log() * (mult / math.log(10)) - mult * math.log(math.max(amin, ref), 10)
  if o.top_db then
    local shape = db.shape
    local channels = #shape > 2 and shape[#shape - 2] or 1
    local packed = db:reshape(-1, channels * shape[#shape - 1] * shape[#shape])
    local floor = packed:max(2, true) - o.top_db
    db = nn.maximum(packed, floor):reshape(table.unpack(shape))
  end
  return db
end

return M
