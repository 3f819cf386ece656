--- bench/fashion_mnist.lua: seconds per training epoch of the Fashion-MNIST
--- MLP and CNN (examples/fashion_mnist), beside the same models in PyTorch
--- (bench/fashion_mnist.py, run tuned as ../shared/NOTES.md describes) when
--- /usr/bin/python3 has torch. Usage: nnlua bench/fashion_mnist.lua [--epochs N]
package.path = arg[0]:gsub('[^/]*$', '') .. '?.lua;' .. package.path
local nn = require 'nnlua'
local bench = require 'common'

local epochs, models = 1, { 'mlp', 'cnn' }
for i = 1, #arg do
  if arg[i] == '--epochs' then epochs = tonumber(arg[i + 1]) end
  if arg[i] == '--models' then
    models = {}
    for m in arg[i + 1]:gmatch('[^,]+') do models[#models + 1] = m end
  end
end

local function run(cmd)
  local p = io.popen(cmd .. ' 2>&1')
  local out = p:read('a')
  p:close()
  return out
end

local here = arg[0]:gsub('[^/]*$', '')
local root = here .. '..'
local exe = arg[-1] or 'nnlua'
print(('threads %d, BLAS %s'):format(nn.get_num_threads(), nn.config().blas_core))
print(('%-6s %14s %14s %8s'):format('model', 'nnlua s/epoch', 'torch s/epoch', 'speedup'))

local torch_times = bench.torch('fashion_mnist.py', ('--epochs %d --models %s'):format(epochs, table.concat(models, ',')))

for _, m in ipairs(models) do
  -- GNU time (make bench-deps installs it) gives the run's peak RSS
  local timed = os.execute('test -x /usr/bin/time') and "/usr/bin/time -f 'peak_rss_kb %M' " or ''
  local out = run(('%s%s %s/examples/fashion_mnist/train.lua --model %s --epochs %d')
    :format(timed, exe, root, m, epochs))
  local rss = out:match('peak_rss_kb (%d+)')
  local times = {}
  for s in out:gmatch('([%d.]+) s/epoch') do times[#times + 1] = tonumber(s) end
  local ours = bench.median(times)
  if not ours then error('train.lua failed:\n' .. out) end
  local theirs = torch_times[m]
  print(('%-6s %14.2f %14s %8s'):format(m, ours, theirs and ('%.2f'):format(theirs) or '-',
    theirs and ('%.2fx'):format(theirs / ours) or '-'))
  bench.record({ case = 'Fashion-MNIST ' .. m .. ' epoch', unit = 's', nnlua = ours, torch = theirs,
                 nnlua_rss_mb = rss and tonumber(rss) / 1024, torch_rss_mb = torch_times[m .. '_rss'] })
end
