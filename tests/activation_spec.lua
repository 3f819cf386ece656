-- ELU, Softplus, Mish, Hardswish, Hardsigmoid, PReLU and GLU against
-- PyTorch 1.13 (tests/ref/gen_act.py -> tests/ref/act.json): outputs,
-- input gradients, PReLU's weight gradient; the layers' errors. (The
-- pointwise ones are unary table ops: tests/autograd_spec.lua and
-- tests/double_backward_spec.lua check their first and second
-- derivatives by finite differences.)
local nn = require 'nnlua'
local support = require 'support'

local near = support.near
local ref = support.reference('act')


describe('activations against PyTorch', function()
  for i, c in ipairs(ref.cases) do
    it(('%d: %s(%s)'):format(i, c.layer, table.concat(c.args, ', ')), function()
      local args = {}
      for k, a in ipairs(c.args) do args[k] = math.tointeger(a) or a end
      local layer = nn[c.layer](table.unpack(args))
      if c.weight then layer.weight = nn.tensor(c.weight):requires_grad_() end
      local x = nn.tensor(c.x):requires_grad_()
      local y = layer(x)
      near(c.output, y, 'output')
      ;(y * nn.tensor(c.proj)):sum():backward()
      near(c.grad, x.grad, 'input gradient')
      if c.weight_grad then near(c.weight_grad, layer.weight.grad, 'weight gradient') end
    end)
  end

  it('prints as PyTorch, checks its arguments, and the functions agree with the layers', function()
    assert.equal('ELU(alpha=0.5)', tostring(nn.ELU(0.5)))
    assert.equal('Softplus(beta=2.0, threshold=3.0)', tostring(nn.Softplus(2, 3)))
    assert.equal('PReLU(num_parameters=3)', tostring(nn.PReLU(3)))
    assert.equal(1, #nn.PReLU():parameters())
    assert.error_matches(function() nn.Softplus(0) end, 'beta must be positive')
    assert.error_matches(function() return nn.ones(2):softplus(-1) end, 'beta must be positive')
    assert.error_matches(function() nn.PReLU(3)(nn.randn(2, 4)) end,
      'prelu: weight 3 must have 1 value or one per channel of 2x4')
    assert.error_matches(function() nn.GLU()(nn.randn(2, 3)) end, 'odd size')
    assert.error_matches(function() nn.glu(nn.randn(2, 4), 3) end, 'glu over dim 3 of a 2%-dim input')
    assert.error_matches(function() nn.GLU(0) end, 'dims count from 1')
    local x = nn.randn(2, 6)
    assert.same(nn.GLU()(x):totable(), nn.glu(x):totable())
    assert.same(nn.PReLU()(x):totable(), nn.prelu(x, nn.full({ 1 }, 0.25)):totable())
    assert(nn.gradcheck(function(a, w) return nn.prelu(a, w) end,
      { nn.tensor({ { 0.5, -1.2, 2 }, { -0.3, 0.7, -2.5 } }):requires_grad_(), nn.tensor({ 0.2, -0.1, 0.4 }):requires_grad_() }))
    assert(nn.gradcheck(function(a) return nn.glu(a, 1) end, { nn.randn(4, 3):requires_grad_() }))
  end)
end)
