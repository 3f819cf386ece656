--- bench/quality.lua: the quality figure the README quotes for the baby GPT
--- (nanoGPT's Shakespeare config, 2000 iterations), as a mean over seeds in
--- nnlua (examples/gpt/train.lua) and in its PyTorch twin
--- (bench/quality.py, run when /usr/bin/python3 has torch), each evaluated
--- on --eval_iters random validation batches at the end.
---
---   nnlua bench/quality.lua --data ../shared/data/tinyshakespeare/input.txt
package.path = arg[0]:gsub('[^/]*$', '') .. '?.lua;' .. package.path
local nn = require 'nnlua'
local bench = require 'common'

local opt = nn.cli.parse(arg, {
  { 'data', '../shared/data/tinyshakespeare/input.txt', 'the text to train on', path = 'file' },
  { 'iters', 2000, 'training iterations per run', integer = true, min = 1 },
  { 'seeds', 3, 'runs per engine (seeds 1..N)', integer = true, min = 1 },
  { 'eval_iters', 200, 'validation batches in the final evaluation', integer = true, min = 1 },
  { 'torch', true, 'also run the PyTorch twin' },
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

local ours, theirs, t_ours, t_theirs = {}, {}, 0, 0
for seed = 1, opt.seeds do
  local t0 = nn.clock()
  local cmd = ('%s %sexamples/gpt/train.lua %s --seed %d --eval_interval %d --sample_len 1 --out %s --force 2>&1')
    :format(exe, bench.dir .. '../', recipe, seed, opt.iters, tmp)
  local p = assert(io.popen(cmd))
  local out = p:read('a')
  p:close()
  local loss = out:match('final val loss ([%d.]+)')
  if not loss then error('train.lua failed:\n' .. out, 0) end
  ours[seed] = tonumber(loss)
  t_ours = t_ours + nn.clock() - t0
  print(('nnlua   seed %d: val loss %s'):format(seed, loss))
  if opt.torch then
    local r = bench.torch('quality.py', recipe .. ' --seed ' .. seed)
    if r.val_loss then
      theirs[seed], t_theirs = r.val_loss, t_theirs + r.seconds
      print(('pytorch seed %d: val loss %.4f'):format(seed, r.val_loss))
    end
  end
end
os.remove(tmp)
report('nnlua', ours, t_ours)
if #theirs > 0 then report('pytorch', theirs, t_theirs) end
