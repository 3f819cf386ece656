--- bench/common.lua: what the benchmarks share -- medians, step timing, and
--- running a PyTorch twin configured as ../shared/NOTES.md describes
--- ("PyTorch at its best here": SkylakeX BLAS kernels, AVX-512 ATen, glibc
--- malloc kept from returning memory, the same number of threads).
local nn = require 'nnlua'
local cjson = require 'cjson'

local M = {}

M.dir = arg[0]:gsub('[^/]*$', '')

function M.median(xs)
  table.sort(xs)
  return xs[(#xs + 1) // 2]
end

--- VmHWM (peak resident MiB) of this process, and a reset of it to the
--- current RSS (Linux: clear_refs 5) after dropping garbage and the cache
function M.peak_mb()
  for line in io.lines('/proc/self/status') do
    local kb = line:match('^VmHWM:%s+(%d+) kB')
    if kb then return tonumber(kb) / 1024 end
  end
end

function M.reset_peak()
  collectgarbage()
  collectgarbage()
  nn.empty_cache()
  local f = io.open('/proc/self/clear_refs', 'w')
  if f then f:write('5') f:close() end
end

--- median milliseconds of fn() over n calls, after two warm-up calls; the
--- peak RSS while it ran (model and data included) in M.last_peak_mb
function M.time_steps(fn, n)
  M.reset_peak()
  fn()
  fn()
  local ts = {}
  for i = 1, n do
    local t0 = nn.clock()
    fn()
    ts[i] = nn.clock() - t0
  end
  M.last_peak_mb = M.peak_mb()
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

--- Adds a row to the run's summary when NNLUA_BENCH_ROWS names a file
--- (make bench: bench/summary.lua prints them as one table and JSON).
--- r: case, unit, nnlua, torch (or ref and versus for another
--- reference), higher (bigger is better), gflops, sgemm_gflops (the raw
--- sgemm figure other rows are a percentage of), nnlua_rss_mb, torch_rss_mb.
function M.record(r)
  local path = os.getenv('NNLUA_BENCH_ROWS')
  if not path then return end
  r.script = arg[0]:match('[^/]*$')
  local f = assert(io.open(path, 'a'))
  f:write(cjson.encode(r), '\n')
  f:close()
end

--- prints one row: label, ours, theirs (or '-') and the speedup theirs/ours,
--- and records it. o (optional): unit ('ms'), gflops (nnlua's), torch_rss
--- (MiB), fmt; nnlua's peak RSS is the last time_steps' unless o.rss.
function M.row(label, ours, theirs, o)
  o = o or {}
  local fmt = o.fmt or '%.2f'
  print(('%-40s %10s %10s %8s'):format(label, fmt:format(ours),
    theirs and fmt:format(theirs) or '-', theirs and ('%.2fx'):format(theirs / ours) or '-'))
  M.record({ case = label, unit = o.unit or 'ms', nnlua = ours, torch = theirs, gflops = o.gflops,
             nnlua_rss_mb = o.rss or M.last_peak_mb, torch_rss_mb = o.torch_rss })
  M.last_peak_mb = nil
end

return M
