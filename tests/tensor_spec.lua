local nn = require 'nnlua'

describe('nnlua tensors', function()
  describe('creation', function()
    it('builds tensors from nested tables, f32 by default', function()
      local t = nn.tensor({{1, 2, 3}, {4, 5, 6}})
      assert.same({2, 3}, t:size())
      assert.equal('f32', t.dtype)
      assert.same({{1, 2, 3}, {4, 5, 6}}, t:totable())
      local i = nn.tensor({1, 2}, 'i64')
      assert.equal('i64', i.dtype)
      assert.equal(math.type(i[1]), 'integer')
    end)

    it('rejects ragged or non-numeric tables', function()
      assert.error_contains(function() nn.tensor({{1, 2}, {3}}) end, 'ragged')
      assert.error_contains(function() nn.tensor({1, 'x'}) end, 'expected a number')
    end)

    it('makes constants, ranges and identities', function()
      assert.tensor_near({{0, 0}, {0, 0}}, nn.zeros(2, 2))
      assert.tensor_near({{1, 1, 1}}, nn.ones({1, 3}))
      assert.tensor_near({7, 7}, nn.full({2}, 7))
      assert.equal('i64', nn.zeros(3, 'i64').dtype)
      local r = nn.arange(6)
      assert.equal('i64', r.dtype)
      assert.same({0, 1, 2, 3, 4, 5}, r:totable())
      assert.tensor_near({1, 1.5, 2, 2.5}, nn.arange(1, 3, 0.5))
      assert.tensor_near({0, 0.5, 1}, nn.linspace(0, 1, 3))
      assert.tensor_near({{1, 0, 0}, {0, 1, 0}}, nn.eye(2, 3))
      assert.tensor_near({{0, 0}}, nn.zeros_like(nn.ones(1, 2)))
    end)

    it('rejects negative sizes with the argument named', function()
      assert.error_contains(function() nn.zeros(2, -1) end, "bad argument #2 to 'zeros'")
      assert.error_contains(function() nn.zeros(2, 'q32') end, "invalid option 'q32'")
    end)

    it('draws reproducible random numbers from a seed', function()
      nn.manual_seed(123)
      local a = nn.randn(1000)
      nn.manual_seed(123)
      local b = nn.randn(1000)
      assert.tensor_near(a, b, 0, 0)
      assert.is_true(math.abs(a:mean():item()) < 0.1)
      assert.is_true(math.abs(a:std():item() - 1) < 0.1)
      local u = nn.rand(2000)
      assert.is_true(u:min():item() >= 0 and u:max():item() < 1)
      local k = nn.randint(1, 7, 500)
      assert.equal('i64', k.dtype)
      assert.equal(1, k:min():item())
      assert.equal(6, k:max():item())
      local state = nn.rng_state()
      local c = nn.rand(5)
      nn.rng_state(state)
      assert.tensor_near(c, nn.rand(5), 0, 0)
      local bits = nn.bernoulli(0.25, 4000)
      assert.is_true(math.abs(bits:mean():item() - 0.25) < 0.03)
      assert.error_contains(function() nn.randint(3, 3, 2) end, 'must exceed low')
    end)
  end)

  describe('inspection', function()
    it('reports shape, dims, dtype and elements', function()
      local t = nn.zeros(2, 3, 4)
      assert.same({2, 3, 4}, t.shape)
      assert.equal(3, t.ndim)
      assert.equal(3, t:dim())
      assert.equal(24, t:numel())
      assert.equal(3, t:size(2))
      assert.equal(4, t:size(-1))
      assert.equal(2, #t)
      assert.same({12, 4, 1}, t:stride())
      assert.equal(2.5, nn.tensor({2.5}):item())
      assert.error_contains(function() t:item() end, 'exactly one element')
      assert.error_contains(function() t:size(4) end, 'dim 4 out of range for a 3-dim tensor')
      assert.is_true(nn.is_tensor(t))
      assert.is_false(nn.is_tensor({}))
    end)
  end)

  describe('printing', function()
    it('prints values, shape and dtype', function()
      local s = tostring(nn.tensor({{1, 2}, {3, 4.5}}))
      assert.equal('tensor([[1.0000, 2.0000],\n        [3.0000, 4.5000]], shape={2, 2}, dtype=f32)', s)
      assert.equal('tensor([1., 2.], shape={2}, dtype=f32)', tostring(nn.tensor({1, 2})))
      assert.equal('tensor([ 1, -2], shape={2}, dtype=i64)', tostring(nn.tensor({1, -2}, 'i64')))
      assert.equal('tensor(3.5000, shape={}, dtype=f32)', tostring(nn.tensor(3.5)))
      assert.truthy(tostring(nn.tensor({1e-6, 2})):find('1.0000e-06', 1, true))
    end)

    it('elides the middle of large tensors', function()
      local s = tostring(nn.arange(2000):view(40, 50))
      assert.truthy(s:find('...', 1, true))
      assert.truthy(s:find('1999', 1, true))
      assert.is_nil(s:find('1000', 1, true))
      assert.is_true(#s < 2000)
    end)
  end)

  describe('indexing', function()
    local t
    before_each(function() t = nn.arange(12):view(3, 4):float() end)

    it('selects rows and elements counting from 1', function()
      assert.tensor_near({4, 5, 6, 7}, t[2])
      assert.equal(6, t[2][3])
      assert.equal(11, t[-1][-1])
      assert.equal(6, t[{2, 3}])
      assert.error_contains(function() return t[4] end, 'index 4 out of range for dim 1 of size 3')
      assert.error_contains(function() return t[0] end, 'out of range')
    end)

    it('slices with inclusive ranges and steps', function()
      assert.tensor_near({{1, 2}, {5, 6}}, t[{{1, 2}, {2, 3}}])
      assert.tensor_near({1, 5, 9}, t[{{}, 2}])
      assert.tensor_near({{0, 2}, {4, 6}, {8, 10}}, t[{{}, {1, -1, 2}}])
      assert.tensor_near({{8, 9, 10, 11}}, t[{{3}}])
      assert.error_contains(function() return t[{{}, {2, 9}}] end, 'out of range')
      assert.error_contains(function() return t[{1, 2, 3}] end, 'too many indices')
    end)

    it('writes through views', function()
      t[{{}, 1}] = -1
      assert.tensor_near({-1, -1, -1}, t[{{}, 1}])
      t[2] = nn.tensor({10, 20, 30, 40})
      assert.tensor_near({10, 20, 30, 40}, t[2])
      t[{3, 4}] = 99
      assert.equal(99, t[3][4])
      local v = t:view(12)
      v[1] = 5
      assert.equal(5, t[1][1])
      t[t:gt(30)] = 0
      assert.tensor_near({10, 20, 30, 0}, t[2])
      assert.error_contains(function() t[1] = nn.ones(3) end, 'cannot copy')
    end)

    it('gathers rows with an i64 index tensor', function()
      assert.tensor_near({{8, 9, 10, 11}, {0, 1, 2, 3}}, t[nn.tensor({3, 1}, 'i64')])
    end)
  end)

  describe('views', function()
    it('reshapes, transposes and permutes without copying', function()
      local a = nn.arange(24):float()
      local v = a:view(2, 3, 4)
      assert.same({2, 3, 4}, v.shape)
      assert.same({4, 6}, a:view(4, -1).shape)
      local p = v:permute(3, 1, 2)
      assert.same({4, 2, 3}, p.shape)
      assert.equal(v[2][3][4], p[4][2][3])
      assert.is_false(p:is_contiguous())
      assert.is_true(p:contiguous():is_contiguous())
      assert.error_contains(function() p:view(24) end, 'non-contiguous')
      assert.same({24}, p:reshape(24).shape)
      assert.same({3, 2}, nn.zeros(2, 3):t().shape)
      assert.same({3, 2, 4}, v:transpose(1, 2).shape)
      assert.error_contains(function() v:view(5, 5) end, 'cannot hold')
    end)

    it('narrows, selects, slices, squeezes and expands', function()
      local m = nn.arange(12):view(3, 4):float()
      assert.tensor_near({{1, 2}, {5, 6}, {9, 10}}, m:narrow(2, 2, 2))
      assert.tensor_near({2, 6, 10}, m:select(2, 3))
      assert.tensor_near({{0, 1, 2, 3}, {8, 9, 10, 11}}, m:slice(1, 1, 3, 2))
      assert.same({1, 3, 1, 4}, m:unsqueeze(1):unsqueeze(3).shape)
      assert.same({3, 4}, m:unsqueeze(1):unsqueeze(3):squeeze().shape)
      assert.same({12}, m:flatten().shape)
      local e = nn.tensor({{1}, {2}}):expand(2, 3)
      assert.tensor_near({{1, 1, 1}, {2, 2, 2}}, e)
      assert.error_contains(function() m:expand(3, 5) end, 'cannot expand')
      assert.error_contains(function() m:narrow(1, 3, 2) end, 'out of range')
    end)

    it('converts dtypes', function()
      local f = nn.tensor({1.7, -2.2})
      assert.same({1, -2}, f:long():totable())
      assert.equal('f32', f:long():float().dtype)
      assert.equal('i64', f:to('i64').dtype)
    end)
  end)

  describe('memory', function()
    it('releases deterministically with <close>', function()
      local escaped
      do
        local x <close> = nn.zeros(1000, 1000)
        escaped = x
      end
      assert.error_contains(function() return escaped + 1 end, 'closed')
      assert.equal('tensor(<closed>)', tostring(escaped))
    end)

    local function rss_kb()
      local f = io.open('/proc/self/status')
      local s = f:read('a')
      f:close()
      return tonumber(s:match('VmRSS:%s*(%d+)'))
    end

    it('keeps memory flat over thousands of dropped tensors', function()
      collectgarbage('collect')
      local before = rss_kb()
      for _ = 1, 4000 do
        local a = nn.zeros(256, 256) -- 256 KiB, dropped at once
        local _ = a + 1
      end
      local grew = rss_kb() - before
      assert.is_true(grew < 200 * 1024, 'RSS grew by ' .. grew .. ' KiB')
    end)

    -- the collector is told about the C side of small tensors too (about
    -- 300 bytes each, five times what Lua sees), so the garbage waiting for
    -- it stays in proportion to the Lua heap, as Lua's own garbage does: a
    -- run of tensor_spec alone used to leave 150,000 of 300,000 dropped
    -- scalars uncollected (counted by live_bytes, 4 bytes each; RSS would
    -- tell too, but not under valgrind or ASan)
    it('collects dropped scalars promptly', function()
      collectgarbage('collect')
      local a, b = nn.tensor({ 1 }), nn.tensor({ 2 })
      local before = nn.live_bytes()
      for _ = 1, 300000 do local _ = a + b end
      local waiting = (nn.live_bytes() - before) // 4
      local heap = collectgarbage('count') * 1024
      assert.is_true(waiting * 300 < heap + (4 << 20),
        ('%d dropped scalars not collected yet (Lua heap %.0f MiB)'):format(waiting, heap / 2 ^ 20))
    end)
  end)
end)
