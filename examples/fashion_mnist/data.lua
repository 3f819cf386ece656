--- Fashion-MNIST loading shared by the examples: finds the IDX files
--- (Debian's dataset-fashion-mnist by default, or --data DIR), returns
--- images scaled to [0, 1] as (N, 784) f32 and labels 1..10 as i64.
local nn = require 'nnlua'
local idx = require 'nnlua.idx'

local M = {}

M.default_dir = '/usr/share/datasets/fashion-mnist'
M.classes = { 'T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt',
              'Sneaker', 'Bag', 'Ankle boot' }

local function find(dir, split, kind)
  for _, name in ipairs({ ('%s/%s-%s-ubyte.gz'):format(dir, split, kind),
                          ('%s/%s-%s-ubyte'):format(dir, split, kind) }) do
    local f = io.open(name, 'rb')
    if f then f:close() return name end
  end
  nn.cli.fail('no %s %s file in %s (install dataset-fashion-mnist or pass --data)', split, kind, dir)
end

--- load(dir, 'train' | 't10k'[, limit]) -> images (N, 784) in [0, 1],
--- labels (N) 1..10; only the first `limit` when limit > 0 (quick runs)
function M.load(dir, split, limit)
  local images, err = idx.read(find(dir, split, 'images-idx3'))
  if not images then nn.cli.fail('--data: %s', err) end
  local labels, lerr = idx.read(find(dir, split, 'labels-idx1'), 'i64')
  if not labels then nn.cli.fail('--data: %s', lerr) end
  local n = images:size(1)
  if limit and limit > 0 and limit < n then
    n, images, labels = limit, images:narrow(1, 1, limit), labels:narrow(1, 1, limit)
  end
  return images:reshape(n, -1) / 255, labels + 1
end

--- accuracy(model, x, y) -> the fraction of rows of x whose highest
--- logit is their label, in eval mode, 1000 rows at a time
function M.accuracy(model, x, y)
  model:eval()
  local correct = 0
  nn.no_grad(function()
    for s = 1, x:size(1), 1000 do
      local len = math.min(1000, x:size(1) - s + 1)
      local _, pred = model(x:narrow(1, s, len)):max(2)
      correct = correct + pred:eq(y:narrow(1, s, len)):sum():item()
    end
  end)
  model:train()
  return correct / x:size(1)
end

return M
