--- bench/quality.lua: the quality figure the README quotes for the baby GPT
--- (nanoGPT's Shakespeare config, 2000 iterations), as a mean over seeds in
--- nnlua (examples/gpt/train.lua) and in its PyTorch twin
--- (bench/quality.py, run when /usr/bin/python3 has torch), each evaluated
--- on --eval_iters random validation batches at the end.
---
---   nnlua bench/quality.lua --data ../shared/data/tinyshakespeare/input.txt
---
--- --paired instead trains both engines from the same initial weights on
--- the same batches (drawn here, written to a file the twin reads), so the
--- val losses differ only by float rounding: the engines' arithmetic is
--- compared without the seed-to-seed spread.
package.path = arg[0]:gsub('[^/]*$', '') .. '?.lua;' .. arg[0]:gsub('[^/]*$', '') .. '../examples/gpt/?.lua;'
  .. package.path
local nn = require 'nnlua'
local bench = require 'common'

local opt = nn.cli.parse(arg, {
  { 'data', '../shared/data/tinyshakespeare/input.txt', 'the text to train on', path = 'file' },
  { 'iters', 2000, 'training iterations per run', integer = true, min = 1 },
  { 'seeds', 3, 'runs per engine', integer = true, min = 1 },
  { 'first_seed', 1, 'the runs use seeds first_seed .. first_seed + seeds - 1', integer = true, min = 1 },
  { 'eval_iters', 200, 'validation batches in the final evaluation', integer = true, min = 1 },
  { 'torch', true, 'also run the PyTorch twin' },
  { 'paired', false, 'same weights and batches in both engines (see above)' },
})

local recipe = ('--data %s --iters %d --eval_iters %d'):format(opt.data, opt.iters, opt.eval_iters)
local exe = arg[-1] or 'nnlua'
local tmp = os.tmpname()

local function mean_sd(xs)
  local s, ss = 0, 0
  for _, x in ipairs(xs) do s = s + x end
  local m = s / #xs
  for _, x in ipairs(xs) do ss = ss + (x - m) ^ 2 end
  return m, #xs > 1 and math.sqrt(ss / (#xs - 1)) or 0
end

local function report(name, losses, seconds)
  local m, sd = mean_sd(losses)
  local each = {}
  for i, l in ipairs(losses) do each[i] = ('%.4f'):format(l) end
  print(('%-8s val loss %.4f +- %.4f over %d seeds (%s), %.0f s per run')
    :format(name, m, sd, #losses, table.concat(each, ' '), seconds / #losses))
end

-- the baby recipe of examples/gpt/train.lua, on batches given by offsets
local function paired_run(seed, file)
  local GPT = require 'model'
  local data = require 'data'
  local enc = data.encode_chars(assert(nn.data.read_text(opt.data)))
  local n = enc.data:size(1)
  local n_train = math.floor(0.9 * n)
  local splits = { train = enc.data:narrow(1, 1, n_train), val = enc.data:narrow(1, n_train + 1, n - n_train) }
  local B, T = 12, 64
  nn.manual_seed(seed)
  local model = GPT({ vocab_size = #enc.vocab, block_size = T, n_layer = 4, n_head = 4, n_embd = 128,
                      dropout = 0, bias = true })
  local starts = { train = nn.randint(1, splits.train:size(1) - T, opt.iters, B),
                   val = nn.randint(1, splits.val:size(1) - T, opt.eval_iters, B) }
  local out = { train_starts = starts.train - 1, val_starts = starts.val - 1 }
  for k, v in pairs(model:state_dict()) do if k ~= 'lm_head.weight' then out['init.' .. k] = v end end
  assert(nn.save(file, out))
  local function batch(split, i)
    local idx = (starts[split][i]:view(-1, 1) + nn.arange(T)):view(-1)
    local d = splits[split]
    return d:index_select(1, idx):view(B, T), d:index_select(1, idx + 1):view(B, T)
  end
  local optimizer = model:optimizer({ lr = 1e-3, weight_decay = 0.1 })
  local schedule = nn.optim.CosineLR(optimizer, { warmup = 100, total = opt.iters, min_lr = 1e-4 })
  for i = 1, opt.iters do
    local _, loss = model(batch('train', i))
    optimizer:zero_grad()
    loss:backward()
    nn.optim.clip_grad_norm_(model:parameters(), 1.0)
    optimizer:step()
    schedule:step()
  end
  model:eval()
  local s = 0
  nn.no_grad(function()
    for i = 1, opt.eval_iters do s = s + select(2, model(batch('val', i))):item() end
  end)
  return s / opt.eval_iters
end

local ours, theirs, t_ours, t_theirs = {}, {}, 0, 0
if opt.paired then
  for seed = opt.first_seed, opt.first_seed + opt.seeds - 1 do
    local t0 = nn.clock()
    ours[#ours + 1] = paired_run(seed, tmp)
    t_ours = t_ours + nn.clock() - t0
    local r = opt.torch and bench.torch('quality.py', recipe .. ' --paired ' .. tmp) or {}
    if r.val_loss then theirs[#theirs + 1], t_theirs = r.val_loss, t_theirs + r.seconds end
    print(('seed %d, same weights and batches: nnlua %.4f, pytorch %s'):format(seed, ours[#ours],
      r.val_loss and ('%.4f'):format(r.val_loss) or '-'))
  end
else
  for seed = opt.first_seed, opt.first_seed + opt.seeds - 1 do
    local t0 = nn.clock()
    local cmd = ('%s %sexamples/gpt/train.lua %s --seed %d --eval_interval %d --sample_len 1 --out %s --force 2>&1')
      :format(exe, bench.dir .. '../', recipe, seed, opt.iters, tmp)
    local p = assert(io.popen(cmd))
    local out = p:read('a')
    p:close()
    local loss = out:match('final val loss ([%d.]+)')
    if not loss then error('train.lua failed:\n' .. out, 0) end
    ours[#ours + 1] = tonumber(loss)
    t_ours = t_ours + nn.clock() - t0
    print(('nnlua   seed %d: val loss %s'):format(seed, loss))
    if opt.torch then
      local r = bench.torch('quality.py', recipe .. ' --seed ' .. seed)
      if r.val_loss then
        theirs[#theirs + 1], t_theirs = r.val_loss, t_theirs + r.seconds
        print(('pytorch seed %d: val loss %.4f'):format(seed, r.val_loss))
      end
    end
  end
end
os.remove(tmp)
report('nnlua', ours, t_ours)
if #theirs > 0 then report('pytorch', theirs, t_theirs) end
