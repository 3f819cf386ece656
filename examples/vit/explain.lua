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
--- Usage: nnlua examples/vit/explain.lua --model FILE [--data DIR] [--show N]
---        [--out FILE] [--dim N] [--depth N] [--heads N] [--mlp N] [--patch N]
--- where FILE comes from: nnlua examples/vit/train.lua --out FILE (same sizes).
package.path = arg[0]:gsub('[^/]*$', '') .. '../fashion_mnist/?.lua;' .. package.path
local nn = require 'nnlua'
local data = require 'data'

local opt = nn.cli.parse(arg, { model = '', data = data.default_dir, show = 6,
  out = 'vit_explain.svg', dim = 64, depth = 4, heads = 4, mlp = 128, patch = 7 })
if opt.model == '' then
  error('--model FILE is required: train one with  nnlua examples/vit/train.lua --out FILE', 0)
end
if opt.show < 1 or opt.show > 50 then error('--show must be in 1..50', 0) end

local MEAN, STD = 0.2860, 0.3530
local xtest, ytest = data.load(opt.data, 't10k', opt.show)
local model = nn.ViT { image_size = 28, patch_size = opt.patch, channels = 1, dim = opt.dim,
  depth = opt.depth, heads = opt.heads, mlp_dim = opt.mlp, num_classes = 10 }
assert(nn.checkpoint.load(opt.model, { model = model }))
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
local cell, gap, left, top = 4, 28, 10, 64
local pw = 28 * cell
local width, height = left + 3 * (pw + gap) + 220, top + #rows * (pw + gap)
local svg = { ('<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" '
  .. 'font-family="sans-serif" font-size="13"><rect width="100%%" height="100%%" fill="white"/>'):format(width, height) }
local function text(x, y, s, size)
  svg[#svg + 1] = ('<text x="%d" y="%d" font-size="%d">%s</text>'):format(x, y, size or 13,
    s:gsub('&', '&amp;'):gsub('<', '&lt;'))
end
text(left, 20, 'ViT on Fashion-MNIST: where it looks', 15)
text(left, 38, 'saliency: |d predicted logit / d pixel|; rollout: attention of the class token through all layers', 11)
for k, name in ipairs({ 'image', 'saliency', 'attention rollout' }) do
  text(left + (k - 1) * (pw + gap), top - 8, name)
end
local function panel(m, x0, y0, colour)
  local v = m:totable()
  for r = 1, 28 do
    for c = 1, 28 do
      local s = math.max(0, math.min(1, v[r][c]))
      svg[#svg + 1] = ('<rect x="%d" y="%d" width="%d" height="%d" fill="%s"/>'):format(
        x0 + (c - 1) * cell, y0 + (r - 1) * cell, cell, cell, colour(s))
    end
  end
end
local function grey(s) local g = math.floor(255 * (1 - s)) return ('rgb(%d,%d,%d)'):format(g, g, g) end
local function heat(s) -- white -> orange -> dark red
  return ('rgb(%d,%d,%d)'):format(math.floor(255 - 100 * s), math.floor(255 - 230 * s), math.floor(255 - 250 * s))
end
for i, r in ipairs(rows) do
  local y0 = top + (i - 1) * (pw + gap)
  panel(r.img, left, y0, grey)
  panel(r.saliency, left + pw + gap, y0, heat)
  panel(r.rollout, left + 2 * (pw + gap), y0, heat)
  local x = left + 3 * (pw + gap)
  text(x, y0 + 40, 'true: ' .. r.truth)
  text(x, y0 + 60, 'predicted: ' .. r.pred)
end
svg[#svg + 1] = '</svg>'
local f = assert(io.open(opt.out, 'w'))
f:write(table.concat(svg, '\n'))
f:close()
print('picture: ' .. opt.out)
