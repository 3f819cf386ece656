-- mpirun -np W nnlua tests/dist/sampler.lua N [drop_last]
-- Each rank draws its DistributedSampler share of N samples for epochs 1
-- and 2 through a DataLoader; rank 0 gathers them and prints, per epoch,
-- how many distinct samples were seen, how many in all, and whether the
-- two epochs' orders differ.
local nn = require 'nnlua'
local n, drop_last = tonumber(arg[1]), arg[2] == 'drop_last'
local rank, world = nn.dist.init()
local ds = nn.data.TensorDataset(nn.arange(1, n + 1))
local sampler = nn.dist.DistributedSampler(ds, { seed = 7, drop_last = drop_last })
local loader = nn.data.DataLoader(ds, { batch_size = 3, sampler = sampler })
local orders = {}
for epoch = 1, 2 do
  sampler:set_epoch(epoch)
  local seen = {}
  for x in loader:iter() do
    for _, v in ipairs(x:totable()) do seen[#seen + 1] = v end
  end
  assert(#seen == sampler:len(), 'the loader gave another count than the sampler')
  local all = nn.dist.all_gather(nn.tensor(seen, 'i64')):reshape(-1):totable()
  local distinct, count = {}, 0
  for _, v in ipairs(all) do
    if not distinct[v] then distinct[v] = true; count = count + 1 end
  end
  orders[epoch] = table.concat(all, ',')
  print(('epoch %d distinct %d total %d per_rank %d'):format(epoch, count, #all, #seen))
end
print(('epochs differ %s'):format(tostring(orders[1] ~= orders[2])))
