--- Contrastive image-text training (CLIP) on Fashion-MNIST. An image
--- encoder (a small ViT) and a text encoder (word embeddings and a
--- Transformer layer) learn a shared space from images paired with text
--- about their class, composed from WordNet (class words, gloss, hypernym;
--- a different phrasing each time). Two classes are held out of training:
--- afterwards their test images are classified zero-shot, by comparing them
--- with descriptions of those classes only.
---
--- Usage: nnlua examples/clip/train.lua [--holdout 'Trouser,Sandal'] [options]
--- (--help lists them all).
local here = arg[0]:gsub('[^/]*$', '')
package.path = here .. '../fashion_mnist/?.lua;' .. here .. '../common/?.lua;' .. package.path
local nn = require 'nnlua'
local data = require 'data'
local text = require 'text'

local opt = nn.cli.parse(arg, {
  { 'epochs', 8, 'passes over the training pairs', integer = true, min = 1 },
  { 'batch', 128, 'image-text pairs per batch (the contrastive negatives)', integer = true, min = 2 },
  { 'lr', 1e-3, 'AdamW learning rate', min = 0 },
  { 'embed', 64, 'width of the shared embedding space', integer = true, min = 1 },
  { 'len', 32, 'text length in tokens', integer = true, min = 1 },
  { 'holdout', 'Trouser,Sandal', 'comma-separated classes kept out of training (at least two)' },
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
local held, held_list = {}, {}
for name in opt.holdout:gmatch('[^,]+') do
  local found
  for c, n in ipairs(data.classes) do
    if n == name then held[c], found = true, true held_list[#held_list + 1] = c end
  end
  if not found then
    nn.cli.fail('--holdout: %q is not a Fashion-MNIST class (%s)', name, table.concat(data.classes, ','))
  end
end
if #held_list < 2 then nn.cli.fail('--holdout must name at least two Fashion-MNIST classes') end

-- images (N, 784) and labels -> those of the classes keep(c) accepts
local function subset(x, y, keep)
  local rows = {}
  for i = 1, y:size(1) do if keep(y[i]) then rows[#rows + 1] = i end end
  local idx = nn.tensor(rows):long()
  return x:index_select(1, idx), y:index_select(1, idx)
end
local MEAN, STD = 0.2860, 0.3530
local xtrain, ytrain = data.load(opt.data, 'train', opt.limit)
local xtest, ytest = data.load(opt.data, 't10k', opt.limit)
xtrain, ytrain = subset(xtrain, ytrain, function(c) return not held[c] end)
xtrain, xtest = ((xtrain - MEAN) / STD):view(-1, 1, 28, 28), ((xtest - MEAN) / STD):view(-1, 1, 28, 28)

local TextEncoder = nn.Module:extend()
TextEncoder._name = 'TextEncoder'
function TextEncoder:_init(v, d, len, out)
  self.embed = nn.Embedding(v, d, { padding_idx = 1 })
  self.pos = nn.LearnedPositionalEncoding(d, len)
  self.layer = nn.TransformerEncoderLayer(d, 4, { dim_feedforward = 2 * d, dropout = 0,
                                                  norm_first = true })
  self.proj = nn.Linear(d, out)
end
function TextEncoder:forward(ids, pad)
  local h = self.layer(self.pos(self.embed(ids)), { key_padding_mask = pad })
  local keep = (1 - pad):unsqueeze(3)
  return self.proj((h * keep):sum(2) / keep:sum(2)) -- mean over the words
end

local image_encoder = nn.ViT { image_size = 28, patch_size = 7, dim = 64, depth = 3, heads = 4,
  mlp_dim = 128, num_classes = opt.embed }
local text_encoder = TextEncoder(#vocab.words, 64, opt.len, opt.embed)
local clip = nn.ContrastiveLoss { temperature = 0.07 }
local params = {}
for _, m in ipairs({ image_encoder, text_encoder, clip }) do
  for _, p in ipairs(m:parameters()) do params[#params + 1] = p end
end
print(('CLIP: %d image + %d text parameters, %d words; training on %d images of %d classes, '
  .. 'holding out %s'):format(image_encoder:num_parameters(), text_encoder:num_parameters(),
  #vocab.words, xtrain:size(1), 10 - #held_list, opt.holdout))

local train_texts = text.bank(classes, vocab, 500, opt.len)
local function descriptions(labels, bank) return text.draw(bank or train_texts, labels) end

local loader = nn.data.DataLoader(nn.data.TensorDataset(xtrain, ytrain),
  { batch_size = opt.batch, shuffle = true, drop_last = true, augment = { shift = 1 } })
local optimizer = nn.optim.AdamW(params, { lr = opt.lr, weight_decay = 0.05 })
local sched = nn.optim.CosineLR(optimizer, { total = #loader * opt.epochs, warmup = #loader // 2,
                                             min_lr = opt.lr / 50 })
local t_all = nn.clock()
for epoch = 1, opt.epochs do
  local t0, loss_sum = nn.clock(), 0
  for step, batch, bar in nn.progress(loader, { desc = ('epoch %d'):format(epoch), total = #loader }) do
    local x, y = table.unpack(batch)
    local ids, pad = descriptions(y)
    local loss = clip(image_encoder(x), text_encoder(ids, pad))
    optimizer:zero_grad()
    loss:backward()
    optimizer:step()
    sched:step()
    loss_sum = loss_sum + loss:item()
    bar.loss = loss_sum / step
  end
  print(('epoch %d  loss %.4f  temperature %.4f  %.1f s'):format(epoch, loss_sum / #loader,
    math.exp(-clip.logit_scale[1]), nn.clock() - t0))
end
local train_secs = nn.clock() - t_all

-- Evaluation, with the generator reseeded so the test texts are fixed.
image_encoder:eval()
text_encoder:eval()
nn.manual_seed(1234)
local test_texts = text.bank(classes, vocab, 500, opt.len) -- drawn anew
local function normalized(e) return e / e:norm(2, 2, true) end
local function embed_images(x)
  local parts = {}
  for s = 1, x:size(1), 500 do parts[#parts + 1] = image_encoder(x:narrow(1, s, math.min(500, x:size(1) - s + 1))) end
  return normalized(nn.cat(parts, 1))
end
nn.no_grad(function()
  -- retrieval between 1000 test images of the seen classes and their texts
  local xs, ys = subset(xtest, ytest, function(c) return not held[c] end)
  local n = math.min(1000, xs:size(1))
  xs, ys = xs:narrow(1, 1, n), ys:narrow(1, 1, n)
  local img = embed_images(xs)
  local txt = normalized(text_encoder(descriptions(ys, test_texts)))
  local sim = img:matmul(txt:t())
  local i2t = nn.multimodal.recall_at_k(sim, { 1, 5, 10 }, ys, ys)
  local t2i = nn.multimodal.recall_at_k(sim:t(), { 1, 5, 10 }, ys, ys)
  local pair = nn.multimodal.recall_at_k(sim, { 1 })
  print(('retrieval, %d test pairs of seen classes (a hit = same class): image->text R@1 %.3f '
    .. 'R@5 %.3f R@10 %.3f; text->image R@1 %.3f R@5 %.3f R@10 %.3f; exact pair R@1 %.3f')
    :format(n, i2t[1], i2t[5], i2t[10], t2i[1], t2i[5], t2i[10], pair[1]))

  -- zero-shot: each class is the mean embedding of 64 descriptions of it
  local protos = {}
  for c = 1, 10 do
    local ids, pad = descriptions(nn.full({ 64 }, c):long(), test_texts)
    protos[c] = normalized(normalized(text_encoder(ids, pad)):mean(1, true))
  end
  local function zero_shot(cands, keep)
    local xs, ys = subset(xtest, ytest, keep)
    local cls = {}
    for i, c in ipairs(cands) do cls[i] = protos[c] end
    local _, best = embed_images(xs):matmul(nn.cat(cls, 1):t()):max(2)
    local cand = nn.tensor(cands):long()
    return cand:index_select(1, best):eq(ys):mean():item(), xs:size(1)
  end
  local acc, n = zero_shot(held_list, function(c) return held[c] end)
  print(('zero-shot on the %d held-out classes (%s), %d test images: accuracy %.3f (chance %.3f)')
    :format(#held_list, opt.holdout, n, acc, 1 / #held_list))
  local all = {}
  for c = 1, 10 do all[c] = c end
  local seen_acc = zero_shot(all, function(c) return not held[c] end)
  local unseen_acc = zero_shot(all, function(c) return held[c] end)
  print(('zero-shot among all 10 class descriptions: seen classes %.3f, held-out classes %.3f (chance 0.100)')
    :format(seen_acc, unseen_acc))
end)
print(('CLIP: trained %d epochs in %.1f s'):format(opt.epochs, train_secs))
