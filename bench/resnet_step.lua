--- bench/resnet_step.lua: milliseconds per training step of the ResNet of
--- examples/resnet (width 16, 2 basic blocks a stage: ResNet-14, batch 128
--- of 1x28x28, SGD with Nesterov momentum and weight decay, label
--- smoothing), and a depthwise 3x3 convolution forward+backward (64
--- channels, groups 64, 14x14, batch 128), beside the same in PyTorch
--- (bench/resnet_step.py, tuned as ../shared/NOTES.md says).
--- Usage: nnlua bench/resnet_step.lua [--steps N]
package.path = arg[0]:gsub('[^/]*$', '') .. '?.lua;' .. arg[0]:gsub('[^/]*$', '') .. '../examples/resnet/?.lua;'
  .. package.path
local nn = require 'nnlua'
local ResNet = require 'model'
local bench = require 'common'

local steps = 10
for i = 1, #arg do if arg[i] == '--steps' then steps = tonumber(arg[i + 1]) end end

local function resnet()
  nn.manual_seed(0)
  local m = ResNet({ blocks = 2, width = 16 })
  local opt = nn.optim.SGD(m:parameters(), { lr = 0.1, momentum = 0.9, nesterov = true, weight_decay = 5e-4 })
  local x, y = nn.randn(128, 1, 28, 28), nn.randint(1, 11, 128)
  return bench.time_steps(function()
    local loss = nn.cross_entropy(m(x), y, { label_smoothing = 0.1 })
    opt:zero_grad()
    loss:backward()
    opt:step()
  end, steps)
end

local function depthwise()
  local x, w = nn.randn(128, 64, 14, 14):requires_grad_(), nn.randn(64, 1, 3, 3):requires_grad_()
  return bench.time_steps(function()
    nn.conv2d(x, w, nil, { padding = 1, groups = 64 }):sum():backward()
  end, steps)
end

local theirs = bench.torch('resnet_step.py', '--steps ' .. steps)
print(('threads %d, BLAS %s'):format(nn.get_num_threads(), nn.config().blas_core))
print(('%-40s %10s %10s %8s'):format('', 'nnlua ms', 'torch ms', 'speedup'))
bench.row('ResNet-14 step, batch 128 (28x28)', resnet(), theirs.resnet, { torch_rss = theirs.resnet_rss })
bench.row('depthwise conv 3x3 fwd+bwd, 64ch 14x14', depthwise(), theirs.depthwise,
          { torch_rss = theirs.depthwise_rss })
