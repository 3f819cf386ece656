-- Adaptive average and max pooling (engine/nn/adaptive.c), and windowed
-- pooling with ceil_mode and max indices (engine/nn/pool.c), against PyTorch
-- 1.13 (tests/ref/gen_pool.py -> tests/ref/pool.json): outputs, input
-- gradients and max indices, divisible and overlapping windows, 3-d and
-- 4-d inputs; finite differences; the layers and their errors.
local nn = require 'nnlua'
local support = require 'support'

local near = support.near
local ref = support.reference('pool')


describe('adaptive pooling', function()
  for i, c in ipairs(ref.cases) do
    it(('%d: %s to %dx%d against PyTorch'):format(i, c.kind, c.size[1], c.size[2]), function()
      local x = nn.tensor(c.x):requires_grad_()
      local y, idx
      if c.kind == 'avg' then
        y = nn.adaptive_avg_pool2d(x, c.size)
      else
        y, idx = nn.adaptive_max_pool2d(x, c.size, { return_indices = true })
        assert.same(c.indices, idx:totable())
      end
      near(c.output, y, 'output')
      ;(y * nn.tensor(c.proj)):sum():backward()
      near(c.grad, x.grad, 'gradient')
    end)
  end

  for i, c in ipairs(ref.windowed) do
    it(('%d: %s_pool2d %d stride %d padding %d, ceil_mode, against PyTorch'):format(i, c.kind, c.kernel,
      c.stride, c.padding), function()
      local x = nn.tensor(c.x):requires_grad_()
      local o = { stride = c.stride, padding = c.padding, ceil_mode = true }
      local y, idx
      if c.kind == 'max' then
        o.return_indices = true
        y, idx = nn.max_pool2d(x, c.kernel, o)
        assert.same(c.indices, idx:totable())
        local layer_y, layer_idx = nn.MaxPool2d(c.kernel, o)(x)
        assert.same(y:totable(), layer_y:totable())
        assert.same(idx:totable(), layer_idx:totable())
      else
        y = nn.avg_pool2d(x, c.kernel, o)
      end
      near(c.output, y, 'output')
      ;(y * nn.tensor(c.proj)):sum():backward()
      near(c.grad, x.grad, 'gradient')
    end)
  end

  it('passes finite-difference checks', function()
    nn.manual_seed(3)
    assert(nn.gradcheck(function(x) return nn.adaptive_avg_pool2d(x, { 2, 3 }) end,
      { nn.randn(2, 2, 5, 7):requires_grad_() }))
    assert(nn.gradcheck(function(x) return nn.max_pool2d(x, 3, { stride = 2, padding = 1, ceil_mode = true }) end,
      { nn.randn(1, 2, 6, 5):requires_grad_() }))
    assert(nn.gradcheck(function(x) return nn.avg_pool2d(x, 2, { stride = 2, ceil_mode = true }) end,
      { nn.randn(1, 2, 5, 5):requires_grad_() }))
    assert(nn.gradcheck(function(x) return nn.adaptive_max_pool2d(x, 2) end,
      { nn.randn(1, 3, 5, 5):requires_grad_() }))
  end)

  it('works as layers, and rejects bad sizes and inputs by name', function()
    local avg, max = nn.AdaptiveAvgPool2d(1), nn.AdaptiveMaxPool2d({ 2, 1 }, { return_indices = true })
    assert.equal('AdaptiveAvgPool2d(output_size=(1, 1))', tostring(avg))
    local x = nn.randn(2, 3, 6, 4)
    assert.same({ 2, 3, 1, 1 }, avg(x):size())
    assert.near(x[1][2]:mean():item(), avg(x)[1][2][1][1], 1e-6)
    local y, idx = max(x)
    assert.same({ 2, 3, 2, 1 }, y:size())
    assert.equal('i64', idx.dtype)
    assert.error_matches(function() nn.AdaptiveAvgPool2d(0) end, 'output_size must be positive')
    assert.error_matches(function() nn.AdaptiveMaxPool2d(2, { return_indice = true }) end,
      "unknown option 'return_indice'")
    assert.error_matches(function() nn.adaptive_avg_pool2d(nn.randn(4, 4), 2) end,
      'expects %(N, C, H, W%) or %(C, H, W%), got 4x4')
    assert.error_matches(function() nn.adaptive_max_pool2d(nn.ones(1, 2, 2, 'i64'), 1) end,
      'expects an f32 input, got i64')
    assert.error_matches(function() nn.adaptive_avg_pool2d(nn.randn(1, 1, 0, 3), 1) end, 'empty')
  end)
end)
