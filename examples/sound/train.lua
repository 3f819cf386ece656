--- Sound as a modality, on the Tux Paint stamps (data.lua): pictures, their
--- English captions and translations, sound effects and spoken
--- descriptions, split by stamp. Four experiments, each with its wall time:
---  1. image <-> sound-effect retrieval and 2. image <-> spoken-description
---     retrieval: an image CNN and a log-mel audio encoder (Conv1d, batch
---     norm) trained with the CLIP loss; Recall@1/5/10 both ways on the
---     held-out stamps beside chance (k / candidates);
---  3. the stamp's category from image + caption + sound with each fusion
---     operator (concatenation, sum, gated), trained with random modality
---     dropout, tested with every modality and with one taken away (the
---     mask); single-modality models as baselines;
---  4. images retrieved from captions in languages never paired with an
---     image in training: the text encoder learns from English captions
---     only, through a byte-level BPE shared by all languages; German and
---     French (and Spanish) test captions beside English.
---   nnlua examples/sound/train.lua [--only sound,speech,fusion,languages]
local here = arg[0]:gsub('[^/]*$', '')
package.path = here .. '?.lua;' .. here .. '../caption/?.lua;' .. package.path
local nn = require 'nnlua'
local sound = require 'stamps'

local EXPERIMENTS = { 'sound', 'speech', 'fusion', 'languages' }
local opt = nn.cli.parse(arg, {
  { 'cache', 'data/sound', 'where the decoded stamps, sounds and log-mels are kept' },
  { 'root', '/usr/share/tuxpaint/stamps', 'the Tux Paint stamps folder (tuxpaint-stamps-default)' },
  { 'only', '', 'comma-separated experiments (default: all)', each = EXPERIMENTS },
  { 'size', 64, 'picture side in pixels', integer = true, min = 8, max = 256 },
  { 'seconds', 2, 'sound length kept (cut or padded)', min = 0.1, max = 30 },
  { 'test', 0.2, 'fraction of stamps held out', min = 0.01, max = 0.9 },
  { 'steps', 600, 'training steps per model', integer = true, min = 1 },
  { 'batch', 64, 'pairs per contrastive batch (at most the training pairs)', integer = true, min = 2 },
  { 'embed', 128, 'width of the shared embedding space', integer = true, min = 1 },
  { 'lr', 1e-3, 'AdamW learning rate', min = 0 },
  { 'vocab', 2000, 'shared BPE vocabulary of the caption encoder', integer = true, min = 260 },
  { 'seed', 1, 'random seed', integer = true },
  { 'threads', 0, 'threads (0: all cores)', integer = true, min = 0 },
})
if opt.threads > 0 then nn.set_num_threads(opt.threads) end
math.randomseed(opt.seed)
local run = {}
for name in (opt.only ~= '' and opt.only or table.concat(EXPERIMENTS, ',')):gmatch('[^,]+') do run[name] = true end

local set = nn.cli.try('--root', sound.load, { cache = opt.cache, root = opt.root, size = opt.size,
  seconds = opt.seconds, test = opt.test })
local images, sounds, speech = set.images:float(), set.sounds:float(), set.speech:float()
local train, test = {}, {}
for i, s in ipairs(set.stamps) do
  s.row = i
  if s.split == 'test' then test[#test + 1] = s else train[#train + 1] = s end
end
local st = set.stats
print(('data: %d stamps (%d train, %d test), %d sound effects, %d spoken descriptions, %d categories (%.0f s to build)')
  :format(st.stamps, #train, #test, st.sounds, st.speech, #set.classes, st.seconds))

-- ---- encoders -----------------------------------------------------------------------

local ImageEncoder = nn.Module:extend()
ImageEncoder._name = 'ImageEncoder'
function ImageEncoder:_init(out)
  self.net = nn.Sequential(
    nn.Conv2d(3, 32, 3, { stride = 2, padding = 1, bias = false }), nn.BatchNorm2d(32), nn.ReLU(),
    nn.Conv2d(32, 64, 3, { padding = 1, bias = false }), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
    nn.Conv2d(64, 128, 3, { padding = 1, bias = false }), nn.BatchNorm2d(128), nn.ReLU(),
    nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(128, out))
end
function ImageEncoder:forward(x) return self.net(x) end

--- log-mel (B, 64, T) -> (B, out): three strided Conv1d blocks, mean over time
local AudioEncoder = nn.Module:extend()
AudioEncoder._name = 'AudioEncoder'
function AudioEncoder:_init(out)
  self.norm = nn.BatchNorm1d(sound.MELS)
  self.net = nn.Sequential(
    nn.Conv1d(sound.MELS, 128, 5, { stride = 2, padding = 2, bias = false }), nn.BatchNorm1d(128), nn.ReLU(),
    nn.Conv1d(128, 128, 5, { stride = 2, padding = 2, bias = false }), nn.BatchNorm1d(128), nn.ReLU(),
    nn.Conv1d(128, 256, 3, { stride = 2, padding = 1, bias = false }), nn.BatchNorm1d(256), nn.ReLU())
  self.proj = nn.Linear(256, out)
end
function AudioEncoder:forward(x) return self.proj(self.net(self.norm(x)):mean(3)) end

--- bags of BPE tokens -> (B, out)
local TextEncoder = nn.Module:extend()
TextEncoder._name = 'TextEncoder'
function TextEncoder:_init(vocab, out)
  self.bag = nn.EmbeddingBag(vocab, 128, { mode = 'mean' })
  self.proj = nn.Linear(128, out)
end
function TextEncoder:forward(ids, offsets) return self.proj(self.bag(ids, offsets):tanh()) end

local function rows(t, list) return t:index_select(1, nn.tensor(list, 'i64')) end
-- a random order of 1..n (the seeded generator)
local function permutation(n) return select(2, nn.rand(n):sort()):totable() end
-- rows scaled to unit length (cosine similarities by matmul)
local function unit(x) return x / (x:norm(2, 2, true) + 1e-12) end

local function adamw(modules)
  local params = {}
  for _, m in ipairs(modules) do
    for _, p in ipairs(m:parameters()) do params[#params + 1] = p end
  end
  return nn.optim.AdamW(params, { lr = opt.lr, weight_decay = 0.01 })
end

local function set_mode(modules, training)
  for _, m in ipairs(modules) do if training then m:train() else m:eval() end end
end

-- ---- retrieval ------------------------------------------------------------------------

-- the chance of a hit in the top k of n candidates holding m matches,
-- averaged over the queries (positives: each query's m)
local function chance(k, n, positives)
  local total = 0
  for _, m in ipairs(positives) do
    local miss = 1
    for j = 0, math.min(k, n) - 1 do miss = miss * math.max(0, n - m - j) / (n - j) end
    total = total + 1 - miss
  end
  return total / #positives
end

local function recall_line(name, r, n, positives)
  positives = positives or { 1 }
  return ('%-40s R@1 %5.1f  R@5 %5.1f  R@10 %5.1f   (chance %.1f / %.1f / %.1f; %d candidates)'):format(name,
    100 * r[1], 100 * r[5], 100 * r[10], 100 * chance(1, n, positives), 100 * chance(5, n, positives),
    100 * chance(10, n, positives), n)
end

-- pairs: list of {stamp, audio row}; trains an image and an audio encoder
-- on batches of distinct stamps, then ranks the test pairs both ways
local function audio_retrieval(name, noun, audio, pairs_of)
  local t0 = nn.clock()
  nn.manual_seed(opt.seed)
  local tr, te = pairs_of(train), pairs_of(test)
  local by_stamp = {}
  for _, p in ipairs(tr) do
    by_stamp[p[1]] = by_stamp[p[1]] or {}
    table.insert(by_stamp[p[1]], p[2])
  end
  local stamps = {}
  for s in pairs(by_stamp) do stamps[#stamps + 1] = s end
  table.sort(stamps)
  local batch = math.min(opt.batch, #stamps)
  local img, aud, loss_fn = ImageEncoder(opt.embed), AudioEncoder(opt.embed), nn.ContrastiveLoss()
  local optim = adamw({ img, aud, loss_fn })
  for _ = 1, opt.steps do
    local perm = permutation(#stamps)
    local irows, arows = {}, {}
    for i = 1, batch do
      local s = stamps[perm[i]]
      local list = by_stamp[s]
      irows[i], arows[i] = set.stamps[s].row, list[math.random(#list)]
    end
    local loss = loss_fn(img(rows(images, irows)), aud(rows(audio, arows)))
    optim:zero_grad()
    loss:backward()
    optim:step()
  end
  set_mode({ img, aud }, false)
  nn.no_grad(function()
    local test_stamps, seen, arows, alabels, ilabels = {}, {}, {}, {}, {}
    for _, p in ipairs(te) do
      if not seen[p[1]] then seen[p[1]] = true; test_stamps[#test_stamps + 1] = p[1] end
      arows[#arows + 1], alabels[#alabels + 1] = p[2], p[1]
    end
    local irows = {}
    for i, s in ipairs(test_stamps) do irows[i], ilabels[i] = set.stamps[s].row, s end
    local fi, fa = img(rows(images, irows)), aud(rows(audio, arows))
    fi, fa = unit(fi), unit(fa)
    local li, la = nn.tensor(ilabels, 'i64'), nn.tensor(alabels, 'i64')
    local sim = fi:matmul(fa:t())
    local per_image = {}
    for _, l in ipairs(alabels) do per_image[l] = (per_image[l] or 0) + 1 end
    local m = {}
    for i, l in ipairs(ilabels) do m[i] = per_image[l] end
    print(recall_line(('%s: image -> %s'):format(name, noun), nn.multimodal.recall_at_k(sim, { 1, 5, 10 }, li, la),
      #arows, m))
    print(recall_line(('%s: %s -> image'):format(name, noun), nn.multimodal.recall_at_k(sim:t(), { 1, 5, 10 }, la, li),
      #irows))
  end)
  print(('%s: %d training pairs over %d stamps, %d test recordings, %d steps of %d in %.1f s'):format(name, #tr,
    #stamps, #te, opt.steps, batch, nn.clock() - t0))
end

if run.sound then
  audio_retrieval('sound effects', 'sound', sounds, function(list)
    local out = {}
    for _, s in ipairs(list) do
      if s.sound then out[#out + 1] = { s.row, s.sound } end
    end
    return out
  end)
end

if run.speech then
  audio_retrieval('spoken descriptions', 'recording', speech, function(list)
    local out = {}
    for _, s in ipairs(list) do
      for _, r in ipairs(s.speech) do out[#out + 1] = { s.row, r[1] } end
    end
    return out
  end)
end

-- ---- captions as token bags -------------------------------------------------------

local bpe
local function tokenizer()
  if not bpe then -- every language's training captions: the vocabulary is shared
    local text = {}
    for _, s in ipairs(train) do
      text[#text + 1] = s.caption
      for _, t in pairs(s.translations) do text[#text + 1] = t end
    end
    bpe = nn.tokenizer.BPE.train(table.concat(text, '\n'), opt.vocab)
  end
  return bpe
end

-- token bags of captions -> ids (N), offsets (B) for EmbeddingBag
local function bags(texts)
  local ids, offsets = {}, {}
  for b, t in ipairs(texts) do
    offsets[b] = #ids + 1
    local tok = tokenizer():encode(t:lower()):totable()
    if #tok == 0 then tok = { 1 } end
    for _, v in ipairs(tok) do ids[#ids + 1] = v end
  end
  return nn.tensor(ids, 'i64'), nn.tensor(offsets, 'i64')
end

-- ---- three-way fusion ---------------------------------------------------------------

if run.fusion then
  local kinds = { 'image only', 'text only', 'sound only', 'concat', 'sum', 'gated' }
  local D = 96
  local Classifier = nn.Module:extend()
  Classifier._name = 'StampClassifier'
  function Classifier:_init(kind)
    self.kind = kind
    self.img, self.txt, self.aud = ImageEncoder(D), TextEncoder(tokenizer():vocab_size(), D), AudioEncoder(D)
    local dims = { D, D, D }
    if kind == 'concat' then self.fuse = nn.ConcatFusion(dims, D)
    elseif kind == 'sum' then self.fuse = nn.SumFusion(dims, D)
    elseif kind == 'gated' then self.fuse = nn.GatedFusion(dims, D) end
    self.head = nn.Linear(D, #set.classes)
  end
  -- x = {images, ids, offsets, sounds}; mask (B, 3) 1 where present
  function Classifier:forward(x, mask)
    local parts = { self.img(x[1]), self.txt(x[2], x[3]), self.aud(x[4]) }
    if self.kind == 'image only' then return self.head(parts[1]:relu()) end
    if self.kind == 'text only' then return self.head(parts[2]:relu()) end
    if self.kind == 'sound only' then return self.head(parts[3]:relu()) end
    return self.head(self.fuse(parts, mask):relu())
  end

  local silence = nn.full({ sound.MELS, sounds:size(3) }, -100)
  local function inputs(list, drop)
    local irows, texts, auds, mask = {}, {}, {}, {}
    for i, s in ipairs(list) do
      irows[i], texts[i] = s.row, s.caption
      auds[i] = s.sound and sounds[s.sound] or silence
      local m = { 1, 1, s.sound and 1 or 0 }
      if drop then -- drop each present modality with p 0.3, keeping at least one
        for k = 1, 3 do if m[k] == 1 and math.random() < 0.3 then m[k] = 0 end end
        if m[1] + m[2] + m[3] == 0 then m[1] = 1 end
      end
      mask[i] = m
    end
    local ids, offsets = bags(texts)
    return { rows(images, irows), ids, offsets, nn.stack(auds, 1) }, nn.tensor(mask)
  end
  local function labels(list)
    local y = {}
    for i, s in ipairs(list) do y[i] = s.class end
    return nn.tensor(y, 'i64')
  end
  local tx, tmask = inputs(test, false)
  local ty = labels(test)
  local with_sound = {}
  for i, s in ipairs(test) do if s.sound then with_sound[#with_sound + 1] = i end end
  local function accuracy(model, mask, subset)
    local logits = nn.no_grad(function() return model(tx, mask) end)
    local pred, y = logits:argmax(2), ty
    if subset then
      local idx = nn.tensor(subset, 'i64')
      pred, y = pred:index_select(1, idx), y:index_select(1, idx)
    end
    return 100 * pred:eq(y):float():mean():item()
  end
  local function without(k)
    local m = tmask:clone()
    m:select(2, k):zero_()
    return m
  end
  local counts, majority = {}, 0
  for _, s in ipairs(test) do counts[s.class] = (counts[s.class] or 0) + 1; majority = math.max(majority, counts[s.class]) end
  print(('fusion: stamp category (%d classes; the majority class is %.1f%% of the test stamps; %d of %d test stamps have a sound)')
    :format(#set.classes, 100 * majority / #test, #with_sound, #test))
  print(('%-12s %9s %13s %13s %16s %8s'):format('model', 'all', 'without text', 'without image', 'with sound only', 'seconds'))
  for _, kind in ipairs(kinds) do
    local t0 = nn.clock()
    nn.manual_seed(opt.seed)
    math.randomseed(opt.seed)
    local model = Classifier(kind)
    local optim = adamw({ model })
    for _ = 1, opt.steps do
      local perm = permutation(#train)
      local b = {}
      for i = 1, math.min(opt.batch, #train) do b[i] = train[perm[i]] end
      local x, mask = inputs(b, kind ~= 'image only' and kind ~= 'text only' and kind ~= 'sound only')
      local loss = nn.cross_entropy(model(x, mask), labels(b))
      optim:zero_grad()
      loss:backward()
      optim:step()
    end
    model:eval()
    local only_sound = tmask:clone()
    only_sound:select(2, 1):zero_()
    only_sound:select(2, 2):zero_()
    if model.fuse then
      print(('%-12s %8.1f%% %12.1f%% %12.1f%% %15.1f%% %8.1f'):format(kind, accuracy(model, tmask),
        accuracy(model, without(2)), accuracy(model, without(1)), accuracy(model, only_sound, with_sound),
        nn.clock() - t0))
    else -- a single-modality model ignores the mask
      local subset = kind == 'sound only' and with_sound or nil
      print(('%-12s %8.1f%% %13s %13s %15s %8.1f'):format(kind, accuracy(model, tmask, subset), '', '',
        kind == 'sound only' and '(sound stamps)' or '', nn.clock() - t0))
    end
  end
end

-- ---- captions in languages unseen in training ------------------------------------------

if run.languages then
  local t0 = nn.clock()
  nn.manual_seed(opt.seed)
  local img, txt, loss_fn = ImageEncoder(opt.embed), TextEncoder(tokenizer():vocab_size(), opt.embed), nn.ContrastiveLoss()
  local optim = adamw({ img, txt, loss_fn })
  local batch = math.min(opt.batch, #train)
  for _ = 1, opt.steps do
    local perm = permutation(#train)
    local irows, texts = {}, {}
    for i = 1, batch do
      local s = train[perm[i]]
      irows[i], texts[i] = s.row, s.caption
    end
    local loss = loss_fn(img(rows(images, irows)), txt(bags(texts)))
    optim:zero_grad()
    loss:backward()
    optim:step()
  end
  set_mode({ img, txt }, false)
  nn.no_grad(function()
    for _, lang in ipairs({ 'en', 'de', 'fr', 'es' }) do
      local irows, texts = {}, {}
      for _, s in ipairs(test) do
        local t = lang == 'en' and s.caption or s.translations[lang]
        if t then irows[#irows + 1], texts[#texts + 1] = s.row, t end
      end
      local fi, ft = img(rows(images, irows)), txt(bags(texts))
      fi, ft = unit(fi), unit(ft)
      print(recall_line(('caption (%s) -> image'):format(lang), nn.multimodal.recall_at_k(ft:matmul(fi:t()), { 1, 5, 10 }),
        #irows))
    end
  end)
  print(('languages: trained on %d English captions, %d steps of %d, in %.1f s'):format(#train, opt.steps, batch,
    nn.clock() - t0))
end
