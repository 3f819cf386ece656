--- bench/summary.lua: the rows the benchmarks recorded (NNLUA_BENCH_ROWS,
--- one JSON object a line, see bench/common.lua's record) as one table --
--- case, nnlua, PyTorch (or raw sgemm), the ratio (>1: nnlua better),
--- GFLOP/s and % of raw sgemm at 1024^3 for the GEMM-heavy rows, and the
--- peak RSS of both while each row ran -- and the same as JSON with
--- nn.config(), so runs can be compared over time.
--- Usage: nnlua bench/summary.lua ROWS.jsonl [OUT.json]
local nn = require 'nnlua'
local cjson = require 'cjson'

local rows_path, out_path = arg[1], arg[2]
if not rows_path then error('usage: nnlua bench/summary.lua ROWS.jsonl [OUT.json]') end

local rows, sgemm = {}, nil
for line in io.lines(rows_path) do
  if line:match('%S') then
    local r = cjson.decode(line)
    for k, v in pairs(r) do if v == cjson.null then r[k] = nil end end
    if r.sgemm_gflops then sgemm = r.sgemm_gflops end
    rows[#rows + 1] = r
  end
end

-- the ratio is always "how many times better nnlua is"
for _, r in ipairs(rows) do
  local other = r.torch or r.ref
  if other and r.nnlua and r.nnlua > 0 and other > 0 then
    r.ratio = r.higher and r.nnlua / other or other / r.nnlua
  end
  if r.gflops and sgemm then r.pct_sgemm = 100 * r.gflops / sgemm end
end

local function num(v, fmt) return v and (fmt or '%.2f'):format(v) or '-' end
local c = nn.config()
print(('\nnnlua %s, %d threads, BLAS %s; raw sgemm at 1024^3: %s GFLOP/s'):format(c.version, c.threads,
  c.blas_core, num(sgemm, '%.1f')))
print(('%-44s %7s %10s %10s %7s %7s %6s %9s %9s'):format('case', 'unit', 'nnlua', 'PyTorch',
  'ratio', 'GFLOP/s', '%sgemm', 'RSS MiB', 'torch MiB'))
for _, r in ipairs(rows) do
  local other = r.torch and num(r.torch, '%.3f') or r.ref and (num(r.ref, '%.1f') .. ' ' .. r.versus) or '-'
  print(('%-44s %7s %10s %10s %7s %7s %6s %9s %9s'):format(r.case:sub(1, 44), r.unit,
    num(r.nnlua, '%.3f'), other, r.ratio and ('%.2fx'):format(r.ratio) or '-', num(r.gflops, '%.1f'),
    num(r.pct_sgemm, '%.0f%%'), num(r.nnlua_rss_mb, '%.0f'), num(r.torch_rss_mb, '%.0f')))
end

if out_path then
  local doc = { date = os.date('!%Y-%m-%dT%H:%M:%SZ'), config = c, sgemm_gflops = sgemm, rows = rows }
  require('nnlua.files').write_atomic(out_path, cjson.encode(doc) .. '\n')
  print('written: ' .. out_path)
end
