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

  it('max_pool2d 2x2 stride 2 (its fast path) picks the first NaN, else the first largest', function()
    nn.manual_seed(3)
    -- small integers make ties; NaN and -inf in places; odd sizes leave a row and a column out
    local x = (nn.randn(2, 3, 7, 9) * 2):round()
    local v = x:totable()
    v[1][1][1][2], v[1][2][3][3], v[2][3][5][6], v[2][3][5][5] = 0 / 0, 0 / 0, 0 / 0, 0 / 0
    v[1][1][3][1], v[1][1][3][2], v[1][1][4][1], v[1][1][4][2] = -math.huge, -math.huge, -math.huge, -math.huge
    x = nn.tensor(v):requires_grad_()
    local y, idx = nn.max_pool2d(x, 2, { return_indices = true })
    assert.same({ 2, 3, 3, 4 }, y:size())
    local yv, iv = y:totable(), idx:totable()
    for n = 1, 2 do
      for c = 1, 3 do
        for oy = 1, 3 do
          for ox = 1, 4 do
            local best, at, nan_at = -math.huge, (2 * oy - 2) * 9 + 2 * ox - 2, nil
            for dy = 0, 1 do
              for dx = 0, 1 do
                local a = v[n][c][2 * oy - 1 + dy][2 * ox - 1 + dx]
                local i = (2 * oy - 2 + dy) * 9 + 2 * ox - 2 + dx
                if a ~= a then nan_at = nan_at or i elseif a > best then best, at = a, i end
              end
            end
            local want = (nan_at or at) + 1 -- indices count from 1
            assert.equal(want, iv[n][c][oy][ox], ('index at %d %d %d %d'):format(n, c, oy, ox))
            local got = yv[n][c][oy][ox]
            if nan_at then assert(got ~= got) else assert.equal(best, got) end
          end
        end
      end
    end
    local g = nn.randn(2, 3, 3, 4)
    y:backward(g)
    local dx, gv = x.grad:totable(), g:totable()
    for n = 1, 2 do
      for c = 1, 3 do
        for oy = 1, 3 do
          for ox = 1, 4 do
            local i = iv[n][c][oy][ox] - 1
            assert.equal(gv[n][c][oy][ox], dx[n][c][i // 9 + 1][i % 9 + 1])
          end
        end
      end
    end
    assert.equal(0, x.grad:select(3, 7):abs():sum():item()) -- the left-out row
  end)
end)
