-- [mpirun -np W] nnlua tests/dist/match.lua MODEL STEPS GLOBAL_BATCH
-- Trains MODEL ('mlp': Linear-GELU-LayerNorm-Linear with AdamW and
-- dropout off; 'kge': TransE with row-sparse tables and lazy Adam) on the
-- same seeded data for STEPS steps, each rank on its 1/W of every global
-- batch, through nn.dist.DistributedDataParallel. Prints on rank 0, per
-- step, the loss over the global batch, then whether every rank ends with
-- the same parameters (bit for bit) and a checksum.
local nn = require 'nnlua'
local model_name, steps, global = arg[1], tonumber(arg[2]), tonumber(arg[3])
local rank, world = nn.dist.init{ timeout = 120 }
assert(global % world == 0, 'the global batch must split evenly')
local per = global // world

nn.manual_seed(1)
local model, opt, batch
if model_name == 'mlp' then
  model = nn.Sequential(nn.Linear(8, 32), nn.GELU(), nn.LayerNorm(32), nn.Linear(32, 5))
  opt = nn.optim.AdamW(model:parameters(), { lr = 1e-2, weight_decay = 0.1 })
  local X, Y = nn.randn(steps * global, 8), nn.randint(1, 6, { steps * global })
  batch = function(s)
    local from = (s - 1) * global + rank * per + 1
    return X:narrow(1, from, per), Y:narrow(1, from, per)
  end
elseif model_name == 'kge' then
  model = nn.KGEmbedding{ model = 'transe', num_entities = 200, num_relations = 7, dim = 16 }
  opt = nn.optim.Adam(model:parameters(), { lr = 1e-2 })
  local T = nn.stack({ nn.randint(1, 201, { steps * global }), nn.randint(1, 8, { steps * global }),
    nn.randint(1, 201, { steps * global }) }, 2)
  local N = nn.randint(1, 201, { steps * global, 4 })
  batch = function(s)
    local from = (s - 1) * global + rank * per + 1
    return T:narrow(1, from, per), N:narrow(1, from, per)
  end
else
  error('model: mlp or kge')
end
-- other ranks start elsewhere: DistributedDataParallel gives them rank 0's
if rank ~= 0 then
  nn.manual_seed(99)
  for _, p in ipairs(model:parameters()) do nn.init.normal_(p) end
end
local net = nn.dist.DistributedDataParallel(model, { bucket_mb = 0.001 })

for s = 1, steps do
  local loss
  if model_name == 'mlp' then
    local x, y = batch(s)
    loss = nn.cross_entropy(net(x), y)
  else
    local t, neg = batch(s)
    local h, r, tl = t:select(2, 1), t:select(2, 2), t:select(2, 3)
    local pos = net(h, r, tl)
    local negs = net.module:score_tails(h, r, neg)
    loss = nn.kge.self_adversarial_loss(pos, negs)
  end
  opt:zero_grad()
  loss:backward()
  opt:step()
  local l = nn.dist.all_reduce(nn.tensor({ loss:item() }), 'avg'):item()
  print(('step %d loss %.7f'):format(s, l))
end

local flat = nn.cat((function()
  local parts = {}
  for i, p in ipairs(model:parameters()) do parts[i] = p:detach():reshape(-1) end
  return parts
end)())
local all = nn.dist.all_gather(flat)
local same = true
for r = 2, world do
  if (all[r] - all[1]):abs():max():item() ~= 0 then same = false end
end
print(('identical %s checksum %.6f'):format(tostring(same), flat:sum():item()))
