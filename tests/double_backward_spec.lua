-- Double backward: gradgradcheck over every op with one, a WGAN-GP
-- penalty and a Hessian-vector product against PyTorch 1.13
-- (tests/ref/double_backward.json, made by tests/ref/gen_double_backward.py).
local nn = require 'nnlua'
local cjson = require 'cjson'
local support = require 'support'

local function r(...) return nn.randn(...):requires_grad_() end

local function check(fn, inputs)
  local ok, msg = nn.gradgradcheck(fn, inputs, { atol = 2e-3, rtol = 2e-2 })
  assert(ok, msg)
end

describe('gradgradcheck', function()
  local away = nn.tensor({ { 0.25, 1.3, -0.7, 2.2 }, { -1.8, 0.6, 3.1, -0.35 } })
  local third = { gelu_deriv = true, silu_deriv = true, gelu_tanh_deriv = true, elu_deriv = true,
    softplus_deriv = true, mish_deriv = true, hardswish_deriv = true }
  for _, op in ipairs(nn.op_table().unary) do
    local name = op.name
    if not third[name] then
      it(name, function()
        local x = away:clone()
        if name == 'log' or name == 'sqrt' or name == 'rsqrt' or name == 'log1p' then x = x:abs() + 0.5 end
        check(function(a)
          if name == 'clamp' then return a:clamp(0.5, 1.4) end
          return a[name](a)
        end, { x:requires_grad_() })
      end)
    end
  end

  it('the derivative ops of gelu and silu refuse a third derivative clearly', function()
    local x = r(3)
    local g = nn.autograd.grad(x:gelu():sum(), x, { create_graph = true })
    assert.truthy(nn.autograd.grad(g:sum(), x, { retain_graph = true })) -- the second derivative
    assert.error_matches(function() nn.autograd.grad(g:sum(), x, { create_graph = true }) end,
      'gelu_deriv has no double backward')
  end)

  it('every differentiable binary op, with broadcasting', function()
    local flat = { floor_divide = true, eq = true, ne = true, lt = true, le = true, gt = true, ge = true }
    for _, name in ipairs(nn.op_table().binary) do
      if not flat[name] then
        check(function(a, b) return a[name](a, b) end,
          { (nn.rand(2, 3) + 0.5):requires_grad_(), (nn.rand(3) + 0.5):requires_grad_() })
      end
    end
  end)

  local cases = {
    { 'matmul', function(a, b) return a:matmul(b) end, { r(2, 3, 4), r(4, 5) } },
    { 'linear', function(x, w, b) return nn.linear(x, w, b) end, { r(2, 3, 4), r(5, 4), r(5) } },
    { 'sum and mean', function(x) return x:sum(2) * x:mean() end, { r(3, 4) } },
    { 'var, std and logsumexp', function(x) return x:var(2) + x:std() + x:logsumexp(2) end, { r(3, 4) } },
    { 'max over a dim', function(x) return x:max(2, true) * x end, { r(3, 4) } },
    { 'softmax', function(x) return x:softmax(2) end, { r(3, 4) } },
    { 'log_softmax', function(x) return x:log_softmax(1) end, { r(3, 4) } },
    { 'cumsum', function(x) return x:cumsum(2) * x end, { r(3, 4) } },
    { 'cross_entropy', function(z)
        return nn.cross_entropy(z, nn.tensor({ 1, 3, 2 }):long())
      end, { r(3, 4) } },
    { 'cross_entropy with weights, smoothing, no reduction', function(z)
        return nn.cross_entropy(z, nn.tensor({ 1, 3, 2 }):long(),
          { weight = nn.tensor({ 1, 2, 0.5, 1 }), label_smoothing = 0.1, reduction = 'none' })
      end, { r(3, 4) } },
    { 'layer_norm', function(x, w, b) return nn.layer_norm(x, 1, w, b) end, { r(3, 4), r(4), r(4) } },
    { 'rms_norm', function(x, w) return nn.rms_norm(x, 1, w) end, { r(3, 4), r(4) } },
    { 'attention', function(q, k, v) return nn.attention(q, k, v) end, { r(1, 2, 3, 4), r(1, 2, 3, 4), r(1, 2, 3, 4) } },
    { 'attention, causal', function(q, k, v) return nn.attention(q, k, v, { causal = true }) end,
      { r(1, 2, 3, 4), r(1, 2, 5, 4), r(1, 2, 5, 4) } },
    { 'views and joins', function(a, b)
        return nn.cat({ a:t():reshape(12):narrow(1, 2, 5), b:select(1, 1) }, 1):exp() * a:sum()
      end, { r(3, 4), r(2, 3) } },
    { 'unbind', function(a)
        local p = a:unbind(1)
        return p[1] * p[3] + p[1]:exp()
      end, { r(3, 4) } },
    { 'where, masked_fill, gather', function(a)
        local m = nn.tensor({ { 1, 0, 1, 0 }, { 0, 0, 1, 1 }, { 1, 1, 0, 0 } })
        local idx = nn.tensor({ { 1 }, { 3 }, { 2 } }):long()
        return nn.where(m, a * a, a:exp()):masked_fill(m, 0.5) * a:gather(2, idx)
      end, { r(3, 4) } },
  }
  for _, c in ipairs(cases) do
    it(c[1], function() check(c[2], c[3]) end)
  end

  it('a Lua Function with a backward of engine ops', function()
    local Cube = nn.autograd.Function('Cube')
    function Cube.forward(ctx, x) ctx:save_for_backward(x); return x * x * x end
    function Cube.backward(ctx, g) local x = ctx.saved_tensors[1]; return g * 3 * x * x end
    check(function(a) return Cube(a) end, { r(4) })
    -- its output feeding a nonlinearity: the second pass runs its Lua backward again
    check(function(a) return Cube(a):tanh() end, { (nn.rand(4) * 0.8):requires_grad_() })
  end)

  it('an op without a double backward says so', function()
    local x = r(2, 3)
    local y = x:prod()
    assert.error_matches(function() y:backward({ create_graph = true }) end, 'prod has no double backward')
  end)
end)

describe('second derivatives against PyTorch 1.13', function()
  local ref = cjson.decode(support.read('tests/ref/double_backward.json'))

  it('WGAN-GP gradient penalty and its weight gradients', function()
    local w = ref.wgan
    local l1, ln, l2 = nn.Linear(6, 16), nn.LayerNorm(16), nn.Linear(16, 1)
    local params = { ['l1.weight'] = l1.weight, ['l1.bias'] = l1.bias, ['ln.weight'] = ln.weight,
      ['ln.bias'] = ln.bias, ['l2.weight'] = l2.weight, ['l2.bias'] = l2.bias }
    nn.no_grad(function()
      for k, p in pairs(params) do p:copy_(nn.tensor(w.params[k])) end
    end)
    local eps = nn.tensor(w.eps)
    local x_hat = (eps * nn.tensor(w.real) + (1 - eps) * nn.tensor(w.fake)):requires_grad_()
    local out = l2(ln(l1(x_hat):tanh()))
    local g = nn.autograd.grad(out:sum(), x_hat, { create_graph = true })
    local penalty = ((g:norm(2, 2) - 1) ^ 2):mean()
    assert.near(w.penalty, penalty:item(), 1e-5 * math.max(1, math.abs(w.penalty)))
    penalty:backward()
    for k, p in pairs(params) do
      local expect = nn.tensor(w.grads[k])
      if expect:abs():max():item() == 0 then -- does not reach the input gradient
        assert.truthy(p.grad == nil or p.grad:abs():max():item() == 0, k)
      else
        assert.tensor_near(expect, p.grad, 1e-4)
      end
    end
  end)

  it('a Hessian-vector product', function()
    local h = ref.hvp
    local x = nn.tensor(h.x):requires_grad_()
    local f = ((x:matmul(nn.tensor(h.W))):softmax(2) * nn.tensor(h.c)):sum()
    local gx = nn.autograd.grad(f, x, { create_graph = true })
    local hv = nn.autograd.grad((gx * nn.tensor(h.v)):sum(), x)
    assert.tensor_near(nn.tensor(h.hv), hv, 1e-4)
  end)

  it('backward{create_graph = true} leaves differentiable .grad on the leaves', function()
    local x = nn.tensor({ 1, 2, 3 }):requires_grad_()
    ;(x * x * x):sum():backward({ create_graph = true })
    assert.truthy(x.grad.requires_grad)
    local gg = nn.autograd.grad(x.grad:sum(), x)
    assert.tensor_near({ 6, 12, 18 }, gg) -- d/dx sum(3x^2)
    x.grad = nil -- the gradient's history holds x: a cycle until it is cleared, as in PyTorch
  end)
end)
