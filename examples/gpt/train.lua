--- Train a character-level GPT on a text file (or, by default, on the
--- `fortunes` Debian package), nanoGPT style: AdamW, warmup then cosine
--- decay, gradient clipping; train/val loss every --eval_interval steps,
--- tokens/s and an ETA as it goes, a sample at the end, and the model saved
--- to --out (safetensors) for examples/gpt/sample.lua.
---
--- --ckpt FILE saves the whole training state there at every evaluation;
--- --resume FILE continues from one (bit for bit the run that saved it, on
--- the same thread count). --log FILE writes metrics as JSON lines (or CSV
--- for a .csv name); --plot FILE draws the loss curves as SVG at the end.
--- --autocast bf16 runs the matrix products in bf16 (nn.autocast), the
--- weights, optimizer and losses staying f32. --dist trains data-parallel
--- on the ranks mpirun starts (docs/distributed.md):
---   mpirun -np 2 nnlua examples/gpt/train.lua --dist --batch 6
---
--- The defaults are a quick run (a few minutes on 2 cores). nanoGPT's
--- "baby" Shakespeare config is:
---   nnlua examples/gpt/train.lua --data ../shared/data/tinyshakespeare/input.txt \
---     --iters 2000 --n_layer 4 --n_head 4 --n_embd 128 --block_size 64 --batch 12
package.path = arg[0]:gsub('[^/]*$', '') .. '?.lua;' .. package.path
local nn = require 'nnlua'
local GPT = require 'model'
local corpus = require 'data'

local opt = nn.cli.parse(arg, {
  { 'data', '', 'text file to train on (default: the fortunes package)', path = 'file' },
  { 'iters', 1000, 'training iterations', integer = true, min = 1 },
  { 'batch', 12, 'sequences per batch', integer = true, min = 1 },
  { 'block_size', 64, 'context length in characters', integer = true, min = 1 },
  { 'n_layer', 4, 'Transformer blocks', integer = true, min = 1 },
  { 'n_head', 4, 'attention heads (must divide n_embd)', integer = true, min = 1 },
  { 'n_embd', 128, 'model width', integer = true, min = 1 },
  { 'dropout', 0.0, 'dropout probability', min = 0, max = 0.99 },
  { 'lr', 1e-3, 'peak learning rate', min = 0 },
  { 'min_lr', 1e-4, 'learning rate at the end of the cosine', min = 0 },
  { 'warmup', 100, 'linear warmup iterations', integer = true, min = 0 },
  { 'weight_decay', 0.1, 'AdamW weight decay on 2-D weights', min = 0 },
  { 'grad_clip', 1.0, 'clip the gradient norm to this', min = 0 },
  { 'eval_interval', 200, 'evaluate every N iterations', integer = true, min = 1 },
  { 'eval_iters', 20, 'batches per evaluation', integer = true, min = 1 },
  { 'log_interval', 50, 'refresh the progress bar every N iterations', integer = true, min = 1 },
  { 'seed', 1337, 'random seed', integer = true },
  { 'threads', 0, 'threads (0: all cores)', integer = true, min = 0 },
  { 'sample_len', 300, 'characters sampled at the end (0: none)', integer = true, min = 0 },
  { 'out', 'gpt.safetensors', 'where the trained model is saved', path = 'out' },
  { 'force', false, 'overwrite --out if it exists' },
  { 'resume', '', 'continue from a checkpoint written by --ckpt', path = 'file' },
  { 'ckpt', '', 'save the training state here at every evaluation', path = 'out' },
  { 'log', '', 'write metrics as JSON lines (or CSV for a .csv name)', path = 'out' },
  { 'plot', '', 'draw the loss curves as SVG here at the end (needs --log)', path = 'out' },
  { 'on_nan', 'stop', 'on a non-finite loss or gradient: stop, or skip the update', choices = { 'stop', 'skip' } },
  { 'autocast', 'none', 'run the matrix products in bf16', choices = { 'none', 'bf16' } },
  { 'dist', false, 'data-parallel over the ranks mpirun started (--batch is per rank)' },
})
local rank, world = 0, 1
if opt.dist then rank, world = nn.dist.init() end
nn.cli.keep(opt.out, opt.force)
if opt.plot ~= '' and opt.log == '' then nn.cli.fail('--plot needs --log') end
if opt.n_embd % opt.n_head ~= 0 then
  nn.cli.fail('--n_head %d must divide --n_embd %d', opt.n_head, opt.n_embd)
end
local precision = opt.autocast ~= 'none' and opt.autocast or false
if opt.threads > 0 then nn.set_num_threads(opt.threads) end
nn.manual_seed(opt.seed)

local text, source = corpus.load(opt.data)
local enc = corpus.encode_chars(text)
local n = enc.data:size(1)
local n_train = math.floor(0.9 * n)
if n - n_train <= opt.block_size + 1 then
  nn.cli.fail('%s has %d characters: too few for a 90/10 split with --block_size %d (needs %d)',
    source, n, opt.block_size, 10 * (opt.block_size + 2))
end
local splits = { train = enc.data:narrow(1, 1, n_train), val = enc.data:narrow(1, n_train + 1, n - n_train) }
print(('data: %s, %d characters, vocabulary %d; train %d, val %d')
  :format(source, n, #enc.vocab, n_train, n - n_train))

local function batch(split)
  local d = splits[split]
  local starts = nn.randint(1, d:size(1) - opt.block_size, opt.batch):view(-1, 1)
  local idx = (starts + nn.arange(opt.block_size)):view(-1)
  local x = d:index_select(1, idx):view(opt.batch, opt.block_size)
  local y = d:index_select(1, idx + 1):view(opt.batch, opt.block_size)
  return x, y
end

local model = GPT({ vocab_size = #enc.vocab, block_size = opt.block_size, n_layer = opt.n_layer,
                    n_head = opt.n_head, n_embd = opt.n_embd, dropout = opt.dropout, bias = true })
print(('model: %d layers, %d heads, width %d, context %d: %.2fM parameters; %d threads')
  :format(opt.n_layer, opt.n_head, opt.n_embd, opt.block_size, model:num_parameters() / 1e6,
          nn.get_num_threads()))

-- under --dist every rank starts from rank 0's weights and averages its
-- gradients with the others after each backward
local net = opt.dist and nn.dist.DistributedDataParallel(model) or model
local optimizer = model:optimizer({ lr = opt.lr, weight_decay = opt.weight_decay })
local schedule = nn.optim.CosineLR(optimizer, { warmup = opt.warmup, total = opt.iters,
                                                min_lr = opt.min_lr })

-- what sample.lua needs to rebuild the model: shape and vocabulary (in the
-- model file's metadata and in the checkpoint's extra values)
local shape = { config = ('vocab_size=%d,block_size=%d,n_layer=%d,n_head=%d,n_embd=%d')
  :format(#enc.vocab, opt.block_size, opt.n_layer, opt.n_head, opt.n_embd) }
do
  local bytes = {}
  for k, c in ipairs(enc.vocab) do bytes[k] = c:byte() end
  shape.vocab = table.concat(bytes, ',')
end

local start = 0
if opt.resume ~= '' then
  local info = nn.cli.try('--resume', nn.checkpoint.load, opt.resume,
    { model = model, optimizer = optimizer, scheduler = schedule })
  start = info.step
  print(('resumed from %s at step %d'):format(opt.resume, start))
end
if world > 1 then -- each rank its own batches and dropout: rank 0's seed + 7919 * rank
  local seed, offset = table.unpack(nn.rng_state())
  nn.rng_state({ seed + 7919 * rank, offset })
end
local log = opt.log ~= '' and assert(nn.progress.log(opt.log, { append = opt.resume ~= '' })) or nil

local function estimate()
  model:eval()
  local out = {}
  nn.no_grad(function()
    for _, split in ipairs({ 'train', 'val' }) do
      local s = 0
      for _ = 1, opt.eval_iters do
        local x, y = batch(split)
        local _, loss = model(x, y)
        s = s + loss:item()
      end
      out[split] = s / opt.eval_iters
      if opt.dist then out[split] = nn.dist.all_reduce(nn.tensor({ out[split] }), 'avg'):item() end
    end
  end)
  model:train()
  return out
end

local t0 = nn.clock()
local losses

local function evaluate(iter)
  losses = estimate()
  print(('step %5d: train loss %.4f, val loss %.4f'):format(iter, losses.train, losses.val))
  if log then log:write({ step = iter, train_loss = losses.train, val_loss = losses.val }) end
  if opt.ckpt ~= '' and iter > 0 then
    local saved, err = nn.checkpoint.save(opt.ckpt, { model = model, optimizer = optimizer,
                                                    scheduler = schedule, step = iter, extra = shape })
    if not saved then nn.cli.fail('--ckpt: %s', err) end
  end
end

if start == 0 then evaluate(0) end
-- the progress bar: step/total, rate, ETA, and the loss, lr and tokens/s
for i, _, bar in nn.progress(opt.iters - start, { desc = 'train', every = opt.log_interval }) do
  local iter = start + i -- the step being taken, 1-based
  local x, y = batch('train')
  local loss
  do
    local ac <close> = nn.autocast(precision)
    _, loss = net(x, y)
  end
  optimizer:zero_grad()
  loss:backward()
  if nn.optim.finite(loss, model:parameters(), { action = opt.on_nan, step = iter }) then
    nn.optim.clip_grad_norm_(model:parameters(), opt.grad_clip)
    optimizer:step()
  end
  schedule:step()
  bar.loss = loss:item()
  bar.lr = optimizer.param_groups[1].lr
  bar['tok/s'] = i * opt.batch * opt.block_size * world / (nn.clock() - t0)
  if log then log:write({ step = iter, loss = bar.loss }) end
  if iter % opt.eval_interval == 0 or iter == opt.iters then evaluate(iter) end
end
if not losses then evaluate(opt.iters) end
print(('trained %d iterations in %.1fs; final val loss %.4f'):format(opt.iters - start, nn.clock() - t0, losses.val))
if not nn.dist.is_main() then return end -- rank 0 writes the files
if log and opt.plot ~= '' then
  log:close()
  log = nil
  local ok, err = nn.plot.from_log(opt.log, opt.plot, { 'loss', 'train_loss', 'val_loss' },
    { title = ('GPT %dx%d on %s'):format(opt.n_layer, opt.n_embd, source:match('[^/]*$')),
      ylabel = 'cross-entropy (nats/char)' })
  print(ok and ('plotted ' .. opt.plot) or ('could not plot: ' .. err))
end

local ok, err = model:save(opt.out, {
  config = shape.config, vocab = shape.vocab, val_loss = tostring(losses.val), iters = tostring(opt.iters) })
if not ok then error('could not save the model: ' .. err, 0) end
print('saved ' .. opt.out)

if opt.sample_len > 0 then
  model:eval()
  local prompt = enc.encode('\n'):view(1, 1)
  local out = nn.generate.generate(model, prompt, opt.sample_len, { temperature = 0.8, top_k = 40,
                                                                    block_size = opt.block_size })
  print('--- sample ---')
  print(enc.decode(out[1]))
end
