-- Conv1d, grouped and depthwise Conv2d and ConvTranspose2d against
-- PyTorch 1.13 (tests/ref/gen_conv.py -> tests/ref/conv.json): outputs,
-- input and parameter gradients; finite-difference checks of the
-- functional forms; argument errors.
local nn = require 'nnlua'
local support = require 'support'

local ref = support.reference('conv')
local near = support.near

local function T(v) return nn.tensor(v) end

local function ints(v)
  if type(v) == 'table' then
    local out = {}
    for i, x in ipairs(v) do out[i] = math.tointeger(x) or x end
    return out
  end
  return math.tointeger(v) or v
end

describe('convolution family against PyTorch', function()
  for _, c in ipairs(ref.cases) do
    it(c.name, function()
      local args = ints(c.args)
      args[3] = ints(c.args[3])
      local opts = {}
      for k, v in pairs(c.options) do opts[k] = ints(v) end
      args[4] = opts
      local layer = nn[c.layer](table.unpack(args))
      local st = {}
      for k, v in pairs(c.state) do st[k] = T(v) end
      layer:load_state_dict(st)
      local x = T(c.x):requires_grad_()
      local y = layer(x)
      near(c.output, y, 'output', 1e-5)
      ;(y * T(c.proj)):sum():backward()
      near(c.grad_x, x.grad, 'input gradient', 1e-5)
      for name, g in pairs(c.param_grads) do near(g, layer[name].grad, name .. ' gradient', 1e-5) end
    end)
  end
end)

describe('convolution family', function()
  it('passes finite-difference checks', function()
    nn.manual_seed(2)
    local function req(...) return nn.randn(...):requires_grad_() end
    assert(nn.gradcheck(function(x, w, b) return nn.conv1d(x, w, b, { stride = 2, padding = 1, groups = 2 }) end,
      { req(2, 4, 7), req(6, 2, 3), req(6) }))
    assert(nn.gradcheck(function(x, w, b)
      return nn.conv_transpose2d(x, w, b, { stride = 2, padding = 1, output_padding = 1 })
    end, { req(2, 3, 3, 4), req(3, 2, 3, 3), req(2) }))
    assert(nn.gradcheck(function(x, w)
      return nn.conv_transpose2d(x, w, nil, { groups = 2, dilation = { 2, 1 } })
    end, { req(1, 4, 3, 3), req(4, 1, 2, 2) }))
    assert(nn.gradcheck(function(x, w, b) return nn.conv2d(x, w, b, { groups = 3, stride = 2, padding = 1 }) end,
      { req(2, 3, 6, 5), req(6, 1, 3, 3), req(6) }))
  end)

  it('transposes conv2d: <conv2d(x, w), y> equals <x, conv_transpose2d(y, w)>', function()
    nn.manual_seed(5)
    local x, w = nn.randn(2, 3, 7, 6), nn.randn(4, 3, 3, 3)
    local o = { stride = 2, padding = 1 }
    local y = nn.randn(table.unpack(nn.conv2d(x, w, nil, o):size()))
    local a = (nn.conv2d(x, w, nil, o) * y):sum():item()
    local b = (x * nn.conv_transpose2d(y, w, nil, { stride = 2, padding = 1, output_padding = { 0, 1 } })):sum():item()
    assert(math.abs(a - b) < 1e-3 * math.abs(a), ('%g vs %g'):format(a, b))
  end)

  it('gives the same results through oneDNN and through im2col (NNLUA_CONV=im2col)', function()
    local script = support.tempfile([[
      local nn = require 'nnlua'
      nn.manual_seed(9)
      local out = {}
      -- 16 and 32 channels take oneDNN's blocked layouts (x kept in that
      -- layout for the weight gradient, dy reordered once for both
      -- gradients); grads = which of x, w, b require grad
      for _, o in ipairs({ { padding = 1 }, { stride = 2, groups = 2 }, { padding = 2, dilation = 2 },
                           { groups = 4, padding = 1 }, { padding = 1, ci = 16, co = 32 },
                           { stride = 2, ci = 16, co = 32, nobias = true },
                           { padding = 1, ci = 32, co = 16, grads = 'w' },
                           { padding = 1, ci = 16, co = 16, grads = 'x', nobias = true },
                           { padding = 1, ci = 16, co = 32, grads = 'xw' } }) do
        local ci, co, grads = o.ci or 4, o.co or 8, o.grads or 'xwb'
        local x = nn.randn(3, ci, 9, 8):requires_grad_(grads:find('x') ~= nil)
        local w = nn.randn(co, ci // (o.groups or 1), 3, 3):requires_grad_(grads:find('w') ~= nil)
        local b = not o.nobias and nn.randn(co):requires_grad_(grads:find('b') ~= nil) or nil
        local y = nn.conv2d(x, w, b, { stride = o.stride, padding = o.padding, dilation = o.dilation,
                                       groups = o.groups })
        ;(y * y):sum():backward()
        for _, t in ipairs({ y, x.grad or y, w.grad or y, b and b.grad or y }) do
          for _, v in ipairs(t:reshape(-1):totable()) do out[#out + 1] = ('%.5e'):format(v) end
        end
      end
      print(table.concat(out, ' '))
    ]])
    local a = support.run(support.exe .. ' ' .. script)
    local b = support.run('NNLUA_CONV=im2col ' .. support.exe .. ' ' .. script)
    local va, vb = {}, {}
    for v in a:gmatch('%S+e[%+%-]%d+') do va[#va + 1] = tonumber(v) end
    for v in b:gmatch('%S+e[%+%-]%d+') do vb[#vb + 1] = tonumber(v) end
    assert.equal(#va, #vb)
    assert.truthy(#va > 1000, a)
    for i = 1, #va do
      assert(math.abs(va[i] - vb[i]) <= 1e-3 * math.max(1, math.abs(vb[i])), ('%d: %g vs %g'):format(i, va[i], vb[i]))
    end
    os.remove(script)
  end)

  it('prints as PyTorch and rejects bad shapes and options', function()
    assert.equal('Conv1d(in_channels=4, out_channels=6, kernel_size=3, stride=1, padding=0, dilation=1, '
      .. 'groups=2, bias=True)', tostring(nn.Conv1d(4, 6, 3, { groups = 2 })))
    assert.same({ 4, 3, 2, 2 }, nn.ConvTranspose2d(4, 6, 2, { groups = 2 }).weight:size())
    assert.error_matches(function() nn.Conv1d(3, 4, 3)(nn.randn(2, 3)) end,
      'conv1d expects an %(N, C, L%) input, got 2x3')
    assert.error_matches(function() nn.Conv1d(3, 4, 3)(nn.randn(2, 2, 5)) end,
      'conv1d weight 4x3x3 does not match input 2x2x5 with 1 groups')
    assert.error_matches(function() nn.Conv1d(3, 4, 5)(nn.randn(1, 3, 4)) end,
      'conv1d: kernel 5 %(dilation 1%) longer than the padded input 1x3x4')
    assert.error_matches(function() nn.Conv1d(3, 4, 3, { stride = 0 }) end, 'stride must be an integer >= 1')
    assert.error_matches(function() nn.Conv1d(3, 4, 3, { groups = 2 }) end,
      'Conv1d: groups = 2 must divide in_channels 3 and out_channels 4')
    assert.error_matches(function() nn.ConvTranspose2d(3, 4, 3, { output_padding = 1 }) end,
      'output_padding smaller than the stride or the dilation')
    assert.error_matches(function() nn.conv_transpose2d(nn.randn(1, 3, 4, 4), nn.randn(2, 3, 3, 3)) end,
      'conv_transpose2d weight 2x3x3x3 does not match input 1x3x4x4 %(expected %(3, out / groups, kh, kw%)%)')
    assert.error_matches(function() nn.conv_transpose2d(nn.randn(1, 3, 1, 1), nn.randn(3, 1, 1, 1), nil, { padding = 1 }) end,
      'padding leaves an empty')
    assert.error_matches(function() nn.conv1d(nn.randn(1, 3, 4), nn.randn(3, 1, 1), nil, { bogus = 1 }) end,
      "unknown option 'bogus'")
  end)
end)
