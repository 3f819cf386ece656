--- bench/contention.lua: the baby GPT training step (4x128, T 64, B 12,
--- AdamW, as bench/gpt_step.lua's) alone and beside one busy process
--- (`yes > /dev/null`), under libgomp's default wait policy and lower spin
--- counts. libgomp reads GOMP_SPINCOUNT and OMP_WAIT_POLICY when it loads,
--- so each setting runs in a process of its own (this script with --child).
--- Usage: nnlua bench/contention.lua [--steps N]
package.path = arg[0]:gsub('[^/]*$', '') .. '?.lua;' .. arg[0]:gsub('[^/]*$', '') .. '../examples/gpt/?.lua;' .. package.path
local nn = require 'nnlua'
local bench = require 'common'

local steps, child = 20, false
for i = 1, #arg do
  if arg[i] == '--steps' then steps = tonumber(arg[i + 1]) end
  if arg[i] == '--child' then child = true end
end

if child then -- one setting: the median step in milliseconds
  local GPT = require 'model'
  nn.manual_seed(0)
  local m = GPT({ vocab_size = 65, block_size = 64, n_layer = 4, n_head = 4, n_embd = 128, dropout = 0, bias = true })
  local opt = nn.optim.AdamW(m:parameters(), { lr = 1e-3 })
  local x, y = nn.randint(1, 66, 12, 64), nn.randint(1, 66, 12, 64)
  print(('step %.2f'):format(bench.time_steps(function()
    local _, loss = m(x, y)
    opt:zero_grad()
    loss:backward()
    nn.optim.clip_grad_norm_(m:parameters(), 1.0)
    opt:step()
  end, steps)))
  return
end

local exe = arg[-1] or 'nnlua'
local function step_ms(env)
  local p = io.popen(('%s %s %s --child --steps %d'):format(env, exe, arg[0], steps))
  local ms = tonumber(p:read('a'):match('step ([%d.]+)'))
  p:close()
  return ms
end

local settings = {
  { "libgomp's default", '' },
  { 'GOMP_SPINCOUNT=30000', 'GOMP_SPINCOUNT=30000' },
  { 'GOMP_SPINCOUNT=10000', 'GOMP_SPINCOUNT=10000' },
  { 'GOMP_SPINCOUNT=1000', 'GOMP_SPINCOUNT=1000' },
  { 'OMP_WAIT_POLICY=passive', 'OMP_WAIT_POLICY=passive' },
  { 'one thread', 'OMP_NUM_THREADS=1' },
}
print(('threads %d; baby GPT step, median of %d, in ms'):format(nn.get_num_threads(), steps))
print(('%-26s %8s %14s %8s'):format('', 'alone', 'beside a busy', 'ratio'))
for _, s in ipairs(settings) do
  local alone = step_ms(s[2])
  local pid = io.popen('yes > /dev/null & echo $!'):read('l')
  local beside = step_ms(s[2])
  os.execute('kill ' .. pid)
  print(('%-26s %8.2f %14.2f %7.1fx'):format(s[1], alone, beside, beside / alone))
end
