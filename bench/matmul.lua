--- bench/matmul.lua: nnlua matmul GFLOP/s beside raw cblas_sgemm in the
--- same process, on square and transformer-shaped products.
--- Usage: nnlua bench/matmul.lua [--reps N]
package.path = arg[0]:gsub('[^/]*$', '') .. '?.lua;' .. package.path
local nn = require 'nnlua'
local bench = require 'common'
local median = bench.median

local reps = 20
for i = 1, #arg do
  if arg[i] == '--reps' then reps = tonumber(arg[i + 1]) end
end

-- median seconds per call of f, timed in batches of `inner` calls so
-- small products are not lost in clock resolution; one warm-up batch
local function time(f, inner)
  local ts = {}
  for r = 0, reps do
    local t0 = nn.clock()
    for _ = 1, inner do f() end
    if r > 0 then ts[r] = (nn.clock() - t0) / inner end
  end
  return median(ts)
end

local c = nn.config()
print(('nnlua %s  BLAS core %s (%s)  threads %d'):format(c.version, c.blas_core,
  c.blas_choice, c.threads))
print(('%-28s %10s %10s %7s'):format('shape (m x k @ k x n)', 'nnlua', 'sgemm', 'ratio'))

local cases = {
  {64, 64, 64}, {128, 128, 128}, {256, 256, 256}, {512, 512, 512},
  {1024, 1024, 1024},
  {768, 256, 1024, 'x @ W (768x256 @ 256x1024)'},
  {3072, 768, 768, 'linear B*T=3072, 768->768'},
  {3072, 384, 1536, 'MLP up B*T=3072, 384->1536'},
  {768, 256, 1024, 'x @ W:t() (weight stored 1024x256)', true},
}
local ratios = {}
for _, case in ipairs(cases) do
  local m, k, n, label, transposed = case[1], case[2], case[3], case[4], case[5]
  label = label or ('%d x %d @ %d x %d'):format(m, k, k, n)
  local a = nn.randn(m, k)
  local b = transposed and nn.randn(n, k):t() or nn.randn(k, n)
  local flop = 2.0 * m * n * k
  local inner = math.max(1, math.floor(2e8 / flop))
  local t_nn = time(function() local _ = a:matmul(b) end, inner)
  local t_raw = nn.sgemm_time(m, n, k, reps, transposed, inner)
  local ratio = t_raw / t_nn
  ratios[#ratios + 1] = ratio
  print(('%-28s %7.1f GF %7.1f GF %7.2f'):format(label, flop / t_nn / 1e9,
    flop / t_raw / 1e9, ratio))
  bench.record({ case = 'matmul ' .. label, unit = 'GFLOP/s', higher = true, nnlua = flop / t_nn / 1e9,
                 ref = flop / t_raw / 1e9, versus = 'sgemm',
                 sgemm_gflops = m == 1024 and n == 1024 and k == 1024 and flop / t_raw / 1e9 or nil })
end
print(('median ratio nnlua/sgemm: %.2f'):format(median(ratios)))

-- bf16 products (nn.autocast): nnlua's kernel (AMX tiles or vdpbf16ps,
-- whichever this CPU has and is faster; see nn.bf16_native) beside raw f32
-- sgemm, both in GFLOP/s of the same product
print(('\nbf16 products (%s kernel)'):format(nn.bf16_native() and 'nnlua' or 'sgemm on rounded operands'))
print(('%-28s %10s %10s %7s'):format('shape (m x k @ k x n)', 'bf16', 'sgemm', 'ratio'))
for _, case in ipairs({ {1024, 1024, 1024}, {2048, 384, 1536, 'MLP up B*T=2048, 384->1536'},
    {2048, 1536, 384, 'MLP down B*T=2048, 1536->384'} }) do
  local m, k, n, label = case[1], case[2], case[3], case[4]
  label = label or ('%d x %d @ %d x %d'):format(m, k, k, n)
  local flop = 2.0 * m * n * k
  local inner = math.max(1, math.floor(2e8 / flop))
  local t16 = nn.sgemm_time(m, n, k, reps, false, inner, true)
  local t32 = nn.sgemm_time(m, n, k, reps, false, inner)
  print(('%-28s %7.1f GF %7.1f GF %7.2f'):format(label, flop / t16 / 1e9, flop / t32 / 1e9, t32 / t16))
end
