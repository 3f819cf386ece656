local nn = require 'nnlua'

local Net = nn.Module:extend()
Net._name = 'Net'
function Net:_init(d)
  self.encoder = nn.Sequential(nn.Linear(d, 8), nn.ReLU(), nn.Linear(8, 4))
  self.scale = nn.ones(4):requires_grad_()
  self.heads = nn.ModuleList({ nn.Linear(4, 2), nn.Linear(4, 3) })
  self:register_buffer('steps', nn.zeros(1))
end
function Net:forward(x)
  local h = self.encoder(x) * self.scale
  return self.heads[1](h), self.heads[2](h)
end

describe('nnlua.Module', function()
  before_each(function() nn.manual_seed(1) end)

  it('registers children and parameters with dotted PyTorch names, in order', function()
    local m = Net(5)
    local names = {}
    for n in m:named_parameters() do names[#names + 1] = n end
    assert.same({ 'encoder.0.weight', 'encoder.0.bias', 'encoder.2.weight', 'encoder.2.bias',
                  'scale', 'heads.0.weight', 'heads.0.bias', 'heads.1.weight', 'heads.1.bias' }, names)
    assert.equal(#names, #m:parameters())
    assert.equal(5 * 8 + 8 + 8 * 4 + 4 + 4 + 4 * 2 + 2 + 4 * 3 + 3, m:num_parameters())
    local sd = m:state_dict()
    assert.is_true(nn.is_tensor(sd.steps))
    assert.is_true(nn.is_tensor(sd['heads.1.bias']))
    assert.equal(2, #m.heads)
    assert.truthy(tostring(m):find('(encoder): Sequential', 1, true))
  end)

  it('calls forward, and trains end to end', function()
    local m = Net(5)
    local a, b = m(nn.randn(3, 5))
    assert.same({ 3, 2 }, a.shape)
    assert.same({ 3, 3 }, b.shape)
    local opt = nn.optim.SGD(m:parameters(), { lr = 0.1 })
    local x, y = nn.randn(16, 5), nn.randint(1, 3, 16)
    local first
    for i = 1, 30 do
      opt:zero_grad()
      local loss = nn.cross_entropy((m(x)), y)
      loss:backward()
      opt:step()
      first = first or loss:item()
      if i == 30 then assert.is_true(loss:item() < first) end
    end
  end)

  it('propagates train and eval, and applies functions to every module', function()
    local m = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5), nn.Sequential(nn.Dropout(0.2)))
    m:eval()
    assert.is_false(m.training)
    assert.is_false(m[2].training)
    assert.is_false(m[3][1].training)
    m:train()
    assert.is_true(m[3][1].training)
    local seen = 0
    m:apply(function() seen = seen + 1 end)
    assert.equal(5, seen)
  end)

  it('round-trips a state dict and checks names and shapes strictly', function()
    local a, b = Net(5), Net(5)
    b:load_state_dict(a:state_dict())
    local x = nn.randn(2, 5)
    assert.tensor_near((a(x)), (b(x)))
    local sd = a:state_dict()
    sd['encoder.0.weight'] = nn.zeros(8, 6)
    assert.error_contains(function() b:load_state_dict(sd) end,
      'size mismatch for encoder.0.weight: the checkpoint has 8x6, the model 8x5')
    sd = a:state_dict()
    sd.scale = nil
    sd.extra = nn.zeros(1)
    assert.error_contains(function() b:load_state_dict(sd) end, 'missing key scale')
    assert.error_contains(function() b:load_state_dict(sd) end, 'unexpected key extra')
    b:load_state_dict(sd, false) -- non-strict: loads what matches
  end)

  it('zeroes gradients of every parameter', function()
    local m = Net(3)
    local a = m(nn.randn(2, 3))
    a:sum():backward()
    assert.is_not_nil(m.encoder[1].weight.grad)
    m:zero_grad()
    for _, p in m:named_parameters() do assert.is_nil(p.grad) end
  end)

  it('holds modules by name in a ModuleDict', function()
    local d = nn.ModuleDict({ b = nn.Linear(2, 2), a = nn.Linear(2, 1) })
    local names = {}
    for n in d:named_parameters() do names[#names + 1] = n end
    assert.same({ 'a.weight', 'a.bias', 'b.weight', 'b.bias' }, names)
    assert.error_contains(function() nn.ModuleList({ 5 }) end, 'must be modules')
  end)

  it('summarises layers, output shapes and parameter counts', function()
    local text = nn.summary(Net(5), nn.randn(2, 5), true)
    assert.truthy(text:find('encoder.0', 1, true))
    assert.truthy(text:find('2x8', 1, true))
    assert.truthy(text:find('total parameters: 113', 1, true))
  end)
end)
