-- Knowledge-graph embeddings: the fused scores against PyTorch 1.13 (the
-- RotatE authors' formulas, tests/ref/gen_kge.py), gradchecks, row-sparse
-- gradients and optimizer steps, losses, sampling, filtered metrics and
-- the triples loader.
local nn = require 'nnlua'
local support = require 'support'
local kge = nn.kge
local reference = require 'tests.reference'
local cases, torch_version = reference.load('kge.json')

local T = function(x) return nn.tensor(x) end
local L = function(x) return nn.tensor(x):long() end

describe('kge_score against PyTorch ' .. torch_version, function()
  for name, c in pairs(cases) do
    if c.E then
      it(name, function()
        for _, sparse in ipairs({ false, true }) do
          local E, R = T(c.E):requires_grad_(), T(c.R):requires_grad_()
          if sparse then E:sparse_grad_() R:sparse_grad_() end
          local out = nn.kge_score(E, R, L(c.anchor), L(c.rel), L(c.cand),
            { model = c.model, head = c.head, p = c.p, gamma = c.gamma, phase = c.phase })
          assert.tensor_near(c.output, out, 1e-5, 1e-5)
          ;(out * T(c.proj)):sum():backward()
          assert.tensor_near(c.grad_E, E.grad, 1e-4, 1e-5)
          assert.tensor_near(c.grad_R, R.grad, 1e-4, 1e-5)
        end
      end)
    end
  end
end)

describe('kge_score', function()
  before_each(function() nn.manual_seed(7) end)

  it('passes gradcheck for every model, direction and candidate layout', function()
    for _, m in ipairs({ 'transe', 'distmult', 'complex', 'rotate' }) do
      for _, head in ipairs({ false, true }) do
        for _, shared in ipairs({ false, true }) do
          local E = nn.randn(7, 6):requires_grad_()
          local R = nn.randn(3, m == 'rotate' and 3 or 6):requires_grad_()
          local a, r = L({ 1, 4, 7, 2 }), L({ 1, 3, 2, 2 })
          local c = shared and L({ 2, 5, 5, 7, 1 }) or nn.randint(1, 8, 4, 5)
          local o = { model = m, gamma = 3, p = (m == 'transe' and head) and 2 or 1, head = head,
                      phase = 0.7 }
          local ok, msg = nn.gradcheck(function(e, rr) return nn.kge_score(e, rr, a, r, c, o) end, { E, R })
          assert(ok, ('%s head=%s shared=%s: %s'):format(m, head, shared, msg))
        end
      end
    end
  end)

  it('scores all entities with a GEMM for the bilinear models, as the loop does', function()
    local E, R = nn.randn(300, 8), nn.randn(2, 8)
    local a, r = L({ 1, 2, 3 }), L({ 1, 2, 1 })
    local all = nn.arange(1, 301)
    for _, m in ipairs({ 'distmult', 'complex' }) do
      local shared = nn.kge_score(E, R, a, r, all, { model = m })             -- GEMM
      local per = nn.kge_score(E, R, a, r, all:view(1, -1):expand(3, 300):contiguous(), { model = m })
      assert.tensor_near(per, shared, 1e-5, 1e-5)
      local w, grads = nn.randn(3, 300), {}
      for i, c in ipairs({ all, all:view(1, -1):expand(3, 300):contiguous() }) do -- E read in place
        local e, rr = E:clone():requires_grad_(), R:clone():requires_grad_()
        ;(nn.kge_score(e, rr, a, r, c, { model = m }) * w):sum():backward()
        grads[i] = { e.grad, rr.grad }
      end
      assert.tensor_near(grads[2][1], grads[1][1], 1e-4, 1e-4)
      assert.tensor_near(grads[2][2], grads[1][2], 1e-4, 1e-4)
    end
  end)

  it('differentiates the GEMM route as the loop does, dense and row-sparse, repeated rows too', function()
    local cand = nn.randint(1, 41, 96) -- shared, >= 64 candidates: the GEMM route; repeats rows
    local a, r = L({ 1, 2, 3, 40 }), L({ 1, 2, 1, 2 })
    for _, m in ipairs({ 'distmult', 'complex' }) do
      for _, head in ipairs({ false, true }) do
        local o = { model = m, head = head }
        local E0, R0 = nn.randn(40, 6), nn.randn(2, 6)
        local w = nn.randn(4, 96)
        local grads = {}
        for i, layout in ipairs({ 'per', 'shared', 'sparse' }) do
          local E, R = E0:clone():requires_grad_(), R0:clone():requires_grad_()
          if layout == 'sparse' then E:sparse_grad_(); R:sparse_grad_() end
          local c = layout == 'per' and cand:view(1, -1):expand(4, 96):contiguous() or cand
          ;(nn.kge_score(E, R, a, r, c, o) * w):sum():backward()
          grads[i] = { E.grad, R.grad }
        end
        for i = 2, 3 do
          assert.tensor_near(grads[1][1], grads[i][1], 1e-4, 1e-4)
          assert.tensor_near(grads[1][2], grads[i][2], 1e-4, 1e-4)
        end
        local E, R = nn.randn(40, 6):requires_grad_(), nn.randn(2, 6):requires_grad_()
        local ok, msg = nn.gradcheck(function(e, rr) return nn.kge_score(e, rr, a, r, cand, o) end, { E, R })
        assert(ok, ('%s head=%s: %s'):format(m, head, msg))
      end
    end
  end)

  it('gives the same gradients on one thread and on two (rows split by owner)', function()
    -- (64 queries x 128 candidates x 16): above the parallel grain; 50 entities, so rows repeat
    local a, r, c = nn.randint(1, 51, 64), nn.randint(1, 4, 64), nn.randint(1, 51, 64, 128)
    local w = nn.randn(64, 128)
    local threads = nn.get_num_threads()
    for _, m in ipairs({ 'transe', 'distmult', 'complex', 'rotate' }) do
      local E0, R0 = nn.randn(50, 16), nn.randn(3, m == 'rotate' and 8 or 16)
      for _, layout in ipairs({ 'dense', 'sparse', 'frozen' }) do
        local grads = {}
        for i, n in ipairs({ 1, 2 }) do
          nn.set_num_threads(n)
          local E, R = E0:clone(), R0:clone():requires_grad_()
          if layout ~= 'frozen' then E:requires_grad_() end
          if layout == 'sparse' then E:sparse_grad_() end
          ;(nn.kge_score(E, R, a, r, c, { model = m, p = 2 }) * w):sum():backward()
          grads[i] = { E.grad, R.grad }
        end
        nn.set_num_threads(threads)
        if layout ~= 'frozen' then assert.tensor_near(grads[1][1], grads[2][1], 1e-4, 1e-4) end
        assert.tensor_near(grads[1][2], grads[2][2], 1e-4, 1e-4)
      end
    end
  end)

  it('rejects bad tables, indices and options with the shapes involved', function()
    local E, R = nn.randn(5, 4), nn.randn(2, 4)
    local o = { model = 'transe' }
    assert.error_contains(function() nn.kge_score(E, R, L({ 1, 6 }), L({ 1, 1 }), L({ 1 }), o) end,
      'anchors 2 holds 6, outside [1, 5]')
    assert.error_contains(function() nn.kge_score(E, R, L({ 1, 2 }), L({ 1, 3 }), L({ 1 }), o) end,
      'relations 2 holds 3, outside [1, 2]')
    assert.error_contains(function() nn.kge_score(E, R, L({ 1, 2 }), L({ 1 }), L({ 1 }), o) end,
      'anchors 2 and relations 1 must be (B) vectors')
    assert.error_contains(function() nn.kge_score(E, R, L({ 1, 2 }), L({ 1, 1 }), nn.ones(3, 2):long(), o) end,
      'candidates 3x2 must be (B, N) with B = 2')
    assert.error_contains(function() nn.kge_score(E, R, L({ 1 }), L({ 1 }), L({ 1 }), { model = 'rotate' }) end,
      'RotatE needs entity width 2k and relation width k, got entities 5x4 and relations 2x4')
    assert.error_contains(function() nn.kge_score(E, R, L({ 1 }), L({ 1 }), L({ 1 }), { model = 'transe', p = 3 }) end,
      "TransE's p must be 1 or 2")
    assert.error_contains(function() nn.kge_score(E, R, L({ 1 }), L({ 1 }), L({ 1 }), { model = 'x' }) end,
      "unknown model 'x'")
    assert.error_contains(function() nn.kge_score(E, R, nn.ones(1), L({ 1 }), L({ 1 }), o) end,
      'anchors must be an i64 tensor')
  end)
end)

describe('row-sparse gradients', function()
  it('touch only the rows used and read back dense', function()
    local W = nn.randn(6, 3):requires_grad_():sparse_grad_()
    nn.embedding(L({ 2, 5, 2 }), W):sum():backward()
    assert.same({ 2, 5 }, W:sparse_grad_rows():totable())
    assert.equal(2, nn.sparse_grad_count(W))
    local g = W.grad
    assert.tensor_near({ { 0, 0, 0 }, { 2, 2, 2 }, { 0, 0, 0 }, { 0, 0, 0 }, { 1, 1, 1 }, { 0, 0, 0 } }, g, 0, 0)
    W.grad = nil
    assert.equal(0, nn.sparse_grad_count(W))
    assert.is_nil(nn.sparse_grad_count(nn.randn(2, 2)))
    assert.error_contains(function() nn.randn(3):requires_grad_():sparse_grad_() end,
      'sparse gradients need a leaf f32 (V, D) table')
  end)

  it('Adam and Adagrad update only the touched rows, as dense steps would on their first step', function()
    for _, name in ipairs({ 'Adam', 'Adagrad' }) do
      nn.manual_seed(3)
      local init = nn.randn(6, 3)
      local dense, sparse = init:clone():requires_grad_(), init:clone():requires_grad_():sparse_grad_()
      local od, os_ = nn.optim[name]({ dense }, { lr = 0.1 }), nn.optim[name]({ sparse }, { lr = 0.1 })
      for _, p in ipairs({ dense, sparse }) do (nn.embedding(L({ 1, 4 }), p) ^ 2):sum():backward() end
      od:step()
      os_:step()
      assert.tensor_near(dense, sparse, 1e-6, 1e-6)
      assert.tensor_near(init[2], sparse[2], 0, 0) -- an untouched row
    end
  end)

  it('optimizers without sparse support say so', function()
    local W = nn.randn(4, 2):requires_grad_():sparse_grad_()
    nn.embedding(L({ 1 }), W):sum():backward()
    assert.error_contains(function() nn.optim.SGD({ W }, { lr = 0.1 }):step() end,
      'cannot take row-sparse gradients')
  end)
end)

describe('KGEmbedding, losses and regularisers', function()
  before_each(function() nn.manual_seed(11) end)

  it('scores triples, tails and heads consistently', function()
    for _, m in ipairs({ 'transe', 'distmult', 'complex', 'rotate' }) do
      local model = nn.KGEmbedding { model = m, num_entities = 10, num_relations = 3, dim = 4, gamma = 6 }
      local h, r, t = L({ 1, 5 }), L({ 2, 3 }), L({ 7, 2 })
      local s = model(h, r, t)
      local tails = model:score_tails(h, r, nn.arange(1, 11))
      local heads = model:score_heads(t, r, nn.arange(1, 11))
      assert.near(s[1], tails[1][7], 1e-4)
      assert.near(s[2], tails[2][2], 1e-4)
      assert.near(s[1], heads[1][1], 1e-4)
      assert.near(s[2], heads[2][5], 1e-4)
    end
    assert.error_contains(function() nn.KGEmbedding { model = 'transr', num_entities = 2, num_relations = 1, dim = 2 } end,
      "model must be 'transe', 'distmult', 'complex' or 'rotate'")
    assert.error_contains(function() nn.KGEmbedding { model = 'transe', num_entities = 2, num_relations = 1, dim = 0 } end,
      'dim must be a positive integer')
  end)

  it('losses match PyTorch', function()
    local c = cases.self_adversarial
    for name, fn in pairs({
      self_adversarial = function(p, n) return kge.self_adversarial_loss(p, n, { temperature = 0.5 }) end,
      self_adversarial_weighted = function(p, n)
        return kge.self_adversarial_loss(p, n, { temperature = 0.5, weights = T(cases.self_adversarial_weighted.weights) })
      end,
      uniform_negative = function(p, n) return kge.self_adversarial_loss(p, n, { adversarial = false }) end,
      margin_ranking = function(p, n) return kge.margin_ranking_loss(p, n, 2.0) end,
    }) do
      c = cases[name]
      local p, n = T(c.pos):requires_grad_(), T(c.neg):requires_grad_()
      local out = fn(p, n)
      assert.near(c.output, out:item(), 1e-5)
      out:backward()
      assert.tensor_near(c.grad_pos, p.grad, 1e-5, 1e-6)
      assert.tensor_near(c.grad_neg, n.grad, 1e-5, 1e-6)
    end
  end)

  it('subsampling weights count each query in the training triples, from 4', function()
    -- (1, r1, ?) is asked twice, (?, r1, 2) once, (?, r1, 3) once; (5, r2, 6) never
    local weigh = kge.subsampling_weights(L({ { 1, 1, 2 }, { 1, 1, 3 }, { 4, 2, 2 } }))
    local w = weigh(L({ { 1, 1, 2 }, { 4, 2, 2 }, { 5, 2, 6 } }))
    assert.tensor_near({ 1 / math.sqrt(6 + 5), 1 / math.sqrt(5 + 5), 1 / math.sqrt(4 + 4) }, w, 1e-6, 0)
  end)

  it('N3 and L2 regularisers are the batch means of cubed moduli and squared norms', function()
    local model = nn.KGEmbedding { model = 'complex', num_entities = 5, num_relations = 2, dim = 2, sparse = false }
    local h, r, t = L({ 1, 2 }), L({ 1, 2 }), L({ 3, 4 })
    local function moduli(x) return (x:narrow(2, 1, 2):square() + x:narrow(2, 3, 2):square()):sqrt() end
    local E, R = model.entity:detach(), model.relation:detach()
    local want = ((moduli(E:index_select(1, h)) ^ 3):sum() + (moduli(R:index_select(1, r)) ^ 3):sum()
                  + (moduli(E:index_select(1, t)) ^ 3):sum()) / 2
    assert.near(want:item(), kge.n3_regularizer(model, h, r, t):item(), 1e-5)
    local l2 = (E:index_select(1, h):square():sum() + R:index_select(1, r):square():sum()
                + E:index_select(1, t):square():sum()) / 2
    assert.near(l2:item(), kge.l2_regularizer(model, h, r, t):item(), 1e-5)
    assert(nn.gradcheck(function(e) model.entity = e return kge.n3_regularizer(model, h, r, t) end,
      { model.entity:detach():clone():requires_grad_() }))
  end)

  it('TransE entity rows can be held to unit norm', function()
    local model = nn.KGEmbedding { model = 'transe', num_entities = 4, num_relations = 1, dim = 3, gamma = 50, sparse = false }
    model:normalize_entities_()
    assert(model.entity:norm(1, 2):max():item() <= 1 + 1e-5)
  end)
end)

describe('sampling, evaluation and data', function()
  before_each(function() nn.manual_seed(2) end)

  local train = L({ { 1, 1, 2 }, { 1, 1, 3 }, { 1, 1, 4 }, { 5, 2, 6 }, { 7, 2, 6 }, { 8, 2, 6 } })

  it('Bernoulli sampling corrupts the side with more answers less often', function()
    local s = kge.NegativeSampler(train, 8, { bernoulli = true })
    -- relation 1: one head, three tails (tph 3, hpt 1): heads corrupted with p 0.75
    assert.near(0.75, s.p_head[1], 1e-9)
    assert.near(0.25, s.p_head[2], 1e-9)
    local batch = train:index_select(1, nn.ones(2000):long())
    local head = s:split(batch)
    assert.near(0.75, head:size(1) / 2000, 0.05)
    local filtered = kge.NegativeSampler(train, 8, { filter = true })
    local cand = filtered:sample(L({ { 1, 1, 2 } }), 200, false)
    for _, e in ipairs(cand:view(-1):totable()) do assert(e ~= 2 and e ~= 3 and e ~= 4) end
    assert.same({ 3, 5 }, s:sample(train:narrow(1, 1, 3), 5).shape)
  end)

  it('filtered ranks remove the other true answers', function()
    -- DistMult with one-hot entities: score(h, r, t) = R[r] . (E[h] * E[t])
    local model = nn.KGEmbedding { model = 'distmult', num_entities = 4, num_relations = 1, dim = 4, sparse = false }
    model.entity = nn.eye(4):requires_grad_()
    model.relation = nn.tensor({ { 1, 1, 1, 1 } }):requires_grad_()
    -- every (h, 1, t) scores 1 when h == t, else 0: ties everywhere but the diagonal
    local test = L({ { 2, 1, 2 } })
    local res = kge.evaluate(model, test, kge.filter_index({ test }))
    assert.near(1, res.mrr, 1e-9)
    assert.near(1, res.hits1, 1e-9)
    -- make entity 3 outscore the target: raw rank 2, filtered rank 1 when (2, 1, 3) is known
    model.entity = nn.tensor({ { 1, 0, 0, 0 }, { 0, 1, 0, 0 }, { 0, 2, 0, 0 }, { 0, 0, 0, 1 } }):requires_grad_()
    local raw = kge.evaluate(model, L({ { 2, 1, 2 } }), kge.filter_index({ L({ { 2, 1, 2 } }) }))
    local filt = kge.evaluate(model, L({ { 2, 1, 2 } }), kge.filter_index({ L({ { 2, 1, 2 }, { 2, 1, 3 }, { 3, 1, 2 } }) }))
    assert.near((1 / 2 + 1 / 2) / 2, raw.mrr, 1e-9)
    assert.near(1, filt.mrr, 1e-9)
    assert.equal(2, raw.n)
    assert.truthy(raw.per_relation['1'])
  end)

  it('loads tab-separated triples and writes the id mapping beside a checkpoint', function()
    local dir = support.tempdir()
    local function write(name, text)
      local f = assert(io.open(dir .. '/' .. name, 'w'))
      f:write(text)
      f:close()
    end
    write('train.txt', 'a\tlikes\tb\nb\tlikes\tc\n')
    write('valid.txt', 'a\thates\tc\n')
    write('test.txt', 'c\tlikes\ta\n')
    local ds = kge.load_triples(dir)
    assert.same({ 'a', 'b', 'c' }, ds.entities)
    assert.same({ 'likes', 'hates' }, ds.relations)
    assert.same({ { 1, 1, 2 }, { 2, 1, 3 } }, ds.train:totable())
    assert.same({ { 1, 2, 3 } }, ds.valid:totable())
    assert(kge.save_mapping(dir .. '/model', ds))
    local ents, rels = kge.load_mapping(dir .. '/model')
    assert.same(ds.entities, ents)
    assert.same(ds.relations, rels)
    write('test.txt', 'c likes a\n')
    assert.error_contains(function() kge.load_triples(dir) end, 'test.txt:1 is not "head<TAB>relation<TAB>tail"')
    os.execute('rm -r ' .. dir)
  end)

  it('reads WN18RR with the published counts', function()
    local dir = '../shared/data/wn18rr'
    if not io.open(dir .. '/train.txt') then return end -- only where the shared data exists
    local ds = kge.load_triples(dir)
    assert.equal(40943, #ds.entities)
    assert.equal(11, #ds.relations)
    assert.equal(86835, ds.train:size(1))
    assert.equal(3034, ds.valid:size(1))
    assert.equal(3134, ds.test:size(1))
  end)
end)
