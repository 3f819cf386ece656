--- bench/dispatch.lua: the cost of one call from Lua into the engine --
--- a one-element add (a + b, and a:add(b)), 1e6 calls, median of 5 runs --
--- beside the same in PyTorch (bench/dispatch.py, torch.add on one-element
--- tensors), and the cost of a call while nn.profile is off (nothing is
--- wrapped: the same C function runs) and on.
--- Usage: nnlua bench/dispatch.lua [--calls N]
package.path = arg[0]:gsub('[^/]*$', '') .. '?.lua;' .. package.path
local nn = require 'nnlua'
local bench = require 'common'

local calls = 1000000
for i = 1, #arg do if arg[i] == '--calls' then calls = tonumber(arg[i + 1]) end end

local a, b = nn.ones(1), nn.ones(1)
local function metamethod() for _ = 1, calls do local _ = a + b end end
local function method() for _ = 1, calls do local _ = a:add(b) end end
local function inplace() for _ = 1, calls do a:add_(b) end end

-- median microseconds per call over 5 runs of fn (after one)
local function us(fn)
  fn()
  local ts = {}
  for r = 1, 5 do
    local t0 = nn.clock()
    fn()
    ts[r] = nn.clock() - t0
  end
  return bench.median(ts) / calls * 1e6
end

local theirs = bench.torch('dispatch.py', '--calls ' .. calls)
print(('threads %d; %d calls a run, median of 5'):format(nn.get_num_threads(), calls))
print(('%-40s %10s %10s %8s'):format('', 'nnlua us', 'torch us', 'speedup'))
bench.row('one-element a + b', us(metamethod), theirs.add, { unit = 'us', fmt = '%.3f' })
bench.row('one-element a:add(b)', us(method), theirs.add, { unit = 'us', fmt = '%.3f' })
bench.row('one-element a:add_(b) (in place)', us(inplace), theirs.add_, { unit = 'us', fmt = '%.3f' })
local off = us(metamethod)
local on
nn.profile(function() on = us(metamethod) end)
print(('nn.profile: a + b costs %.3f us with the profiler off, %.3f us while it runs'):format(off, on))
