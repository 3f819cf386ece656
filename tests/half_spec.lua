-- bf16 and f16 tensors: conversion exactness over every bit pattern,
-- safetensors both ways, ops computed in f32, PyTorch-written files
-- (tests/ref/half.safetensors, made by tests/ref/gen_half.py).
local nn = require 'nnlua'
local cjson = require 'cjson'
local support = require 'support'

-- a safetensors file holding one 1-D tensor of raw little-endian data
local function write_raw(path, dtype, n, data)
  local header = ('{"t":{"dtype":"%s","shape":[%d],"data_offsets":[0,%d]}}'):format(dtype, n, #data)
  header = header .. (' '):rep(-#header % 8)
  local f = assert(io.open(path, 'wb'))
  f:write(string.pack('<I8', #header), header, data)
  f:close()
end

-- the data bytes of a one-tensor file nnlua wrote
local function read_raw(path)
  local f = assert(io.open(path, 'rb'))
  local s = f:read('a')
  f:close()
  local n = string.unpack('<I8', s)
  return s:sub(9 + n)
end

local function f32_of_bits(u) return (string.unpack('<f', string.pack('<I4', u))) end

local function f16_value(p) -- IEEE binary16, decoded by the formula
  local s, e, m = p >> 15, (p >> 10) & 31, p & 1023
  local v
  if e == 0 then v = m / 1024 * 2.0 ^ -14
  elseif e == 31 then v = m == 0 and math.huge or 0 / 0
  else v = (1 + m / 1024) * 2.0 ^ (e - 15) end
  return s == 1 and -v or v
end

local function all_patterns()
  local parts = {}
  for p = 0, 65535 do parts[#parts + 1] = string.pack('<I2', p) end
  return table.concat(parts)
end

describe('16-bit floats', function()
  local tmp = os.tmpname()
  teardown(function() os.remove(tmp) end)

  it('bf16 widens exactly and narrows back to the same bits, all 65,536 patterns', function()
    write_raw(tmp, 'BF16', 65536, all_patterns())
    local t = nn.load(tmp).t
    assert.equal('bf16', t.dtype)
    local wide = t:to('f32'):totable()
    for p = 0, 65535 do
      local want = f32_of_bits(p << 16)
      local got = wide[p + 1]
      if want ~= want then assert(got ~= got, 'NaN ' .. p)
      else assert(got == want, ('pattern %d: %g, expected %g'):format(p, got, want)) end
    end
    nn.save(tmp, { t = t:to('f32'):to('bf16') })
    local back = read_raw(tmp)
    for p = 0, 65535 do
      local q = string.unpack('<I2', back, 2 * p + 1)
      local nan = (p & 0x7f80) == 0x7f80 and (p & 0x7f) ~= 0
      if nan then assert((q & 0x7f80) == 0x7f80 and (q & 0x7f) ~= 0, 'NaN stays NaN')
      else assert(q == p, ('pattern %d came back as %d'):format(p, q)) end
    end
  end)

  it('f32 -> bf16 rounds to nearest, ties to even', function()
    local parts, expect = {}, {}
    for p = 0, 0x7f7f do -- finite positive patterns below the largest
      for _, low in ipairs({ 0x7fff, 0x8000, 0x8001 }) do
        parts[#parts + 1] = string.pack('<I4', (p << 16) | low)
        expect[#expect + 1] = low == 0x7fff and p or low == 0x8001 and p + 1 or (p % 2 == 0 and p or p + 1)
      end
    end
    write_raw(tmp, 'F32', #expect, table.concat(parts))
    nn.save(tmp, { t = nn.load(tmp).t:to('bf16') })
    local back = read_raw(tmp)
    for i, want in ipairs(expect) do
      local q = string.unpack('<I2', back, 2 * i - 1)
      assert(q == want, ('case %d: %d, expected %d'):format(i, q, want))
    end
  end)

  it('f16 widens exactly and narrows back to the same bits, all 65,536 patterns', function()
    write_raw(tmp, 'F16', 65536, all_patterns())
    local t = nn.load(tmp).t
    local wide = t:to('f32'):totable()
    for p = 0, 65535 do
      local want, got = f16_value(p), wide[p + 1]
      if want ~= want then assert(got ~= got)
      else assert(got == want, ('pattern %d: %g, expected %g'):format(p, got, want)) end
    end
    nn.save(tmp, { t = t:to('f32'):to('f16') })
    local back = read_raw(tmp)
    for p = 0, 65535 do
      local q = string.unpack('<I2', back, 2 * p + 1)
      if f16_value(p) == f16_value(p) then assert(q == p, ('pattern %d came back as %d'):format(p, q)) end
    end
  end)

  it('ops compute in f32 and round back; numbers do not widen the result', function()
    local x = nn.tensor({ 1, 2, 3 }, 'bf16')
    assert.equal('bf16', (x * 2).dtype)
    assert.equal('bf16', x:exp().dtype)
    assert.equal('bf16', x:sum().dtype)
    assert.equal('f32', (x + nn.ones(3)).dtype)
    assert.equal(6, x:sum():item())
    assert.equal('bf16', x:view(3, 1):t():contiguous().dtype)
    assert.equal('f16', nn.zeros(2, 'f16').dtype)
    assert.equal(3, nn.full({ 2 }, 3, 'half')[1])
    assert.same({ 1, 2, 3 }, nn.arange(1, 4, 'bf16'):totable())
    assert.same({ 1, 255 }, nn.from_bytes('\1\255', 0, 2, 'f16'):totable())
    assert.error_matches(function() x:requires_grad_() end, 'only f32 tensors can require gradients')
  end)

  it('in-place ops round into the tensor; ops with no 16-bit form refuse by name', function()
    local x = nn.tensor({ 1, 2, 3 }, 'bf16')
    x:mul_(nn.tensor({ 1, 1, 1 / 3 }))
    assert.equal('bf16', x.dtype)
    assert.same({ 1, 2, 1 }, x:totable())
    x:exp_()
    assert.equal('bf16', x.dtype)
    local y = nn.ones(3)
    y:add_(nn.tensor({ 1, 2, 3 }, 'f16'))
    assert.same({ 2, 3, 4 }, y:totable())
    assert.error_matches(function() x:gather(1, nn.tensor({ 1 }):long()) end,
      "gather has no bf16/f16 form: convert with :to%('f32'%) first")
    assert.error_matches(function() x:sort() end, 'sort has no bf16/f16 form')
    assert.error_matches(function() nn.max_pool2d(nn.zeros(1, 1, 4, 4, 'bf16'), 2) end, 'max_pool2d has no bf16')
  end)

  it('reads what PyTorch wrote: bf16 weights, its bf16 linear, f16 edges, f64', function()
    local t, meta = nn.load('tests/ref/half.safetensors')
    assert.equal('bf16', t['linear.weight'].dtype)
    local y = nn.linear(t.x, t['linear.weight'], t['linear.bias'])
    assert.equal('bf16', y.dtype)
    -- both round one f32 result to bf16: equal, or one bf16 step apart
    local diff = (y:to('f32') - t.y:to('f32')):abs()
    local step = t.y:to('f32'):abs() * 2 ^ -7
    assert.truthy((diff - step):max():item() <= 1e-7)
    assert.tensor_near(nn.tensor(cjson.decode(meta.y32)), y:to('f32'), 0.02)
    local function values(s)
      local out = {}
      for i, v in ipairs(cjson.decode(s)) do out[i] = v == 'inf' and math.huge or tonumber(v) end
      return out
    end
    assert.same(values(meta.h), t.h:to('f32'):totable())
    assert.equal('f32', t.d.dtype)
    assert.same(values(meta.d), t.d:totable())
    local lin = nn.Linear(8, 5)
    lin:load_state_dict({ weight = t['linear.weight'], bias = t['linear.bias'] })
    assert.tensor_near(t.y:to('f32'), lin(t.x:to('f32')), 0.02)
  end)

  it('model:to converts parameters, keeps tied weights tied, and saves in that dtype', function()
    local a, b = nn.Linear(4, 4), nn.Linear(4, 4)
    b.weight = a.weight
    local m = nn.Sequential(a, b, nn.LayerNorm(4))
    local x = nn.randn(2, 4)
    local y32 = m(x)
    m:to('bf16')
    assert.equal('bf16', m[1].weight.dtype)
    assert.equal(m[1].weight, m[2].weight)
    assert.falsy(m[1].weight.requires_grad)
    local y16 = m(x:to('bf16'))
    assert.equal('bf16', y16.dtype)
    assert.truthy((y32 - y16:to('f32')):abs():max():item() < 0.05)
    m:save(tmp)
    assert.equal('bf16', nn.load(tmp)['1.weight'].dtype)
    m:to('f32')
    assert.truthy(m[1].weight.requires_grad)
    assert.error_matches(function() m:to('i8') end, 'invalid option')
  end)
end)
