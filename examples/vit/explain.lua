--- Where a trained ViT looks, found with hooks: for a few Fashion-MNIST
--- test images, the input-gradient saliency (|d logit / d pixel|, read by a
--- gradient hook on the input) and the attention rollout (Abnar & Zuidema
--- 2020: the heads' mean attention of every layer, read by forward
--- pre-hooks on the attention layers, mixed with the identity for the
--- residual path and multiplied through the layers; the class token's row
--- over the patches). One labelled SVG: image, saliency, rollout, and the
--- true and predicted class. It also prints how much of each map falls
--- on the garment (pixels brighter than the background) against the share
--- of the image the garment covers.
---
--- Usage: nnlua examples/vit/explain.lua --model FILE [options] (--help lists them)
--- where FILE comes from: nnlua examples/vit/train.lua --out FILE (same sizes).
package.path = arg[0]:gsub('[^/]*$', '') .. '../fashion_mnist/?.lua;' .. package.path
local nn = require 'nnlua'
local data = require 'data'

local opt = nn.cli.parse(arg, {
  { 'model', '', 'a model saved by examples/vit/train.lua --out (required)', path = 'file' },
  { 'data', data.default_dir, 'folder with the Fashion-MNIST IDX files', path = 'dir' },
  { 'show', 6, 'test images explained', integer = true, min = 1, max = 50 },
  { 'out', 'vit_explain.svg', 'the picture (SVG)', path = 'out' },
  { 'dim', 64, 'the model\'s width (as trained)', integer = true, min = 1 },
  { 'depth', 4, 'the model\'s layers (as trained)', integer = true, min = 1 },
  { 'heads', 4, 'the model\'s heads (as trained)', integer = true, min = 1 },
  { 'mlp', 128, 'the model\'s MLP width (as trained)', integer = true, min = 1 },
  { 'patch', 7, 'the model\'s patch size (as trained)', choices = { 1, 2, 4, 7, 14, 28 } },
})
if opt.model == '' then
  nn.cli.fail('--model FILE is required: train one with  nnlua examples/vit/train.lua --out FILE')
end

local MEAN, STD = 0.2860, 0.3530
local xtest, ytest = data.load(opt.data, 't10k', opt.show)
local model = nn.ViT { image_size = 28, patch_size = opt.patch, channels = 1, dim = opt.dim,
  depth = opt.depth, heads = opt.heads, mlp_dim = opt.mlp, num_classes = 10 }
nn.cli.try('--model (trained with other --dim/--depth/--heads/--mlp/--patch?)', nn.checkpoint.load,
  opt.model, { model = model })
model:eval()

-- forward pre-hooks record each layer's attention weights (B, T, T),
-- averaged over heads: the layer computes them once more for the hook
local weights = {}
local handles = {}
for _, blk in model.blocks:ipairs() do
  handles[#handles + 1] = blk.self_attn:register_forward_pre_hook(function(m, args)
    nn.no_grad(function()
      local _, w = m:forward(args[1], args[2], args[3], { need_weights = true })
      weights[#weights + 1] = w
    end)
  end)
end

local function rollout()
  local t = weights[1]:size(2)
  local eye = nn.eye(t)
  local r = eye
  for _, w in ipairs(weights) do
    local a = (w[1] + eye) * 0.5
    a = a / a:sum(2, true)
    r = a:matmul(r)
  end
  return r[1]:narrow(1, 2, t - 1) -- the class token's row, over the patches
end

local grid = 28 // opt.patch
local rows = {}
for i = 1, opt.show do
  weights = {}
  local x = ((xtest:narrow(1, i, 1) - MEAN) / STD):view(1, 1, 28, 28):requires_grad_()
  local saliency
  local h <close> = x:register_hook(function(g) saliency = g:abs():view(28, 28) end)
  local logits = model(x)
  local _, pred = logits:max(2)
  local p = pred[1]
  logits:narrow(2, p, 1):sum():backward() -- d (predicted logit) / d input
  local roll = rollout():view(grid, 1, grid, 1):expand(grid, opt.patch, grid, opt.patch):reshape(28, 28)
  local img = xtest[i]:view(28, 28)
  -- saliency shown up to its 98th percentile (a few pixels dominate the max)
  local sorted = saliency:reshape(784):sort()
  local top = sorted[math.floor(0.98 * 784)]
  rows[i] = { img = img, saliency = (saliency / top):clamp(0, 1), rollout = roll / roll:max():item(),
    truth = data.classes[ytest[i]], pred = data.classes[p] }
  -- how much of each map lies on the garment
  local on = (img:gt(0.1)):float()
  local share = on:mean():item()
  local function inside(m) return (m * on):sum():item() / m:sum():item() end
  print(('image %d: %-11s predicted %-11s  garment covers %2.0f%% of the image, %2.0f%% of saliency, %2.0f%% of rollout')
    :format(i, rows[i].truth, rows[i].pred, 100 * share, 100 * inside(rows[i].saliency),
      100 * inside(rows[i].rollout)))
end
for _, h in ipairs(handles) do h:remove() end

-- the picture: one row per image, three 28x28 panels and the labels
local grid_rows = {}
for i, r in ipairs(rows) do
  grid_rows[i] = { images = { r.img, r.saliency, r.rollout },
                   caption = { 'true: ' .. r.truth, 'predicted: ' .. r.pred } }
end
local ok, err = nn.plot.image_grid(opt.out, grid_rows, {
  title = 'ViT on Fashion-MNIST: where it looks',
  subtitle = 'saliency: |d predicted logit / d pixel|; rollout: attention of the class token through all layers',
  columns = { 'image', 'saliency', 'attention rollout' }, colormaps = { 'grey', 'heat', 'heat' },
  scale = 'share of the map\'s maximum' })
if not ok then nn.cli.fail('--out: %s', err) end
print('picture: ' .. opt.out)
