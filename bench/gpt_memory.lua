--- bench/gpt_memory.lua: peak resident memory (VmHWM) and step time of GPT
--- 6x384 training steps (T 256, B 8, AdamW, clipped gradients), with every
--- block checkpointed (nn.utils.checkpoint) or not, and the losses, which
--- must be the same both ways. Peak RSS is per process: run each mode in
--- its own (make bench does), or two builds to compare their tapes:
---   nnlua bench/gpt_memory.lua [--steps N] [--checkpoint]
package.path = arg[0]:gsub('[^/]*$', '') .. '?.lua;' .. arg[0]:gsub('[^/]*$', '') .. '../examples/gpt/?.lua;'
  .. package.path
local nn = require 'nnlua'
local GPT = require 'model'
local bench = require 'common'

local steps, ckpt = 5, false
for i = 1, #arg do
  if arg[i] == '--steps' then steps = tonumber(arg[i + 1])
  elseif arg[i] == '--checkpoint' then ckpt = true end
end

local function status(key)
  for line in io.lines('/proc/self/status') do
    local v = line:match('^' .. key .. ':%s+(%d+) kB')
    if v then return tonumber(v) / 1024 end
  end
end

nn.manual_seed(0)
local m = GPT({ vocab_size = 65, block_size = 256, n_layer = 6, n_head = 6, n_embd = 384,
                dropout = 0.1, bias = true, checkpoint = ckpt })
local opt = nn.optim.AdamW(m:parameters(), { lr = 1e-3 })
local x, y = nn.randint(1, 66, 8, 256), nn.randint(1, 66, 8, 256)
local before = status('VmRSS')
local times, losses = {}, {}
for i = 1, steps do
  local t0 = nn.clock()
  local _, loss = m(x, y)
  opt:zero_grad()
  loss:backward()
  nn.optim.clip_grad_norm_(m:parameters(), 1.0)
  opt:step()
  times[i], losses[i] = nn.clock() - t0, ('%.6f'):format(loss:item())
end
collectgarbage()
table.sort(times)
print(('gpt 6x384 T256 B8 dropout 0.1%s, %d steps: peak RSS %.0f MiB (%.0f MiB before the first step), '
  .. 'RSS now %.0f MiB, median step %.0f ms'):format(ckpt and ' checkpointed' or '', steps,
  status('VmHWM'), before, status('VmRSS'), times[(steps + 1) // 2] * 1000))
print('losses ' .. table.concat(losses, ' '))
bench.record({ case = 'GPT 6x384 dropout 0.1 step' .. (ckpt and ', checkpointed' or '') .. ' (memory run)',
               unit = 'ms', nnlua = times[(steps + 1) // 2] * 1000, nnlua_rss_mb = status('VmHWM') })
