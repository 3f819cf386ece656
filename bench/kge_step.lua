--- bench/kge_step.lua: milliseconds per knowledge-graph training step
--- (TransE and RotatE, dim 500, batch 512, 256 negatives per positive,
--- self-adversarial loss, Adam with row-sparse updates; tail and head
--- corruption alternate) on WN18RR's sizes, and milliseconds per query to
--- rank queries (8 at a time, as the RotatE code tests) against all 40,943
--- entities, beside PyTorch (bench/kge_step.py, the RotatE authors'
--- formulation, configured as ../shared/NOTES.md says); and a ComplEx
--- 1-vs-all step (dim 100, batch 512, cross-entropy over every entity for
--- tails and heads).
--- Usage: nnlua bench/kge_step.lua [--steps N] [--queries N (200)]
package.path = arg[0]:gsub('[^/]*$', '') .. '?.lua;' .. package.path
local nn = require 'nnlua'
local bench = require 'common'
local kge = nn.kge

local steps, queries = 6, 200
for i = 1, #arg do
  if arg[i] == '--steps' then steps = tonumber(arg[i + 1]) end
  if arg[i] == '--queries' then queries = tonumber(arg[i + 1]) end
end
local V, NR, B, N, DIM = 40943, 11, 512, 256, 500

local function model(name)
  nn.manual_seed(0)
  return nn.KGEmbedding { model = name, num_entities = V, num_relations = NR, dim = DIM, gamma = 6 }
end

local function step_ms(name)
  local m = model(name)
  local opt = nn.optim.Adam(m:parameters(), { lr = 1e-4 })
  local h, r, t = nn.randint(1, V + 1, B), nn.randint(1, NR + 1, B), nn.randint(1, V + 1, B)
  local head = false
  return bench.time_steps(function()
    head = not head
    local cand = nn.randint(1, V + 1, B, N)
    local neg = head and m:score_heads(t, r, cand) or m:score_tails(h, r, cand)
    local loss = kge.self_adversarial_loss(m(h, r, t), neg, { temperature = 1 })
    opt:zero_grad()
    loss:backward()
    opt:step()
  end, steps)
end

local function rank_ms(name)
  local m = model(name)
  local all = nn.arange(1, V + 1)
  local h, r, t = nn.randint(1, V + 1, queries), nn.randint(1, NR + 1, queries), nn.randint(1, V + 1, queries)
  local t0 = nn.clock()
  nn.no_grad(function()
    for s = 1, queries, 8 do
      local n = math.min(8, queries + 1 - s)
      local sc = m:score_tails(h:narrow(1, s, n), r:narrow(1, s, n), all)
      local target = sc:gather(2, t:narrow(1, s, n):view(n, 1))
      local _ = sc:gt(target):sum(2) + 1
    end
  end)
  return (nn.clock() - t0) * 1e3 / queries
end

-- ComplEx 1-vs-all (dim 100): every entity a candidate for the batch's
-- tails and heads, cross-entropy, dense Adam, as the WN18RR ComplEx run
local function one_vs_all_ms()
  nn.manual_seed(0)
  local m = nn.KGEmbedding { model = 'complex', num_entities = V, num_relations = NR, dim = 100, init = 1e-3,
    sparse = false }
  local opt = nn.optim.Adam(m:parameters(), { lr = 1e-4 })
  local all = nn.arange(1, V + 1)
  local h, r, t = nn.randint(1, V + 1, B), nn.randint(1, NR + 1, B), nn.randint(1, V + 1, B)
  return bench.time_steps(function()
    local loss = (nn.cross_entropy(m:score_tails(h, r, all), t) + nn.cross_entropy(m:score_heads(t, r, all), h)) / 2
    opt:zero_grad()
    loss:backward()
    opt:step()
  end, steps)
end

local theirs = bench.torch('kge_step.py', ('--steps %d --queries %d'):format(steps, queries))
print(('threads %d, BLAS %s'):format(nn.get_num_threads(), nn.config().blas_core))
print(('%-40s %10s %10s %8s'):format('', 'nnlua ms', 'torch ms', 'speedup'))
for _, name in ipairs({ 'transe', 'rotate' }) do
  bench.row(('%s step, dim 500, B 512, 256 neg'):format(name), step_ms(name), theirs[name .. '_step'],
            { torch_rss = theirs[name .. '_step_rss'] })
  bench.row(('%s rank, ms per query, 40,943 ents'):format(name), rank_ms(name), theirs[name .. '_rank'],
            { torch_rss = theirs[name .. '_rank_rss'] })
end
bench.row('complex 1-vs-all step, dim 100, B 512', one_vs_all_ms(), theirs.complex_1vsall_step,
          { torch_rss = theirs.complex_1vsall_step_rss })
