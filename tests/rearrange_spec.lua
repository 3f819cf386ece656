-- pad, flip, roll, tile/repeat, repeat_interleave, unfold and interpolate
-- against PyTorch 1.13 (tests/ref/gen_rearrange.py ->
-- tests/ref/rearrange.json): outputs and input gradients; other dtypes,
-- finite-difference checks, the Upsample layer and argument errors.
local nn = require 'nnlua'
local support = require 'support'

local ref = support.reference('rearrange')
local near = support.near

-- fixture arguments: integers as Lua integers, {i64 = {...}} as a tensor
local function arg_of(a)
  if type(a) == 'number' then return math.tointeger(a) or a end
  if type(a) ~= 'table' then return a end
  if a.i64 then return nn.tensor(a.i64, 'i64') end
  local out = {}
  for k, v in pairs(a) do out[k] = arg_of(v) end
  return out
end

describe('rearranging ops against PyTorch', function()
  for _, c in ipairs(ref.cases) do
    it(c.name, function()
      local args = {}
      for i, a in ipairs(c.args) do args[i] = arg_of(a) end
      local x = nn.tensor(c.x):requires_grad_()
      local y = nn[c.fn](x, table.unpack(args))
      near(c.output, y, 'output', 1e-5)
      ;(y * nn.tensor(c.proj)):sum():backward()
      near(c.grad, x.grad, 'input gradient', 1e-5)
    end)
  end
end)

describe('rearranging ops', function()
  it('copy any dtype and pass finite-difference checks', function()
    local i = nn.tensor({ { 1, 2, 3 }, { 4, 5, 6 } }, 'i64')
    assert.same({ { 3, 2, 1 }, { 6, 5, 4 } }, i:flip(2):totable())
    assert.same({ { 6, 4, 5 }, { 3, 1, 2 } }, i:roll({ 1, 1 }, { 1, 2 }):totable())
    assert.same({ 0, 0, 1, 2, 3, 0 }, i[1]:pad({ 2, 1 }):totable())
    assert.equal('i64', i:tile(2).dtype)
    assert.same({ 1, 1, 2, 2, 3, 3 }, i[1]:repeat_interleave(2):totable())
    assert.same({ { 1, 2 }, { 2, 3 } }, i[1]:unfold(1, 2, 1):totable())
    assert.same({ { 1, 2, 3, 1, 2, 3 } }, nn['repeat'](i[1]:view(1, 3), 1, 2):totable())
    nn.manual_seed(3)
    local function req(...) return nn.randn(...):requires_grad_() end
    assert(nn.gradcheck(function(x) return x:pad({ 1, 2, 2, 1 }, 'reflect') end, { req(1, 2, 3, 4) }))
    assert(nn.gradcheck(function(x) return x:pad({ 2, 2 }, 'replicate') end, { req(2, 3) }))
    assert(nn.gradcheck(function(x) return x:tile(2, 2):roll(1, 1):flip(2) end, { req(2, 3) }))
    assert(nn.gradcheck(function(x) return x:unfold(2, 3, 1) end, { req(2, 5) }))
    assert(nn.gradcheck(function(x) return x:repeat_interleave(nn.tensor({ 2, 0, 1 }, 'i64'), 2) end, { req(2, 3) }))
    assert(nn.gradcheck(function(x) return x:pad({ 1, 2 }, 'circular'):pad({ -1, 1, 1, 0 }, 'constant', 3) end,
      { req(1, 2, 3) }))
    assert(nn.gradcheck(function(x) return nn.interpolate(x, { scale_factor = 2 }) end, { req(1, 1, 2, 3) }))
    assert(nn.gradcheck(function(x)
      return nn.interpolate(x, { size = { 5, 4 }, mode = 'bilinear', align_corners = true })
    end, { req(1, 2, 3, 3) }))
  end)

  it('Upsample is interpolate as a layer; errors name what is wrong', function()
    local x = nn.randn(1, 2, 3, 4)
    local up = nn.Upsample({ scale_factor = 2, mode = 'bilinear' })
    assert.same(nn.interpolate(x, { scale_factor = 2, mode = 'bilinear' }):totable(), up(x):totable())
    assert.same({ 1, 2, 6, 8 }, up(x):size())
    assert.matches("Upsample%(size=.*mode='bilinear'", tostring(up))
    assert.error_matches(function() nn.Upsample({ size = 3, scale_factor = 2 }) end,
      'give one of size and scale_factor')
    assert.error_matches(function() nn.interpolate(x, { size = 3, mode = 'linear' }) end,
      "mode 'linear' is for %(N, C, L%) input, got 1x2x3x4")
    assert.error_matches(function() nn.interpolate(x, { size = 3, align_corners = true }) end,
      'align_corners is for the linear modes only')
    assert.error_matches(function() nn.interpolate(x, { size = 3, antialias = true }) end,
      "unknown option 'antialias'")
    assert.error_matches(function() x:pad({ 4, 0 }, 'reflect') end,
      'reflection_pad: pads 4 and 0 too large for dim 4 of size 4 of 1x2x3x4')
    assert.error_matches(function() x:pad({ 1 }) end, 'pads come in %(left, right%) pairs')
    assert.error_matches(function() x:pad({ 1, 1 }, 'reflect', 2) end, 'a fill value is for constant padding only')
    assert.error_matches(function() x:pad({ -5, 0 }) end, 'leave dim 4 of 1x2x3x4 negative')
    assert.error_matches(function() x:flip({ 1, 1 }) end, 'flip: dim 1 given twice')
    assert.error_matches(function() x:flip(5) end, 'dim 5 out of range')
    assert.error_matches(function() x:flip() end, 'bad argument #1 to .flip')
    assert.error_matches(function() x:roll({ 1, 2 }, 1) end, 'one dim per shift')
    assert.error_matches(function() nn['repeat'](x, 2) end, 'repeat: 1 repeats for a 4%-dim tensor')
    assert.error_matches(function() x:repeat_interleave(nn.tensor({ 1, 2 }, 'i64'), 3) end,
      'repeats 2 must be i64 %(3%), one per entry of dim 3')
    assert.error_matches(function() x:repeat_interleave(-1) end, 'repeats must be >= 0')
    -- found by the fuzzer (seed 7): repeats whose sum overflows int64
    assert.error_matches(function() nn.ones(2):repeat_interleave(nn.tensor({ math.maxinteger, math.maxinteger }, 'i64')) end,
      'the repeats add up to more than')
    assert.error_matches(function() x:unfold(4, 5, 1) end, 'unfold: size 5 %(dim 4 of 1x2x3x4%)')
  end)
end)
