-- [mpirun -np W] nnlua tests/dist/match.lua MODEL STEPS GLOBAL_BATCH [save|resume FILE]
-- Trains MODEL ('mlp': Linear-GELU-LayerNorm-Linear with AdamW; 'emb':
-- a sparse-gradient Embedding and a Linear with Adam; 'kge'/'kge_small':
-- TransE with row-sparse tables and lazy Adam) on the
-- same seeded data for STEPS steps, each rank on its 1/W of every global
-- batch, through nn.dist.DistributedDataParallel. Prints on rank 0, per
-- step, the loss over the global batch, then whether every rank ends with
-- the same parameters (bit for bit) and a checksum. 'save FILE' stops
-- after half the steps with a checkpoint (written by rank 0 alone);
-- 'resume FILE' continues from it. NNLUA_TEST_OVERLAP=1 in the
-- environment wraps the model with overlap = true.
local nn = require 'nnlua'
local model_name, steps, global, mode, file = arg[1], tonumber(arg[2]), tonumber(arg[3]), arg[4], arg[5]
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
elseif model_name == 'kge' or model_name == 'kge_small' then
  -- kge_small: 20 entities, so 4 ranks touch more rows than the table
  -- has and the rows travel as one all-reduce of the table
  local E = model_name == 'kge' and 200 or 20
  model = nn.KGEmbedding{ model = 'transe', num_entities = E, num_relations = 7, dim = 16 }
  opt = nn.optim.Adam(model:parameters(), { lr = 1e-2 })
  local T = nn.stack({ nn.randint(1, E + 1, { steps * global }), nn.randint(1, 8, { steps * global }),
    nn.randint(1, E + 1, { steps * global }) }, 2)
  local N = nn.randint(1, E + 1, { steps * global, 4 })
  batch = function(s)
    local from = (s - 1) * global + rank * per + 1
    return T:narrow(1, from, per), N:narrow(1, from, per)
  end
elseif model_name == 'emb' then
  -- dense and row-sparse parameters in one model: an Embedding whose
  -- table keeps sparse gradients, then a Linear head; lazy Adam
  model = nn.Sequential(nn.Embedding(50, 8), nn.Flatten(), nn.Linear(24, 4))
  model:parameters()[1]:sparse_grad_()
  opt = nn.optim.Adam(model:parameters(), { lr = 1e-2 })
  local X, Y = nn.randint(1, 51, { steps * global, 3 }), nn.randint(1, 5, { steps * global })
  batch = function(s)
    local from = (s - 1) * global + rank * per + 1
    return X:narrow(1, from, per), Y:narrow(1, from, per)
  end
else
  error('model: mlp, emb, kge or kge_small')
end
-- other ranks start elsewhere: DistributedDataParallel gives them rank 0's
if rank ~= 0 then
  nn.manual_seed(99)
  for _, p in ipairs(model:parameters()) do nn.init.normal_(p) end
end
local net = nn.dist.DistributedDataParallel(model, { bucket_mb = 0.001,
  overlap = os.getenv('NNLUA_TEST_OVERLAP') == '1' })

local first, last = 1, steps
if mode == 'save' then last = steps // 2 end
if mode == 'resume' then
  first = assert(nn.checkpoint.load(file, { model = model, optimizer = opt })).step + 1
end
for s = first, last do
  local loss
  if model_name == 'mlp' or model_name == 'emb' then
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

if mode == 'save' then
  assert(nn.checkpoint.save(file, { model = model, optimizer = opt, step = last }))
  nn.dist.barrier()
  local f = io.open(file, 'rb')
  print(('saved %s on rank %d: %s'):format(file, rank, tostring(f ~= nil)))
  if f then f:close() end
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
