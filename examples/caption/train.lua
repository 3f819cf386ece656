--- Image captioning on real pictures with human-written captions: the Tux
--- Paint stamps and the English-titled Open Clip Art images (see data.lua
--- for how the set is built, deduplicated and split by image). A small CNN
--- and Transformer encoder read the picture, the pre-norm Transformer
--- decoder of examples/mt writes the caption (cross-attention to the 8x8
--- feature grid), decoded with batched beam search. Reports BLEU-4
--- (nn.metrics.bleu) and CIDEr-D (nn.metrics.cider) on the test split, all
--- references per image, beside the nearest-neighbour baseline: the caption
--- of the training picture closest to each test picture under the same
--- trained encoder (cosine of the mean grid feature).
---   nnlua examples/caption/train.lua             # installs the packages, builds the set once
---   nnlua examples/caption/train.lua --picture docs/caption_examples.svg
--- bench/caption_twin.py trains the same model in PyTorch from --export.
local here = arg[0]:gsub('[^/]*$', '')
package.path = here .. '?.lua;' .. here .. '../mt/?.lua;' .. package.path
local nn = require 'nnlua'
local data = require 'data'
local Captioner = require 'captioner'
local Seq2Seq = require 'model'
local seq2seq = require 'seq2seq'
local caption = require 'caption'

local opt = nn.cli.parse(arg, caption.options())
if opt.d_model % opt.heads ~= 0 then nn.cli.fail('--heads %d must divide --d_model %d', opt.heads, opt.d_model) end
if opt.size % 8 ~= 0 then nn.cli.fail('--size %d must be a multiple of 8', opt.size) end
nn.cli.keep(opt.out, opt.force)
if opt.threads > 0 then nn.set_num_threads(opt.threads) end

local set = nn.cli.try('--data', caption.dataset, opt)
local st = set.stats
print(('data: %d pictures (%d Tux Paint stamps, %d English-titled Open Clip Art images of %d; %d duplicate pictures merged): train %d, valid %d, test %d')
  :format(st.items, st.tuxpaint, st.openclipart, st.openclipart + st.openclipart_dropped, st.duplicate_pictures,
    st.splits.train, st.splits.valid, st.splits.test))

nn.manual_seed(opt.seed)
local splits = caption.splits(set)
for _, name in ipairs({ 'train', 'test' }) do
  if #splits[name] == 0 then nn.cli.fail('--data: no pictures fall in the %s split (%d in all)', name, #set.items) end
end
local bpe = caption.vocabulary(splits.train, opt.vocab)
for _, s in pairs(splits) do caption.encode(bpe, s, opt.max_len) end
local model = Captioner({ vocab = bpe:vocab_size() + 3, d_model = opt.d_model, heads = opt.heads, layers = opt.layers,
  ff = opt.ff, dropout = opt.dropout, max_len = opt.max_len + 2, size = opt.size, width = opt.width })
print(('model: %d parameters; BPE %d tokens'):format(model:num_parameters(), bpe:vocab_size()))

local plan = caption.plan(splits.train, opt.batch, opt.steps, opt.shift)
if opt.export ~= '' then caption.export(opt.export, { model = model, set = set, splits = splits, plan = plan, opt = opt, bpe = bpe }) end

local decay, no_decay = {}, {}
for name, p in model:named_parameters() do
  if p:dim() >= 2 and not name:match('^embed') and name ~= 'grid_pos' then decay[#decay + 1] = p
  else no_decay[#no_decay + 1] = p end
end
local optimizer = nn.optim.AdamW({ { params = decay, weight_decay = opt.weight_decay }, { params = no_decay, weight_decay = 0 } },
  { lr = opt.lr, betas = { 0.9, 0.98 }, eps = 1e-9 })
local log = opt.log ~= '' and nn.progress.log(opt.log) or nil

local t0, validation_seconds = nn.clock(), 0
for step, _, bar in nn.progress(opt.steps, { desc = 'train', every = 20 }) do
  local lr = caption.lr(step, opt)
  for _, g in ipairs(optimizer.param_groups) do g.lr = lr end
  local images, tin, tout = caption.batch(set.images, splits.train, plan[step])
  local logits = model(images, tin)
  local loss = nn.cross_entropy(logits:view(-1, logits:size(3)), tout:view(-1),
    { ignore_index = Seq2Seq.PAD, label_smoothing = opt.smoothing })
  optimizer:zero_grad()
  loss:backward()
  nn.optim.clip_grad_norm_(model:parameters(), 1.0)
  optimizer:step()
  bar.loss, bar.lr = loss:item(), lr
  if step % opt.eval_every == 0 or step == opt.steps then
    local tv = nn.clock()
    local vloss = caption.evaluate_loss(model, set.images, splits.valid)
    local hyps = caption.decode(model, set.images, splits.valid, { beam = 1, batch = opt.decode_batch, max_len = opt.max_len,
      length_penalty = opt.length_penalty, bpe = bpe })
    local cider = nn.metrics.cider(hyps, caption.references(splits.valid)).score
    local rec = { step = step, train_loss = bar.loss, val_loss = vloss, val_cider = 100 * cider, seconds = nn.clock() - t0 }
    print(('step %d  train loss %.4f  val loss %.4f  valid CIDEr-D (greedy) %.1f  (%.0f s)')
      :format(step, bar.loss, vloss, 100 * cider, rec.seconds))
    if log then log:write(rec) end
    validation_seconds = validation_seconds + nn.clock() - tv
  end
end
local train_seconds = nn.clock() - t0
assert(nn.save(opt.out, model:state_dict(), { config = require('cjson').encode(model.config) }))
assert(bpe:save(opt.out:gsub('%.safetensors$', '') .. '.bpe'))

local refs = caption.references(splits.test)
local function report(name, hyps, seconds)
  local b, c = nn.metrics.bleu(hyps, refs), nn.metrics.cider(hyps, refs)
  print(('%-34s BLEU-4 %5.2f  CIDEr-D %6.2f%s'):format(name, b.score, 100 * c.score,
    seconds and ('  (%.1f s)'):format(seconds) or ''))
  return b, c
end
local td = nn.clock()
local hyps = caption.decode(model, set.images, splits.test, { beam = opt.beam, batch = opt.decode_batch,
  max_len = opt.max_len, length_penalty = opt.length_penalty, bpe = bpe })
local decode_seconds = nn.clock() - td
print(('test: %d pictures, %d with several references'):format(#splits.test, caption.multi(splits.test)))
report(('model, beam %d'):format(opt.beam), hyps, decode_seconds)
local tr = nn.clock()
local nearest = caption.nearest(model, set.images, splits.train, splits.test)
report('nearest-neighbour caption baseline', nearest, nn.clock() - tr)
print(('wall: training %.1f s (%.1f s of it validating), test decoding %.1f s'):format(train_seconds,
  validation_seconds, decode_seconds))
if opt.hyps ~= '' then assert(require('nnlua.files').write_atomic(opt.hyps, table.concat(hyps, '\n') .. '\n')) end
if opt.picture ~= '' then
  caption.picture(opt.picture, set.images, splits.test, hyps, nearest, 12)
  print('wrote ' .. opt.picture)
end
