--- A CIFAR-style ResNet on Fashion-MNIST (Debian's dataset-fashion-mnist by
--- default): BatchNorm, basic residual blocks, strided and 1x1
--- convolutions, adaptive average pooling (examples/resnet/model.lua).
--- SGD with Nesterov momentum, a short warmup then cosine decay, weight
--- decay on the convolution and linear weights, label smoothing, and
--- random flips and shifts of the training images. Reports test accuracy
--- after every epoch and saves the model.
---
--- Usage: nnlua examples/resnet/train.lua [--blocks 2] [--epochs 11] [options]
--- (--help lists them). --blocks 3 is ResNet-20.
package.path = arg[0]:gsub('[^/]*$', '') .. '?.lua;' .. arg[0]:gsub('[^/]*$', '') .. '../fashion_mnist/?.lua;'
  .. package.path
local nn = require 'nnlua'
local data = require 'data'
local ResNet = require 'model'

local opt = nn.cli.parse(arg, {
  { 'data', data.default_dir, 'folder with the Fashion-MNIST IDX files', path = 'dir' },
  { 'blocks', 2, 'basic blocks per stage (2: ResNet-14, 3: ResNet-20)', integer = true, min = 1 },
  { 'width', 16, 'channels of the first stage (then 2x, 4x)', integer = true, min = 1 },
  { 'epochs', 20, 'passes over the training set', integer = true, min = 1 },
  { 'batch', 128, 'images per batch', integer = true, min = 1 },
  { 'lr', 0.1, 'peak learning rate', min = 0 },
  { 'weight_decay', 5e-4, 'on convolution and linear weights', min = 0 },
  { 'label_smoothing', 0.1, 'cross-entropy label smoothing', min = 0, max = 0.99 },
  { 'warmup', 200, 'linear warmup steps', integer = true, min = 0 },
  { 'limit', 0, 'use only the first N images of each split (0: all)', integer = true, min = 0 },
  { 'seed', 1, 'random seed', integer = true },
  { 'threads', 0, 'threads (0: all cores)', integer = true, min = 0 },
  { 'out', 'resnet.safetensors', 'where the trained model is saved', path = 'out' },
  { 'force', false, 'overwrite --out if it exists' },
  { 'log', '', 'write per-epoch metrics here (JSON lines)', path = 'out' },
})
nn.cli.keep(opt.out, opt.force)
if opt.threads > 0 then nn.set_num_threads(opt.threads) end
nn.manual_seed(opt.seed)

-- images as (N, 1, 28, 28), standardised with the training set's statistics
local MEAN, STD = 0.2860, 0.3530
local function images(split)
  local x, y = data.load(opt.data, split, opt.limit)
  return ((x - MEAN) / STD):view(-1, 1, 28, 28):contiguous(), y
end
local xtrain, ytrain = images('train')
local xtest, ytest = images('t10k')

local model = ResNet({ blocks = opt.blocks, width = opt.width })
print(('ResNet-%d (width %d): %d parameters; %d training, %d test images; %d threads')
  :format(6 * opt.blocks + 2, opt.width, model:num_parameters(), xtrain:size(1), xtest:size(1),
    nn.get_num_threads()))

-- weight decay on the 4-D convolution and 2-D linear weights only
local decay, no_decay = {}, {}
for _, p in ipairs(model:parameters()) do
  if p:dim() >= 2 then decay[#decay + 1] = p else no_decay[#no_decay + 1] = p end
end
local optimizer = nn.optim.SGD({ { params = decay, weight_decay = opt.weight_decay },
                                 { params = no_decay, weight_decay = 0 } },
                               { lr = opt.lr, momentum = 0.9, nesterov = true })
local loader = nn.data.DataLoader(nn.data.TensorDataset(xtrain, ytrain),
  { batch_size = opt.batch, shuffle = true, drop_last = true, augment = { flip = true, shift = 2 } })
local steps = #loader
local schedule = nn.optim.CosineLR(optimizer, { warmup = opt.warmup, total = steps * opt.epochs,
                                                min_lr = 0 })
local log = opt.log ~= '' and assert(nn.progress.log(opt.log)) or nil

local t_all, acc = nn.clock(), 0
for epoch = 1, opt.epochs do
  local t0 = nn.clock()
  local loss_sum, correct, seen = 0, 0, 0
  for _, batch, bar in nn.progress(loader, { desc = ('epoch %d'):format(epoch), total = steps }) do
    local x, y = table.unpack(batch)
    local logits = model(x)
    local loss = nn.cross_entropy(logits, y, { label_smoothing = opt.label_smoothing })
    optimizer:zero_grad()
    loss:backward()
    optimizer:step()
    schedule:step()
    loss_sum = loss_sum + loss:item()
    local _, pred = logits:max(2)
    correct = correct + pred:eq(y):sum():item()
    seen = seen + y:size(1)
    bar.loss = loss_sum / (seen / opt.batch)
  end
  local secs = nn.clock() - t0
  acc = data.accuracy(model, xtest, ytest)
  print(('epoch %2d  loss %.4f  train acc %.4f  test acc %.4f  %.0f images/s  %.0f s (total %.1f min)')
    :format(epoch, loss_sum / steps, correct / seen, acc, seen / secs, secs, (nn.clock() - t_all) / 60))
  if log then log:write({ step = epoch, train_loss = loss_sum / steps, train_acc = correct / seen,
                          test_acc = acc, seconds = secs }) end
end
local ok, err = model:save(opt.out, { blocks = tostring(opt.blocks), width = tostring(opt.width),
                                      test_acc = tostring(acc) })
if not ok then error('could not save the model: ' .. err, 0) end
print(('ResNet-%d: test accuracy %.4f after %d epochs (%.1f min); saved %s'):format(6 * opt.blocks + 2,
  acc, opt.epochs, (nn.clock() - t_all) / 60, opt.out))
