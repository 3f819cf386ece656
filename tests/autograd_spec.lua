local nn = require 'nnlua'

-- inputs away from kinks and poles, reproducible
local function input(...)
  return (nn.rand(...) * 1.6 + 0.2):requires_grad_()
end

local function check(fn, inputs, opts)
  local ok, msg = nn.gradcheck(fn, inputs, opts)
  assert(ok, msg)
end

describe('autograd', function()
  before_each(function() nn.manual_seed(11) end)

  describe('the tape', function()
    it('accumulates gradients into leaves over backward calls', function()
      local x = nn.tensor({1, 2, 3}):requires_grad_()
      local y = (x * x):sum()
      y:backward()
      assert.tensor_near({2, 4, 6}, x.grad)
      ;(x * 3):sum():backward()
      assert.tensor_near({5, 7, 9}, x.grad)
      x.grad = nil
      assert.is_nil(x.grad)
      assert.equal('sum', y.grad_fn)
      assert.is_true(x:is_leaf())
      assert.is_false(y:is_leaf())
    end)

    it('sums gradients of a tensor used twice and of broadcast inputs', function()
      local a = nn.tensor({{1, 2}, {3, 4}}):requires_grad_()
      local b = nn.tensor({10, 20}):requires_grad_()
      local y = a * b + a
      y:sum():backward()
      assert.tensor_near({{11, 21}, {11, 21}}, a.grad)
      assert.tensor_near({4, 6}, b.grad)
    end)

    it('takes an explicit gradient for non-scalar roots', function()
      local x = nn.tensor({1, 2}):requires_grad_()
      local y = x * 2
      y:backward(nn.tensor({1, 10}))
      assert.tensor_near({2, 20}, x.grad)
      assert.error_contains(function() (x * 2):backward() end, 'one-element')
      assert.error_contains(function() (x * 2):backward(nn.ones(3)) end, 'gradient of shape 3')
    end)

    it('refuses a second backward through freed buffers unless retained', function()
      local x = nn.tensor({1, 2}):requires_grad_()
      local y = (x:exp() * x):sum()
      y:backward(nil, true)
      y:backward()
      assert.error_contains(function() y:backward() end, 'a second time')
    end)

    it('detects in-place changes to tensors saved for backward', function()
      local x = nn.tensor({1, 2}):requires_grad_()
      local e = x:exp()
      local y = (e * 2):sum()
      nn.no_grad(function() e:mul_(3) end)
      assert.error_contains(function() y:backward() end, 'modified in place')
    end)

    it('refuses in-place ops on tensors that require grad', function()
      local x = nn.ones(2):requires_grad_()
      assert.error_contains(function() x:add_(1) end, 'requires grad')
      assert.error_contains(function() x[1] = 5 end, 'requires grad')
      assert.error_contains(function() (x * 2).requires_grad = false end, 'leaf')
      nn.no_grad(function() x:add_(1) end) -- the optimizer's way
      assert.tensor_near({2, 2}, x)
    end)

    it('records nothing under no_grad, in both forms', function()
      local x = nn.ones(2):requires_grad_()
      local y = nn.no_grad(function() return x * 2 end)
      assert.is_false(y.requires_grad)
      do
        local guard <close> = nn.no_grad()
        assert.is_false(nn.is_grad_enabled())
        assert.is_false((x * 2).requires_grad)
      end
      assert.is_true(nn.is_grad_enabled())
      assert.has_error(function() nn.no_grad(function() error('boom') end) end)
      assert.is_true(nn.is_grad_enabled())
      assert.is_false(x:detach().requires_grad)
      assert.error_contains(function() nn.ones(2):backward() end, 'does not require grad')
    end)

    it('survives a graph deeper than the C stack', function()
      local x = nn.tensor({1}):requires_grad_()
      local y = x
      for _ = 1, 20000 do y = y * 1 end
      y:sum():backward()
      assert.tensor_near({1}, x.grad)
      y = nil
      collectgarbage()
    end)
  end)

  describe('gradcheck of every differentiable op', function()
    -- every unary op in the engine's table; the flat ones (floor, round,
    -- ...) on inputs a finite difference cannot step across a jump from
    local away = nn.tensor({ { 0.25, 1.3, -0.7, 2.2 }, { -1.8, 0.6, 3.1, -0.35 } })
    for _, op in ipairs(nn.op_table().unary) do
      local name = op.name
      it(name .. ' (saves ' .. op.saves .. ')', function()
        if name == 'clamp' then
          check(function(x) return x:clamp(0.5, 1.4) end, { away:clone():requires_grad_() })
        elseif name == 'log' or name == 'sqrt' or name == 'rsqrt' or name == 'log1p' then
          check(function(x) return x[name](x) end, { input(3, 4) }) -- input() is positive
        else
          check(function(x) return x[name](x) end, { away:clone():requires_grad_() })
        end
      end)
    end

    it('clamp', function()
      local x = nn.tensor({ { 0.2, 0.45, 0.55, 1.0 }, { 1.3, 1.45, 1.8, -1 } }):requires_grad_()
      check(function(x) return x:clamp(0.5, 1.4) end, { x })
    end)

    it('every differentiable binary op of the table, with broadcasting', function()
      local flat = { floor_divide = true, eq = true, ne = true, lt = true, le = true, gt = true, ge = true }
      for _, name in ipairs(nn.op_table().binary) do
        if flat[name] then goto continue end
        check(function(a, b) return a[name](a, b) end, { input(2, 3), input(3) })
        check(function(a, b) return a[name](a, b) end, { input(2, 1), input(1, 3) })
        ::continue::
      end
    end)

    it('ops on non-contiguous inputs', function()
      local x = input(4, 3)
      check(function(x) return (x:t() * x:t():exp()):sum(1) end, { x })
    end)

    it('where', function()
      local c = nn.tensor({ 1, 0, 1 })
      check(function(a, b) return nn.where(c, a, b) end, { input(2, 3), input(3) })
    end)

    it('reductions over all and over dims', function()
      local x = input(2, 3, 4)
      for _, name in ipairs({ 'sum', 'mean', 'prod', 'var', 'std', 'logsumexp' }) do
        check(function(x) return x[name](x) end, { x })
        check(function(x) return x[name](x, 2) end, { x })
        check(function(x) return x[name](x, { 1, 3 }, true) end, { x })
      end
      check(function(x) return x:max() end, { x })
      check(function(x) return x:min(3, true) end, { x })
      check(function(x) return (x:max(2)) end, { x })
      for _, p in ipairs({ 2, 1, 3, 'inf' }) do
        check(function(x) return x:norm(p, 2) end, { x })
      end
      check(function(x) return x:norm() end, { x })
    end)

    it('prod with a zero in the row', function()
      local x = nn.tensor({ { 2, 0, 3 }, { 1, 2, 3 } }):requires_grad_()
      x:prod(2):sum():backward()
      assert.tensor_near({ { 0, 6, 0 }, { 6, 3, 2 } }, x.grad)
    end)

    it('softmax, log_softmax and cumsum along any dim', function()
      local x = input(3, 4)
      for _, d in ipairs({ 1, 2 }) do
        check(function(x) return x:softmax(d) end, { x })
        check(function(x) return x:log_softmax(d) end, { x })
        check(function(x) return x:cumsum(d) end, { x })
      end
    end)

    it('matmul with vectors and broadcast batches', function()
      check(function(a, b) return a:matmul(b) end, { input(3, 4), input(4, 2) })
      check(function(a, b) return a:matmul(b) end, { input(2, 3, 4), input(4, 2) })
      check(function(a, b) return a:matmul(b) end, { input(2, 1, 3, 4), input(3, 4, 2) })
      check(function(a, b) return a:matmul(b) end, { input(4), input(4, 2) })
      check(function(a, b) return a:matmul(b) end, { input(3, 4), input(4) })
      check(function(a, b) return a:matmul(b) end, { input(4), input(4) })
      check(function(a, b) return a:matmul(b:t()) end, { input(3, 4), input(2, 4) })
    end)

    it('views', function()
      local x = input(2, 3, 4)
      check(function(x) return x:view(6, 4) end, { x })
      check(function(x) return x:permute(3, 1, 2):reshape(4, 6) end, { x })
      check(function(x) return x:transpose(1, 3) end, { x })
      check(function(x) return x:narrow(2, 2, 2) end, { x })
      check(function(x) return x:select(3, 2) end, { x })
      check(function(x) return x:slice(3, 1, 4, 2) end, { x })
      check(function(x) return x[{ {}, 2, { 2, 3 } }] end, { x })
      check(function(x) return x:unsqueeze(2):squeeze() end, { x })
      check(function(x) return x:flatten() end, { x })
      check(function(x) return x:clone():contiguous() end, { x })
      check(function(y) return y:expand(3, 4) end, { input(1, 4) })
      check(function(y) return y:expand(2, 3, 4) end, { input(4) })
    end)

    it('gather, scatter, index_select, index_add, masked_fill', function()
      local x = input(3, 4)
      local idx = nn.tensor({ { 2, 1 }, { 4, 4 }, { 1, 3 } }, 'i64')
      check(function(x) return x:gather(2, idx) end, { x })
      local uniq = nn.tensor({ { 2, 1 }, { 4, 3 }, { 1, 3 } }, 'i64')
      check(function(x, s) return x:scatter(2, uniq, s) end, { x, input(3, 3) })
      check(function(x, s) return x:scatter_add(2, idx, s) end, { x, input(3, 2) })
      local rows = nn.tensor({ 3, 1, 3 }, 'i64')
      check(function(x) return x:index_select(1, rows) end, { x })
      check(function(x) return x:index_select(2, rows) end, { x })
      check(function(x, s) return x:index_add(1, rows, s, 0.5) end, { x, input(3, 4) })
      check(function(x) return x:masked_fill(x:gt(1), 0) end, { x })
      check(function(x) return x:tril() + x:triu(1) * 2 end, { x })
    end)

    it('cat, stack, split, chunk, sort, topk', function()
      local a, b = input(2, 3), input(2, 2)
      check(function(a, b) return nn.cat({ a, b }, 2) end, { a, b })
      check(function(a) return nn.stack({ a, a * 2 }, 2) end, { a })
      check(function(a) return a:split(2, 2)[2] * 3 end, { input(2, 3) })
      check(function(a) return a:chunk(2, 1)[1] end, { input(4, 2) })
      -- unbind: every slice from one node; slices left unused get zeros
      check(function(a) local p = a:unbind(2); return p[1] * 2 + p[3] end, { input(2, 3, 2) })
      check(function(a) local p = a:unbind(1); return nn.stack({ p[2], p[1] }) end, { input(2, 3) })
      local u = input(2, 3)
      local p = u:unbind(2)
      assert.equal(3, #p)
      assert.equal('unbind', p[1].grad_fn)
      assert.equal(0, #nn.zeros(0, 2):unbind(1))
      assert.error_matches(function() nn.zeros(1, 5000):unbind(2) end, 'dim has 5000 slices, at most 4096')
      assert.error_matches(function() nn.tensor(1):unbind() end, 'cannot unbind a 0%-dim tensor')
      -- well-separated values: a nudge of eps must not reorder them
      local s = nn.tensor({ { 0.3, 1.2, -0.7, 2.5, 0.9 }, { 5, 4, 3, 2, 1 } }):requires_grad_()
      check(function(a) return (a:sort(2, true)) end, { s })
      check(function(a) return (a:sort(1)) end, { s })
      check(function(a) return (a:topk(2)) end, { s })
    end)
  end)

  describe('gradcheck itself', function()
    it('catches a wrong gradient', function()
      local x = input(3)
      -- the gradient is blocked by detach, so autograd says 0
      local ok, msg = nn.gradcheck(function(x) return x * x:detach() end, { x })
      assert.is_false(ok)
      assert.truthy(msg:find('analytic', 1, true))
    end)
  end)
  describe('the typed tape saves only what derivatives read', function()
    it('add saves nothing: an in-place change of its input before backward is fine', function()
      local h = nn.randn(3):requires_grad_()
      local a = h * 1
      local c = (a + 2):sum()
      nn.no_grad(function() a:add_(1) end)
      c:backward()
      assert.tensor_near({ 1, 1, 1 }, h.grad)
    end)

    it('an i64 operand is read as f32 by the derivative', function()
      local x = nn.ones(3):requires_grad_()
      ;(x * nn.tensor({ 1, 2, 3 }, 'i64')):sum():backward()
      assert.tensor_near({ 1, 2, 3 }, x.grad)
    end)

    it('mul still saves its inputs and notices the change', function()
      local h = nn.randn(3):requires_grad_()
      local a = h * 1
      local c = (a * a):sum()
      nn.no_grad(function() a:add_(1) end)
      assert.error_contains(function() c:backward() end, 'modified in place')
    end)

    it('a chain of 1,000 residual adds keeps no intermediate output alive', function()
      collectgarbage()
      local x = nn.randn(100000):requires_grad_() -- 400 kB
      local base = nn.live_bytes()
      local h = x
      for _ = 1, 1000 do h = h + x end
      collectgarbage()
      collectgarbage()
      -- 1,000 outputs would be 400 MB; only h (and x) are alive
      local grown = nn.live_bytes() - base
      assert.truthy(grown < 4e6, ('%d bytes alive after the chain'):format(grown))
      h:sum():backward()
      assert.near(1001, x.grad:min():item(), 1e-3)
      assert.near(1001, x.grad:max():item(), 1e-3)
    end)
  end)
end)
