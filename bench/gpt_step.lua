--- bench/gpt_step.lua: milliseconds per GPT training step (AdamW, clipped
--- gradients) for nanoGPT's baby config (4x128, T 64, B 12) and a 6x384
--- model (T 256, B 8), and fused attention forward+backward alone (B 16,
--- T 128, d 256, 8 heads, causal; and with dropout 0.1 on the weights), beside the same in PyTorch
--- (bench/gpt_step.py, tuned as ../shared/NOTES.md says) when available.
--- Usage: nnlua bench/gpt_step.lua [--steps N] [--profile baby|6x384]
package.path = arg[0]:gsub('[^/]*$', '') .. '?.lua;' .. arg[0]:gsub('[^/]*$', '') .. '../examples/gpt/?.lua;' .. package.path
local nn = require 'nnlua'
local GPT = require 'model'
local bench = require 'common'

local steps, profile = 10, nil
for i = 1, #arg do
  if arg[i] == '--steps' then steps = tonumber(arg[i + 1]) end
  if arg[i] == '--profile' then profile = arg[i + 1] end
end

local time_steps = bench.time_steps

-- one training step of a GPT (AdamW, clipped gradients), and its model
-- FLOPs as nanoGPT's estimate_mfu counts them: 6 N + 12 L T E a token
-- (N the parameters without the position embedding; the tied token
-- embedding counts once, as the output layer's product)
local function gpt_step(layers, heads, e, t, b, autocast)
  nn.manual_seed(0)
  local m = GPT({ vocab_size = 65, block_size = t, n_layer = layers, n_head = heads, n_embd = e,
                  dropout = 0, bias = true })
  local opt = nn.optim.AdamW(m:parameters(), { lr = 1e-3 })
  local x, y = nn.randint(1, 66, b, t), nn.randint(1, 66, b, t)
  local n = m:num_parameters() - m.wpe.weight:numel()
  local flops = (6 * n + 12 * layers * t * e) * t * b
  return function()
    local _, loss
    do
      local ac <close> = nn.autocast(autocast and 'bf16' or false)
      _, loss = m(x, y)
    end
    opt:zero_grad()
    loss:backward() -- products in the dtype their forward used
    nn.optim.clip_grad_norm_(m:parameters(), 1.0)
    opt:step()
  end, flops
end

-- milliseconds a step, and GFLOP/s
local function gpt(layers, heads, e, t, b, n, autocast)
  local step, flops = gpt_step(layers, heads, e, t, b, autocast)
  local ms = time_steps(step, n)
  return ms, flops / ms / 1e6
end

-- --profile baby|6x384: the profiler's table over --steps steps (after two)
local configs = { baby = { 4, 4, 128, 64, 12 }, ['6x384'] = { 6, 6, 384, 256, 8 } }
if profile then
  local c = assert(configs[profile], '--profile takes baby or 6x384')
  local step = gpt_step(c[1], c[2], c[3], c[4], c[5])
  step(); step()
  print(('threads %d, BLAS %s; GPT %s, %d steps'):format(nn.get_num_threads(), nn.config().blas_core, profile, steps))
  print(nn.profile(function() for _ = 1, steps do step() end end):table({ limit = 25 }))
  os.exit(0)
end

local function attention(n, dropout, autocast)
  local q, k, v = nn.randn(16, 8, 128, 32):requires_grad_(), nn.randn(16, 8, 128, 32):requires_grad_(),
                  nn.randn(16, 8, 128, 32):requires_grad_()
  return time_steps(function()
    local ac <close> = nn.autocast(autocast and 'bf16' or false)
    nn.attention(q, k, v, { causal = true, dropout = dropout }):sum():backward()
  end, n)
end

local theirs = bench.torch('gpt_step.py', '--steps ' .. steps)

print(('threads %d, BLAS %s'):format(nn.get_num_threads(), nn.config().blas_core))
print(('%-40s %10s %10s %8s'):format('', 'nnlua ms', 'torch ms', 'speedup'))
local rows = {
  { 'baby', 'GPT 4x128, T 64, B 12 (step)', function() return gpt(4, 4, 128, 64, 12, steps) end },
  { '6x384', 'GPT 6x384, T 256, B 8 (step)', function() return gpt(6, 6, 384, 256, 8, math.max(3, steps // 3)) end },
  { '6x384_autocast', 'the same under bf16 autocast', function()
      return gpt(6, 6, 384, 256, 8, math.max(3, steps // 3), true)
    end },
  { 'attention', 'attention fwd+bwd B16 T128 d256 h8', function() return attention(steps, 0) end },
  { 'attention_dropout', 'the same, dropout 0.1', function() return attention(steps, 0.1) end },
  { 'attention_autocast', 'the same, no dropout, bf16 autocast', function()
      return attention(steps, 0, true)
    end },
}
for _, r in ipairs(rows) do
  local ms, gflops = r[3]()
  bench.row(r[2], ms, theirs[r[1]], { gflops = gflops, torch_rss = theirs[r[1] .. '_rss'] })
end
