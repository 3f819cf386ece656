--- bench/common.lua: what the benchmarks share -- medians, step timing, and
--- running a PyTorch twin configured as ../shared/NOTES.md describes
--- ("PyTorch at its best here": SkylakeX BLAS kernels, AVX-512 ATen, glibc
--- malloc kept from returning memory, the same number of threads).
local nn = require 'nnlua'

local M = {}

M.dir = arg[0]:gsub('[^/]*$', '')

function M.median(xs)
  table.sort(xs)
  return xs[(#xs + 1) // 2]
end

--- median milliseconds of fn() over n calls, after two warm-up calls
function M.time_steps(fn, n)
  fn()
  fn()
  local ts = {}
  for i = 1, n do
    local t0 = nn.clock()
    fn()
    ts[i] = nn.clock() - t0
  end
  return M.median(ts) * 1e3
end

--- Runs bench/<script> under /usr/bin/python3 with `args` and returns its
--- "<name> <number>" lines as a table (empty when torch is not installed).
function M.torch(script, args)
  local out = {}
  if not os.execute('/usr/bin/python3 -c "import torch" 2>/dev/null') then return out end
  local env = 'OPENBLAS_CORETYPE=SkylakeX ATEN_CPU_CAPABILITY=avx512 '
    .. 'GLIBC_TUNABLES=glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=17179869184 '
    .. ('OMP_NUM_THREADS=%d '):format(nn.get_num_threads())
  local p = io.popen(('%s/usr/bin/python3 %s%s %s 2>&1'):format(env, M.dir, script, args or ''))
  for name, v in p:read('a'):gmatch('(%S+) ([%d.]+)') do out[name] = tonumber(v) end
  p:close()
  return out
end

--- prints one row: label, ours, theirs (or '-') and the speedup theirs/ours
function M.row(label, ours, theirs, fmt)
  fmt = fmt or '%.2f'
  print(('%-40s %10s %10s %8s'):format(label, fmt:format(ours),
    theirs and fmt:format(theirs) or '-', theirs and ('%.2fx'):format(theirs / ours) or '-'))
end

return M
