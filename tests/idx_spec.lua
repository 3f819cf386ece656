local nn = require 'nnlua'
local idx = require 'nnlua.idx'

local write = require('support').tempfile

describe('nnlua.idx', function()
  local body = ('>I2BBI4I4'):pack(0, 8, 2, 2, 3) .. string.char(0, 1, 2, 253, 254, 255)

  it('reads unsigned-byte IDX files into f32 or i64 tensors', function()
    local name = write(body)
    local t = assert(idx.read(name))
    assert.tensor_near({{0, 1, 2}, {253, 254, 255}}, t)
    assert.equal('i64', idx.read(name, 'i64').dtype)
    os.remove(name)
  end)

  it('reads gzipped files', function()
    local name = write(body)
    assert.is_true(os.execute('gzip -f ' .. name))
    local t = assert(idx.read(name .. '.gz'))
    assert.same({2, 3}, t.shape)
    os.remove(name .. '.gz')
  end)

  it('returns nil and a message for missing or malformed files', function()
    local t, err = idx.read('/nonexistent/x.idx')
    assert.is_nil(t)
    assert.truthy(err:find('No such file', 1, true))
    local short = write(body:sub(1, #body - 1))
    t, err = idx.read(short)
    assert.is_nil(t)
    assert.truthy(err:find('header promises 6 values, file has 5', 1, true))
    os.remove(short)
    local float = write(('>I2BBI4'):pack(0, 0x0D, 1, 1) .. '\0\0\0\0')
    t, err = idx.read(float)
    assert.is_nil(t)
    assert.truthy(err:find('not an unsigned-byte IDX', 1, true))
    os.remove(float)
  end)

  it('widens bytes with nn.from_bytes and checks the bounds', function()
    assert.tensor_near({{255, 1}}, nn.from_bytes('\255\1', 0, 1, 2))
    assert.error_contains(function() nn.from_bytes('abc', 2, 2) end,
      '2 bytes from offset 2 exceed')
  end)
end)
