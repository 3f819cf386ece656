-- nn.image and nn.audio readers on the files tests/ref/gen_media_files.py
-- wrote (every PNG colour type and depth; WAV of six sample formats; Ogg
-- Vorbis decoded by python3-soundfile as the reference), conversion,
-- resizing, writing, and clear errors on cut, damaged and random files.
local nn = require 'nnlua'
local support = require 'support'

local ref = support.reference('media')
local near = support.near
local DIR = 'tests/data/media/'

local function bytes_of(path)
  local f = assert(io.open(path, 'rb'))
  local s = f:read('a')
  f:close()
  return s
end

local function fails(pattern, f, ...)
  local ok, err = pcall(f, ...)
  assert(not ok, 'expected an error matching ' .. pattern)
  assert(tostring(err):find(pattern, 1, true), tostring(err))
end

describe('nn.image.read', function()
  for _, c in ipairs(ref.images) do
    it(c.file, function()
      local img, depth = nn.image.read(DIR .. c.file)
      assert.equal('f32', img.dtype)
      assert.equal(math.tointeger(c.depth), depth)
      near(c.values, img, c.file, 1e-7)
    end)
  end

  -- channels = 3 composites in C while decoding; it must give the bits
  -- the tensor formula gives (the caption cache depends on them)
  it('composites every file with alpha exactly as the tensor formula', function()
    local checked = 0
    for _, c in ipairs(ref.images) do
      local raw = nn.image.read(DIR .. c.file)
      for _, bg in ipairs({ 1, 0, { 1, 0, 0.5 }, { 0.3, 0.7, 0.123 } }) do
        local rgb = nn.image.read(DIR .. c.file, { channels = 3, background = bg })
        local n = raw:size(1)
        local colour = n <= 2 and raw:narrow(1, 1, 1):expand(3, -1, -1) or raw:narrow(1, 1, 3)
        local want = colour
        if n == 2 or n == 4 then
          local a = raw:narrow(1, n, 1)
          local b = type(bg) == 'number' and { bg, bg, bg } or bg
          want = colour * a + nn.tensor(b):view(3, 1, 1) * (1 - a)
          checked = checked + 1
        end
        assert.equal(0, (rgb - want):abs():max():item(), c.file)
      end
    end
    assert.is_true(checked >= 8, 'files with alpha: ' .. checked / 4)
  end)

  it('converts channels, composites alpha and resizes', function()
    local rgba = nn.image.read(DIR .. 'rgba8.png')
    local rgb = nn.image.read(DIR .. 'rgba8.png', { channels = 3, background = { 1, 0, 0.5 } })
    local a = rgba:narrow(1, 4, 1)
    local want = rgba:narrow(1, 1, 3) * a + nn.tensor({ 1, 0, 0.5 }):view(3, 1, 1) * (1 - a)
    near(want:totable(), rgb, 'composited on a colour', 1e-6)
    local grey = nn.image.read(DIR .. 'rgb8.png', { channels = 1 })
    local src = nn.image.read(DIR .. 'rgb8.png')
    near((src[1] * 0.299 + src[2] * 0.587 + src[3] * 0.114):unsqueeze(1):totable(), grey, 'luminance', 1e-6)
    local g3 = nn.image.read(DIR .. 'grey8.png', { channels = 3 })
    assert.same({ 3, 3, 5 }, g3.shape)
    near(g3[1]:totable(), g3[3], 'grey replicated')
    assert.same({ 4, 3, 5 }, nn.image.read(DIR .. 'rgb8.png', { channels = 4 }).shape)
    local small = nn.image.read(DIR .. 'rgb8_interlaced.png', { size = { 3, 4 } })
    local full = nn.image.read(DIR .. 'rgb8_interlaced.png')
    near(nn.adaptive_avg_pool2d(full:unsqueeze(1), { 3, 4 })[1]:totable(), small, 'area resize')
    local bl = nn.image.resize(full, 5, { filter = 'bilinear' })
    near(nn.interpolate(full:unsqueeze(1), { size = { 5, 5 }, mode = 'bilinear' })[1]:totable(), bl, 'bilinear')
    assert.same({ 2, 3, 2, 2 }, nn.image.resize(nn.rand(2, 3, 6, 6), { 2, 2 }).shape)
  end)

  it('writes PNGs that read back', function()
    local dir = support.tempdir()
    for _, c in ipairs({ 1, 2, 3, 4 }) do
      nn.manual_seed(c)
      local img = (nn.rand(c, 7, 9) * 255):round() / 255
      nn.image.write(dir .. '/x.png', img)
      near(img:totable(), nn.image.read(dir .. '/x.png'), c .. ' channels', 1e-7)
    end
    nn.image.write(dir .. '/y.png', nn.tensor({ { { -1, 2 } } }))
    near({ { { 0, 1 } } }, nn.image.read(dir .. '/y.png'), 'clamped')
    fails('write_png expects an f32 (C, H, W) image', nn.image.write, dir .. '/z.png', nn.rand(5, 2, 2))
    fails('image.write: ' .. dir .. '/no/such/dir.png: No such file or directory', nn.image.write,
      dir .. '/no/such/dir.png', nn.rand(1, 2, 2))
  end)

  it('raises clear errors on cut, damaged and random files', function()
    local dir = support.tempdir()
    local png = bytes_of(DIR .. 'rgb8_interlaced.png')
    support.write(dir .. '/cut.png', png:sub(1, #png // 2))
    fails("cannot read PNG '" .. dir .. "/cut.png'", nn.image.read, dir .. '/cut.png')
    support.write(dir .. '/header.png', png:sub(1, 20))
    fails('cannot read PNG', nn.image.read, dir .. '/header.png')
    -- one flipped byte in the image data: libpng's CRC check
    local at = png:find('IDAT', 1, true) + 8
    support.write(dir .. '/crc.png', png:sub(1, at - 1) .. string.char((png:byte(at) + 1) % 256) .. png:sub(at + 1))
    fails("cannot read PNG '" .. dir .. "/crc.png'", nn.image.read, dir .. '/crc.png')
    math.randomseed(9)
    local junk = {}
    for i = 1, 3000 do junk[i] = string.char(math.random(0, 255)) end
    support.write(dir .. '/random.png', table.concat(junk))
    fails('is not a PNG file (bad signature)', nn.image.read, dir .. '/random.png')
    support.write(dir .. '/sig.png', png:sub(1, 8) .. table.concat(junk))
    fails('cannot read PNG', nn.image.read, dir .. '/sig.png')
    fails("cannot open 'tests/data/media/none.png'", nn.image.read, DIR .. 'none.png')
    fails("unknown option 'channel'", nn.image.read, DIR .. 'rgb8.png', { channel = 3 })
    fails('channels must be 1, 3 or 4, got 2', nn.image.read, DIR .. 'rgb8.png', { channels = 2 })
    fails('size must be a positive integer or {h, w}', nn.image.read, DIR .. 'rgb8.png', { size = 0 })
    fails("filter must be 'area', 'bilinear' or 'nearest'", nn.image.resize, nn.rand(1, 4, 4), 2, { filter = 'cubic' })
  end)
end)

describe('nn.audio.read', function()
  for _, c in ipairs(ref.sounds) do
    it(c.file, function()
      local x, rate = nn.audio.read(DIR .. c.file)
      assert.equal(math.tointeger(c.rate), rate)
      assert.same({ math.tointeger(c.shape[1]), math.tointeger(c.shape[2]) }, x.shape)
      local every = math.tointeger(c.every)
      local picked = x:index_select(2, nn.arange(1, x:size(2) + 1, every))
      near(c.values, picked, c.file, 1e-6)
    end)
  end

  it('resamples and mixes down on request', function()
    local x, rate = nn.audio.read(DIR .. 'chirp_stereo.ogg')
    local y, r2 = nn.audio.read(DIR .. 'chirp_stereo.ogg', { rate = 16000, mono = true })
    assert.equal(16000, r2)
    near(nn.audio.resample(x:mean(1, true), rate, 16000):totable(), y, 'mono at 16 kHz', 1e-6)
  end)

  it('raises clear errors on cut, damaged and random files', function()
    local dir = support.tempdir()
    local ogg = bytes_of(DIR .. 'chirp_stereo.ogg')
    support.write(dir .. '/cut.ogg', ogg:sub(1, #ogg - 700))
    fails('the file is cut short', nn.audio.read, dir .. '/cut.ogg')
    support.write(dir .. '/head.ogg', ogg:sub(1, 60))
    fails("cannot read Ogg Vorbis '" .. dir .. "/head.ogg'", nn.audio.read, dir .. '/head.ogg')
    math.randomseed(5)
    local junk = {}
    for i = 1, 4000 do junk[i] = string.char(math.random(0, 255)) end
    junk = table.concat(junk)
    support.write(dir .. '/random.ogg', 'OggS' .. junk)
    fails('cannot read Ogg Vorbis', nn.audio.read, dir .. '/random.ogg')
    support.write(dir .. '/random.wav', junk)
    fails('is neither Ogg Vorbis nor WAV', nn.audio.read, dir .. '/random.wav')
    local wav = bytes_of(DIR .. 'stereo_s16.wav')
    support.write(dir .. '/cut.wav', wav:sub(1, #wav - 10))
    fails('its data chunk runs past the end', nn.audio.read, dir .. '/cut.wav')
    support.write(dir .. '/nofmt.wav', wav:sub(1, 12))
    fails('no fmt chunk', nn.audio.read, dir .. '/nofmt.wav')
    support.write(dir .. '/adpcm.wav', wav:sub(1, 20) .. '\2\0' .. wav:sub(23))
    fails('only PCM and IEEE float', nn.audio.read, dir .. '/adpcm.wav')
    fails("cannot open 'nope.ogg'", nn.audio.read, 'nope.ogg')
    fails("unknown option 'sr'", nn.audio.read, DIR .. 'tone_mono.ogg', { sr = 8000 })
    fails('rate must be a positive integer', nn.audio.read, DIR .. 'tone_mono.ogg', { rate = 1.5 })
  end)
end)
