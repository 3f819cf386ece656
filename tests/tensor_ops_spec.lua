-- masked_select and x[mask], nonzero, argsort, unique, einsum, cumprod,
-- logcumsumexp, clamp with tensor bounds and EmbeddingBag against PyTorch
-- 1.13 (tests/ref/gen_tensor_ops.py -> tests/ref/tensor_ops.json): outputs
-- and gradients; finite-difference checks; argument errors.
local nn = require 'nnlua'
local cjson = require 'cjson'
local support = require 'support'

local ref = support.reference('tensor_ops')
local near = support.near

-- a fixture argument as Lua sees it; grad leaves collected depth first in
-- argument order, options by sorted key (as the generator walks them)
local function convert(a, leaves)
  if a == cjson.null then return nil end
  if type(a) == 'number' then return math.tointeger(a) or a end
  if type(a) ~= 'table' then return a end
  if a.f32 then
    local t = nn.tensor(a.f32)
    if a.grad then
      t:requires_grad_()
      leaves[#leaves + 1] = t
    end
    return t
  end
  if a.i64 then return nn.tensor(a.i64, 'i64') end
  local keys, out = {}, {}
  for k in pairs(a) do keys[#keys + 1] = k end
  table.sort(keys)
  for _, k in ipairs(keys) do out[k] = convert(a[k], leaves) end
  return out
end

local function same_or_near(expected, got, what)
  if got.dtype == 'i64' then
    assert.same(expected, got:totable(), what)
  else
    near(expected, got, what, 1e-5)
  end
end

describe('tensor ops against PyTorch', function()
  for _, c in ipairs(ref.cases) do
    it(c.name, function()
      local leaves, args, n = {}, {}, #c.args
      for i = 1, n do args[i] = convert(c.args[i], leaves) end
      local outs = table.pack(nn[c.fn](table.unpack(args, 1, n)))
      for k, e in ipairs(c.outputs) do same_or_near(e, outs[k], ('output %d'):format(k)) end
      if c.grads then
        (outs[1] * nn.tensor(c.proj)):sum():backward()
        for k, g in ipairs(c.grads) do near(g, leaves[k].grad, ('gradient %d'):format(k), 1e-5) end
      end
    end)
  end
end)

describe('tensor ops', function()
  it('index with masks, keep dtypes and pass finite-difference checks', function()
    local x = nn.tensor({ { 1, 2 }, { 3, 4 }, { 5, 6 } })
    assert.same({ { 1, 2 }, { 5, 6 } }, x[nn.tensor({ 1, 0, 1 })]:totable())
    assert.same({ 4, 5, 6 }, x[x:gt(3.5)]:totable())
    local i = nn.tensor({ 3, 1, 3 }, 'i64')
    assert.same({ 3, 3 }, i:masked_select(i:gt(2)):totable())
    assert.equal('i64', i:unique().dtype)
    nn.manual_seed(4)
    local function req(...) return nn.randn(...):requires_grad_() end
    assert(nn.gradcheck(function(a) return a:cumprod(2) end, { req(3, 4) }))
    assert(nn.gradcheck(function(a) return a:cumprod(1) end, { nn.tensor({ { 1.5, 0 }, { 0, 2 }, { -1, 3 } }):requires_grad_() }))
    assert(nn.gradcheck(function(a) return a:logcumsumexp(2) end, { req(2, 5) }))
    assert(nn.gradcheck(function(a, b) return nn.einsum('bij,bkj->bik', a, b) end, { req(2, 3, 4), req(2, 5, 4) }))
    assert(nn.gradcheck(function(a, lo) return a:clamp(lo) end, { req(3, 4), req(4) }))
    local w = req(6, 3)
    assert(nn.gradcheck(function(ww, p)
      return nn.embedding_bag(nn.tensor({ 1, 3, 3, 6 }, 'i64'), ww, nn.tensor({ 1, 3 }, 'i64'),
        { mode = 'sum', per_sample_weights = p })
    end, { w, req(4) }))
    assert(nn.gradcheck(function(a) return a[a:detach():gt(0)] end, { req(3, 3) }))
  end)

  it('EmbeddingBag is a layer with PyTorch names; errors name the argument', function()
    nn.manual_seed(5)
    local bag = nn.EmbeddingBag(10, 4, { mode = 'max', include_last_offset = true })
    assert.matches("EmbeddingBag%(num_embeddings=10, embedding_dim=4, mode='max'", tostring(bag))
    local y = bag(nn.tensor({ 1, 2, 3 }, 'i64'), nn.tensor({ 1, 2, 4 }, 'i64'))
    assert.same({ 2, 4 }, y:size())
    assert.same(bag.weight[1]:totable(), y[1]:totable())
    local padded = nn.EmbeddingBag(5, 2, { padding_idx = 2 })
    assert.same({ 0, 0 }, padded.weight[2]:totable())
    assert.error_matches(function() nn.embedding_bag(nn.tensor({ 1, 11 }, 'i64'), nn.randn(10, 2), nn.tensor({ 1 }, 'i64')) end,
      'index 11 out of range %[1, 10%]')
    assert.error_matches(function() nn.embedding_bag(nn.tensor({ 1, 2 }, 'i64'), nn.randn(10, 2), nn.tensor({ 2 }, 'i64')) end,
      'offsets must start at 1')
    assert.error_matches(function()
      nn.embedding_bag(nn.tensor({ 1, 2 }, 'i64'), nn.randn(10, 2), nn.tensor({ 1 }, 'i64'),
        { mode = 'mean', per_sample_weights = nn.ones(2) })
    end, 'in sum mode only')
    assert.error_matches(function() nn.embedding_bag(nn.tensor({ 1, 2 }, 'i64'), nn.randn(10, 2)) end,
      'must be i64 %(B, L%) without offsets')
    assert.error_matches(function() nn.einsum('ij,jk->ik', nn.randn(2, 3), nn.randn(4, 5)) end,
      "label 'j' is 3 in one operand and 4 in the other")
    assert.error_matches(function() nn.einsum('ii->i', nn.randn(2, 2)) end, 'diagonals are not supported')
    assert.error_matches(function() nn.einsum('ij->ik', nn.randn(2, 2)) end, "output label 'k' is in no operand")
    assert.error_matches(function() nn.einsum('ijk', nn.randn(2, 2)) end, 'operand 1 has 2 dims but "ijk" names 3')
    assert.error_matches(function() nn.randn(2, 3):masked_select(nn.ones(4)) end,
      'mask 4 neither covers the leading dims of nor broadcasts to 2x3')
    assert.error_matches(function() nn.ones(2):unique({ sorted = false }) end, 'unique always sorts')
    assert.error_matches(function() nn.ones(2, 3):argsort(3) end, 'dim 3 out of range for a 2%-dim tensor')
    assert.error_matches(function() nn.ones(2):unique({ counts = true }) end, "unknown option 'counts'")
    assert.error_matches(function() nn.tensor({ 1 }, 'i64'):cumprod(1) end, 'cumprod: i64 tensors are not supported')
  end)
  it('keep_rows_ moves rows in place as index_select would pick them', function()
    nn.manual_seed(3)
    for _, idx in ipairs({ { 3, 1, 2 }, { 2, 2, 4, 1 }, { 5, 4, 3, 2, 1 }, { 1, 2, 3 }, { 4 }, {} }) do
      local x = nn.randn(5, 2, 3):transpose(2, 3) -- rows of a strided view
      local want = x:index_select(1, nn.tensor(idx, 'i64'))
      local kept = x:keep_rows_(nn.tensor(idx, 'i64'))
      assert.same({ #idx, 3, 2 }, kept:size())
      if #idx > 0 then assert.tensor_near(want, kept, 0, 0) end
    end
    local x = nn.arange(6):float():view(3, 2)
    x:keep_rows_(nn.tensor({ 3 }, 'i64'))
    assert.same({ { 4, 5 }, { 2, 3 }, { 4, 5 } }, x:totable()) -- rows past #idx stay as they were
    assert.error_matches(function() x:keep_rows_(nn.tensor({ 1, 2, 3, 1 }, 'i64')) end, '4 rows asked of a tensor with 3')
    assert.error_matches(function() x:keep_rows_(nn.tensor({ 0 }, 'i64')) end, 'index 0 out of range %[1, 3%]')
    assert.error_matches(function() x:keep_rows_(nn.tensor({ 1 })) end, 'index must be a 1%-D i64 tensor')
    assert.error_matches(function() nn.ones(2):requires_grad_():keep_rows_(nn.tensor({ 1 }, 'i64')) end,
      'requires grad')
  end)
end)
