--- Multitask learning on Fashion-MNIST: one shared trunk predicts the 10
--- classes and a coarse group (top, bottom, one-piece, footwear, bag)
--- together (nn.MultiTask, weighted sum of the task losses), against the
--- same trunk trained for each task alone, with the same data, seeds and
--- epochs. Prints a table of test accuracies per task.
---
--- Usage: nnlua examples/multitask/train.lua [options] (--help lists them).
local here = arg[0]:gsub('[^/]*$', '')
package.path = here .. '../fashion_mnist/?.lua;' .. here .. '../common/?.lua;' .. package.path
local nn = require 'nnlua'
local data = require 'data'
local text = require 'text'

local opt = nn.cli.parse(arg, {
  { 'epochs', 10, 'passes over the training set per model', integer = true, min = 1 },
  { 'batch', 128, 'images per batch', integer = true, min = 1 },
  { 'lr', 1e-3, 'Adam learning rate (cosine-decayed to lr/20)', min = 0 },
  { 'coarse_weight', 0.5, 'weight of the coarse task in the summed loss', min = 0 },
  { 'data', data.default_dir, 'folder with the Fashion-MNIST IDX files', path = 'dir' },
  { 'limit', 0, 'use only the first N images of each split (0: all)', integer = true, min = 0 },
  { 'seed', 1, 'random seed', integer = true },
  { 'threads', 0, 'threads (0: all cores)', integer = true, min = 0 },
})
if opt.threads > 0 then nn.set_num_threads(opt.threads) end

local xtrain, ytrain = data.load(opt.data, 'train', opt.limit)
local xtest, ytest = data.load(opt.data, 't10k', opt.limit)
local coarse_of = nn.tensor(text.coarse):long()
local ctrain, ctest = coarse_of:index_select(1, ytrain), coarse_of:index_select(1, ytest)

local function trunk()
  return nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Dropout(0.2), nn.Linear(512, 256), nn.ReLU())
end

-- trains a MultiTask model with the given heads; returns test accuracy per task
local function run(tasks)
  nn.manual_seed(opt.seed)
  local heads, weights = {}, {}
  for name, t in pairs(tasks) do heads[name], weights[name] = nn.Linear(256, t.classes), t.weight end
  local model = nn.MultiTask(trunk(), heads, { weights = weights })
  local loader = nn.data.DataLoader(nn.data.TensorDataset(xtrain, ytrain, ctrain),
    { batch_size = opt.batch, shuffle = true, drop_last = true })
  local optimizer = nn.optim.Adam(model:parameters(), { lr = opt.lr })
  local sched = nn.optim.CosineLR(optimizer, { total = #loader * opt.epochs, min_lr = opt.lr / 20 })
  local t0 = nn.clock()
  for _ = 1, opt.epochs do
    for x, y, c in loader:iter() do
      local out = model(x)
      local losses = {}
      for name in pairs(tasks) do losses[name] = nn.cross_entropy(out[name], name == 'fine' and y or c) end
      local loss = model:loss(losses)
      optimizer:zero_grad()
      loss:backward()
      optimizer:step()
      sched:step()
    end
  end
  local secs = nn.clock() - t0
  model:eval()
  local acc = {}
  nn.no_grad(function()
    local out = model(xtest)
    for name in pairs(tasks) do
      local _, pred = out[name]:max(2)
      acc[name] = pred:eq(name == 'fine' and ytest or ctest):mean():item()
      if name == 'fine' then -- the coarse group implied by the fine prediction
        acc.fine_to_coarse = coarse_of:index_select(1, pred):eq(ctest):mean():item()
      end
    end
  end)
  return acc, model:num_parameters(), secs
end

print(('Fashion-MNIST multitask: trunk 784-512-256, %d epochs each, %d threads')
  :format(opt.epochs, nn.get_num_threads()))
print(('coarse groups: %s'):format(table.concat(text.coarse_names, ', ')))
local function cell(v) return v and ('%.4f'):format(v) or '-' end
print(('%-22s %10s %10s %14s %10s %8s'):format('model', 'fine acc', 'coarse acc', 'coarse (fine)',
  'params', 'seconds'))
local rows = {
  { 'multitask (both heads)', { fine = { classes = 10, weight = 1 },
                                coarse = { classes = 5, weight = opt.coarse_weight } } },
  { 'fine only', { fine = { classes = 10, weight = 1 } } },
  { 'coarse only', { coarse = { classes = 5, weight = 1 } } },
}
for _, r in ipairs(rows) do
  local acc, params, secs = run(r[2])
  print(('%-22s %10s %10s %14s %10d %8.1f'):format(r[1], cell(acc.fine), cell(acc.coarse),
    cell(acc.fine_to_coarse), params, secs))
end
