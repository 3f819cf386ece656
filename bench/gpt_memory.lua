--- bench/gpt_memory.lua: peak resident memory (VmHWM) of GPT 6x384 training
--- steps (T 256, B 8, AdamW, clipped gradients), and the live tensor bytes
--- after them. Run it with two builds to compare their autograd tapes:
---   build-a/nnlua bench/gpt_memory.lua ; build-b/nnlua bench/gpt_memory.lua
--- Usage: nnlua bench/gpt_memory.lua [--steps N]
package.path = arg[0]:gsub('[^/]*$', '') .. '../examples/gpt/?.lua;' .. package.path
local nn = require 'nnlua'
local GPT = require 'model'

local steps = 5
for i = 1, #arg do if arg[i] == '--steps' then steps = tonumber(arg[i + 1]) end end

local function status(key)
  for line in io.lines('/proc/self/status') do
    local v = line:match('^' .. key .. ':%s+(%d+) kB')
    if v then return tonumber(v) / 1024 end
  end
end

nn.manual_seed(0)
local m = GPT({ vocab_size = 65, block_size = 256, n_layer = 6, n_head = 6, n_embd = 384,
                dropout = 0, bias = true })
local opt = nn.optim.AdamW(m:parameters(), { lr = 1e-3 })
local x, y = nn.randint(1, 66, 8, 256), nn.randint(1, 66, 8, 256)
local before = status('VmRSS')
for _ = 1, steps do
  local _, loss = m(x, y)
  opt:zero_grad()
  loss:backward()
  nn.optim.clip_grad_norm_(m:parameters(), 1.0)
  opt:step()
end
collectgarbage()
print(('gpt 6x384 T256 B8, %d steps: peak RSS %.0f MiB (%.0f MiB before the first step), RSS now %.0f MiB')
  :format(steps, status('VmHWM'), before, status('VmRSS')))
