--- A sequence-to-sequence Transformer that learns to translate English number
--- words into digits ("four thousand thirty-two" -> "4032"). The data is
--- made here: every number below --max is written out in words; a held-out
--- set of numbers is never seen in training, so exact-match accuracy on it
--- measures whether the model learned the composition, not a lookup table.
---
--- Usage: nnlua examples/translate/train.lua [options] (--help lists them).
--- --ckpt saves the training state at every evaluation; --resume continues.
local nn = require 'nnlua'

local opt = nn.cli.parse(arg, {
  { 'steps', 2500, 'training steps', integer = true, min = 1 },
  { 'batch', 64, 'pairs per batch', integer = true, min = 1 },
  { 'max', 10000, 'numbers 0..max-1 make the data', integer = true, min = 100, max = 1000000 },
  { 'test', 1000, 'numbers held out for the test', integer = true, min = 1 },
  { 'seed', 1, 'random seed', integer = true },
  { 'lr', 2e-3, 'peak learning rate', min = 0 },
  { 'd_model', 64, 'model width', integer = true, min = 1 },
  { 'layers', 2, 'encoder and decoder layers', integer = true, min = 1 },
  { 'heads', 4, 'attention heads (must divide d_model)', integer = true, min = 1 },
  { 'ff', 256, 'feed-forward width', integer = true, min = 1 },
  { 'eval_every', 500, 'evaluate every N steps', integer = true, min = 1 },
  { 'ckpt', '', 'save the training state here at every evaluation', path = 'out' },
  { 'resume', '', 'continue from a checkpoint written by --ckpt', path = 'file' },
})
if opt.test >= opt.max // 2 then nn.cli.fail('--test %d must be below half of --max %d', opt.test, opt.max) end
if opt.d_model % opt.heads ~= 0 then
  nn.cli.fail('--heads %d must divide --d_model %d', opt.heads, opt.d_model)
end
nn.manual_seed(opt.seed)

-- ---- the task -----------------------------------------------------------------
local ONES = { 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine', 'ten',
  'eleven', 'twelve', 'thirteen', 'fourteen', 'fifteen', 'sixteen', 'seventeen', 'eighteen',
  'nineteen' }
local TENS = { [2] = 'twenty', [3] = 'thirty', [4] = 'forty', [5] = 'fifty', [6] = 'sixty',
  [7] = 'seventy', [8] = 'eighty', [9] = 'ninety' }

local function below_100(n)
  if n < 20 then return ONES[n] end
  local t, o = n // 10, n % 10
  return o == 0 and TENS[t] or TENS[t] .. '-' .. ONES[o]
end

local function words(n)
  if n == 0 then return 'zero' end
  local parts = {}
  if n >= 1000 then parts[#parts + 1] = words(n // 1000) .. ' thousand'; n = n % 1000 end
  if n >= 100 then parts[#parts + 1] = ONES[n // 100] .. ' hundred'; n = n % 100 end
  if n > 0 then parts[#parts + 1] = below_100(n) end
  return table.concat(parts, ' ')
end

-- one vocabulary for both sides: PAD 1, BOS 2, EOS 3, then characters
local PAD, BOS, EOS = 1, 2, 3
local chars, id = {}, {}
for c in ('abcdefghijklmnopqrstuvwxyz -0123456789'):gmatch('.') do
  chars[#chars + 1] = c
  id[c] = #chars + 3
end
local V = #chars + 3

local function encode(s, bos, eos)
  local t = {}
  if bos then t[#t + 1] = BOS end
  for c in s:gmatch('.') do t[#t + 1] = id[c] end
  if eos then t[#t + 1] = EOS end
  return t
end

local function pad_batch(seqs)
  local len = 0
  for _, s in ipairs(seqs) do len = math.max(len, #s) end
  local rows = {}
  for r, s in ipairs(seqs) do
    local row = {}
    for j = 1, len do row[j] = s[j] or PAD end
    rows[r] = row
  end
  return nn.tensor(rows, 'i64')
end

-- a fixed random split of 0 .. max-1 into train and held-out test numbers
local _, perm = nn.rand(opt.max):sort()
local test, train = {}, {}
for k, v in ipairs(perm:totable()) do
  if k <= opt.test then test[#test + 1] = v - 1 else train[#train + 1] = v - 1 end
end
print(('task: English number words -> digits for 0..%d; %d training numbers, %d held out')
  :format(opt.max - 1, #train, #test))
print(('example: %q -> %q'):format(words(4032), '4032'))

-- ---- the model --------------------------------------------------------------------
local Seq2Seq = nn.Module:extend()
Seq2Seq._name = 'Seq2Seq'
function Seq2Seq:_init(o)
  self.src_embed = nn.Embedding(V, o.d_model, { padding_idx = PAD })
  self.tgt_embed = nn.Embedding(V, o.d_model, { padding_idx = PAD })
  self.pos = nn.SinusoidalPositionalEncoding(o.d_model, 128)
  self.transformer = nn.Transformer({ d_model = o.d_model, nhead = o.heads,
    num_encoder_layers = o.layers, num_decoder_layers = o.layers, dim_feedforward = o.ff,
    dropout = 0.1 })
  self.out = nn.Linear(o.d_model, V)
  self.scale = math.sqrt(o.d_model)
end

function Seq2Seq:forward(src, tgt)
  local s = self.pos(self.src_embed(src) * self.scale)
  local t = self.pos(self.tgt_embed(tgt) * self.scale)
  local h = self.transformer(s, t, { src_key_padding_mask = src:eq(PAD),
                                     tgt_key_padding_mask = tgt:eq(PAD) })
  return self.out(h)
end

--- greedy decoding of a batch of sources, at most `len` tokens
function Seq2Seq:translate(src, len)
  return nn.no_grad(function()
    local b = src:size(1)
    local tgt = nn.full({ b, 1 }, BOS, 'i64')
    for _ = 1, len do
      local logits = self(src, tgt)
      local _, nxt = logits:select(2, tgt:size(2)):max(2)
      tgt = nn.cat({ tgt, nxt:view(b, 1) }, 2)
    end
    return tgt
  end)
end

local model = Seq2Seq({ d_model = opt.d_model, heads = opt.heads, layers = opt.layers, ff = opt.ff })
print(('model: %d parameters'):format(model:num_parameters()))
local optimizer = nn.optim.AdamW(model:parameters(), { lr = opt.lr, weight_decay = 0.01 })
local sched = nn.optim.CosineLR(optimizer, { warmup = 100, total = opt.steps, min_lr = opt.lr / 20 })

local function decode_digits(row)
  local out = {}
  for k = 2, #row do
    if row[k] == EOS or row[k] == PAD then break end
    out[#out + 1] = chars[row[k] - 3] or '?'
  end
  return table.concat(out)
end

local function accuracy(numbers)
  model:eval()
  local correct, shown = 0, 0
  for s = 1, #numbers, 250 do
    local chunk, srcs = {}, {}
    for k = s, math.min(s + 249, #numbers) do
      chunk[#chunk + 1] = numbers[k]
      srcs[#srcs + 1] = encode(words(numbers[k]))
    end
    local out = model:translate(pad_batch(srcs), 5):totable()
    for k, n in ipairs(chunk) do
      local got = decode_digits(out[k])
      if got == tostring(n) then correct = correct + 1
      elseif shown < 3 then
        print(('  miss: %q -> %q'):format(words(n), got))
        shown = shown + 1
      end
    end
  end
  model:train()
  return correct / #numbers
end

local first = 1
if opt.resume ~= '' then
  local info = nn.cli.try('--resume', nn.checkpoint.load, opt.resume,
    { model = model, optimizer = optimizer, scheduler = sched })
  first = info.step + 1
  print(('resumed from %s after step %d'):format(opt.resume, info.step))
end

local t0 = nn.clock()
for step = first, opt.steps do
  local srcs, tins, touts = {}, {}, {}
  for k = 1, opt.batch do
    local n = train[nn.randint(1, #train + 1, 1):item()]
    srcs[k] = encode(words(n))
    tins[k] = encode(tostring(n), true, false)
    touts[k] = encode(tostring(n), false, true)
  end
  local src, tin, tout = pad_batch(srcs), pad_batch(tins), pad_batch(touts)
  local logits = model(src, tin)
  local loss = nn.cross_entropy(logits:view(-1, V), tout:view(-1), { ignore_index = PAD })
  optimizer:zero_grad()
  loss:backward()
  nn.optim.clip_grad_norm_(model:parameters(), 1.0)
  optimizer:step()
  sched:step()
  if step % 100 == 0 then
    print(('step %5d  loss %.4f  %.0f ms/step'):format(step, loss:item(),
      (nn.clock() - t0) / (step - first + 1) * 1e3))
  end
  if step % opt.eval_every == 0 and step < opt.steps then
    print(('step %5d  held-out exact match %.4f'):format(step, accuracy(test)))
    if opt.ckpt ~= '' then
      assert(nn.checkpoint.save(opt.ckpt, { model = model, optimizer = optimizer,
                                            scheduler = sched, step = step }))
    end
  end
end
local acc = accuracy(test)
print(('held-out exact match %.4f on %d numbers never seen in training (%.1fs)')
  :format(acc, #test, nn.clock() - t0))
