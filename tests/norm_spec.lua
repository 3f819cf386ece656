-- Normalisation over channels: BatchNorm1d/2d, GroupNorm, InstanceNorm2d
-- and nn.batch_norm / nn.group_norm against PyTorch 1.13
-- (tests/ref/gen_norm.py -> tests/ref/norm.json): outputs, input and
-- parameter gradients, running statistics after each training step and
-- eval outputs; finite-difference checks; argument errors.
local nn = require 'nnlua'
local support = require 'support'

local ref = support.reference('norm')
local near = support.near

local function T(v) return nn.tensor(v) end


local function state_tensors(st)
  local out = {}
  for k, v in pairs(st) do
    out[k] = type(v) == 'number' and nn.tensor(v, 'i64'):reshape({}) or T(v)
  end
  return out
end

describe('normalisation layers against PyTorch', function()
  for _, c in ipairs(ref.cases) do
    it(c.name .. ' (' .. c.layer .. ')', function()
      local opts = next(c.options) and c.options or nil
      local args = {}
      for i, a in ipairs(c.args) do args[i] = math.tointeger(a) end
      args[#args + 1] = opts
      local layer = nn[c.layer](table.unpack(args))
      layer:load_state_dict(state_tensors(c.start))
      for s, step in ipairs(c.steps) do
        local what = ('%s step %d (%s)'):format(c.name, s, step.mode)
        layer:train(step.mode == 'train')
        layer:zero_grad()
        local x = T(step.x):requires_grad_()
        local out = layer(x)
        near(step.output, out, what .. ' output', 2e-4)
        ;(out * T(step.proj)):sum():backward()
        near(step.grad_x, x.grad, what .. ' input gradient', 1e-3)
        for name, g in pairs(step.param_grads) do
          near(g, layer[name].grad, what .. ' ' .. name .. ' gradient', 1e-3)
        end
        local sd = layer:state_dict()
        for name, v in pairs(step.state) do
          if type(v) == 'number' then
            assert.equal(v, sd[name]:item(), what .. ' ' .. name)
          else
            near(v, sd[name], what .. ' ' .. name, 1e-5)
          end
        end
      end
    end)
  end
end)

describe('normalisation ops', function()
  it('pass finite-difference checks in every mode', function()
    nn.manual_seed(1)
    local w, b = nn.randn(3):requires_grad_(), nn.randn(3):requires_grad_()
    local rm, rv = nn.randn(3), nn.rand(3) + 0.5
    assert(nn.gradcheck(function(x, w_, b_) return nn.batch_norm(x, nil, nil, w_, b_, { training = true }) end,
      { nn.randn(4, 3, 2):requires_grad_(), w, b }))
    assert(nn.gradcheck(function(x, w_, b_) return nn.batch_norm(x, rm, rv, w_, b_) end,
      { nn.randn(4, 3):requires_grad_(), w, b }))
    assert(nn.gradcheck(function(x, w_, b_) return nn.group_norm(x, 3, w_, b_) end,
      { nn.randn(2, 3, 5):requires_grad_(), w, b }))
    local w6, b6 = nn.randn(6):requires_grad_(), nn.randn(6):requires_grad_()
    assert(nn.gradcheck(function(x, w_, b_) return nn.group_norm(x, 2, w_, b_, 1e-3) end,
      { nn.randn(2, 6, 2, 2):requires_grad_(), w6, b6 }))
    assert(nn.gradcheck(function(x) return nn.group_norm(x, 1) end, { nn.randn(3, 4):requires_grad_() }))
  end)

  it('updates running statistics only in training, with the unbiased variance', function()
    local rm, rv = nn.zeros(2), nn.ones(2)
    local x = nn.tensor({ { 1, 10 }, { 3, 14 } })
    nn.batch_norm(x, rm, rv, nil, nil, { training = true, momentum = 0.5 })
    assert.same({ 1, 6 }, rm:totable())          -- 0.5 * 0 + 0.5 * mean
    assert.same({ 1.5, 4.5 }, rv:totable())      -- 0.5 * 1 + 0.5 * unbiased var (2, 8)
    nn.batch_norm(x, rm, rv)                     -- eval: untouched
    assert.same({ 1, 6 }, rm:totable())
  end)

  it('counts batches and averages cumulatively with momentum = false', function()
    local bn = nn.BatchNorm1d(1, { momentum = false })
    for _, v in ipairs({ 2, 4, 9 }) do bn(nn.tensor({ { v - 1 }, { v + 1 } })) end
    assert.equal(3, bn.num_batches_tracked:item())
    assert.near(5, bn.running_mean[1], 1e-6) -- the mean of 2, 4 and 9
  end)

  it('rejects bad shapes and options with the argument named', function()
    assert.error_matches(function() nn.BatchNorm2d(3)(nn.randn(2, 4, 3, 3)) end,
      'BatchNorm2d%(3%): expected %(N, C, H, W%) with C = 3, got 2x4x3x3')
    assert.error_matches(function() nn.BatchNorm1d(3)(nn.randn(2, 3, 3, 3)) end, 'expected %(N, C%) or %(N, C, L%)')
    assert.error_matches(function() nn.BatchNorm1d(3)(nn.randn(1, 3)) end, 'more than 1 value per channel')
    assert.error_matches(function() nn.BatchNorm2d(3, { momentm = 0.1 }) end, "unknown option 'momentm'")
    assert.error_matches(function() nn.BatchNorm2d(3, { momentum = 2 }) end, 'momentum must be in')
    assert.error_matches(function() nn.BatchNorm2d(0) end, 'num_features')
    assert.error_matches(function() nn.InstanceNorm2d(2, { momentum = false }) end, 'numeric momentum')
    assert.error_matches(function() nn.GroupNorm(4, 6) end, 'num_groups 4 must divide num_channels 6')
    assert.error_matches(function() nn.GroupNorm(2, 6)(nn.randn(2, 4)) end, 'expected %(N, 6, ...%)')
    assert.error_matches(function() nn.group_norm(nn.randn(2, 6), 4) end, '4 groups do not divide 6 channels')
    assert.error_matches(function() nn.batch_norm(nn.randn(4, 3), nn.zeros(2), nn.ones(2)) end,
      'running_mean must be contiguous f32 with one value per channel %(3%)')
    assert.error_matches(function() nn.batch_norm(nn.randn(4, 3), nn.zeros(3), nil) end, 'give both')
    assert.error_matches(function() nn.batch_norm(nn.randn(4), nil, nil) end, 'expects %(N, C, ...%)')
    assert.error_matches(function() nn.batch_norm(nn.randn(4, 3), nil, nil, nil, nil, { trainig = true }) end,
      "unknown option 'trainig'")
    assert.error_matches(function() nn.group_norm(nn.ones(2, 2, 'i64'), 1) end, 'expects an f32 input')
    local x = nn.randn(4, 3):requires_grad_()
    local y = nn.batch_norm(x, nil, nil, nil, nil, { training = true }):sum()
    assert.error_matches(function() y:backward({ create_graph = true }) end, 'batch_norm has no double backward')
  end)

  it('keeps PyTorch names: a state dict round-trips and eval mode uses it', function()
    nn.manual_seed(2)
    local a = nn.BatchNorm2d(2)
    a(nn.randn(3, 2, 4, 4))
    local b = nn.BatchNorm2d(2)
    b:load_state_dict(a:state_dict())
    a:eval(); b:eval()
    local x = nn.randn(1, 2, 3, 3)
    assert.same(a(x):totable(), b(x):totable())
    assert.equal(1, b.num_batches_tracked:item())
    local names = {}
    for k in pairs(a:state_dict()) do names[#names + 1] = k end
    table.sort(names)
    assert.same({ 'bias', 'num_batches_tracked', 'running_mean', 'running_var', 'weight' }, names)
    assert.equal(2, #a:parameters()) -- buffers are not parameters
  end)
end)
