local nn = require 'nnlua'

local function quadratic_setup()
  local p = nn.tensor({ 3, -2 }):requires_grad_()
  local function loss() return (p * p):sum() end
  return p, loss
end

describe('nnlua.optim', function()
  for _, name in ipairs({ 'SGD', 'Adam', 'AdamW', 'RMSprop', 'Adagrad' }) do
    it(name .. ' minimises a quadratic', function()
      local p, loss = quadratic_setup()
      local opt = nn.optim[name]({ p }, { lr = name == 'Adagrad' and 1 or 0.1 })
      for _ = 1, 200 do
        opt:zero_grad()
        loss():backward()
        opt:step()
      end
      assert.is_true(loss():item() < 0.05, name .. ' ended at ' .. loss():item())
    end)
  end

  it('uses per-group options', function()
    local a, b = nn.ones(1):requires_grad_(), nn.ones(1):requires_grad_()
    local opt = nn.optim.SGD({ { params = { a }, lr = 1 }, { params = { b } } }, { lr = 0.1 })
    ;(a + b):sum():backward()
    opt:step()
    assert.tensor_near({ 0 }, a)
    assert.tensor_near({ 0.9 }, b)
    assert.error_contains(function() nn.optim.SGD({ a }, { lr = 1, bogus = 2 }) end, "unknown option 'bogus'")
    assert.error_contains(function() nn.optim.SGD({ nn.ones(1) }) end, 'requires grad')
  end)

  it('saves and restores its state so a resumed run continues exactly', function()
    local function run(steps, resume_at)
      nn.manual_seed(4)
      local p = nn.randn(5):requires_grad_()
      local opt = nn.optim.Adam({ p }, { lr = 0.05 })
      local saved
      for i = 1, steps do
        if i == resume_at then
          saved = { p = p:detach():clone(), opt = opt:state_dict() }
          p = saved.p:clone():requires_grad_()
          opt = nn.optim.Adam({ p }, { lr = 0.05 })
          opt:load_state_dict(saved.opt)
        end
        opt:zero_grad()
        ;(p:sin() * p):sum():backward()
        opt:step()
      end
      return p
    end
    assert.tensor_near(run(10), run(10, 6), 0, 0)
  end)

  it('guards steps against NaN and Inf', function()
    local p = nn.ones(2):requires_grad_()
    p.grad = nn.tensor({ 1, 2 })
    assert.is_true(nn.optim.finite(nn.tensor(0.5), { p }))
    p.grad = nn.tensor({ 0 / 0, 2 })
    assert.is_false(nn.optim.finite(nn.tensor(0.5), { p }, { step = 3 }))
    assert.is_nil(p.grad)
    assert.error_contains(function() nn.optim.finite(nn.tensor(math.huge), { p }, { action = 'stop', step = 7 }) end,
      'step 7: the loss is inf')
  end)

  it('clips gradients by global norm and by value', function()
    local a, b = nn.ones(2):requires_grad_(), nn.ones(2):requires_grad_()
    a.grad, b.grad = nn.tensor({ 3, 0 }), nn.tensor({ 0, 4 })
    local norm = nn.optim.clip_grad_norm_({ a, b }, 1)
    assert.near(5, norm, 1e-5)
    assert.tensor_near({ 0.6, 0 }, a.grad, 1e-5)
    assert.tensor_near({ 0, 0.8 }, b.grad, 1e-5)
    a.grad = nn.tensor({ -3, 0.2 })
    nn.optim.clip_grad_value_({ a }, 0.5)
    assert.tensor_near({ -0.5, 0.2 }, a.grad)
  end)

  describe('schedulers', function()
    local function lrs(sched_of, n)
      local p = nn.ones(1):requires_grad_()
      local opt = nn.optim.SGD({ p }, { lr = 1 })
      local s = sched_of(opt)
      local out = {}
      for i = 1, n do
        out[i] = opt.param_groups[1].lr
        s:step()
      end
      return out, s, opt
    end

    it('StepLR', function()
      local v = lrs(function(o) return nn.optim.StepLR(o, { step_size = 2, gamma = 0.5 }) end, 5)
      assert.same({ 1, 1, 0.5, 0.5, 0.25 }, v)
    end)

    it('CosineLR with warmup', function()
      local v = lrs(function(o) return nn.optim.CosineLR(o, { warmup = 2, total = 6, min_lr = 0.1 }) end, 8)
      assert.near(0.5, v[1], 1e-12)
      assert.near(1, v[2], 1e-12)
      assert.near(1, v[3], 1e-12)
      assert.near(0.1 + 0.45 * (1 + math.cos(math.pi / 4)), v[4], 1e-12)
      assert.near(0.1, v[7], 1e-12)
      assert.near(0.1, v[8], 1e-12)
    end)

    it('LinearLR and OneCycleLR', function()
      local v = lrs(function(o) return nn.optim.LinearLR(o, { warmup = 1, total = 5 }) end, 6)
      assert.same({ 1, 1, 0.75, 0.5, 0.25, 0 }, v)
      local c = lrs(function(o) return nn.optim.OneCycleLR(o, { max_lr = 1, total = 10 }) end, 10)
      assert.near(1 / 25, c[1], 1e-12)
      assert.near(1, c[3], 1e-12)
      assert.is_true(c[10] < 1e-4)
    end)

    it('ReduceLROnPlateau', function()
      local p = nn.ones(1):requires_grad_()
      local opt = nn.optim.SGD({ p }, { lr = 1 })
      local s = nn.optim.ReduceLROnPlateau(opt, { patience = 1, factor = 0.5 })
      for _, m in ipairs({ 5, 4, 4, 4, 4 }) do s:step(m) end
      assert.equal(0.5, opt.param_groups[1].lr)
    end)

    it('round-trip their state', function()
      local _, s, opt = lrs(function(o) return nn.optim.CosineLR(o, { total = 10 }) end, 4)
      local st = s:state_dict()
      local s2 = nn.optim.CosineLR(opt, { total = 10 })
      s2:load_state_dict(st)
      assert.equal(s:get_last_lr()[1], s2:get_last_lr()[1])
    end)
  end)
end)
