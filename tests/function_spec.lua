-- nn.autograd.Function: differentiable functions written in Lua.
local nn = require 'nnlua'

describe('nn.autograd.Function', function()
  local Scale = nn.autograd.Function('Scale')
  function Scale.forward(ctx, x, k)
    ctx:save_for_backward(x)
    ctx.k = k
    return x * k
  end
  function Scale.backward(ctx, g) return g * ctx.k, nil end

  it('records its Lua backward, names its node and passes gradcheck', function()
    local x = nn.randn(3, 2):requires_grad_()
    local y = Scale(x, 3)
    assert.equal('Scale', y.grad_fn)
    y:sum():backward()
    assert.tensor_near(nn.full({ 3, 2 }, 3), x.grad)
    assert.truthy(nn.gradcheck(function(a) return Scale.apply(a, -2) end, { nn.randn(4):requires_grad_() }))
  end)

  it('has several outputs, needs_input_grad and non-tensor arguments', function()
    local SplitMul = nn.autograd.Function('SplitMul')
    local needs
    function SplitMul.forward(ctx, a, b, label)
      needs = ctx.needs_input_grad
      assert.equal('hi', label)
      ctx:save_for_backward(a, b)
      return a * b, a + b, 'done'
    end
    function SplitMul.backward(ctx, g1, g2)
      local a, b = table.unpack(ctx.saved_tensors)
      return g1 * b + g2, g1 * a + g2, nil
    end
    local a, b = nn.randn(3):requires_grad_(), nn.randn(3)
    local p, s, tag = SplitMul(a, b, 'hi')
    assert.same({ true, false, false }, needs)
    assert.equal('done', tag)
    ;(p * 2 + s):sum():backward()
    assert.tensor_near(b * 2 + 1, a.grad, 1e-6)
    local ok, msg = nn.gradcheck(function(x, y) local u, v = SplitMul(x, y, 'hi'); return { u, v } end,
      { nn.randn(3):requires_grad_(), nn.randn(3):requires_grad_() })
    assert.truthy(ok, msg)
  end)

  it('gives zeros for an output no gradient reached, unless told not to', function()
    local Two = nn.autograd.Function('Two')
    local got
    function Two.forward(ctx, x) return x * 1, x * 2 end
    function Two.backward(ctx, g1, g2) got = g2; return g1 + (g2 or 0) end
    local x = nn.randn(2):requires_grad_()
    local u = Two(x)
    u:sum():backward()
    assert.tensor_near(nn.zeros(2), got, 0)
    local Raw = nn.autograd.Function('Raw')
    function Raw.forward(ctx, x) ctx:set_materialize_grads(false); return x * 1, x * 2 end
    function Raw.backward(ctx, g1, g2) got = g2; return g1 end
    Raw(x):sum():backward()
    assert.is_nil(got)
  end)

  it('checks saved tensors against in-place changes, as built-in ops do', function()
    local Sq = nn.autograd.Function('Square')
    function Sq.forward(ctx, x) ctx:save_for_backward(x); return x * x end
    function Sq.backward(ctx, g) return g * 2 * ctx.saved_tensors[1] end
    local base = nn.randn(3)
    local x = base:clone():requires_grad_()
    local inner = x * 1
    local y = Sq(inner)
    inner:detach():add_(1)
    assert.error_matches(function() y:sum():backward() end, 'saved by Square .*modified in place')
    local y2 = Sq(x * 1)
    y2:sum():backward({ retain_graph = false })
    assert.error_matches(function() y2:sum():backward() end, 'second time')
  end)

  it('refuses wrong gradients with the function, the argument and the shapes', function()
    local Bad = nn.autograd.Function('Bad')
    function Bad.forward(ctx, x) return x * 2 end
    function Bad.backward(ctx, g) return nn.zeros(5) end
    local x = nn.randn(3):requires_grad_()
    assert.error_matches(function() Bad(x):sum():backward() end,
      'Bad.backward returned a gradient of shape 5 for argument 1 of shape 3')
    local Worse = nn.autograd.Function('Worse')
    function Worse.forward(ctx, x) return x * 2 end
    function Worse.backward(ctx, g) return 'g' end
    assert.error_matches(function() Worse(x):sum():backward() end, 'returned a string for argument 1')
    local Undefined = nn.autograd.Function('Undefined')
    assert.error_matches(function() Undefined(x) end, 'Undefined.forward is not defined')
    assert.error_matches(function() nn.autograd.Function(3) end, 'expected a name')
  end)

  it('passes results through when nothing requires grad, and returns inputs as new tensors', function()
    local Id = nn.autograd.Function('Id')
    function Id.forward(ctx, x) return x end
    function Id.backward(ctx, g) return g end
    local plain = nn.randn(2)
    assert.equal(plain, Id(plain))
    local x = nn.randn(2):requires_grad_()
    local y = Id(x)
    assert.are_not.equal(x, y)
    y:sum():backward()
    assert.tensor_near(nn.ones(2), x.grad)
  end)

  it('a straight-through estimator trains a quantised layer', function()
    local Round = nn.autograd.Function('RoundSTE')
    function Round.forward(ctx, x) return x:round() end
    function Round.backward(ctx, g) return g end
    nn.manual_seed(5)
    local w = nn.randn(4, 1):requires_grad_()
    local x = nn.randn(64, 4)
    local target = x:matmul(nn.tensor({ { 2 }, { -1 }, { 0 }, { 3 } }))
    local opt = nn.optim.SGD({ w }, { lr = 0.05 })
    local first
    for step = 1, 200 do
      opt:zero_grad()
      local loss = ((x:matmul(Round(w)) - target) ^ 2):mean()
      first = first or loss:item()
      loss:backward()
      opt:step()
    end
    local final = ((x:matmul(w:round()) - target) ^ 2):mean():item()
    assert.truthy(final < 1e-6 and first > 1, ('loss %g -> %g'):format(first, final))
  end)
end)
