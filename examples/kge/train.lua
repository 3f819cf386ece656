--- Knowledge-graph completion: TransE, DistMult, ComplEx or RotatE trained
--- with negative sampling (uniform or Bernoulli, tails and heads corrupted
--- in turn), the self-adversarial loss (or margin ranking), optional N3 / L2
--- regularisation and Adam with row-sparse updates. Every --eval_every
--- steps it reports filtered MRR on the validation set, keeps the best
--- model (checkpoint + id mapping) and stops early when MRR stops
--- improving; at the end it reports filtered test metrics, per relation too.
---
--- Usage: nnlua examples/kge/train.lua [--data DIR] [--model rotate]
---        [--dim 500] [--gamma 6] [--negatives 256] [--batch 512] [--lr X]
---        [--steps N] [--temperature 1] [--loss adversarial|margin]
---        [--regularizer none|n3|l2] [--reg_weight X] [--bernoulli]
---        [--eval_every N] [--patience N] [--valid_limit N] [--out FILE]
---        [--seed N] [--threads N]
--- --steps 0 only evaluates the model saved at --out (same hyperparameters).
--- --data is a directory of train.txt / valid.txt / test.txt
--- (head<TAB>relation<TAB>tail); 'wordnet' builds one from Debian's
--- wordnet-base first (examples/kge/wordnet.lua).
local here = arg[0]:gsub('[^/]*$', '')
package.path = here .. '../common/?.lua;' .. package.path
local nn = require 'nnlua'
local kge = nn.kge

local opt = nn.cli.parse(arg, { data = 'wordnet', model = 'rotate', dim = 500, gamma = 6.0,
  negatives = 256, batch = 512, lr = 1e-3, steps = 20000, temperature = 1.0, loss = 'adversarial',
  margin = 6.0, regularizer = 'none', reg_weight = 0.0, bernoulli = false, eval_every = 2000,
  patience = 3, valid_limit = 0, out = 'kge_model.safetensors', seed = 1, threads = 0 })
if opt.threads > 0 then nn.set_num_threads(opt.threads) end
nn.manual_seed(opt.seed)

if opt.data == 'wordnet' then
  opt.data = 'build/wordnet-kg'
  if not io.open(opt.data .. '/train.txt') then
    assert(os.execute(('%q %swordnet.lua --out %s'):format(arg[-1] or 'nnlua', here, opt.data)))
  end
end
local t_load = nn.clock()
local ds = kge.load_triples(opt.data)
local V, NR = #ds.entities, #ds.relations
print(('%s: %d entities, %d relations, %d / %d / %d triples (%.1f s to load)'):format(opt.data, V, NR,
  ds.train:size(1), ds.valid:size(1), ds.test:size(1), nn.clock() - t_load))

local model = nn.KGEmbedding { model = opt.model, num_entities = V, num_relations = NR, dim = opt.dim,
  gamma = opt.gamma }
local optimizer = nn.optim.Adam(model:parameters(), { lr = opt.lr })
local sampler = kge.NegativeSampler(ds.train, V, { bernoulli = opt.bernoulli })
local filter = kge.filter_index({ ds.train, ds.valid, ds.test })
local valid = ds.valid
if opt.valid_limit > 0 and opt.valid_limit < valid:size(1) then valid = valid:narrow(1, 1, opt.valid_limit) end
print(('%s, dim %d, gamma %.1f, %d negatives, batch %d, lr %g, %s loss, %d threads; %d parameters')
  :format(opt.model, opt.dim, opt.gamma, opt.negatives, opt.batch, opt.lr, opt.loss, nn.get_num_threads(),
  model:num_parameters()))

local function loss_of(pos, neg)
  if opt.loss == 'margin' then return kge.margin_ranking_loss(pos, neg, opt.margin) end
  return kge.self_adversarial_loss(pos, neg, { temperature = opt.temperature })
end

-- one direction of a step: the rows `idx` of the batch, corrupted at the head or tail
local function direction(batch, head)
  local h, r, t = batch:select(2, 1):contiguous(), batch:select(2, 2):contiguous(), batch:select(2, 3):contiguous()
  local cand = sampler:sample(batch, opt.negatives, head)
  local neg = head and model:score_heads(t, r, cand) or model:score_tails(h, r, cand)
  local loss = loss_of(model(h, r, t), neg)
  if opt.regularizer == 'n3' then loss = loss + kge.n3_regularizer(model, h, r, t) * opt.reg_weight end
  if opt.regularizer == 'l2' then loss = loss + kge.l2_regularizer(model, h, r, t) * opt.reg_weight end
  return loss
end

local n_train = ds.train:size(1)
local best, best_step, bad, t0 = -1, 0, 0, nn.clock()
local perm, pos = nil, math.huge
local function next_batch() -- epochs of shuffled triples
  if pos + opt.batch - 1 > n_train then
    perm, pos = select(2, nn.rand(n_train):sort()), 1
  end
  local idx = perm:narrow(1, pos, opt.batch)
  pos = pos + opt.batch
  return ds.train:index_select(1, idx)
end

local loss_sum, seen, t_interval = 0, 0, nn.clock()
for step, _, bar in nn.progress(opt.steps, { desc = opt.model }) do
  local batch = next_batch()
  local loss
  if opt.bernoulli then
    local hi, ti = sampler:split(batch)
    local parts = {}
    if hi:size(1) > 0 then parts[#parts + 1] = direction(batch:index_select(1, hi), true) * (hi:size(1) / opt.batch) end
    if ti:size(1) > 0 then parts[#parts + 1] = direction(batch:index_select(1, ti), false) * (ti:size(1) / opt.batch) end
    loss = parts[2] and parts[1] + parts[2] or parts[1]
  else
    loss = direction(batch, step % 2 == 0) -- heads and tails in turn, as the RotatE code
  end
  optimizer:zero_grad()
  loss:backward()
  optimizer:step()
  if opt.model == 'transe' and opt.loss == 'margin' then
    model:normalize_entities_(batch:view(-1))
  end
  loss_sum, seen = loss_sum + loss:item(), seen + opt.batch
  bar.loss = loss_sum / (seen / opt.batch)
  if step % opt.eval_every == 0 or step == opt.steps then
    local secs = nn.clock() - t_interval
    local t_eval = nn.clock()
    local res = kge.evaluate(model, valid, filter)
    print(('step %d  loss %.4f  %.0f triples/s  valid MRR %.4f  MR %.0f  Hits@1 %.4f  Hits@10 %.4f  (eval %.1f s)')
      :format(step, loss_sum / (seen / opt.batch), seen / secs, res.mrr, res.mr, res.hits1, res.hits10,
        nn.clock() - t_eval))
    loss_sum, seen = 0, 0
    if res.mrr > best then
      best, best_step, bad = res.mrr, step, 0
      assert(nn.checkpoint.save(opt.out, { model = model, step = step,
        extra = { model = opt.model, dim = opt.dim, gamma = opt.gamma } }))
      assert(kge.save_mapping(opt.out, ds))
    else
      bad = bad + 1
      if bad >= opt.patience then
        print(('early stop: valid MRR has not improved for %d evaluations'):format(bad))
        break
      end
    end
    t_interval = nn.clock()
  end
end
local train_secs = nn.clock() - t0

assert(nn.checkpoint.load(opt.out, { model = model }))
local t_test = nn.clock()
local res = kge.evaluate(model, ds.test, filter, { relations = ds.relations })
print(('best valid MRR %.4f at step %d; saved %s'):format(best, best_step, opt.out))
print(('%s test (filtered, %d queries): MRR %.4f  MR %.1f  Hits@1 %.4f  Hits@3 %.4f  Hits@10 %.4f  (%.1f s)')
  :format(opt.model, res.n, res.mrr, res.mr, res.hits1, res.hits3, res.hits10, nn.clock() - t_test))
local names = {}
for name in pairs(res.per_relation) do names[#names + 1] = name end
table.sort(names)
for _, name in ipairs(names) do
  local r = res.per_relation[name]
  print(('  %-36s MRR %.4f  Hits@10 %.4f  (%d queries)'):format(name, r.mrr, r.hits10, r.n))
end
print(('trained %.1f s'):format(train_secs))
