--- bench/char_rnn_compare.lua: examples/char_rnn/train.lua beside its
--- PyTorch twin (bench/char_rnn_twin_train.py) on the same split, batches,
--- config and steps, from the same initial weights (the twin writes them,
--- nnlua loads them): validation loss of both at every evaluation, their
--- difference, and the wall time of each run. Flags are passed to both.
--- Usage: nnlua bench/char_rnn_compare.lua [--hidden 256 --steps 2000 ...]
local here = arg[0]:gsub('[^/]*$', '')
package.path = here .. '?.lua;' .. package.path
local nn = require 'nnlua'
local bench = require 'common'

local flags = table.concat(arg, ' ')
local init = os.tmpname()
local function run(cmd)
  local t0 = nn.clock()
  local p = assert(io.popen(cmd .. ' 2>&1'))
  local val = {}
  for line in p:lines() do
    local step, v = line:match('^step (%d+):.*val loss ([%d.]+)')
    if step then val[#val + 1] = { tonumber(step), tonumber(v) } end
    if line:match('^%-%-%- sample') or line:match('Error') or line:match('error') then print(line) end
  end
  p:close()
  return val, nn.clock() - t0
end

if not os.execute('/usr/bin/python3 -c "import torch" 2>/dev/null') then
  print('char_rnn_compare: PyTorch is not installed; nothing to compare')
  return
end
local env = 'OPENBLAS_CORETYPE=SkylakeX ATEN_CPU_CAPABILITY=avx512 '
  .. 'GLIBC_TUNABLES=glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=17179869184 '
  .. ('OMP_NUM_THREADS=%d '):format(nn.get_num_threads())
local theirs, t_theirs = run(('%s/usr/bin/python3 %schar_rnn_twin_train.py %s --init_out %s')
  :format(env, bench.dir, flags, init))
local out = os.tmpname()
local ours, t_ours = run(('%s %s../examples/char_rnn/train.lua %s --init %s --out %s --force --sample_len 0')
  :format(arg[-1], here, flags, init, out))
os.remove(init)
os.remove(out)
print(('char-rnn LSTM, %s'):format(flags ~= '' and flags or 'default config'))
print(('%8s %12s %12s %10s'):format('step', 'nnlua val', 'torch val', 'diff'))
local worst = 0
for i, row in ipairs(ours) do
  local t = theirs[i]
  if t then
    worst = math.max(worst, math.abs(row[2] - t[2]))
    print(('%8d %12.4f %12.4f %+10.4f'):format(row[1], row[2], t[2], row[2] - t[2]))
  end
end
print(('largest |difference| %.4f; wall time nnlua %.0f s, torch %.0f s (%.2fx)')
  :format(worst, t_ours, t_theirs, t_theirs / t_ours))
