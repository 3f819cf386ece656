--- bench/lstm_step.lua: milliseconds per training step of the character
--- LSTM of examples/char_rnn (vocabulary 65, embedding 128, 2 layers of
--- hidden 512, T 100, B 32, Adam), beside the same in PyTorch
--- (bench/lstm_step.py, tuned as ../shared/NOTES.md says).
--- Usage: nnlua bench/lstm_step.lua [--steps N]
local here = arg[0]:gsub('[^/]*$', '')
package.path = here .. '?.lua;' .. here .. '../examples/char_rnn/?.lua;' .. package.path
local nn = require 'nnlua'
local CharRNN = require 'model'
local bench = require 'common'

local steps = 10
for i = 1, #arg do if arg[i] == '--steps' then steps = tonumber(arg[i + 1]) end end

nn.manual_seed(0)
local m = CharRNN({ vocab = 65 })
local opt = nn.optim.Adam(m:parameters(), { lr = 2e-3 })
local x, y = nn.randint(1, 66, 32, 100), nn.randint(1, 66, 32, 100)
local ours = bench.time_steps(function()
  local logits = m(x)
  local loss = nn.cross_entropy(logits:view(-1, 65), y:view(-1))
  opt:zero_grad()
  loss:backward()
  opt:step()
end, steps)

local theirs = bench.torch('lstm_step.py', '--steps ' .. steps)
print(('threads %d, BLAS %s'):format(nn.get_num_threads(), nn.config().blas_core))
print(('%-40s %10s %10s %8s'):format('', 'nnlua ms', 'torch ms', 'speedup'))
bench.row('LSTM 2x512 step, T 100, B 32', ours, theirs.lstm, { torch_rss = theirs.lstm_rss })
