--- A small vision Transformer (nn.ViT) on Fashion-MNIST: 7x7 patches of the
--- 28x28 images become 16 tokens plus a class token, a pre-norm Transformer
--- encoder mixes them, the class token is classified. Random flips and
--- shifts, AdamW with warm-up and cosine decay. At the end it draws where
--- the model looks: the class token's attention over the patches of a few
--- test images, as an SVG of image and attention side by side.
---
--- Usage: nnlua examples/vit/train.lua [options] (--help lists them).
package.path = arg[0]:gsub('[^/]*$', '') .. '../fashion_mnist/?.lua;' .. package.path
local nn = require 'nnlua'
local data = require 'data'

local opt = nn.cli.parse(arg, {
  { 'epochs', 20, 'passes over the training set', integer = true, min = 1 },
  { 'batch', 128, 'images per batch', integer = true, min = 1 },
  { 'lr', 2e-3, 'peak AdamW learning rate', min = 0 },
  { 'dim', 64, 'token width', integer = true, min = 1 },
  { 'depth', 4, 'Transformer layers', integer = true, min = 1 },
  { 'heads', 4, 'attention heads (must divide dim)', integer = true, min = 1 },
  { 'mlp', 128, 'MLP width', integer = true, min = 1 },
  { 'patch', 7, 'patch size in pixels (divides 28)', choices = { 1, 2, 4, 7, 14, 28 } },
  { 'data', data.default_dir, 'folder with the Fashion-MNIST IDX files', path = 'dir' },
  { 'limit', 0, 'use only the first N images of each split (0: all)', integer = true, min = 0 },
  { 'seed', 1, 'random seed', integer = true },
  { 'threads', 0, 'threads (0: all cores)', integer = true, min = 0 },
  { 'attention', 'vit_attention.svg', 'where the attention picture is drawn (SVG)', path = 'out' },
  { 'out', '', 'save the trained model here (for explain.lua)', path = 'out' },
  { 'force', false, 'overwrite --out if it exists' },
})
nn.cli.keep(opt.out, opt.force)
if opt.dim % opt.heads ~= 0 then nn.cli.fail('--heads %d must divide --dim %d', opt.heads, opt.dim) end
if opt.threads > 0 then nn.set_num_threads(opt.threads) end
nn.manual_seed(opt.seed)

local MEAN, STD = 0.2860, 0.3530
local function images(x) return ((x - MEAN) / STD):view(-1, 1, 28, 28) end
local xtrain, ytrain = data.load(opt.data, 'train', opt.limit)
local xtest, ytest = data.load(opt.data, 't10k', opt.limit)
xtrain, xtest = images(xtrain), images(xtest)

local model = nn.ViT { image_size = 28, patch_size = opt.patch, channels = 1, dim = opt.dim,
  depth = opt.depth, heads = opt.heads, mlp_dim = opt.mlp, num_classes = 10 }
print(('ViT: %d parameters, %d tokens of width %d, %d layers; %d training, %d test images; %d threads')
  :format(model:num_parameters(), (28 // opt.patch) ^ 2 + 1, opt.dim, opt.depth, xtrain:size(1),
  xtest:size(1), nn.get_num_threads()))

local loader = nn.data.DataLoader(nn.data.TensorDataset(xtrain, ytrain), { batch_size = opt.batch,
  shuffle = true, drop_last = true, augment = { flip = true, shift = 2 } })
local steps = #loader * opt.epochs
local optimizer = nn.optim.AdamW(model:parameters(), { lr = opt.lr, weight_decay = 0.05 })
local sched = nn.optim.CosineLR(optimizer, { total = steps, warmup = #loader, min_lr = opt.lr / 50 })

local function evaluate() return data.accuracy(model, xtest, ytest) end

local t_all, acc = nn.clock(), 0
for epoch = 1, opt.epochs do
  local t0, loss_sum, seen = nn.clock(), 0, 0
  for _, batch, bar in nn.progress(loader, { desc = ('epoch %d'):format(epoch), total = #loader }) do
    local x, y = table.unpack(batch)
    local loss = nn.cross_entropy(model(x), y, { label_smoothing = 0.1 })
    optimizer:zero_grad()
    loss:backward()
    nn.optim.clip_grad_norm_(model:parameters(), 1.0)
    optimizer:step()
    sched:step()
    loss_sum, seen = loss_sum + loss:item(), seen + 1
    bar.loss = loss_sum / seen
  end
  local secs = nn.clock() - t0
  acc = evaluate()
  print(('epoch %2d  loss %.4f  test acc %.4f  %.0f images/s  %.1f s/epoch')
    :format(epoch, loss_sum / seen, acc, seen * opt.batch / secs, secs))
end
print(('ViT: test accuracy %.4f after %d epochs (%.1f s)'):format(acc, opt.epochs, nn.clock() - t_all))
if opt.out ~= '' then
  assert(nn.checkpoint.save(opt.out, { model = model, step = opt.epochs }))
  print('saved ' .. opt.out)
end

-- Where it looks: the class token's attention over the patches, averaged
-- over heads, upsampled to pixels, beside the image itself.
local show = 4
local grid = 28 // opt.patch
model:eval()
local logits, att = nn.no_grad(function() return model(xtest:narrow(1, 1, show), true) end)
local _, pred = logits:max(2)
local rows = {}
for i = 1, show do
  local img = xtest[i]:view(28, 28) * STD + MEAN -- back to [0, 1]
  local cls = att[i][1]:narrow(1, 2, grid * grid):view(grid, grid) -- class token -> patches
  local up = cls:view(grid, 1, grid, 1):expand(grid, opt.patch, grid, opt.patch):reshape(28, 28)
  rows[i] = { images = { img, up / up:max():item() },
              caption = { 'true: ' .. data.classes[ytest[i]], 'predicted: ' .. data.classes[pred[i]] } }
  print(('image %d: %s, predicted %s'):format(i, data.classes[ytest[i]], data.classes[pred[i]]))
end
local ok, err = nn.plot.image_grid(opt.attention, rows, {
  title = 'ViT on Fashion-MNIST: where the class token looks',
  subtitle = ('last layer attention from the class token to the %d patches, mean over %d heads'):format(grid * grid, opt.heads),
  columns = { 'test image', 'attention' }, colormaps = { 'grey', 'heat' },
  scale = 'share of the row\'s maximum' })
if not ok then nn.cli.fail('--attention: %s', err) end
print('attention maps: ' .. opt.attention)
