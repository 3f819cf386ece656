-- Cross-modal layers against PyTorch 1.13 on the fixtures of
-- tests/ref/gen_multimodal.py, gradchecks of the fused fusion ops, and the
-- errors bad inputs get.
local nn = require 'nnlua'
local mm = nn.multimodal
local reference = require 'tests.reference'
local cases, torch_version = reference.load('multimodal.json')

local function check(name, m, fn, rtol, atol)
  reference.check_module(assert(cases[name], 'no fixture ' .. name), m, fn, rtol, atol)
end

local function three(m, l) return m({ l.x1, l.x2, l.x3 }) end
local function three_masked(m, l, c) return m({ l.x1, l.x2, l.x3 }, nn.tensor(c.mask)) end
local function two(m, l) return m({ l.x1, l.x2 }) end
local function leaf(...) return nn.randn(...):requires_grad_() end

describe('fusion layers against PyTorch ' .. torch_version, function()
  it('ConcatFusion, SumFusion and GatedFusion, with and without a mask', function()
    local dims = { 3, 5, 2 }
    for name, m in pairs { concat = mm.ConcatFusion(dims, 4), sum = mm.SumFusion(dims, 4),
                           gated = mm.GatedFusion(dims, 4) } do
      check(name .. '_fusion', m, three)
      check(name .. '_fusion_masked', m, three_masked)
    end
    check('sum_fusion_shared', mm.SumFusion({ 3, 3 }, 4, { shared = true }), two)
  end)

  it('BilinearFusion (MFB), with and without a mask', function()
    local m = mm.BilinearFusion(3, 5, 4, { factor = 3 })
    check('bilinear_fusion', m, two)
    check('bilinear_fusion_masked', m, function(m, l, c) return m({ l.x1, l.x2 }, nn.tensor(c.mask)) end)
  end)

  it('FiLM over image channels and over token features', function()
    check('film_image', mm.FiLM(5, 3), function(m, l) return m(l.x, l.cond) end)
    check('film_tokens', mm.FiLM(5, 6, { channel_dim = -1 }), function(m, l) return m(l.x, l.cond) end)
  end)

  it('CrossModalAttention with a padded context', function()
    check('cross_modal_attention', mm.CrossModalAttention(8, 6, 2), function(m, l, c)
      return m(l.q, l.c, nn.tensor(c.key_padding_mask):float())
    end, 1e-4, 1e-5)
  end)

  it('PatchEmbedding and a small ViT', function()
    check('patch_embedding', mm.PatchEmbedding(8, 4, 2, 6), function(m, l) return m(l.x) end)
    local vit = nn.ViT { image_size = 8, patch_size = 4, dim = 8, depth = 2, heads = 2,
                         mlp_dim = 16, num_classes = 3 }
    check('vit', vit, function(m, l) return m(l.x) end, 1e-4, 1e-5)
  end)

  it('ContrastiveLoss (CLIP) with its learnable temperature', function()
    check('contrastive_loss', mm.ContrastiveLoss { temperature = 0.07 }, function(m, l)
      return (m(l.a, l.b))
    end, 1e-4, 1e-5)
  end)
end)

describe('fused fusion ops', function()
  before_each(function() nn.manual_seed(5) end)

  it('gated_fusion passes gradcheck, with a mask and with a sample missing everything', function()
    local h, g = leaf(3, 3, 4), leaf(3, 3, 4)
    local mask = nn.tensor({ { 1, 0, 1 }, { 1, 1, 1 }, { 0, 0, 0 } })
    assert(nn.gradcheck(function(a, b) return nn.gated_fusion(a, b) end, { h, g }))
    assert(nn.gradcheck(function(a, b) return nn.gated_fusion(a, b, mask) end, { h, g }))
    local y = nn.gated_fusion(h, g, mask)
    assert.tensor_near(nn.zeros(4), y[3], 0, 0) -- nothing present: zeros
  end)

  it('gated_fusion is a convex combination of tanh(h)', function()
    local h, g = nn.randn(2, 2, 3), nn.randn(2, 2, 3)
    local z = g:softmax(2)
    local want = (z * h:tanh()):sum(2)
    assert.tensor_near(want, nn.gated_fusion(h, g), 1e-6, 1e-6)
    -- with one modality masked out the other passes through untouched
    local only2 = nn.gated_fusion(h, g, nn.tensor({ { 0, 1 }, { 0, 1 } }))
    assert.tensor_near(h:select(2, 2):tanh(), only2, 1e-6, 1e-6)
  end)

  it('mfb_pool passes gradcheck and returns unit rows', function()
    local a, b = leaf(3, 12), leaf(3, 12)
    assert(nn.gradcheck(function(x, y) return nn.mfb_pool(x, y, 3) end, { a, b }))
    local y = nn.mfb_pool(a, b, 4)
    assert.same({ 3, 3 }, y.shape)
    assert.tensor_near(nn.ones(3), y:norm(2, 2), 1e-5, 1e-5)
  end)

  it('ContrastiveLoss passes gradcheck through both encoders and the temperature', function()
    local loss = mm.ContrastiveLoss()
    assert(nn.gradcheck(function(a, b, s)
      loss.logit_scale = s
      return (loss(a, b))
    end, { leaf(5, 4), leaf(5, 4), nn.tensor({ 2.0 }):requires_grad_() }))
  end)
end)

describe('bad inputs get clear errors', function()
  it('fusion layers name the modality and the shapes', function()
    local f = mm.ConcatFusion({ 3, 5 }, 4)
    assert.error_contains(function() f({ nn.ones(2, 3), nn.ones(2, 4) }) end,
      'ConcatFusion: modality 2 is 2x4, expected 2x5')
    assert.error_contains(function() f({ nn.ones(2, 3), nn.ones(3, 5) }) end,
      'ConcatFusion: modality 2 is 3x5, expected 2x5')
    assert.error_contains(function() f({ nn.ones(2, 3) }) end, 'expected a list of 2 modality tensors')
    assert.error_contains(function() f({ nn.ones(2, 3), nn.ones(2, 5) }, nn.ones(2, 3)) end,
      'mask is 2x3, expected 2x2')
    assert.error_contains(function() mm.GatedFusion({ 3, 5 }, 4)({ nn.ones(2, 3), nn.ones(2, 6) }) end,
      'GatedFusion: modality 2 is 2x6')
    assert.error_contains(function() mm.BilinearFusion(3, 5, 4)({ nn.ones(2, 3), nn.ones(1, 5) }) end,
      'BilinearFusion: modality 2 is 1x5')
    assert.error_contains(function() mm.SumFusion({ 3, 4 }, 2, { shared = true }) end,
      'a shared projection needs equal widths')
  end)

  it('the fused ops check shapes and factors', function()
    assert.error_contains(function() nn.gated_fusion(nn.ones(2, 3, 4), nn.ones(2, 3, 5)) end,
      'gated_fusion: projections 2x3x4 and gate logits 2x3x5')
    assert.error_contains(function() nn.gated_fusion(nn.ones(2, 3, 4), nn.ones(2, 3, 4), nn.ones(2, 2)) end,
      'mask 2x2 does not match (B, M) = (2, 3)')
    assert.error_contains(function() nn.mfb_pool(nn.ones(2, 6), nn.ones(2, 6), 4) end,
      'factor 4 does not divide the width 6')
    assert.error_contains(function() nn.mfb_pool(nn.ones(2, 6), nn.ones(3, 6), 2) end,
      'mfb_pool: 2x6 and 3x6')
    assert.error_contains(function() nn.mfb_pool(nn.ones(2, 6), nn.ones(2, 6), 0) end,
      'factor must be positive')
  end)

  it('FiLM, cross-modal attention and the contrastive loss reject mismatched batches', function()
    assert.error_contains(function() mm.FiLM(5, 3)(nn.ones(2, 3, 4, 4), nn.ones(3, 5)) end,
      'FiLM: x 2x3x4x4 and cond 3x5 do not fit 3 channels in dim 2')
    assert.error_contains(function() mm.FiLM(5, 3)(nn.ones(2, 4, 4, 4), nn.ones(2, 5)) end,
      'do not fit 3 channels')
    assert.error_contains(function()
      mm.CrossModalAttention(8, 6, 2)(nn.ones(2, 5, 8), nn.ones(3, 4, 6))
    end, 'CrossModalAttention: query 2x5x8 and context 3x4x6')
    assert.error_contains(function() mm.ContrastiveLoss()(nn.ones(4, 3), nn.ones(5, 3)) end,
      'ContrastiveLoss: embeddings 4x3 and 5x3')
  end)
end)

describe('retrieval metrics and multitask heads', function()
  it('recall_at_k ranks each row\'s paired column', function()
    local sim = nn.tensor({ { 0.9, 0.1, 0.0 }, { 0.8, 0.5, 0.1 }, { 0.2, 0.9, 0.3 } })
    -- ranks of the pairs: 1, 2, 2
    local r = mm.recall_at_k(sim, { 1, 2 })
    assert.near(1 / 3, r[1], 1e-6)
    assert.near(1, r[2], 1e-6)
    -- by class: row 2 (class 1) finds class-1 column 1 first
    local by_class = mm.recall_at_k(sim, { 1 }, nn.tensor({ 1, 1, 2 }):long(), nn.tensor({ 1, 1, 2 }):long())
    assert.near(2 / 3, by_class[1], 1e-6) -- row 3 (class 2) finds column 2 (class 1) first
  end)

  it('MultiTask shares a trunk and weights the task losses', function()
    nn.manual_seed(1)
    local m = mm.MultiTask(nn.Linear(4, 6), { fine = nn.Linear(6, 3), coarse = nn.Linear(6, 2) },
      { weights = { coarse = 0.5 } })
    local out = m(nn.randn(5, 4))
    assert.same({ 5, 3 }, out.fine.shape)
    assert.same({ 5, 2 }, out.coarse.shape)
    local lf = nn.cross_entropy(out.fine, nn.tensor({ 1, 2, 3, 1, 2 }):long())
    local lc = nn.cross_entropy(out.coarse, nn.tensor({ 1, 2, 1, 1, 2 }):long())
    local total, parts = m:loss({ fine = lf, coarse = lc })
    assert.near(lf:item() + 0.5 * lc:item(), total:item(), 1e-5)
    assert.near(lc:item(), parts.coarse, 1e-6)
    total:backward()
    for name, p in m:named_parameters() do assert(p.grad, name .. ' has no gradient') end
  end)

  it('ViT returns its last attention map on request', function()
    local vit = nn.ViT { image_size = 8, patch_size = 4, dim = 8, depth = 1, heads = 2,
                         mlp_dim = 16, num_classes = 3 }
    local logits, att = vit(nn.randn(2, 1, 8, 8), true)
    assert.same({ 2, 3 }, logits.shape)
    assert.same({ 2, 5, 5 }, att.shape)
    assert.tensor_near(nn.ones(2, 5), att:sum(3), 1e-5, 1e-5)
  end)
end)
