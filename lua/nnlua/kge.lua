--- nnlua.kge: knowledge-graph embeddings. Entity and relation tables
--- scored by TransE, DistMult, ComplEx or RotatE (nn.kge_score, a fused C
--- kernel: no (B, N, D) intermediates, row-sparse gradients), negative
--- sampling, the margin and self-adversarial losses, N3 and L2
--- regularisation, filtered link-prediction metrics, and a loader for
--- tab-separated triples (WN18RR / FB15k-237 layout).
---
--- Triples are (N, 3) i64 tensors of (head, relation, tail) ids counting
--- from 1.
local nn = require 'nnlua'
local Module = require('nnlua.module').Module
local files = require 'nnlua.files'

local M = {}

local models = { transe = true, distmult = true, complex = true, rotate = true }

-- ---- the model ------------------------------------------------------------

--- KGEmbedding{model = 'transe' | 'distmult' | 'complex' | 'rotate',
--- num_entities, num_relations, dim, gamma = 12, p_norm = 1, epsilon = 2,
--- init, sparse = true} is a built-in layer (C userdata, bindings/lkge.c):
--- entity and relation tables scored by the fused kernel; forward(h, r, t)
--- (also :score), :score_tails(h, r, cand), :score_heads(t, r, cand) and
--- :normalize_entities_([idx[, max_norm]]).
local KGEmbedding = nn.KGEmbedding
M.KGEmbedding = KGEmbedding

-- ---- losses and regularisers --------------------------------------------------

--- margin_ranking_loss(pos (B), neg (B, N), margin): mean over pairs of
--- max(0, margin - pos + neg) (Bordes et al. 2013)
function M.margin_ranking_loss(pos, neg, margin)
  return (neg - pos:unsqueeze(2) + margin):relu():mean()
end

local OPTIONS_KGE_SELF_ADVERSARIAL_LOSS = nn.define_options('kge.self_adversarial_loss', { 'adversarial', 'temperature', 'weights' })
--- self_adversarial_loss(pos (B), neg (B, N)[, {temperature = 1,
--- adversarial = true, weights}]): RotatE's negative sampling loss,
--- -(mean log sigmoid(pos) + mean sum_n w_n log sigmoid(-neg_n)) / 2 with
--- weights w = softmax(temperature * neg) held constant (uniform 1/N when
--- adversarial is false). weights (B), e.g. subsampling_weights', turn
--- both batch means into weighted means.
function M.self_adversarial_loss(pos, neg, o)
  o = OPTIONS_KGE_SELF_ADVERSARIAL_LOSS(o)
  local w
  if o.adversarial == false then
    w = nn.full_like(neg, 1 / neg:size(2))
  else
    w = nn.no_grad(function() return (neg * (o.temperature or 1)):softmax(2) end)
  end
  local function batch_mean(x)
    if not o.weights then return x:mean() end
    return (x * o.weights):sum() / o.weights:sum()
  end
  local neg_term = batch_mean((w * M.log_sigmoid(-neg)):sum(2))
  return -(batch_mean(M.log_sigmoid(pos)) + neg_term) / 2
end

--- log sigmoid(x) = -softplus(-x), stable for large |x|
function M.log_sigmoid(x)
  return x:minimum(0) - (-x:abs()):exp():log1p()
end

-- the rows of h, r, t as complex moduli (complex models) or reals
local function factors(model, h, r, t)
  local E, R = model.entity, model.relation
  local out = { nn.embedding(h, E), nn.embedding(r, R), nn.embedding(t, E) }
  if model.model == 'complex' or model.model == 'rotate' then
    for i, x in ipairs(out) do
      if not (i == 2 and model.model == 'rotate') then -- RotatE phases are not complex
        local k = x:size(2) // 2
        out[i] = (x:narrow(2, 1, k):square() + x:narrow(2, k + 1, k):square() + 1e-12):sqrt()
      end
    end
  end
  return out
end

--- n3_regularizer(model, h, r, t): mean over the batch of the summed cubed
--- moduli of the factors used (Lacroix et al. 2018)
function M.n3_regularizer(model, h, r, t)
  local total
  for _, x in ipairs(factors(model, h, r, t)) do
    local s = (x:abs() ^ 3):sum()
    total = total and total + s or s
  end
  return total / h:size(1)
end

--- l2_regularizer(model, h, r, t): mean over the batch of the squared
--- norms of the rows used
function M.l2_regularizer(model, h, r, t)
  local total
  for _, x in ipairs({ nn.embedding(h, model.entity), nn.embedding(r, model.relation),
                       nn.embedding(t, model.entity) }) do
    local s = x:square():sum()
    total = total and total + s or s
  end
  return total / h:size(1)
end

-- ---- negative sampling -----------------------------------------------------------

-- ids < 2^26, relations < 4096; numbers or i64 tensors (broadcasting)
local function query_key(e, r) return e * 4096 + r end
local function key(a, r, b) return query_key(a, r) * 67108864 + b end

--- NegativeSampler(train (N, 3), num_entities[, {bernoulli = false,
--- filter = false}]). sample(batch (B, 3), n) -> cand (B, n) for one
--- direction; split(batch) -> indices of the rows whose head
--- (Bernoulli: with probability tph / (tph + hpt) for their relation, Wang
--- et al. 2014) or tail should be corrupted. filter redraws negatives that
--- form known training triples (up to 100 rounds, each one nn.isin over
--- the batch; without it a few "negatives" are true, as in most KGE code).
local NegativeSampler = {}
NegativeSampler.__index = NegativeSampler

local OPTIONS_KGE_NEGATIVESAMPLER = nn.define_options('kge.NegativeSampler', { 'bernoulli', 'filter' })
M.NegativeSampler = function(train, num_entities, o)
  o = OPTIONS_KGE_NEGATIVESAMPLER(o)
  local self = setmetatable({ n_ent = num_entities, bernoulli = o.bernoulli }, NegativeSampler)
  if o.bernoulli then -- per relation: tails per head and heads per tail
    local tails, heads = {}, {}
    for _, x in ipairs(train:totable()) do
      local h, r, t = x[1], x[2], x[3]
      tails[r] = tails[r] or {}
      heads[r] = heads[r] or {}
      tails[r][h] = (tails[r][h] or 0) + 1
      heads[r][t] = (heads[r][t] or 0) + 1
    end
    self.p_head = {}
    for r, hs in pairs(tails) do
      local function avg(t)
        local s, n = 0, 0
        for _, c in pairs(t) do s, n = s + c, n + 1 end
        return s / n
      end
      local tph, hpt = avg(hs), avg(heads[r])
      self.p_head[r] = tph / (tph + hpt)
    end
  end
  if o.filter then self.known = key(train:select(2, 1), train:select(2, 2), train:select(2, 3)) end
  return self
end

function NegativeSampler:sample(batch, n, head)
  local b = batch:size(1)
  local cand = nn.randint(1, self.n_ent + 1, b, n)
  if not self.known then return cand end
  local h, r, t = batch:select(2, 1):view(b, 1), batch:select(2, 2):view(b, 1), batch:select(2, 3):view(b, 1)
  local function true_ones(c) return nn.isin(head and key(c, r, t) or key(h, r, c), self.known) end
  local bad = true_ones(cand)
  for _ = 1, 100 do
    if bad:sum():item() == 0 then break end
    local fresh = nn.randint(1, self.n_ent + 1, b, n)
    cand = cand + bad:long() * (fresh - cand)
    bad = true_ones(cand)
  end
  return cand
end

--- -> i64 indices of batch rows to corrupt at the head, and at the tail
function NegativeSampler:split(batch)
  local b = batch:size(1)
  local rel, u = batch:select(2, 2):totable(), nn.rand(b):totable()
  local head, tail = {}, {}
  for i = 1, b do
    local p = self.bernoulli and self.p_head[rel[i]] or 0.5
    if u[i] < p then head[#head + 1] = i else tail[#tail + 1] = i end
  end
  return nn.tensor(head):long(), nn.tensor(tail):long()
end

--- subsampling_weights(train (N, 3)) -> function(batch (B, 3)) -> (B)
--- weights 1 / sqrt(#(h, r, ?) + #(?, r, t)) counted in train, each count
--- starting at 4: the RotatE code's word2vec-style subsampling, which
--- keeps frequent queries from dominating the loss
function M.subsampling_weights(train)
  local hr, rt = {}, {}
  for _, x in ipairs(train:totable()) do
    local a, b = query_key(x[1], x[2]), query_key(x[3], x[2])
    hr[a], rt[b] = (hr[a] or 4) + 1, (rt[b] or 4) + 1
  end
  return function(batch)
    local w = {}
    for i, x in ipairs(batch:totable()) do
      w[i] = 1 / math.sqrt((hr[query_key(x[1], x[2])] or 4) + (rt[query_key(x[3], x[2])] or 4))
    end
    return nn.tensor(w)
  end
end

-- ---- evaluation -------------------------------------------------------------------

--- filter_index({train, valid, test, ...}) -> the known true answers of
--- every (head, relation, ?) and (?, relation, tail) query
function M.filter_index(sets)
  local tails, heads = {}, {}
  for _, s in ipairs(sets) do
    for _, x in ipairs(s:totable()) do
      local kt, kh = query_key(x[1], x[2]), query_key(x[3], x[2])
      tails[kt] = tails[kt] or {}
      tails[kt][#tails[kt] + 1] = x[3]
      heads[kh] = heads[kh] or {}
      heads[kh][#heads[kh] + 1] = x[1]
    end
  end
  return { tails = tails, heads = heads }
end

-- ranks (B) of the targets among all entities, other true answers removed
local function ranks(model, q, rel, target, known, head, all)
  local scores = nn.no_grad(function()
    return head and model:score_heads(q, rel, all) or model:score_tails(q, rel, all)
  end)
  local b = q:size(1)
  local target_score = scores:gather(2, target:view(b, 1))
  local qs, rs, ts = q:totable(), rel:totable(), target:totable()
  local lists, width = {}, 1
  for i = 1, b do
    local l = known[query_key(qs[i], rs[i])] or { ts[i] }
    lists[i] = l
    width = math.max(width, #l)
  end
  local idx = {}
  for i = 1, b do -- every known answer (the target too), padded with the target
    local row, l = {}, lists[i]
    for j = 1, width do row[j] = l[j] or ts[i] end
    idx[i] = row
  end
  scores = scores:scatter(2, nn.tensor(idx):long(), nn.full({ b, width }, -math.huge))
  return scores:gt(target_score):sum(2):view(-1) + 1
end

local OPTIONS_KGE_EVALUATE = nn.define_options('kge.evaluate', { 'batch', 'relations' })
--- evaluate(model, triples (N, 3), filter[, {batch = 128, relations =
--- names}]) -> {mrr, mr, hits1, hits3, hits10, n, per_relation = {[name] =
--- {mrr, hits10, n}}}: filtered link prediction (Bordes et al. 2013), both
--- directions, each query against every entity; a target's rank is 1 +
--- the number of entities scored strictly higher that are not known true.
function M.evaluate(model, triples, filter, o)
  o = OPTIONS_KGE_EVALUATE(o)
  local bs = o.batch or 128
  local all = nn.arange(1, model.entity:size(1) + 1)
  local n = triples:size(1)
  local rank_parts, rel_parts = {}, {}
  model:eval()
  for s = 1, n, bs do
    local x = triples:narrow(1, s, math.min(bs, n - s + 1))
    local h, r, t = x:select(2, 1):contiguous(), x:select(2, 2):contiguous(), x:select(2, 3):contiguous()
    rank_parts[#rank_parts + 1] = ranks(model, h, r, t, filter.tails, false, all)
    rank_parts[#rank_parts + 1] = ranks(model, t, r, h, filter.heads, true, all)
    rel_parts[#rel_parts + 1] = r
    rel_parts[#rel_parts + 1] = r
  end
  model:train()
  local rk = nn.cat(rank_parts, 1):float()
  local rel = nn.cat(rel_parts, 1)
  local function summary(v)
    return { mrr = (1 / v):mean():item(), mr = v:mean():item(), hits1 = v:le(1):mean():item(),
             hits3 = v:le(3):mean():item(), hits10 = v:le(10):mean():item(), n = v:size(1) }
  end
  local out = summary(rk)
  out.per_relation = {}
  local rels = rel:totable()
  local by = {}
  for i, r in ipairs(rels) do
    by[r] = by[r] or {}
    by[r][#by[r] + 1] = i
  end
  for r, rows in pairs(by) do
    local name = o.relations and o.relations[r] or tostring(r)
    out.per_relation[name] = summary(rk:index_select(1, nn.tensor(rows):long()))
  end
  return out
end

-- ---- data -------------------------------------------------------------------------

local OPTIONS_KGE_LOAD_TRIPLES = nn.define_options('kge.load_triples', { 'splits' })
--- load_triples(dir[, {splits = {'train', 'valid', 'test'}}]) -> {train =
--- (N, 3), valid, test, entities = {names}, relations = {names},
--- entity_id = {name = id}, relation_id}: tab-separated head, relation,
--- tail per line in <dir>/<split>.txt; names get ids in order of first
--- appearance (train first), or from entities.dict / relations.dict
--- ("id\tname", 0-based, as the RotatE code writes) when present
function M.load_triples(dir, o)
  o = OPTIONS_KGE_LOAD_TRIPLES(o)
  local splits = (o and o.splits) or { 'train', 'valid', 'test' }
  local ds = { entities = {}, relations = {}, entity_id = {}, relation_id = {} }
  -- "id<TAB>label" lines (ids from 0, each id and label once); absent is fine
  local function dict(name, names, ids)
    local path = dir .. '/' .. name
    local text = nn.data.read_text(path)
    if not text then return end
    local line_no, count = 0, 0
    for line in (text .. '\n'):gmatch('(.-)\r?\n') do
      line_no = line_no + 1
      if line:match('%S') then
        local id, label = line:match('^(%d+)\t([^\t]+)$')
        id = id and math.tointeger(tonumber(id))
        if not id or id >= 2^31 then
          error(('load_triples: %s:%d is not "id<TAB>name" with an id below 2^31'):format(path, line_no), 3)
        end
        if names[id + 1] or ids[label] then
          error(('load_triples: %s:%d repeats %s'):format(path, line_no,
            names[id + 1] and 'id ' .. id or 'name ' .. label), 3)
        end
        names[id + 1], ids[label] = label, id + 1
        count = count + 1
      end
    end
    if #names ~= count then
      error(('load_triples: %s: ids must be 0..%d without gaps'):format(path, count - 1), 3)
    end
  end
  dict('entities.dict', ds.entities, ds.entity_id)
  dict('relations.dict', ds.relations, ds.relation_id)
  local function id(names, ids, label)
    local i = ids[label]
    if not i then
      i = #names + 1
      names[i], ids[label] = label, i
    end
    return i
  end
  for _, split in ipairs(splits) do
    local path = ('%s/%s.txt'):format(dir, split)
    local text, err = nn.data.read_text(path)
    if not text then error(('load_triples: %s'):format(err), 2) end
    local rows, line_no = {}, 0
    for line in (text .. '\n'):gmatch('(.-)\r?\n') do
      line_no = line_no + 1
      if line:match('%S') then -- blank lines (LF or CRLF) are skipped
        local h, r, t = line:match('^([^\t]+)\t([^\t]+)\t([^\t]+)$')
        if not h then
          error(('load_triples: %s:%d is not "head<TAB>relation<TAB>tail"'):format(path, line_no), 2)
        end
        rows[#rows + 1] = { id(ds.entities, ds.entity_id, h), id(ds.relations, ds.relation_id, r),
                            id(ds.entities, ds.entity_id, t) }
      end
    end
    ds[split] = #rows > 0 and nn.tensor(rows, 'i64') or nn.empty(0, 3):long()
  end
  return ds
end

--- save_mapping(prefix, ds): writes <prefix>.entities.tsv and
--- <prefix>.relations.tsv ("id\tname", 1-based), atomically, so a saved
--- model can be queried by name
function M.save_mapping(prefix, ds)
  for _, kind in ipairs({ 'entities', 'relations' }) do
    local lines = {}
    for i, name in ipairs(ds[kind]) do lines[i] = ('%d\t%s'):format(i, name) end
    local ok, err = files.write_atomic(('%s.%s.tsv'):format(prefix, kind), table.concat(lines, '\n') .. '\n')
    if not ok then return nil, err end
  end
  return true
end

--- load_mapping(prefix) -> entities, relations (lists of names)
function M.load_mapping(prefix)
  local out = {}
  for _, kind in ipairs({ 'entities', 'relations' }) do
    local text, err = nn.data.read_text(('%s.%s.tsv'):format(prefix, kind))
    if not text then return nil, err end
    local names = {}
    for id, name in text:gmatch('(%d+)\t([^\n]+)') do names[tonumber(id)] = name end
    out[#out + 1] = names
  end
  return out[1], out[2]
end

return M
