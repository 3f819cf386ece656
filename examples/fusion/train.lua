--- Every fusion operator on the same two-modality task: Fashion-MNIST
--- images paired with a short text from WordNet (examples/fashion_mnist/
--- text.lua). The text is unreliable, as side information usually is: it
--- describes the image's class with probability --p_true, otherwise a random
--- class, and is missing altogether (the modality mask) with probability
--- --p_missing. A good fusion learns when to trust which modality. Same
--- encoders, split, seeds and epochs for every row; baselines use one
--- modality. Prints test accuracy, parameters and time per operator.
---
--- Usage: nnlua examples/fusion/train.lua [--only NAME,...] [options]
--- (--help lists them all).
local here = arg[0]:gsub('[^/]*$', '')
package.path = here .. '../fashion_mnist/?.lua;' .. here .. '../common/?.lua;' .. package.path
local nn = require 'nnlua'
local data = require 'data'
local text = require 'text'

local kinds = { 'image only', 'text only', 'concat', 'sum', 'gated', 'bilinear', 'film',
                'cross-attention' }
local opt = nn.cli.parse(arg, {
  { 'epochs', 8, 'passes over the training set per operator', integer = true, min = 1 },
  { 'batch', 128, 'samples per batch', integer = true, min = 1 },
  { 'lr', 1e-3, 'Adam learning rate', min = 0 },
  { 'p_true', 0.5, 'probability that the text describes the image\'s class', min = 0, max = 1 },
  { 'p_missing', 0.2, 'probability that the text is missing', min = 0, max = 1 },
  { 'len', 32, 'text length in tokens', integer = true, min = 1 },
  { 'only', '', 'comma-separated operators to run (default: all)', each = kinds },
  { 'data', data.default_dir, 'folder with the Fashion-MNIST IDX files', path = 'dir' },
  { 'limit', 0, 'use only the first N images of each split (0: all)', integer = true, min = 0 },
  { 'wordnet', '/usr/share/wordnet', 'WordNet database folder (the wordnet-base package)', path = 'dir' },
  { 'seed', 1, 'random seed', integer = true },
  { 'threads', 0, 'threads (0: all cores)', integer = true, min = 0 },
})
if opt.threads > 0 then nn.set_num_threads(opt.threads) end
nn.manual_seed(opt.seed)

local classes = text.classes(data.classes, opt.wordnet)
local vocab = text.vocabulary(classes)
local bank = text.bank(classes, vocab, 300, opt.len)
local xtrain, ytrain = data.load(opt.data, 'train', opt.limit)
local xtest, ytest = data.load(opt.data, 't10k', opt.limit)

-- the text side of n samples: which class the text describes, and whether
-- the sample has text at all (mask column 2)
local function side_info(labels)
  local n = labels:size(1)
  local honest = nn.rand(n):lt(opt.p_true):long()
  local said = labels * honest + nn.randint(1, 11, n) * (1 - honest)
  local ids, pad = text.draw(bank, said)
  local mask = nn.ones(n, 2)
  mask:select(2, 2):copy_(nn.rand(n):ge(opt.p_missing):float())
  return ids, pad, mask
end
local test_ids, test_pad, test_mask = side_info(ytest) -- fixed for every model

local D_IMG, D_TXT, D = 128, 64, 128

local Model = nn.Module:extend()
Model._name = 'FusionClassifier'
function Model:_init(kind)
  self.kind = kind
  self.image = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, D_IMG), nn.ReLU())
  self.words = nn.Embedding(#vocab.words, D_TXT, { padding_idx = 1 })
  if kind == 'concat' then self.fuse = nn.ConcatFusion({ D_IMG, D_TXT }, D)
  elseif kind == 'sum' then self.fuse = nn.SumFusion({ D_IMG, D_TXT }, D)
  elseif kind == 'gated' then self.fuse = nn.GatedFusion({ D_IMG, D_TXT }, D)
  elseif kind == 'bilinear' then self.fuse = nn.BilinearFusion(D_IMG, D_TXT, D, { factor = 5 })
  elseif kind == 'film' then self.fuse = nn.FiLM(D_TXT, D_IMG)
  elseif kind == 'cross-attention' then self.fuse = nn.CrossModalAttention(D_IMG, D_TXT, 4)
  elseif kind == 'text only' then self.fuse = nn.Linear(D_TXT, D) end
  self.head = nn.Linear(kind == 'image only' and D_IMG or D, 10)
end
function Model:forward(x, ids, pad, mask)
  local img = self.image(x)
  local has_text = mask:select(2, 2):unsqueeze(2) -- (B, 1)
  local words = self.words(ids) * has_text:unsqueeze(3)
  local keep = (1 - pad):unsqueeze(3)
  local txt = (words * keep):sum(2) / keep:sum(2) -- bag of words (zeros when missing)
  local k = self.kind
  local h
  if k == 'image only' then h = img
  elseif k == 'text only' then h = self.fuse(txt):relu()
  elseif k == 'film' then h = self.fuse(img, txt)
  elseif k == 'cross-attention' then
    -- the image attends over the words; a sample without text sees one
    -- zero word (its padding), so the attention is never empty
    local ctx_mask = pad * has_text
    ctx_mask:select(2, 1):mul_(has_text:squeeze(2))
    h = self.fuse(img:unsqueeze(2), words, ctx_mask):squeeze(2)
  else h = self.fuse({ img, txt }, mask):relu() end
  return self.head(h)
end

local function run(kind)
  nn.manual_seed(opt.seed)
  local model = Model(kind)
  local loader = nn.data.DataLoader(nn.data.TensorDataset(xtrain, ytrain),
    { batch_size = opt.batch, shuffle = true, drop_last = true })
  local optimizer = nn.optim.Adam(model:parameters(), { lr = opt.lr })
  local sched = nn.optim.CosineLR(optimizer, { total = #loader * opt.epochs, min_lr = opt.lr / 20 })
  local t0 = nn.clock()
  for _ = 1, opt.epochs do
    for x, y in loader:iter() do
      local ids, pad, mask = side_info(y)
      local loss = nn.cross_entropy(model(x, ids, pad, mask), y)
      optimizer:zero_grad()
      loss:backward()
      optimizer:step()
      sched:step()
    end
  end
  local secs = nn.clock() - t0
  model:eval()
  local _, pred = nn.no_grad(function() return model(xtest, test_ids, test_pad, test_mask) end):max(2)
  return pred:eq(ytest):mean():item(), model:num_parameters(), secs
end

print(('fusion on Fashion-MNIST + WordNet text: text true with p=%.2f, missing with p=%.2f; '
  .. '%d epochs each, %d threads'):format(opt.p_true, opt.p_missing, opt.epochs, nn.get_num_threads()))
print(('%-16s %10s %10s %8s'):format('fusion', 'test acc', 'params', 'seconds'))
local only = {}
for k in opt.only:gmatch('[^,]+') do only[k] = true end
for _, kind in ipairs(kinds) do
  if opt.only == '' or only[kind] then
    local acc, params, secs = run(kind)
    print(('%-16s %10.4f %10d %8.1f'):format(kind, acc, params, secs))
  end
end
