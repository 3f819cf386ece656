-- Forward hooks on Lua Modules and built-in layers alike: order, removal,
-- replacing inputs and outputs, <close> handles, global hooks.
local nn = require 'nnlua'

local Double = nn.Module:extend()
function Double:forward(x) return x * 2 end

describe('forward hooks', function()
  for _, make in ipairs({ function() return nn.Linear(3, 2) end, function() return Double() end }) do
    local kind = make():_typename()
    it(kind .. ': a forward hook sees input and output and may replace the output', function()
      local m, seen = make(), nil
      local x = nn.ones(1, 3)
      local h = m:register_forward_hook(function(mod, args, out)
        seen = { mod, args[1], args.n, out }
        return out * 0
      end)
      local y = m(x)
      assert.equal(m, seen[1])
      assert.equal(x, seen[2])
      assert.equal(1, seen[3])
      assert.truthy(nn.is_tensor(seen[4]))
      assert.tensor_near(nn.zeros_like(y), y, 0)
      h:remove()
      h:remove() -- twice: nothing
      assert.truthy(m(x):abs():sum():item() > 0)
      assert.tensor_near(m:forward(x), m(x), 0)
    end)

    it(kind .. ': pre-hooks run in order and may replace the arguments', function()
      local m, order = make(), {}
      local h1 = m:register_forward_pre_hook(function() order[#order + 1] = 1 end)
      local h2 = m:register_forward_pre_hook(function(_, args)
        order[#order + 1] = 2
        return args[1] * 0
      end)
      local h3 = m:register_forward_hook(function() order[#order + 1] = 3 end)
      local y = m(nn.ones(1, 3))
      assert.same({ 1, 2, 3 }, order)
      assert.tensor_near(m:forward(nn.zeros(1, 3)), y, 0)
      h1:remove(); h2:remove(); h3:remove()
    end)
  end

  it('a <close> handle removes its hook when the scope ends', function()
    local m, calls = nn.ReLU(), 0
    do
      local h <close> = m:register_forward_hook(function() calls = calls + 1 end)
      m(nn.ones(2))
    end
    m(nn.ones(2))
    assert.equal(1, calls)
  end)

  it('global hooks run on every module, before their own hooks, until removed', function()
    local net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), Double())
    local order = {}
    net[1]:register_forward_hook(function() order[#order + 1] = 'own' end)
    local g = nn.register_module_forward_hook(function(m) order[#order + 1] = m:_typename() end)
    net(nn.ones(2, 3))
    assert.same({ 'Linear', 'own', 'ReLU', 'Module', 'Sequential' }, order)
    g:remove()
    order = {}
    net(nn.ones(2, 3))
    assert.same({ 'own' }, order)
  end)

  it('a hook that removes itself runs once', function()
    local m, calls = nn.Tanh(), 0
    local h
    h = m:register_forward_hook(function() calls = calls + 1; h:remove() end)
    m(nn.ones(2)); m(nn.ones(2))
    assert.equal(1, calls)
  end)

  it('rejects a hook that is not a function', function()
    assert.error_contains(function() nn.Linear(2, 2):register_forward_hook(3) end, 'expected a function')
  end)

  it('summary still records every output shape', function()
    local text = nn.summary(nn.Sequential(nn.Linear(5, 3), nn.ReLU()), nn.randn(2, 5), true)
    assert.truthy(text:find('2x3', 1, true))
  end)
end)
