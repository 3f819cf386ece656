--- bench/dataloader.lua: a loader that does real work (random flips and
--- shifts of Fashion-MNIST-sized images) beside a training step, with each
--- batch built on demand (prefetch = 0) and by the background thread ahead
--- of time (prefetch = 2) -- the same work and the same batches -- with
--- all cores computing, then with one left free for the loader.
--- Usage: nnlua bench/dataloader.lua [--batches N]
local nn = require 'nnlua'
local opt = nn.cli.parse(arg, {
  { 'batches', 100, 'batches timed', integer = true, min = 1 },
  { 'batch', 128, 'images per batch', integer = true, min = 1 },
  { 'size', 96, 'image side in pixels', integer = true, min = 8 },
})

nn.manual_seed(0)
local n = opt.batches * opt.batch
local s = opt.size
local images, labels = nn.rand(n, 3, s, s), nn.randint(1, 11, n)
local ds = nn.data.TensorDataset(images, labels)
local conv = nn.Conv2d(3, 8, 3, { padding = 1 })
local fc = nn.Linear(8 * (s // 4) * (s // 4), 10)
local function step(x, y) -- a small convolutional step
  local h = nn.max_pool2d(conv(nn.avg_pool2d(x, 2)):relu(), 2)
  local loss = nn.cross_entropy(fc(h:flatten(2)), y)
  loss:backward()
end

local function epoch(loader, compute)
  local t0 = nn.clock()
  for x, y in loader:iter() do if compute then step(x, y) end end
  return (nn.clock() - t0) / #loader * 1e3
end

local aug = { flip = true, shift = 2 }
local function loader(prefetch)
  return nn.data.DataLoader(ds, { batch_size = opt.batch, shuffle = true, prefetch = prefetch,
                                  augment = aug })
end
print(('batch %d of 3x%dx%d images with random flips and shifts, %d batches')
  :format(opt.batch, s, s, opt.batches))
local base_threads = nn.get_num_threads()
for _, threads in ipairs({ base_threads, math.max(1, base_threads - 1) }) do
  nn.set_num_threads(threads)
  local load_only = epoch(loader(0), false)
  local on_demand = epoch(loader(0), true)
  local prefetched = epoch(loader(2), true)
  print(('compute threads %d: loader alone %.2f ms/batch; step %.2f ms with batches built on '
    .. 'demand, %.2f ms prefetched (%.0f%% of the loader hidden)'):format(threads, load_only,
    on_demand, prefetched, 100 * math.max(0, math.min(1, (on_demand - prefetched) / load_only))))
  if threads == 1 then break end
end
nn.set_num_threads(base_threads)
print('(the worker needs a core of its own: with every core computing, it only hides waiting)')
