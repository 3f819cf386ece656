--- bench/dataloader.lua: a loader that does real work (random flips and
--- shifts of Fashion-MNIST-sized images) beside a training step, with the
--- batches built on the main thread (prefetch = 0, no augmentation work
--- there: rows are only gathered) and by the background thread (prefetch
--- = 2, with augmentation). Prefetching overlaps the loader with the step;
--- how much it saves depends on idle cores (none spare on 2 cores, where
--- the compute already uses both).
--- Usage: nnlua bench/dataloader.lua [--batches N]
local nn = require 'nnlua'
local opt = nn.cli.parse(arg, { batches = 200, batch = 256 })

nn.manual_seed(0)
local n = opt.batches * opt.batch
local images, labels = nn.rand(n, 1, 28, 28), nn.randint(1, 11, n)
local ds = nn.data.TensorDataset(images, labels)
local conv = nn.Conv2d(1, 16, 3, { padding = 1 })
local fc = nn.Linear(16 * 14 * 14, 10)
local function step(x, y)
  local h = nn.max_pool2d(conv(x):relu(), 2)
  local loss = nn.cross_entropy(fc(h:flatten(2)), y)
  loss:backward()
end

local function epoch(loader, compute)
  local t0 = nn.clock()
  for x, y in loader:iter() do if compute then step(x, y) end end
  return (nn.clock() - t0) / #loader * 1e3
end

local aug = { flip = true, shift = 2 }
local pre = nn.data.DataLoader(ds, { batch_size = opt.batch, shuffle = true, prefetch = 2, augment = aug })
local sync = nn.data.DataLoader(ds, { batch_size = opt.batch, shuffle = true, prefetch = 0 })
local load_only = epoch(pre, false)
local gather_only = epoch(sync, false)
local compute_with_sync = epoch(sync, true)
local compute_with_prefetch = epoch(pre, true)
print(('batch %d of 1x28x28 images, %d batches, %d threads'):format(opt.batch, opt.batches, nn.get_num_threads()))
print(('loader alone (augmenting, prefetched):    %7.2f ms/batch'):format(load_only))
print(('loader alone (gather only, main thread):  %7.2f ms/batch'):format(gather_only))
print(('step with the plain loader:               %7.2f ms/batch'):format(compute_with_sync))
print(('step with the augmenting prefetch loader: %7.2f ms/batch'):format(compute_with_prefetch))
print(('serial estimate (plain step + augmenting loader): %7.2f ms/batch'):format(
  compute_with_sync + load_only))
print('(the worker shares the cores with the compute threads: on a machine with no')
print(' idle core, prefetching hides waiting, not CPU work)')
