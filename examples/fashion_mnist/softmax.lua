--- Fashion-MNIST with multinomial logistic regression (a linear softmax
--- classifier), trained by minibatch SGD with momentum. The gradient is
--- derived by hand: for logits z = xW + b and p = softmax(z), the mean
--- cross-entropy has dL/dz = (p - onehot(y)) / B. (Autograd arrives with the
--- next milestone; this script is the engine's first real training run.)
---
--- Usage: nnlua examples/fashion_mnist/softmax.lua [--data DIR] [--epochs N]
---        [--lr X] [--batch N] [--seed N]
--- DIR holds {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]; the default
--- is where Debian's dataset-fashion-mnist package puts them.
local nn = require 'nnlua'
local idx = require 'nnlua.idx'

local opt = { data = '/usr/share/datasets/fashion-mnist', epochs = 10, lr = 0.005,
              momentum = 0.9, batch = 128, seed = 1 }
local i = 1
while i <= #arg do
  local key = arg[i]:match('^%-%-(%w+)$')
  if not key or opt[key] == nil or arg[i + 1] == nil then
    io.stderr:write('usage: softmax.lua [--data DIR] [--epochs N] [--lr X] ',
      '[--momentum X] [--batch N] [--seed N]\n')
    os.exit(2)
  end
  opt[key] = type(opt[key]) == 'number' and assert(tonumber(arg[i + 1]), key) or arg[i + 1]
  i = i + 2
end
nn.manual_seed(opt.seed)

local function load(split)
  local function find(kind)
    for _, name in ipairs({ ('%s/%s-%s-ubyte.gz'):format(opt.data, split, kind),
                            ('%s/%s-%s-ubyte'):format(opt.data, split, kind) }) do
      local f = io.open(name, 'rb')
      if f then f:close() return name end
    end
    error(('no %s %s file in %s (install dataset-fashion-mnist or pass --data)')
      :format(split, kind, opt.data), 0)
  end
  local images = assert(idx.read(find('images-idx3')))
  local labels = assert(idx.read(find('labels-idx1'), 'i64'))
  local n = images:size(1)
  return images:view(n, -1) / 255, labels + 1 -- classes 1..10
end

local t_start = nn.clock()
local xtrain, ytrain = load('train')
local xtest, ytest = load('t10k')
-- standardise with the training set's per-pixel statistics
local mean, std = xtrain:mean(1, true), xtrain:std(1, true) + 0.05
xtrain, xtest = (xtrain - mean) / std, (xtest - mean) / std
local n, d, classes = xtrain:size(1), xtrain:size(2), 10
print(('loaded %d training and %d test images of %d pixels in %.1fs')
  :format(n, xtest:size(1), d, nn.clock() - t_start))

local W, b = nn.zeros(d, classes), nn.zeros(classes)
local vW, vb = nn.zeros(d, classes), nn.zeros(classes)

local function accuracy(x, y)
  local _, pred = x:matmul(W):add(b):max(2)
  return pred:eq(y):mean():item()
end

local steps_per_epoch = n // opt.batch
for epoch = 1, opt.epochs do
  local t0 = nn.clock()
  local _, perm = nn.rand(n):sort() -- a fresh random order each epoch
  local loss_sum, correct = 0, 0
  for step = 1, steps_per_epoch do
    local ids = perm:narrow(1, (step - 1) * opt.batch + 1, opt.batch)
    local x, y = xtrain:index_select(1, ids), ytrain:index_select(1, ids)
    local logits = x:matmul(W):add_(b)
    local logp = logits:log_softmax(2)
    loss_sum = loss_sum - logp:gather(2, y:unsqueeze(2)):mean():item()
    local _, pred = logits:max(2)
    correct = correct + pred:eq(y):sum():item()
    local grad = (logp:exp() - y:one_hot(classes)) / opt.batch -- dL/dlogits
    vW:mul_(opt.momentum):add_(x:t():matmul(grad))
    vb:mul_(opt.momentum):add_(grad:sum(1))
    W:sub_(vW * opt.lr)
    b:sub_(vb * opt.lr)
  end
  local secs = nn.clock() - t0
  print(('epoch %2d  loss %.4f  train acc %.4f  test acc %.4f  %.0f samples/s  (%.2fs)')
    :format(epoch, loss_sum / steps_per_epoch, correct / (steps_per_epoch * opt.batch),
            accuracy(xtest, ytest), steps_per_epoch * opt.batch / secs, secs))
end
print(('final test accuracy %.4f after %d epochs, %.1fs in all')
  :format(accuracy(xtest, ytest), opt.epochs, nn.clock() - t_start))
