--- bench/vit_step.lua: milliseconds per training step (forward, backward,
--- AdamW) of a small vision Transformer on 28x28 images -- patch 7, d 64,
--- 4 layers, 4 heads, MLP 128, batch 128, 10 classes -- beside the same model
--- in PyTorch (bench/vit_step.py, configured as ../shared/NOTES.md says).
--- Usage: nnlua bench/vit_step.lua [--steps N]
package.path = arg[0]:gsub('[^/]*$', '') .. '?.lua;' .. package.path
local nn = require 'nnlua'
local bench = require 'common'

local steps = 20
for i = 1, #arg do if arg[i] == '--steps' then steps = tonumber(arg[i + 1]) end end

nn.manual_seed(0)
local vit = nn.ViT { image_size = 28, patch_size = 7, channels = 1, dim = 64, depth = 4,
                     heads = 4, mlp_dim = 128, num_classes = 10 }
local opt = nn.optim.AdamW(vit:parameters(), { lr = 1e-3 })
local x, y = nn.randn(128, 1, 28, 28), nn.randint(1, 11, 128)
local ours = bench.time_steps(function()
  local loss = nn.cross_entropy(vit(x), y)
  opt:zero_grad()
  loss:backward()
  opt:step()
end, steps)

local theirs = bench.torch('vit_step.py', '--steps ' .. steps)
print(('threads %d, BLAS %s'):format(nn.get_num_threads(), nn.config().blas_core))
print(('%-40s %10s %10s %8s'):format('', 'nnlua ms', 'torch ms', 'speedup'))
bench.row('ViT p7 d64 L4 h4 B128 (step)', ours, theirs.vit, { torch_rss = theirs.vit_rss })
