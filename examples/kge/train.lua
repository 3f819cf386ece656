--- Knowledge-graph completion: TransE, DistMult, ComplEx or RotatE trained
--- with negative sampling (uniform or Bernoulli, tails and heads corrupted
--- in turn) and the self-adversarial loss (or margin ranking), or 1-vs-all
--- (--loss ce: each query's cross-entropy over every entity, heads and
--- tails every step; one GEMM for DistMult/ComplEx; --candidates K scores
--- the batch's answers and K random entities instead), optional N3 / L2
--- regularisation, Adam or Adagrad (row-sparse updates with sampling).
--- --subsampling weighs each triple of the self-adversarial loss by
--- 1 / sqrt(frequency of its queries), as the RotatE code does;
--- --filter_negatives redraws sampled negatives that are training triples
--- (the RotatE code does too; without it a few "negatives" are true).
--- Every --eval_every steps it reports filtered MRR on the validation
--- set, keeps the best model (checkpoint + id mapping) and stops early
--- when MRR stops improving; --schedule plateau instead divides the rate
--- by --decay and goes back to the best model when MRR falls, cosine
--- anneals it over --steps. At the end it reports filtered test metrics,
--- per relation too.
---
--- Usage: nnlua examples/kge/train.lua [--data DIR] [--model rotate] [options]
--- (--help lists them all).
--- --steps 0 only evaluates the model saved at --out (same hyperparameters).
--- --resume FILE starts from a saved model (same model and dim) with fresh
--- optimizer state and schedule: a warm restart.
--- --data is a directory of train.txt / valid.txt / test.txt
--- (head<TAB>relation<TAB>tail); 'wordnet' builds one from Debian's
--- wordnet-base first (examples/kge/wordnet.lua).
--- --dist trains data-parallel on the ranks mpirun starts (--batch per
--- rank; the sparse tables' gradients travel as the rows each rank used):
---   mpirun -np 2 nnlua examples/kge/train.lua --dist --batch 256
local here = arg[0]:gsub('[^/]*$', '')
package.path = here .. '../common/?.lua;' .. package.path
local nn = require 'nnlua'
local kge = nn.kge

local opt = nn.cli.parse(arg, {
  { 'data', 'wordnet', "folder of train.txt/valid.txt/test.txt, or 'wordnet' (built from wordnet-base)" },
  { 'model', 'rotate', 'scoring function', choices = { 'transe', 'distmult', 'complex', 'rotate' } },
  { 'dim', 500, 'embedding dimension', integer = true, min = 1 },
  { 'gamma', 6.0, 'margin of the distance models (TransE, RotatE)', min = 0 },
  { 'negatives', 256, 'sampled negatives per triple', integer = true, min = 1 },
  { 'batch', 512, 'triples per batch', integer = true, min = 1 },
  { 'lr', 1e-3, 'learning rate', min = 0 },
  { 'steps', 20000, 'training steps (0: only evaluate the model at --out)', integer = true, min = 0 },
  { 'temperature', 1.0, 'self-adversarial sampling temperature', min = 0 },
  { 'loss', 'adversarial', 'training loss', choices = { 'adversarial', 'margin', 'ce' } },
  { 'label_smoothing', 0.0, 'label smoothing of the 1-vs-all loss', min = 0, max = 1 },
  { 'candidates', 0, '1-vs-all against the answers and K random entities (0: all)', integer = true, min = 0 },
  { 'optimizer', 'adam', 'optimizer (row-sparse with sampling)', choices = { 'adam', 'adagrad' } },
  { 'init', 0.0, 'initial embedding scale (0: the model\'s default)', min = 0 },
  { 'schedule', 'none', 'learning-rate schedule', choices = { 'none', 'plateau', 'cosine' } },
  { 'decay', 0.3, 'the plateau schedule\'s factor', min = 0, max = 1 },
  { 'margin', 6.0, 'margin of the ranking loss', min = 0 },
  { 'regularizer', 'none', 'embedding regulariser', choices = { 'none', 'n3', 'l2' } },
  { 'reg_weight', 0.0, 'regulariser weight', min = 0 },
  { 'bernoulli', false, 'Bernoulli negative sampling (corrupt heads or tails by relation)' },
  { 'subsampling', false, 'weigh triples by 1/sqrt(frequency), as the RotatE code does' },
  { 'filter_negatives', false, 'redraw sampled negatives that are training triples' },
  { 'eval_every', 2000, 'validate every N steps', integer = true, min = 1 },
  { 'patience', 3, 'stop after N validations without improvement', integer = true, min = 1 },
  { 'valid_limit', 0, 'validate on the first N triples (0: all)', integer = true, min = 0 },
  { 'out', 'kge_model.safetensors', 'where the best model is saved', path = 'out' },
  { 'force', false, 'overwrite --out if it exists' },
  { 'resume', '', 'start from a saved model (same model and dim), fresh optimizer', path = 'file' },
  { 'seed', 1, 'random seed', integer = true },
  { 'threads', 0, 'threads (0: all cores)', integer = true, min = 0 },
  { 'dist', false, 'data-parallel over the ranks mpirun started (--batch is per rank)' },
})
local rank, world = 0, 1
if opt.dist then rank, world = nn.dist.init() end
if opt.steps > 0 and opt.resume ~= opt.out then nn.cli.keep(opt.out, opt.force) end
local function exists(path)
  local f = io.open(path, 'rb')
  if f then f:close() end
  return f ~= nil
end
if opt.steps == 0 and not exists(opt.out) then
  nn.cli.fail('--steps 0 evaluates the model at --out, and %s does not exist', opt.out)
end
if opt.data ~= 'wordnet' and not exists(opt.data .. '/train.txt') then
  nn.cli.fail('--data: no train.txt in %s', opt.data)
end
if opt.threads > 0 then nn.set_num_threads(opt.threads) end
nn.manual_seed(opt.seed)
io.stdout:setvbuf('line') -- progress reaches a log file as it happens

if opt.data == 'wordnet' then
  opt.data = 'build/wordnet-kg'
  if rank == 0 and not exists(opt.data .. '/train.txt') then
    assert(os.execute(('%q %swordnet.lua --out %s'):format(arg[-1] or 'nnlua', here, opt.data)))
  end
end
if opt.dist then nn.dist.barrier() end -- rank 0 has built the data
local t_load = nn.clock()
local ds = kge.load_triples(opt.data)
local V, NR = #ds.entities, #ds.relations
print(('%s: %d entities, %d relations, %d / %d / %d triples (%.1f s to load)'):format(opt.data, V, NR,
  ds.train:size(1), ds.valid:size(1), ds.test:size(1), nn.clock() - t_load))

local one_vs_all = opt.loss == 'ce'
local model = nn.KGEmbedding { model = opt.model, num_entities = V, num_relations = NR, dim = opt.dim,
  gamma = opt.gamma, init = opt.init > 0 and opt.init or nil, sparse = not one_vs_all }
if opt.resume ~= '' then
  local info = nn.cli.try('--resume', nn.checkpoint.info, opt.resume)
  local e = info.extra or {}
  if e.model ~= opt.model or e.dim ~= opt.dim then
    nn.cli.fail('--resume %s: a %s model of dim %s, not %s of dim %d', opt.resume, tostring(e.model),
      tostring(math.tointeger(e.dim) or e.dim), opt.model, opt.dim)
  end
  nn.cli.try('--resume', nn.checkpoint.load, opt.resume, { model = model })
  print(('resumed from %s (step %d)'):format(opt.resume, info.step))
end
-- under --dist: rank 0's weights everywhere, then (sync_grads after each
-- backward) gradients averaged; each rank its own negatives
local ddp = opt.dist and nn.dist.DistributedDataParallel(model) or nil
if world > 1 then
  local seed, offset = table.unpack(nn.rng_state())
  nn.rng_state({ seed + 7919 * rank, offset })
end
local optimizer = (opt.optimizer == 'adagrad' and nn.optim.Adagrad or nn.optim.Adam)(model:parameters(),
  { lr = opt.lr })
local schedule = opt.schedule == 'cosine' and nn.optim.CosineLR(optimizer, { total = opt.steps }) or nil
local all = nn.arange(1, V + 1)
local sampler = kge.NegativeSampler(ds.train, V, { bernoulli = opt.bernoulli,
  filter = opt.filter_negatives })
local filter = kge.filter_index({ ds.train, ds.valid, ds.test })
local valid = ds.valid
if opt.valid_limit > 0 and opt.valid_limit < valid:size(1) then valid = valid:narrow(1, 1, opt.valid_limit) end
local loss_desc = opt.loss == 'adversarial' and ('adversarial loss (temperature %g%s)')
  :format(opt.temperature, opt.subsampling and ', subsampling weights' or '') or opt.loss .. ' loss'
local cand_desc = one_vs_all and (opt.candidates > 0 and opt.candidates .. ' shared candidates' or 'all entities')
  or opt.negatives .. (opt.filter_negatives and ' filtered' or '') .. ' negatives'
print(('%s, dim %d, gamma %.1f, %s, batch %d, %s lr %g (%s schedule), %s, %s regularizer %g, %d threads; %d parameters')
  :format(opt.model, opt.dim, opt.gamma, cand_desc,
  opt.batch, opt.optimizer, opt.lr, opt.schedule, loss_desc, opt.regularizer, opt.reg_weight,
  nn.get_num_threads(), model:num_parameters()))

local weigh = opt.subsampling and kge.subsampling_weights(ds.train)
local function loss_of(pos, neg, batch)
  if opt.loss == 'margin' then return kge.margin_ranking_loss(pos, neg, opt.margin) end
  return kge.self_adversarial_loss(pos, neg, { temperature = opt.temperature, weights = weigh and weigh(batch) })
end

local function columns(batch)
  return batch:select(2, 1):contiguous(), batch:select(2, 2):contiguous(), batch:select(2, 3):contiguous()
end

local function regularized(loss, h, r, t)
  if opt.regularizer == 'n3' then loss = loss + kge.n3_regularizer(model, h, r, t) * opt.reg_weight end
  if opt.regularizer == 'l2' then loss = loss + kge.l2_regularizer(model, h, r, t) * opt.reg_weight end
  return loss
end

-- one direction of a step: the batch corrupted at the head or tail
local function direction(batch, head)
  local h, r, t = columns(batch)
  local cand = sampler:sample(batch, opt.negatives, head)
  local neg = head and model:score_heads(t, r, cand) or model:score_tails(h, r, cand)
  return regularized(loss_of(model(h, r, t), neg, batch), h, r, t)
end

-- the candidates of a 1-vs-all direction and the targets' columns: every
-- entity, or (--candidates K) the batch's answers then K random entities
-- shared by the batch
local function candidates(answers)
  if opt.candidates <= 0 then return all, answers end
  local b = answers:size(1)
  return nn.cat({ answers, nn.randint(1, V + 1, opt.candidates) }, 1), nn.arange(1, b + 1)
end

-- 1-vs-all: (h, r, ?) and (?, r, t) each scored against the candidates
local function one_vs_all_loss(batch)
  local h, r, t = columns(batch)
  local o = { label_smoothing = opt.label_smoothing }
  local ct, yt = candidates(t)
  local ch, yh = candidates(h)
  local loss = (nn.cross_entropy(model:score_tails(h, r, ct), yt, o)
    + nn.cross_entropy(model:score_heads(t, r, ch), yh, o)) / 2
  return regularized(loss, h, r, t)
end

local function sampled_loss(batch, step)
  if not opt.bernoulli then return direction(batch, step % 2 == 0) end -- in turn, as the RotatE code
  local hi, ti = sampler:split(batch)
  local parts = {}
  if hi:size(1) > 0 then parts[#parts + 1] = direction(batch:index_select(1, hi), true) * (hi:size(1) / opt.batch) end
  if ti:size(1) > 0 then parts[#parts + 1] = direction(batch:index_select(1, ti), false) * (ti:size(1) / opt.batch) end
  return parts[2] and parts[1] + parts[2] or parts[1]
end

local n_train = ds.train:size(1)
local best, best_step, bad, t0 = -1, 0, 0, nn.clock()
local perm, pos = nil, math.huge
-- under --dist each rank takes its share of every epoch's permutation
local shards = opt.dist and nn.dist.DistributedSampler(n_train, { seed = opt.seed }) or nil
local epoch = 0
local function next_batch() -- epochs of shuffled triples
  if pos + opt.batch - 1 > (shards and shards:len() or n_train) then
    epoch = epoch + 1
    if shards then shards:set_epoch(epoch) end
    perm, pos = shards and shards:indices() or select(2, nn.rand(n_train):sort()), 1
  end
  local idx = perm:narrow(1, pos, opt.batch)
  pos = pos + opt.batch
  return ds.train:index_select(1, idx)
end

local loss_sum, seen, t_interval = 0, 0, nn.clock()
for step, _, bar in nn.progress(opt.steps, { desc = opt.model }) do
  local batch = next_batch()
  local loss = one_vs_all and one_vs_all_loss(batch) or sampled_loss(batch, step)
  optimizer:zero_grad()
  loss:backward()
  if ddp then ddp:sync_grads() end
  optimizer:step()
  if schedule then schedule:step() end
  if opt.model == 'transe' and opt.loss == 'margin' then
    model:normalize_entities_(batch:view(-1))
  end
  loss_sum, seen = loss_sum + loss:item(), seen + opt.batch * world
  bar.loss = loss_sum / (seen / opt.batch / world)
  if step % opt.eval_every == 0 or step == opt.steps then
    local secs = nn.clock() - t_interval
    local t_eval = nn.clock()
    local res = kge.evaluate(model, valid, filter)
    print(('step %d  loss %.4f  %.0f triples/s  valid MRR %.4f  MR %.0f  Hits@1 %.4f  Hits@10 %.4f  (eval %.1f s)')
      :format(step, loss_sum / (seen / opt.batch / world), seen / secs, res.mrr, res.mr, res.hits1, res.hits10,
        nn.clock() - t_eval))
    loss_sum, seen = 0, 0
    if res.mrr > best then
      best, best_step, bad = res.mrr, step, 0
      assert(nn.checkpoint.save(opt.out, { model = model, step = step,
        extra = { model = opt.model, dim = opt.dim, gamma = opt.gamma } }))
      if nn.dist.is_main() then assert(kge.save_mapping(opt.out, ds)) end
    else
      bad = bad + 1
      if opt.schedule == 'plateau' then -- back to the best model, at a lower rate
        local rng = nn.rng_state() -- the checkpoint's would replay the same batches
        assert(nn.checkpoint.load(opt.out, { model = model }))
        nn.rng_state(rng)
        for _, g in ipairs(optimizer.param_groups) do g.lr = g.lr * opt.decay end
        print(('valid MRR fell: back to step %d, lr %g'):format(best_step, optimizer.param_groups[1].lr))
      end
      if bad >= opt.patience then
        print(('early stop: valid MRR has not improved for %d evaluations'):format(bad))
        break
      end
    end
    t_interval = nn.clock()
  end
end
local train_secs = nn.clock() - t0
if opt.dist then nn.dist.barrier() end -- rank 0 has written the best model

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
