-- Every built-in layer (C userdata) answers the whole module protocol as a
-- Lua Module does, with PyTorch's parameter names, shapes and counts
-- (tests/ref/protocol.json, made by tests/ref/gen_protocol.py).
local nn = require 'nnlua'
local cjson = require 'cjson'
local support = require 'support'

local cases = cjson.decode(support.read('tests/ref/protocol.json'))

local function build(c)
  local args = {}
  for i, a in ipairs(c.args) do args[i] = a end
  if next(c.opts) then args[#args + 1] = c.opts end
  return nn[c.layer](table.unpack(args))
end

local function inputs(c)
  local xs = {}
  for i, shape in ipairs(c.inputs) do
    xs[i] = c.dtype == 'i64' and nn.randint(1, 10, shape) or nn.randn(table.unpack(shape))
  end
  if c.listed then return xs end
  return table.unpack(xs)
end

local function shapes(sd)
  local out = {}
  for k, t in pairs(sd) do out[k] = t:size() end
  return out
end

describe('the module protocol on built-in layers', function()
  it('has a PyTorch case for every built-in layer kind', function()
    local covered, missing = {}, {}
    for _, c in ipairs(cases) do covered[c.layer] = true end
    for _, name in ipairs(nn._layers) do
      if not covered[name] then missing[#missing + 1] = name end
    end
    assert.same({}, missing)
  end)

  for i, c in ipairs(cases) do
    it(('%d: %s%s'):format(i, c.layer, cjson.encode(c.args)), function()
      local m = build(c)
      assert.is_true(nn.is_module(m))
      -- names, shapes and counts as PyTorch has them
      assert.same(c.state, shapes(m:state_dict()))
      assert.equal(c.num_parameters, m:num_parameters())
      local n = 0
      for name, p in m:named_parameters() do
        n = n + 1
        assert.truthy(c.state[name], name)
        assert.is_true(p.requires_grad)
      end
      assert.equal(n, #m:parameters())
      local children = {}
      for name, child in m:named_children() do
        children[#children + 1] = name
        assert.is_true(nn.is_module(child))
      end
      assert.same(c.children, children)
      assert.equal(c.modules, #m:modules())
      local buffers = {}
      for name, b in m:named_buffers() do
        buffers[#buffers + 1] = name
        assert.is_false(b.requires_grad)
      end
      table.sort(buffers)
      assert.same(c.buffers, buffers)
      -- train / eval reach the layer
      assert.is_true(m.training)
      assert.equal(m, m:eval())
      assert.is_false(m.training)
      m:train()
      assert.is_true(m.training)
      local seen = 0
      m:apply(function(x) seen = seen + (x == m and 1 or 0) end)
      assert.equal(1, seen)
      for _, child in ipairs(m:children()) do assert.is_true(child.training) end
      m:eval()
      for _, child in ipairs(m:children()) do assert.is_false(child.training) end
      m:train()
      -- one forward and backward, then zero_grad
      m:eval()
      local y = m(inputs(c))
      assert.truthy(nn.is_tensor(y))
      if n > 0 then
        (y * y):sum():backward()
        for _, p in ipairs(m:parameters()) do assert.truthy(p.grad) end
        m:zero_grad()
        for _, p in ipairs(m:parameters()) do assert.is_nil(p.grad) end
      end
      -- state_dict round trip through save and load, strict by default
      local path = support.tempdir() .. '/m.safetensors'
      assert.is_true(m:save(path))
      local other = build(c)
      assert.truthy(other:load(path))
      for name, t in pairs(m:state_dict()) do
        assert.tensor_near(t, other:state_dict()[name], 0)
      end
      if n > 0 then
        local sd = m:state_dict()
        sd.extra = nn.ones(1)
        assert.error_contains(function() other:load_state_dict(sd) end, 'unexpected key extra')
        sd.extra = nil
        local first = next(c.state)
        sd[first] = nil
        assert.error_contains(function() other:load_state_dict(sd) end, 'missing key ' .. first)
        assert.equal(other, other:load_state_dict(sd, false))
      end
      -- printed as PyTorch prints it: Name(settings)
      assert.truthy(tostring(m):find('^' .. c.layer .. '%('))
    end)
  end

  it('composes with Lua Modules with no special case', function()
    local Net = nn.Module:extend()
    function Net:_init()
      self.conv = nn.Conv2d(1, 2, 3)
      self.body = nn.Sequential(nn.Flatten(), nn.Linear(8, 3))
    end
    function Net:forward(x) return self.body(self.conv(x)) end
    local m = Net()
    local names = {}
    for name in m:named_parameters() do names[#names + 1] = name end
    assert.same({ 'conv.weight', 'conv.bias', 'body.1.weight', 'body.1.bias' }, names)
    local mods = {}
    for name, sub in m:named_modules() do mods[#mods + 1] = name .. ':' .. sub:_typename() end
    assert.same({ ':Module', 'conv:Conv2d', 'body:Sequential', 'body.0:Flatten', 'body.1:Linear' }, mods)
    m:eval()
    assert.is_false(m.conv.training)
    assert.is_false(m.body[2].training)
    assert.equal(2 * 9 + 2 + 8 * 3 + 3, m:num_parameters())
    assert.truthy(tostring(m):find('(conv): Conv2d(in_channels=1', 1, true))
  end)
end)
