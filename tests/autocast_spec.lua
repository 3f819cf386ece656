-- nn.autocast('bf16'): products in bf16 with f32 sums, checked against the
-- same products of bf16-rounded operands in f32; gradients reach the f32
-- master weights.
local nn = require 'nnlua'

local function round(t) return t:to('bf16'):to('f32') end

describe('bf16 products', function()
  -- both kernels when the CPU has the native one
  local chosen, kernels = nn.bf16_native(), { false }
  if pcall(nn.bf16_native, true) then kernels = { false, true } end
  nn.bf16_native(chosen)
  teardown(function() nn.bf16_native(chosen) end)

  for _, native in ipairs(kernels) do
  it('match f32 products of the rounded operands, every transpose and ragged size (native ' .. tostring(native) .. ')', function()
    nn.bf16_native(native)
    nn.manual_seed(1)
    for _, s in ipairs({ { 1, 1, 1 }, { 13, 37, 5 }, { 12, 32, 384 }, { 25, 70, 771 }, { 64, 33, 2 },
                         { 64, 40, 96 }, { 70, 64, 100 } }) do
      local m, k, n = s[1], s[2], s[3]
      local a, b = nn.randn(m, k), nn.randn(k, n)
      local at, bt = nn.randn(k, m):t(), nn.randn(n, k):t()
      for _, pair in ipairs({ { a, b }, { at, b }, { a, bt }, { at, bt } }) do
        local x, y = pair[1], pair[2]
        local want = round(x):matmul(round(y))
        local got = nn.autocast('bf16', function() return x:matmul(y) end)
        assert.equal('f32', got.dtype)
        local tol = 1e-5 * math.sqrt(k) * (want:abs():max():item() + 1)
        assert.truthy((got - want):abs():max():item() <= tol, ('%dx%dx%d'):format(m, k, n))
      end
    end
  end)
  end

  it('the vdpbf16ps kernel agrees too where AMX would be used instead', function()
    local support = require 'support'
    local script = support.tempfile([[
      local nn = require 'nnlua'
      nn.manual_seed(3)
      for _, s in ipairs({ { 13, 37, 5 }, { 25, 70, 771 }, { 40, 300, 33 } }) do
        local a, b = nn.randn(s[1], s[2]), nn.randn(s[3], s[2]):t()
        local want = a:to('bf16'):to('f32'):matmul(b:to('bf16'):to('f32'))
        local got = nn.autocast('bf16', function() return a:matmul(b) end)
        local tol = 1e-5 * math.sqrt(s[2]) * (want:abs():max():item() + 1)
        assert((got - want):abs():max():item() <= tol)
      end
      print('agreed')
    ]], '.lua')
    local out = support.run('NNLUA_BF16_KERNEL=avx512 ' .. support.exe .. ' ' .. script)
    os.remove(script)
    assert.truthy(out:find('agreed'), out)
  end)

  it('batched matmul, linear and conv2d run in bf16 inside the scope only', function()
    local a, b = nn.randn(3, 5, 7), nn.randn(7, 4)
    local plain = a:matmul(b)
    local want = round(a):matmul(round(b))
    do
      local g <close> = nn.autocast('bf16')
      assert.truthy((a:matmul(b) - want):abs():max():item() < 1e-4)
      for _, size in ipairs({ { 7, 4 }, { 64, 96 } }) do -- whole 32x32 blocks start from the bias
        local lin = nn.Linear(size[1], size[2])
        local x = nn.randn(64, size[1])
        local y = lin(x)
        local ref = nn.autocast(false, function() return nn.linear(round(x), round(lin.weight), lin.bias) end)
        assert.truthy((y - ref):abs():max():item() < 1e-4)
      end
      local conv = nn.Conv2d(2, 3, 3)
      local x = nn.randn(1, 2, 6, 6)
      local yc = conv(x)
      local rc = nn.autocast(false, function() return nn.conv2d(round(x), round(conv.weight), conv.bias) end)
      assert.truthy((yc - rc):abs():max():item() < 1e-4)
    end
    assert.tensor_near(plain, a:matmul(b), 0)
  end)

  it('attention: close to f32 forward and backward, masks and dropout alike', function()
    nn.manual_seed(4)
    local function run(ac, o)
      local q, k, v = nn.randn(2, 3, 20, 16), nn.randn(2, 3, 33, 16), nn.randn(2, 3, 33, 8)
      for _, t in ipairs({ q, k, v }) do t:requires_grad_() end
      nn.manual_seed(9)
      local y = nn.autocast(ac, function() return nn.attention(q, k, v, o) end)
      local w = nn.randn(2, 3, 20, 8)
      ;(y * w):sum():backward()
      return y, q.grad, k.grad, v.grad
    end
    local mask = nn.randn(20, 33) * 0.5
    for _, o in ipairs({ {}, { causal = true }, { mask = mask }, { dropout = 0.2, training = true } }) do
      nn.manual_seed(1)
      local ref = table.pack(run(false, o))
      nn.manual_seed(1)
      local got = table.pack(run('bf16', o))
      for i = 1, 4 do
        local scale = ref[i]:abs():max():item() + 1e-3
        local err = (got[i] - ref[i]):abs():max():item() / scale
        assert.truthy(err < 0.03, ('output %d relative error %g'):format(i, err))
      end
    end
  end)

  it('trains: gradients reach the f32 weights, close to the f32 ones', function()
    nn.manual_seed(2)
    local lin = nn.Linear(16, 8)
    local x = nn.randn(32, 16)
    lin(x):pow(2):mean():backward()
    local g32 = lin.weight.grad:clone()
    lin:zero_grad()
    nn.autocast('bf16', function() lin(x):pow(2):mean():backward() end)
    assert.equal('f32', lin.weight.grad.dtype)
    local rel = (lin.weight.grad - g32):abs():max():item() / g32:abs():max():item()
    assert.truthy(rel < 0.02, rel)
  end)

  it('restores the setting after an error and refuses other dtypes', function()
    assert.has_error(function() nn.autocast('bf16', function() error('boom') end) end)
    local a = nn.randn(4, 4)
    assert.tensor_near(a:matmul(a), a:matmul(a), 0)
    assert.error_matches(function() nn.autocast('f16') end, 'bf16')
    assert.error_matches(function() nn.autocast(42) end, "'bf16'")
    assert.is_boolean(nn.bf16_native())
  end)
end)
