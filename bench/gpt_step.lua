--- bench/gpt_step.lua: milliseconds per GPT training step (AdamW, clipped
--- gradients) for nanoGPT's baby config (4x128, T 64, B 12) and a 6x384
--- model (T 256, B 8), and fused attention forward+backward alone (B 16,
--- T 128, d 256, 8 heads, causal), beside the same in PyTorch
--- (bench/gpt_step.py, tuned as ../shared/NOTES.md says) when available.
--- Usage: nnlua bench/gpt_step.lua [--steps N]
package.path = arg[0]:gsub('[^/]*$', '') .. '../examples/gpt/?.lua;' .. package.path
local nn = require 'nnlua'
local GPT = require 'model'

local steps = 10
for i = 1, #arg do if arg[i] == '--steps' then steps = tonumber(arg[i + 1]) end end

local function median(xs)
  table.sort(xs)
  return xs[(#xs + 1) // 2]
end

local function time_steps(fn, n)
  fn()
  fn()
  local ts = {}
  for i = 1, n do
    local t0 = nn.clock()
    fn()
    ts[i] = nn.clock() - t0
  end
  return median(ts) * 1e3
end

local function gpt(layers, heads, e, t, b, n)
  nn.manual_seed(0)
  local m = GPT({ vocab_size = 65, block_size = t, n_layer = layers, n_head = heads, n_embd = e,
                  dropout = 0, bias = true })
  local opt = nn.optim.AdamW(m:parameters(), { lr = 1e-3 })
  local x, y = nn.randint(1, 66, b, t), nn.randint(1, 66, b, t)
  return time_steps(function()
    local _, loss = m(x, y)
    opt:zero_grad()
    loss:backward()
    nn.optim.clip_grad_norm_(m:parameters(), 1.0)
    opt:step()
  end, n)
end

local function attention(n)
  local q, k, v = nn.randn(16, 8, 128, 32):requires_grad_(), nn.randn(16, 8, 128, 32):requires_grad_(),
                  nn.randn(16, 8, 128, 32):requires_grad_()
  return time_steps(function() nn.attention(q, k, v, { causal = true }):sum():backward() end, n)
end

local theirs = {}
if os.execute('/usr/bin/python3 -c "import torch" 2>/dev/null') then
  local env = 'OPENBLAS_CORETYPE=SkylakeX ATEN_CPU_CAPABILITY=avx512 '
    .. 'GLIBC_TUNABLES=glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=17179869184 '
    .. ('OMP_NUM_THREADS=%d '):format(nn.get_num_threads())
  local p = io.popen(('%s/usr/bin/python3 %sgpt_step.py --steps %d 2>&1')
    :format(env, arg[0]:gsub('[^/]*$', ''), steps))
  for name, ms in p:read('a'):gmatch('(%S+) ([%d.]+)') do theirs[name] = tonumber(ms) end
  p:close()
end

print(('threads %d, BLAS %s'):format(nn.get_num_threads(), nn.config().blas_core))
print(('%-34s %10s %10s %8s'):format('', 'nnlua ms', 'torch ms', 'speedup'))
local rows = {
  { 'baby', 'GPT 4x128, T 64, B 12 (step)', function() return gpt(4, 4, 128, 64, 12, steps) end },
  { '6x384', 'GPT 6x384, T 256, B 8 (step)', function() return gpt(6, 6, 384, 256, 8, math.max(3, steps // 3)) end },
  { 'attention', 'attention fwd+bwd B16 T128 d256 h8', function() return attention(steps) end },
}
for _, r in ipairs(rows) do
  local ours = r[3]()
  local t = theirs[r[1]]
  print(('%-34s %10.2f %10s %8s'):format(r[2], ours, t and ('%.2f'):format(t) or '-',
    t and ('%.2fx'):format(t / ours) or '-'))
end
