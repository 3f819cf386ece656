--- Fashion-MNIST classifiers trained with autograd and Adam: an MLP
--- (784-256-256-10), a small CNN (two conv-relu-pool blocks and two linear
--- layers), or the MLP with binary hidden weights (--model binary:
--- BinaryConnect, each weight used as its sign times the row's mean |w|,
--- trained through a straight-through estimator written as an
--- nn.autograd.Function).
---
--- Usage: nnlua examples/fashion_mnist/train.lua [--model mlp|cnn|binary] [options]
--- (--help lists them all).
--- --ckpt saves the training state after every epoch, --resume continues
--- from one; --log writes per-epoch metrics (JSON lines), --plot an SVG.
--- --dist trains data-parallel on the ranks mpirun starts, each rank on
--- its share of every epoch (--batch per rank):
---   mpirun -np 2 nnlua examples/fashion_mnist/train.lua --dist --batch 64
package.path = arg[0]:gsub('[^/]*$', '') .. '?.lua;' .. package.path
local nn = require 'nnlua'
local data = require 'data'

local opt = nn.cli.parse(arg, {
  { 'model', 'mlp', 'the classifier', choices = { 'mlp', 'cnn', 'binary' } },
  { 'epochs', 0, 'passes over the training set (0: 8 for cnn, 12 otherwise)', integer = true, min = 0 },
  { 'batch', 128, 'images per batch', integer = true, min = 1 },
  { 'lr', 1e-3, 'Adam learning rate (cosine-decayed to lr/20)', min = 0 },
  { 'data', data.default_dir, 'folder with the Fashion-MNIST IDX files', path = 'dir' },
  { 'limit', 0, 'use only the first N images of each split (0: all)', integer = true, min = 0 },
  { 'seed', 1, 'random seed', integer = true },
  { 'threads', 0, 'threads (0: all cores)', integer = true, min = 0 },
  { 'ckpt', '', 'save the training state here after every epoch', path = 'out' },
  { 'resume', '', 'continue from a checkpoint written by --ckpt', path = 'file' },
  { 'log', '', 'write per-epoch metrics here (JSON lines)', path = 'out' },
  { 'plot', '', 'draw the metrics as SVG here at the end (needs --log)', path = 'out' },
  { 'dist', false, 'data-parallel over the ranks mpirun started (--batch is per rank)' },
})
if opt.dist then nn.dist.init() end
if opt.plot ~= '' and opt.log == '' then nn.cli.fail('--plot needs --log') end
if opt.epochs == 0 then opt.epochs = opt.model == 'cnn' and 8 or 12 end
if opt.threads > 0 then nn.set_num_threads(opt.threads) end
nn.manual_seed(opt.seed)

local function mlp()
  return nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(),
                       nn.Linear(256, 10))
end

-- sign(w) forward; backward the straight-through estimator: the gradient
-- passes where |w| <= 1 (the derivative of hardtanh), so the real-valued
-- weights keep learning under their signs
local SignSTE = nn.autograd.Function('SignSTE')
function SignSTE.forward(ctx, w)
  ctx:save_for_backward(w)
  return w:sign()
end
function SignSTE.backward(ctx, g) return g * ctx.saved_tensors[1]:abs():le(1) end

local BinaryLinear = nn.Module:extend()
BinaryLinear._name = 'BinaryLinear'
function BinaryLinear:_init(i, o)
  local lin = nn.Linear(i, o)
  self.weight, self.bias = lin.weight, lin.bias
end
function BinaryLinear:forward(x)
  local scale = self.weight:detach():abs():mean(2, true) -- per output row, as XNOR-Net
  return nn.linear(x, SignSTE(self.weight) * scale, self.bias)
end

local function binary()
  return nn.Sequential(BinaryLinear(784, 256), nn.ReLU(), BinaryLinear(256, 256), nn.ReLU(),
                       nn.Linear(256, 10))
end

local CNN = nn.Module:extend()
CNN._name = 'CNN'
function CNN:_init()
  self.conv1 = nn.Conv2d(1, 32, 3, { padding = 1 })
  self.conv2 = nn.Conv2d(32, 64, 3, { padding = 1 })
  self.pool = nn.MaxPool2d(2)
  self.fc1 = nn.Linear(64 * 7 * 7, 128)
  self.drop = nn.Dropout(0.3)
  self.fc2 = nn.Linear(128, 10)
end
function CNN:forward(x)
  x = x:view(-1, 1, 28, 28)
  x = self.pool(self.conv1(x):relu())
  x = self.pool(self.conv2(x):relu())
  x = self.drop(self.fc1(x:flatten(2)):relu())
  return self.fc2(x)
end

local model = ({ mlp = mlp, cnn = CNN, binary = binary })[opt.model]()
local xtrain, ytrain = data.load(opt.data, 'train', opt.limit)
local xtest, ytest = data.load(opt.data, 't10k', opt.limit)
local n = xtrain:size(1)
print(('%s: %d parameters; %d training, %d test images; %d threads')
  :format(opt.model, model:num_parameters(), n, xtest:size(1), nn.get_num_threads()))

local net = opt.dist and nn.dist.DistributedDataParallel(model) or model
local optimizer = nn.optim.Adam(model:parameters(), { lr = opt.lr })
local shards = opt.dist and nn.dist.DistributedSampler(n, { seed = opt.seed }) or nil
local loader = nn.data.DataLoader(nn.data.TensorDataset(xtrain, ytrain),
  { batch_size = opt.batch, shuffle = not shards, sampler = shards, drop_last = true })
local steps = #loader
local sched = nn.optim.CosineLR(optimizer, { total = steps * opt.epochs, min_lr = opt.lr / 20 })
local first_epoch = 1
if opt.resume ~= '' then
  local info = nn.cli.try('--resume', nn.checkpoint.load, opt.resume,
    { model = model, optimizer = optimizer, scheduler = sched })
  first_epoch = info.step + 1
  print(('resumed from %s after epoch %d'):format(opt.resume, info.step))
end
local log = opt.log ~= '' and assert(nn.progress.log(opt.log, { append = opt.resume ~= '' })) or nil

local function evaluate() return data.accuracy(model, xtest, ytest) end

local t_all = nn.clock()
local acc
for epoch = first_epoch, opt.epochs do
  local t0 = nn.clock()
  local loss_sum, correct, seen = 0, 0, 0
  if shards then shards:set_epoch(epoch) end
  for _, batch, bar in nn.progress(loader, { desc = ('epoch %d'):format(epoch), total = steps }) do
    local x, y = table.unpack(batch)
    local logits = net(x)
    local loss = nn.cross_entropy(logits, y)
    optimizer:zero_grad()
    loss:backward()
    optimizer:step()
    sched:step()
    loss_sum = loss_sum + loss:item()
    local _, pred = logits:max(2)
    correct = correct + pred:eq(y):sum():item()
    seen = seen + y:size(1)
    bar.loss = loss_sum / (seen / opt.batch)
  end
  local secs = nn.clock() - t0
  if opt.dist then -- the epoch's figures over every rank's share
    local sums = nn.dist.all_reduce(nn.tensor({ loss_sum, correct, seen }, 'f32'), 'sum'):totable()
    loss_sum, correct, seen = sums[1] / nn.dist.world_size(), sums[2], sums[3]
  end
  acc = evaluate()
  print(('epoch %2d  loss %.4f  train acc %.4f  test acc %.4f  %.0f samples/s  %.2f s/epoch')
    :format(epoch, loss_sum / steps, correct / seen, acc, seen / secs, secs))
  if log then log:write({ step = epoch, train_loss = loss_sum / steps, train_acc = correct / seen,
                          test_acc = acc, seconds = secs }) end
  if opt.ckpt ~= '' then
    assert(nn.checkpoint.save(opt.ckpt, { model = model, optimizer = optimizer, scheduler = sched,
                                          step = epoch }))
  end
end
if log and opt.plot ~= '' and nn.dist.is_main() then
  log:close()
  print(assert(nn.plot.from_log(opt.log, opt.plot, { 'train_loss', 'train_acc', 'test_acc' },
    { title = 'Fashion-MNIST ' .. opt.model, xlabel = 'epoch', ylabel = 'loss (nats) and accuracy' })) and ('plotted ' .. opt.plot))
end
print(('%s: test accuracy %.4f after %d epochs (%.1f s)'):format(opt.model, acc, opt.epochs,
  nn.clock() - t_all))
