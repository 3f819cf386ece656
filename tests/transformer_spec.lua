-- Attention and Transformer layers against PyTorch 1.13 on the fixtures of
-- tests/ref/gen_attention.py, plus the fused kernel against the unfused
-- composition, gradchecks and the KV cache.
local nn = require 'nnlua'
local tr = nn.transformer

local reference_fixtures = require 'tests.reference'
local cases, torch_version = reference_fixtures.load('attention.json')

local T = function(x) return nn.tensor(x) end

local function check(name, m, fn, rtol, atol)
  reference_fixtures.check_module(assert(cases[name], 'no fixture ' .. name), m, fn, rtol, atol)
end

local function reference(q, k, v, mask, causal, scale)
  local s = q:matmul(k:transpose(-1, -2)) * (scale or 1 / math.sqrt(q:size(-1)))
  if mask then s = s + mask end
  if causal then s = s + tr.causal_mask(q:size(3), k:size(3)) end
  return s:softmax(-1):matmul(v)
end

describe('attention', function()
  before_each(function() nn.manual_seed(7) end)

  it('equals the unfused composition, with masks, causal and cross shapes', function()
    local q, k, v = nn.randn(2, 3, 5, 4), nn.randn(2, 3, 7, 4), nn.randn(2, 3, 7, 6)
    assert.tensor_near(reference(q, k, v), nn.attention(q, k, v), 1e-5, 1e-6)
    assert.tensor_near(reference(q, k, v, nil, true), nn.attention(q, k, v, { causal = true }), 1e-5, 1e-6)
    local mask = nn.randn(2, 1, 5, 7)
    assert.tensor_near(reference(q, k, v, mask, false, 0.3),
      nn.attention(q, k, v, { mask = mask, scale = 0.3 }), 1e-5, 1e-6)
  end)

  it('takes key padding masks through nn.F.scaled_dot_product_attention', function()
    local q, k, v = nn.randn(2, 2, 3, 4), nn.randn(2, 2, 5, 4), nn.randn(2, 2, 5, 4)
    local kpm = nn.tensor({ { 0, 0, 0, 1, 1 }, { 0, 0, 0, 0, 0 } }, 'i64')
    local got = nn.F.scaled_dot_product_attention(q, k, v, { key_padding_mask = kpm })
    -- the padded keys of batch 1 must not matter: drop them and compare
    local ref1 = reference(q:narrow(1, 1, 1), k:narrow(1, 1, 1):narrow(3, 1, 3), v:narrow(1, 1, 1):narrow(3, 1, 3))
    assert.tensor_near(ref1, got:narrow(1, 1, 1), 1e-5, 1e-6)
    assert.tensor_near(reference(q:narrow(1, 2, 1), k:narrow(1, 2, 1), v:narrow(1, 2, 1)), got:narrow(1, 2, 1), 1e-5, 1e-6)
  end)

  it('tiles long sequences without changing the result', function()
    local x = nn.randn(1, 300, 2, 8):transpose(2, 3) -- (B, H, T, D) view, T > one block
    assert.tensor_near(reference(x, x, x, nil, true), nn.attention(x, x, x, { causal = true }), 1e-5, 1e-6)
  end)

  it('returns the weights when asked', function()
    local q, k, v = nn.randn(1, 2, 3, 4), nn.randn(1, 2, 5, 4), nn.randn(1, 2, 5, 4)
    local out, w = nn.attention(q, k, v, { need_weights = true })
    assert.same({ 1, 2, 3, 5 }, w.shape)
    assert.tensor_near(nn.ones(1, 2, 3), w:sum(-1), 1e-5, 1e-6)
    assert.tensor_near(w:matmul(v), out, 1e-5, 1e-6)
  end)

  it('passes gradcheck with masks, causal and dropout', function()
    local q = nn.randn(1, 2, 4, 3):requires_grad_()
    local k, v = nn.randn(1, 2, 6, 3):requires_grad_(), nn.randn(1, 2, 6, 5):requires_grad_()
    local mask = nn.randn(1, 1, 4, 6)
    for _, o in ipairs({ {}, { causal = true }, { mask = mask, scale = 0.7 } }) do
      assert(nn.gradcheck(function(a, b, c) return nn.attention(a, b, c, o) end, { q, k, v }))
    end
    assert(nn.gradcheck(function(a, b, c)
      nn.manual_seed(3)
      return nn.attention(a, b, c, { dropout = 0.25 })
    end, { q, k, v }))
  end)

  it('passes gradcheck on the many-heads path too', function()
    local q = nn.randn(2, 2, 3, 4):requires_grad_() -- B H >= 4: one head per thread
    local k, v = nn.randn(2, 2, 5, 4):requires_grad_(), nn.randn(2, 2, 5, 3):requires_grad_()
    local mask = nn.randn(2, 1, 3, 5)
    for _, o in ipairs({ {}, { causal = true }, { mask = mask } }) do
      assert(nn.gradcheck(function(a, b, c) return nn.attention(a, b, c, o) end, { q, k, v }))
    end
    assert(nn.gradcheck(function(a, b, c)
      nn.manual_seed(4)
      return nn.attention(a, b, c, { dropout = 0.3, causal = true })
    end, { q, k, v }))
  end)

  it('passes gradcheck on the register-tile path (9 or more queries, odd sizes)', function()
    -- B H >= 4, Tq >= 9: tiles of 4 x 16 with tails; modest scores keep
    -- float finite differences accurate
    local q = (nn.randn(2, 2, 10, 5) * 0.5):requires_grad_()
    local k, v = (nn.randn(2, 2, 13, 5) * 0.5):requires_grad_(), nn.randn(2, 2, 13, 18):requires_grad_()
    local mask = nn.randn(2, 1, 10, 13) * 0.5
    for _, o in ipairs({ {}, { causal = true }, { mask = mask } }) do
      assert(nn.gradcheck(function(a, b, c) return nn.attention(a, b, c, o) end, { q, k, v }))
    end
    assert(nn.gradcheck(function(a, b, c)
      nn.manual_seed(5)
      return nn.attention(a, b, c, { dropout = 0.2, causal = true })
    end, { q, k, v }))
  end)

  it('matches the unfused composition and its gradients on full tiles', function()
    for _, causal in ipairs({ false, true }) do
      local q, k, v = nn.randn(2, 3, 21, 32), nn.randn(2, 3, 24, 32), nn.randn(2, 3, 24, 16)
      local w = nn.randn(2, 3, 21, 16)
      local function grads(f)
        local a, b, c = q:clone():requires_grad_(), k:clone():requires_grad_(), v:clone():requires_grad_()
        local y = f(a, b, c)
        ;(y * w):sum():backward()
        return y, a.grad, b.grad, c.grad
      end
      local want = { grads(function(a, b, c) return reference(a, b, c, nil, causal) end) }
      local got = { grads(function(a, b, c) return nn.attention(a, b, c, { causal = causal }) end) }
      for i = 1, 4 do assert.tensor_near(want[i], got[i], 1e-4, 1e-5) end
    end
  end)

  it('rejects shapes that do not fit', function()
    assert.error_contains(function() nn.attention(nn.ones(1, 2, 3, 4), nn.ones(1, 2, 3, 5), nn.ones(1, 2, 3, 4)) end,
      'do not fit')
    assert.error_contains(function() nn.attention(nn.ones(1, 2, 3, 4), nn.ones(1, 2, 3, 4), nn.ones(1, 2, 3, 4),
      { mask = nn.ones(4, 4) }) end, 'does not broadcast')
    assert.error_contains(function() nn.attention(nn.ones(2, 3, 4), nn.ones(2, 3, 4), nn.ones(2, 3, 4)) end,
      '(B, H, T, D)')
  end)
end)

describe('Transformer layers against PyTorch ' .. torch_version, function()
  local x_causal = function(m, l) return m(l.x, l.x, l.x, { attn_mask = tr.causal_mask(5) }) end

  it('MultiheadAttention: self, causal, cross with padding, weights', function()
    local m = nn.MultiheadAttention(8, 2)
    check('mha_self', m, function(m, l) return m(l.x, l.x, l.x) end)
    check('mha_causal', m, x_causal)
    check('mha_cross_padding', m, function(m, l, c)
      return m(l.x, l.mem, l.mem, { key_padding_mask = nn.tensor(c.key_padding_mask, 'i64') })
    end)
    check('mha_weights', m, function(m, l)
      local _, w = m(l.x, l.mem, l.mem, { need_weights = true })
      return w
    end)
  end)

  it('MultiheadAttention with kdim and vdim', function()
    check('mha_kdim_vdim', nn.MultiheadAttention(8, 2, { kdim = 6, vdim = 3 }),
      function(m, l) return m(l.x, l.k, l.v) end)
  end)

  for _, kind in ipairs({ 'post', 'pre' }) do
    it('TransformerEncoderLayer, ' .. kind .. '-norm, GELU', function()
      local m = nn.TransformerEncoderLayer(8, 2, { dim_feedforward = 16, dropout = 0,
        activation = 'gelu', norm_first = kind == 'pre' })
      check('encoder_layer_' .. kind, m, function(m, l) return m(l.x, { mask = tr.causal_mask(5) }) end)
    end)

    it('TransformerDecoderLayer, ' .. kind .. '-norm', function()
      local m = nn.TransformerDecoderLayer(8, 2, { dim_feedforward = 16, dropout = 0,
        norm_first = kind == 'pre' })
      check('decoder_layer_' .. kind, m, function(m, l, c)
        return m(l.x, l.mem, { tgt_mask = tr.causal_mask(5),
          memory_key_padding_mask = nn.tensor(c.key_padding_mask, 'i64') })
      end)
    end)
  end

  it('positional encodings: sinusoidal values, learned table, offsets', function()
    local pe = nn.SinusoidalPositionalEncoding(4, 10)
    local x = nn.zeros(1, 3, 4)
    assert.tensor_near({ math.sin(1), math.cos(1), math.sin(0.01), math.cos(0.01) }, pe(x)[1][2], 1e-6, 1e-6)
    assert.tensor_near(pe(x):narrow(2, 2, 2), pe(nn.zeros(1, 2, 4), 1), 0, 0)
    local lp = nn.LearnedPositionalEncoding(4, 5)
    assert.same({ 'embedding.weight' }, (function()
      local n = {}
      for k in lp:named_parameters() do n[#n + 1] = k end
      return n
    end)())
    assert.tensor_near(lp.embedding.weight:narrow(1, 3, 2), lp(nn.zeros(1, 2, 4), 2)[1])
    assert.error_contains(function() lp(nn.zeros(1, 6, 4)) end, 'beyond max_len')
  end)

  it('rotary position embedding', function()
    local c = cases.rope
    local x = T(c.inputs.x):requires_grad_()
    local out = tr.rotary(x, 3)
    assert.tensor_near(c.output, out, 1e-5, 1e-5)
    ;(out * T(c.proj)):sum():backward()
    assert.tensor_near(c.grads.x, x.grad, 1e-5, 1e-5)
  end)
end)

describe('incremental decoding', function()
  it('gives the same outputs with a KV cache as on the whole sequence', function()
    nn.manual_seed(2)
    local m = nn.MultiheadAttention(8, 2)
    m:eval()
    local x = nn.randn(2, 6, 8)
    local full = nn.no_grad(function() return m(x, x, x, { is_causal = true }) end)
    local cache = nn.KVCache()
    nn.no_grad(function()
      for t = 1, 6 do
        local xt = x:narrow(2, t, 1)
        local out = m(xt, xt, xt, { cache = cache })
        assert.tensor_near(full:narrow(2, t, 1), out, 1e-5, 1e-5)
      end
    end)
    assert.equal(6, cache.n)
  end)

  it('decodes a prefix then single tokens (causal aligned to the end)', function()
    nn.manual_seed(3)
    local m = nn.MultiheadAttention(8, 2)
    local x = nn.randn(1, 7, 8)
    local full = nn.no_grad(function() return m(x, x, x, { is_causal = true }) end)
    local cache = nn.KVCache()
    nn.no_grad(function()
      local p = x:narrow(2, 1, 4)
      assert.tensor_near(full:narrow(2, 1, 4), m(p, p, p, { cache = cache, is_causal = true }), 1e-5, 1e-5)
      local rest = x:narrow(2, 5, 3)
      assert.tensor_near(full:narrow(2, 5, 3), m(rest, rest, rest, { cache = cache, is_causal = true }), 1e-5, 1e-5)
    end)
  end)
  it('projects a fixed memory once with memory_cache, and gives the same outputs', function()
    nn.manual_seed(4)
    local m = nn.MultiheadAttention(8, 2)
    m:eval()
    local q, mem = nn.randn(3, 5, 8), nn.randn(3, 7, 8)
    local pad = nn.tensor({ { 0, 0, 0, 0, 0, 1, 1 }, { 0, 0, 0, 0, 0, 0, 0 }, { 0, 0, 0, 1, 1, 1, 1 } })
    nn.no_grad(function()
      local want = m(q, mem, mem, { key_padding_mask = pad })
      local mc = {}
      local first = m(q, mem, mem, { key_padding_mask = pad, memory_cache = mc })
      assert.tensor_near(want, first, 1e-6, 1e-6)
      assert.same({ 3, 2, 7, 4 }, mc.k:size())
      assert.same({ 3, 2, 7, 4 }, mc.v:size())
      -- later calls ignore key and value: the kept projections are used
      for t = 1, 5 do
        local qt = q:narrow(2, t, 1)
        assert.tensor_near(want:narrow(2, t, 1), m(qt, nil, nil, { key_padding_mask = pad, memory_cache = mc }), 1e-5, 1e-5)
      end
    end)
    assert.error_matches(function() m(q, mem, mem, { memory_cache = 3 }) end, 'memory_cache must be a table, got number')
    assert.error_matches(function() m(q, mem, mem, { memory_cache = { k = nn.zeros(2), v = nn.zeros(2) } }) end,
      'memory_cache.k and .v must be %(B, H, S, D%)')
  end)

  it('decodes with per-layer self-attention and memory caches as the whole decoder does', function()
    nn.manual_seed(6)
    local dec = nn.TransformerDecoder(function() return nn.TransformerDecoderLayer(8, 2, { dim_feedforward = 16, dropout = 0, norm_first = true }) end, 2, nn.LayerNorm(8))
    dec:eval()
    local x, mem = nn.randn(2, 4, 8), nn.randn(2, 6, 8)
    nn.no_grad(function()
      local full = dec(x, mem, { tgt_is_causal = true })
      local caches, mcs = { nn.KVCache(), nn.KVCache() }, { {}, {} }
      for t = 1, 4 do
        local out = dec(x:narrow(2, t, 1), t == 1 and mem or nil, { caches = caches, memory_caches = mcs })
        assert.tensor_near(full:narrow(2, t, 1), out, 1e-5, 1e-5)
      end
    end)
  end)

  it('reads one memory row per group of beams as the repeated memory does', function()
    nn.manual_seed(8)
    local dec = nn.TransformerDecoder(function() return nn.TransformerDecoderLayer(8, 2, { dim_feedforward = 16, dropout = 0, norm_first = true }) end, 2, nn.LayerNorm(8))
    dec:eval()
    local k = 3
    local x, mem = nn.randn(2 * k, 4, 8), nn.randn(2, 6, 8)
    local pad = nn.tensor({ { 0, 0, 0, 0, 1, 1 }, { 0, 0, 0, 0, 0, 0 } })
    local rep = nn.tensor({ 1, 1, 1, 2, 2, 2 }, 'i64')
    nn.no_grad(function()
      local want = dec(x, mem:index_select(1, rep), { tgt_is_causal = true, memory_key_padding_mask = pad:index_select(1, rep) })
      assert.tensor_near(want, dec(x, mem, { tgt_is_causal = true, memory_key_padding_mask = pad, beams = k }), 1e-5, 1e-5)
      -- one token at a time with caches: the memory caches hold 2 rows, not 6
      local caches, mcs = { nn.KVCache(), nn.KVCache() }, { {}, {} }
      for t = 1, 4 do
        local out = dec(x:narrow(2, t, 1), t == 1 and mem or nil, { caches = caches, memory_caches = mcs,
          memory_key_padding_mask = pad, beams = k })
        assert.tensor_near(want:narrow(2, t, 1), out, 1e-5, 1e-5)
      end
      assert.same({ 2, 2, 6, 4 }, mcs[1].k:size())
    end)
    assert.error_matches(function() dec(x, mem, { beams = 2 }) end, 'tgt has 6 rows, memory 2 and beams 2')
    assert.error_matches(function() dec(x, mem, { beams = 0 }) end, 'beams must be an integer >= 1')
  end)

  it('reorders a key/value cache copying only the rows that move', function()
    local c = nn.KVCache()
    local k = nn.arange(4):float():view(4, 1, 1, 1):expand(4, 2, 3, 2):contiguous()
    c:append(k, k * 10)
    c:reorder(nn.tensor({ 1, 1, 4, 3 }, 'i64'))
    local kk, vv = c:append(nn.zeros(4, 2, 1, 2), nn.zeros(4, 2, 1, 2))
    assert.same({ 4, 2, 4, 2 }, kk:size())
    for r, want in ipairs({ 0, 0, 3, 2 }) do
      assert.equal(want, kk[r][2][3][1])
      assert.equal(10 * want, vv[r][1][1][2])
    end
    c:reorder(nn.tensor({ 2, 3 }, 'i64')) -- fewer rows: a new buffer
    assert.equal(3, c.k[2][1][1][1])
    assert.has_error(function() c:reorder(nn.tensor({ 5, 1 }, 'i64')) end)
  end)
end)
