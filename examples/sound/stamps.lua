--- The Tux Paint stamps as an image-text-sound set (examples/sound): each stamp's picture,
--- English caption and category (its top folder), its sound effect
--- (NAME.ogg, 131 stamps) and its spoken descriptions (NAME_desc_LANG.ogg,
--- about 7,400 recordings in a dozen languages). Sounds are decoded with
--- nn.audio.read, mixed to mono at 16 kHz, cut or padded to --seconds and
--- turned into log-mel spectrograms (64 mels, 25 ms windows, 10 ms hop, dB
--- floored 80 below the peak). Splits are by stamp (a hash of its file
--- name), so no picture, sound or recording of a test stamp is trained on.
local nn = require 'nnlua'
local data = require 'data' -- examples/caption/data.lua

local M = {}

M.RATE, M.MELS = 16000, 64

--- logmel(path, seconds, mel) -> (MELS, frames) or nil, error
function M.logmel(path, seconds, mel)
  local ok, x = pcall(nn.audio.read, path, { rate = M.RATE, mono = true })
  if not ok then return nil, x end
  local n = math.floor(seconds * M.RATE)
  if x:size(2) >= n then x = x:narrow(2, 1, n) else x = x:pad({ 0, n - x:size(2) }) end
  return nn.audio.amplitude_to_db(mel(x), { top_db = 80 })[1]
end

--- build(o) -> {stamps, images, sounds, speech, stats}: stamps {name, caption,
--- category, class, split, sound (row in sounds or nil), speech = {{row, lang}}}
function M.build(o)
  local t0 = nn.clock()
  if not o.root or o.root == data.TUXPAINT then data.ensure_packages() end
  local mel = nn.audio.MelSpectrogram { sample_rate = M.RATE, n_fft = 400, hop_length = 160, n_mels = M.MELS }
  local stamps, images, sounds, speech, classes, bad = {}, {}, {}, {}, {}, 0
  for _, it in ipairs(data.tuxpaint(o.root or data.TUXPAINT)) do
    local ok, img = pcall(data.picture, it.image, o.size)
    if ok then
      local name = it.image:match('([^/]+)%.png$')
      local h = data.fnv1a(it.image:sub(#(o.root or data.TUXPAINT) + 2)) % 10000 / 10000
      local s = { name = name, caption = it.captions[1], category = it.category, translations = it.translations,
        split = h < o.test and 'test' or 'train', speech = {} }
      if not classes[it.category] then classes[#classes + 1] = it.category; classes[it.category] = #classes end
      s.class = classes[it.category]
      images[#images + 1] = img:to('f16')
      if it.sound then
        local m = M.logmel(it.sound, o.seconds, mel)
        if m then sounds[#sounds + 1] = m:to('f16'); s.sound = #sounds else bad = bad + 1 end
      end
      local langs = {}
      for lang in pairs(it.speech) do langs[#langs + 1] = lang end
      table.sort(langs)
      for _, lang in ipairs(langs) do
        local m = M.logmel(it.speech[lang], o.seconds, mel)
        if m then speech[#speech + 1] = m:to('f16'); s.speech[#s.speech + 1] = { #speech, lang } else bad = bad + 1 end
      end
      stamps[#stamps + 1] = s
    end
  end
  -- nn.stack takes at most 4096 tensors: stack in runs, then join them
  local function stack(list)
    local runs = {}
    for i = 1, #list, 4096 do runs[#runs + 1] = nn.stack(table.move(list, i, math.min(i + 4095, #list), 1, {}), 1) end
    return #runs == 1 and runs[1] or nn.cat(runs, 1)
  end
  local names = {}
  for i, c in ipairs(classes) do names[i] = c end
  return { stamps = stamps, classes = names, images = stack(images), sounds = stack(sounds),
    speech = stack(speech), stats = { stamps = #stamps, sounds = #sounds, speech = #speech,
    unreadable_sounds = bad, seconds = nn.clock() - t0 } }
end

--- load(o) -> the set, built once into o.cache or read from there
function M.load(o)
  local cjson = require 'cjson'
  local base = ('%s/sound-%d-%g'):format(o.cache, o.size, o.seconds)
  local f = io.open(base .. '.json')
  if f then
    local d = cjson.decode(f:read('a'))
    f:close()
    for _, s in ipairs(d.stamps) do -- JSON numbers come back as floats: rows index tensors
      s.class, s.sound = math.tointeger(s.class), s.sound and math.tointeger(s.sound)
      for _, r in ipairs(s.speech) do r[1] = math.tointeger(r[1]) end
    end
    local t = nn.load(base .. '.safetensors')
    d.images, d.sounds, d.speech = t.images, t.sounds, t.speech
    return d
  end
  local d = M.build(o)
  assert(os.execute("mkdir -p '" .. o.cache .. "'"))
  assert(nn.save(base .. '.safetensors', { images = d.images, sounds = d.sounds, speech = d.speech }))
  assert(require('nnlua.files').write_atomic(base .. '.json', cjson.encode({ stamps = d.stamps, classes = d.classes,
    stats = d.stats })))
  return d
end

return M
