-- Tensor gradient hooks, nn.autograd.grad, module backward hooks and
-- activation checkpointing.
local nn = require 'nnlua'

local function live_after(fn)
  collectgarbage(); collectgarbage()
  local base = nn.live_bytes()
  fn()
  collectgarbage(); collectgarbage()
  nn.zeros(1) -- a call that frees the callbacks the engine dropped
  collectgarbage(); collectgarbage()
  return nn.live_bytes() - base
end

describe('tensor hooks', function()
  it('run in order on a leaf, see the summed gradient and may replace it', function()
    local x = nn.tensor({ 1, 2, 3 }):requires_grad_()
    local order, seen = {}, nil
    x:register_hook(function(g) order[#order + 1] = 'a'; seen = g:clone(); return g * 10 end)
    x:register_hook(function(g) order[#order + 1] = 'b'; return g + 1 end)
    local y = x * 2 + x * 3 -- two paths: the hook sees their sum, once
    y:sum():backward()
    assert.same({ 'a', 'b' }, order)
    assert.tensor_near({ 5, 5, 5 }, seen)
    assert.tensor_near({ 51, 51, 51 }, x.grad)
  end)

  it('on a non-leaf see the gradient flowing through it and change what reaches the inputs', function()
    local x = nn.tensor({ 1, 2 }):requires_grad_()
    local y = x * x
    local seen
    y:register_hook(function(g) seen = g:clone(); return g * 0 end)
    local z = (y * 3):sum()
    z:backward()
    assert.tensor_near({ 3, 3 }, seen)
    assert.tensor_near({ 0, 0 }, x.grad)
  end)

  it('stop when removed, and a <close> handle removes its hook', function()
    local x = nn.tensor({ 1 }):requires_grad_()
    local calls = 0
    local h = x:register_hook(function() calls = calls + 1 end)
    ;(x * 1):sum():backward()
    h:remove()
    h:remove()
    ;(x * 1):sum():backward()
    do
      local h2 <close> = x:register_hook(function() calls = calls + 10 end)
      ;(x * 1):sum():backward()
    end
    ;(x * 1):sum():backward()
    assert.equal(11, calls)
  end)

  it('raise clear errors', function()
    local x = nn.tensor({ 1, 2 }):requires_grad_()
    assert.error_matches(function() nn.zeros(2):register_hook(function() end) end,
      'does not require grad')
    assert.error_matches(function() x:register_hook(5) end, 'function expected')
    local y = x * 2
    y:register_hook(function() error('boom') end)
    assert.error_matches(function() y:sum():backward() end, 'boom')
    local z = x * 2
    z:register_hook(function() return nn.zeros(3) end)
    assert.error_matches(function() z:sum():backward() end, 'returned a 3 gradient for a 2 tensor')
    local w = x * 2
    w:register_hook(function() return 'no' end)
    assert.error_matches(function() w:sum():backward() end, 'returned a string')
  end)

  it('do not keep a graph alive after backward, even when they capture their tensor', function()
    local leaked = live_after(function()
      for _ = 1, 20 do
        local x = nn.randn(200, 100):requires_grad_()
        local y = (x * 2):tanh()
        y:register_hook(function(g) local _ = y; return g end)
        y:sum():backward()
      end
    end)
    assert.truthy(leaked <= 16, leaked .. ' bytes left')
  end)
end)

describe('nn.autograd.grad', function()
  it('returns the gradients of chosen inputs and leaves .grad alone', function()
    local x = nn.tensor({ 1, 2, 3 }):requires_grad_()
    local w = nn.tensor({ 2, 2, 2 }):requires_grad_()
    local y = x * x * w
    local gy = y * 1 -- a non-leaf input
    local gx, gw = nn.autograd.grad(gy:sum(), { x, w })
    assert.tensor_near({ 4, 8, 12 }, gx)
    assert.tensor_near({ 1, 4, 9 }, gw)
    assert.is_nil(x.grad)
    assert.is_nil(w.grad)
    local gmid = nn.autograd.grad((y * 3):sum(), y)
    assert.tensor_near({ 3, 3, 3 }, gmid)
  end)

  it('leaves the nodes it did not need as they were', function()
    local x = nn.tensor({ 1, 2 }):requires_grad_()
    local w = nn.tensor({ 0, 1 }):requires_grad_()
    local loss = (x * x):sum() + w:exp():sum()
    assert.tensor_near({ 2, 4 }, nn.autograd.grad(loss, x)) -- runs the x branch only
    assert.tensor_near({ 1, math.exp(1) }, nn.autograd.grad(loss, w)) -- exp's saved output intact
  end)

  it('takes as many inputs as a model has parameters', function()
    local xs, sum = {}, nil
    for i = 1, 300 do
      xs[i] = nn.tensor({ i }):requires_grad_()
      local term = xs[i] * xs[i]
      sum = sum and sum + term or term
    end
    local gs = table.pack(nn.autograd.grad(sum:sum(), xs))
    assert.equal(300, gs.n)
    assert.tensor_near({ 600 }, gs[300])
  end)

  it('takes grad_outputs and several outputs, and names unused inputs', function()
    local x = nn.tensor({ 1, 2 }):requires_grad_()
    local u = nn.tensor({ 5 }):requires_grad_()
    local a, b = x * 2, x * x
    local g = nn.autograd.grad({ a, b }, x, { grad_outputs = { nn.ones(2), nn.tensor({ 1, 10 }) } })
    assert.tensor_near({ 4, 42 }, g)
    assert.error_matches(function() nn.autograd.grad((x * 1):sum(), { x, u }) end,
      'input 2 was not used')
    local g1, g2 = nn.autograd.grad((x * 1):sum(), { x, u }, { allow_unused = true })
    assert.tensor_near({ 1, 1 }, g1)
    assert.is_nil(g2)
    assert.error_matches(function() nn.autograd.grad((x * 1):sum(), x, { bogus = 1 }) end,
      "unknown option 'bogus'")
  end)
end)

describe('module backward hooks', function()
  it('see grad_input and grad_output, pre-hooks first, and may replace grad_input', function()
    local lin = nn.Linear(3, 2)
    local x = nn.randn(4, 3):requires_grad_()
    local order, gin, gout = {}, nil, nil
    lin:register_full_backward_pre_hook(function(m, go) order[#order + 1] = 'pre'; assert.equal(lin, m) end)
    local h = lin:register_full_backward_hook(function(m, gi, go)
      order[#order + 1] = 'post'
      gin, gout = gi, go
      return { gi[1] * 2 }
    end)
    lin(x):sum():backward()
    assert.same({ 'pre', 'post' }, order)
    assert.equal(1, gin.n)
    assert.tensor_near(nn.ones(4, 2), gout[1])
    local expect = nn.ones(4, 2):matmul(lin.weight)
    assert.tensor_near(expect * 2, x.grad, 1e-5)
    h:remove()
  end)

  it('run with an empty grad_input when no argument requires grad (Lua Module)', function()
    local seq = nn.Sequential(nn.Linear(3, 3), nn.Tanh())
    local got
    seq:register_full_backward_hook(function(_, gi, go) got = { gi.n, go.n } end)
    seq(nn.randn(2, 3)):sum():backward()
    assert.same({ 0, 1 }, got)
  end)

  it('global backward hooks see every module', function()
    local names = {}
    do
      local h <close> = nn.register_module_full_backward_hook(function(m) names[#names + 1] = m:_typename() end)
      local x = nn.randn(2, 3):requires_grad_()
      nn.Sequential(nn.Linear(3, 2), nn.ReLU())(x):sum():backward()
    end
    table.sort(names)
    assert.same({ 'Linear', 'ReLU', 'Sequential' }, names)
  end)
end)

describe('nn.utils.checkpoint', function()
  it('gives the results and gradients of the plain call, dropout included', function()
    nn.manual_seed(3)
    local block = nn.Sequential(nn.Linear(4, 8), nn.GELU(), nn.Dropout(0.3), nn.Linear(8, 4))
    local x = nn.randn(5, 4)
    local function run(ckpt)
      for _, p in ipairs(block:parameters()) do p.grad = nil end
      local xi = x:clone():requires_grad_()
      nn.manual_seed(11)
      local y = ckpt and nn.utils.checkpoint(block, xi) or block(xi)
      local loss = (y * y):sum()
      loss:backward()
      local grads = {}
      for i, p in ipairs(block:parameters()) do grads[i] = p.grad:clone() end
      return y:detach(), xi.grad, grads
    end
    local y1, gx1, gp1 = run(false)
    local y2, gx2, gp2 = run(true)
    assert.tensor_near(y1, y2, 0)
    assert.tensor_near(gx1, gx2, 1e-6)
    for i = 1, #gp1 do assert.tensor_near(gp1[i], gp2[i], 1e-6) end
  end)

  it('keeps no intermediate results of fn for backward', function()
    local lin = nn.Linear(256, 256)
    local x = nn.randn(64, 256):requires_grad_()
    local function deep(a) for _ = 1, 8 do a = lin(a):tanh() end return a end
    local function kept(ckpt)
      collectgarbage(); collectgarbage()
      local base = nn.live_bytes()
      local y = ckpt and nn.utils.checkpoint(deep, x) or deep(x)
      collectgarbage(); collectgarbage()
      local held = nn.live_bytes() - base
      y:sum():backward()
      return held
    end
    local plain, ckpt = kept(false), kept(true)
    assert.truthy(ckpt < plain / 4, ('checkpointed %d bytes, plain %d'):format(ckpt, plain))
  end)
end)
