--- Knowledge assisting a sequence model: classify WordNet synsets into
--- their lexicographer file (noun.animal, noun.artifact, verb.motion, ...:
--- 45 classes) from the gloss text with a small Transformer encoder, once
--- from the text alone and once with the synset's pretrained knowledge-
--- graph embedding fused into every token's features (concatenation or
--- the gated multimodal unit; the KG vector is frozen), and, as a
--- baseline, from the KG vector alone (an MLP). Same split, seed,
--- encoder and epochs for every row; each row keeps its best epoch on the
--- validation split and reports test accuracy there.
---
--- The KG embedding is the entity table of a model trained by
--- examples/kge/train.lua on the WordNet graph of examples/kge/wordnet.lua
--- (pointers only: no lexicographer file is in the graph). When --kg does
--- not exist it is trained first: --kg_steps steps of ComplEx, 1-vs-all
--- against the batch's answers and 8192 shared random entities.
---
--- Usage: nnlua examples/kg_text/train.lua [--only text,concat,gated,kg] [options]
--- (--help lists them all).
local here = arg[0]:gsub('[^/]*$', '')
package.path = here .. '../common/?.lua;' .. here .. '?.lua;' .. package.path
local nn = require 'nnlua'
local glosses = require 'glosses'

local opt = nn.cli.parse(arg, {
  { 'wordnet', '/usr/share/wordnet', 'WordNet database folder (the wordnet-base package)', path = 'dir' },
  { 'kg', 'build/wordnet-kg/complex.safetensors', 'the KG model (trained first when missing)' },
  { 'kg_steps', 2200, 'ComplEx steps when --kg must be trained first (0: never train)', integer = true, min = 0 },
  { 'epochs', 5, 'passes over the training synsets per model', integer = true, min = 1 },
  { 'batch', 256, 'synsets per batch', integer = true, min = 1 },
  { 'lr', 2e-3, 'AdamW learning rate', min = 0 },
  { 'len', 24, 'gloss length in tokens', integer = true, min = 1 },
  { 'dim', 128, 'encoder width', integer = true, min = 1 },
  { 'layers', 2, 'encoder layers', integer = true, min = 1 },
  { 'dropout', 0.0, 'dropout probability', min = 0, max = 0.99 },
  { 'only', 'text,concat,gated,kg', 'comma-separated models to run', each = { 'text', 'concat', 'gated', 'kg' } },
  { 'limit', 0, 'use only N synsets (0: all)', integer = true, min = 0 },
  { 'seed', 1, 'random seed', integer = true },
  { 'threads', 0, 'threads (0: all cores)', integer = true, min = 0 },
})
if opt.threads > 0 then nn.set_num_threads(opt.threads) end
io.stdout:setvbuf('line')

if not io.open(opt.kg) then -- pretrain the KG embedding (its script builds the graph too)
  if opt.kg_steps < 1 then
    nn.cli.fail('no KG model at %s: train one with examples/kge/train.lua or pass --kg_steps N', opt.kg)
  end
  local cmd = ('%q %s../kge/train.lua --data wordnet --model complex --dim 100 --loss ce --candidates 8192 '
    .. '--lr 0.003 --init 0.001 --regularizer n3 --reg_weight 0.01 --steps %d --eval_every %d '
    .. '--valid_limit 1000 --out %q --seed %d')
    :format(arg[-1] or 'nnlua', here, opt.kg_steps, (opt.kg_steps + 1) // 2, opt.kg, opt.seed)
  local dir = opt.kg:match('^(.*)/[^/]*$')
  if dir then os.execute(('mkdir -p %q'):format(dir)) end
  print('training the KG embedding: ' .. cmd)
  if not os.execute(cmd) then error('KG embedding training failed: ' .. cmd, 0) end
end

local t0 = nn.clock()
local ds = glosses.load(opt.wordnet, { len = opt.len, limit = opt.limit, seed = opt.seed })
local kg, known = glosses.kg_features(opt.kg, ds.entities)
print(('%d synsets (%d / %d / %d), %d classes, %d words; KG embedding %s: %dx%d, %.1f%% of synsets '
  .. 'in the graph (%.1f s)'):format(ds.n, ds.split.train:size(1), ds.split.valid:size(1),
  ds.split.test:size(1), #ds.classes, #ds.vocab, opt.kg, kg:size(1), kg:size(2),
  100 * known:mean():item(), nn.clock() - t0))

local Model = nn.Module:extend()
Model._name = 'GlossClassifier'
function Model:_init(kind, n_words, d_kg, n_classes)
  local d = opt.dim
  self.kind = kind
  if kind == 'kg' then -- the baseline without text: an MLP on the KG vector
    self.mlp = nn.Sequential(nn.Linear(d_kg, 2 * d), nn.ReLU(), nn.Linear(2 * d, n_classes))
    return
  end
  self.embed = nn.Embedding(n_words, d, { padding_idx = 1 })
  self.pos = nn.LearnedPositionalEncoding(d, opt.len)
  if kind == 'concat' then self.fuse = nn.ConcatFusion({ d, d_kg }, d)
  elseif kind == 'gated' then self.fuse = nn.GatedFusion({ d, d_kg }, d) end
  self.encoder = nn.TransformerEncoder(function()
    return nn.TransformerEncoderLayer(d, 4, { dim_feedforward = 2 * d, dropout = opt.dropout, norm_first = true })
  end, opt.layers, nn.LayerNorm(d))
  self.head = nn.Linear(d, n_classes)
end

-- ids, pad (B, T); k (B, d_kg) KG vectors; has_kg (B) 1 where the synset is in the graph
function Model:forward(ids, pad, k, has_kg)
  if self.mlp then return self.mlp(k) end
  local b, t = ids:size(1), ids:size(2)
  local x = self.embed(ids)
  if self.fuse then -- the KG vector joins every token's features
    local d = x:size(3)
    local kt = k:unsqueeze(2):expand(b, t, k:size(2)):reshape(b * t, k:size(2))
    local mask = nn.ones(b, t, 2)
    mask:select(3, 2):copy_(has_kg:view(b, 1):expand(b, t))
    x = self.fuse({ x:reshape(b * t, d), kt }, mask:view(b * t, 2)):view(b, t, d)
  end
  local h = self.encoder(self.pos(x), { key_padding_mask = pad })
  local keep = (1 - pad):unsqueeze(3)
  return self.head((h * keep):sum(2) / keep:sum(2)) -- mean over the words
end

local function accuracy(model, rows)
  model:eval()
  local correct = 0
  nn.no_grad(function()
    for s = 1, rows:size(1), 1024 do
      local idx = rows:narrow(1, s, math.min(1024, rows:size(1) - s + 1))
      local _, pred = model(ds.ids:index_select(1, idx), ds.pad:index_select(1, idx),
        kg:index_select(1, idx), known:index_select(1, idx)):max(2)
      correct = correct + pred:eq(ds.labels:index_select(1, idx)):sum():item()
    end
  end)
  model:train()
  return correct / rows:size(1)
end

local function run(kind)
  nn.manual_seed(opt.seed)
  local model = Model(kind, #ds.vocab, kg:size(2), #ds.classes)
  local train = ds.split.train
  local steps_per_epoch = train:size(1) // opt.batch
  local optimizer = nn.optim.AdamW(model:parameters(), { lr = opt.lr, weight_decay = 0.01 })
  local sched = nn.optim.CosineLR(optimizer, { total = steps_per_epoch * opt.epochs, warmup = 200,
    min_lr = opt.lr / 20 })
  local best, t_start = { valid = -1 }, nn.clock()
  for epoch = 1, opt.epochs do
    local _, perm = nn.rand(train:size(1)):sort()
    local loss_sum = 0
    for s = 1, steps_per_epoch do
      local idx = train:index_select(1, perm:narrow(1, (s - 1) * opt.batch + 1, opt.batch))
      local logits = model(ds.ids:index_select(1, idx), ds.pad:index_select(1, idx),
        kg:index_select(1, idx), known:index_select(1, idx))
      local loss = nn.cross_entropy(logits, ds.labels:index_select(1, idx))
      optimizer:zero_grad()
      loss:backward()
      optimizer:step()
      sched:step()
      loss_sum = loss_sum + loss:item()
    end
    local valid = accuracy(model, ds.split.valid)
    local line = ('%-7s epoch %d  loss %.4f  valid %.4f'):format(kind, epoch, loss_sum / steps_per_epoch, valid)
    if valid > best.valid then
      best = { valid = valid, epoch = epoch, test = accuracy(model, ds.split.test) }
      line = line .. ('  test %.4f'):format(best.test)
    end
    print(line)
  end
  best.seconds, best.params = nn.clock() - t_start, model:num_parameters()
  return best
end

local rows = {}
for kind in opt.only:gmatch('[^,]+') do
  rows[#rows + 1] = { kind = kind, res = run(kind) }
end
print(('\n%-15s %10s %10s %6s %10s %8s'):format('model', 'valid', 'test', 'epoch', 'params', 'seconds'))
local text_acc
for _, r in ipairs(rows) do
  local x = r.res
  if r.kind == 'text' then text_acc = x.test end
  local gain = text_acc and r.kind ~= 'text' and r.kind ~= 'kg' and ('  (%+.2f points over text only)'):format(100 * (x.test - text_acc)) or ''
  local names = { text = 'text', kg = 'KG only', concat = 'text+KG concat', gated = 'text+KG gated' }
  print(('%-15s %10.4f %10.4f %6d %10d %8.1f%s'):format(names[r.kind],
    x.valid, x.test, x.epoch, x.params, x.seconds, gain))
end
