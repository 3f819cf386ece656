local nn = require 'nnlua'
local support = require 'support'

describe('nnlua.data', function()
  local ds = nn.data.TensorDataset(nn.arange(10):view(10, 1):float(), nn.arange(1, 11))

  it('batches a TensorDataset in order, with and without drop_last', function()
    local dl = nn.data.DataLoader(ds, { batch_size = 4 })
    assert.equal(3, #dl)
    local seen = {}
    for x, y in dl:iter() do
      assert.equal(x:size(1), y:size(1))
      for _, v in ipairs(y:totable()) do seen[#seen + 1] = v end
    end
    assert.same({ 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 }, seen)
    assert.equal(2, #nn.data.DataLoader(ds, { batch_size = 4, drop_last = true }))
  end)

  it('shuffles reproducibly from the engine generator, covering every sample', function()
    local function order()
      nn.manual_seed(3)
      local out = {}
      for _, y in nn.data.DataLoader(ds, { batch_size = 3, shuffle = true }):iter() do
        for _, v in ipairs(y:totable()) do out[#out + 1] = v end
      end
      return out
    end
    local a, b = order(), order()
    assert.same(a, b)
    table.sort(a)
    assert.same({ 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 }, a)
  end)

  it('collates samples of any dataset, or with a custom function', function()
    local words = { len = function() return 3 end,
                    get = function(_, i) return { nn.ones(2) * i, i, ('w%d'):format(i) } end }
    local x, n, names = nn.data.DataLoader(words, { batch_size = 3 }):iter()()
    assert.tensor_near({ { 1, 1 }, { 2, 2 }, { 3, 3 } }, x)
    assert.equal('i64', n.dtype)
    assert.same({ 'w1', 'w2', 'w3' }, names)
    local custom = nn.data.DataLoader(words, { batch_size = 2, collate = function(s) return { #s } end })
    local it = custom:iter()
    assert.equal(2, it())
    assert.equal(1, it())
    assert.error_contains(function() nn.data.TensorDataset(nn.ones(3), nn.ones(4)) end, 'has 4 rows')
  end)

  it('reads text, TSV/CSV and JSON lines, and says why it cannot', function()
    local tsv = support.tempfile('a\tb\n1\t2\n\n3\t4\n', '.tsv')
    local rows = nn.data.read_table(tsv, { header = false })
    assert.same({ { 'a', 'b' }, { '1', '2' }, { '3', '4' } }, rows)
    local csv = support.tempfile('x,y\r\n1.5,2\r\n', '.csv')
    local r2, names = nn.data.read_table(csv, { header = true })
    assert.same({ 'x', 'y' }, names)
    assert.same({ { '1.5', '2' } }, r2)
    local jl = support.tempfile('{"a": 1, "b": [1, 2]}\n\n{"a": 2}\n')
    local recs = nn.data.read_jsonl(jl)
    assert.equal(2, #recs)
    assert.equal(2, recs[1].b[2])
    local bad = support.tempfile('{"a": 1}\n{oops\n')
    local none, err = nn.data.read_jsonl(bad)
    assert.is_nil(none)
    assert.truthy(err:find(':2:', 1, true))
    assert.equal('a\tb\n1\t2\n\n3\t4\n', nn.data.read_text(tsv))
    assert.is_nil((nn.data.read_text('/nonexistent')))
    for _, p in ipairs({ tsv, csv, jl, bad }) do os.remove(p) end
  end)
end)

describe('prefetching', function()
  local nn = require 'nnlua'

  it('delivers the same batches from the background thread as on demand', function()
    local x, y = nn.randn(23, 3), nn.arange(1, 24)
    local ds = nn.data.TensorDataset(x, y)
    local function epoch(prefetch)
      nn.manual_seed(8)
      local out = {}
      for bx, by in nn.data.DataLoader(ds, { batch_size = 5, shuffle = true, prefetch = prefetch }):iter() do
        out[#out + 1] = { bx:totable(), by:totable() }
      end
      return out
    end
    local a, b = epoch(2), epoch(0)
    assert.equal(5, #a)
    assert.same(b, a)
  end)

  it('augments images with seeded flips and shifts, the same on every run', function()
    local img = nn.arange(4 * 1 * 4 * 4):view(4, 1, 4, 4):float()
    local ds = nn.data.TensorDataset(img, nn.arange(1, 5))
    local function run()
      nn.manual_seed(2)
      local out = {}
      for x in nn.data.DataLoader(ds, { batch_size = 4, augment = { flip = true, shift = 1 } }):iter() do
        out[#out + 1] = x:totable()
      end
      return out
    end
    local a, b = run(), run()
    assert.same(a, b)
    local changed = 0
    for i = 1, 4 do
      if table.concat(a[1][i][1][2], ',') ~= table.concat(img[i][1][2]:totable(), ',') then changed = changed + 1 end
    end
    assert.is_true(changed > 0)
    assert.error_contains(function()
      nn.data.DataLoader(ds, { augment = { flip = true }, collate = nn.data.collate })
    end, 'augment needs')
    local function on_demand()
      nn.manual_seed(2)
      local out = {}
      for x in nn.data.DataLoader(ds, { batch_size = 4, prefetch = 0,
                                        augment = { flip = true, shift = 1 } }):iter() do
        out[#out + 1] = x:totable()
      end
      return out
    end
    assert.same(a, on_demand())
  end)

  it('stops its thread when dropped mid-epoch', function()
    local ds = nn.data.TensorDataset(nn.randn(1000, 8))
    for _ = 1, 20 do
      local it = nn.data.DataLoader(ds, { batch_size = 10 }):iter()
      it()
    end
    collectgarbage()
    collectgarbage()
  end)
end)

describe('nn.map_file', function()
  local nn = require 'nnlua'
  local support = require 'support'

  it('maps a file region as a tensor, copy-on-write', function()
    local path = support.tempfile(('<i8i8i8'):pack(7, 8, 9) .. ('<ff'):pack(0.5, 1.5))
    local ids = nn.map_file(path, 0, 3, 'i64')
    assert.same({ 7, 8, 9 }, ids:totable())
    local f = nn.map_file(path, 24, 2)
    assert.tensor_near({ 0.5, 1.5 }, f)
    f:mul_(4)
    assert.tensor_near({ 2, 6 }, f)
    assert.tensor_near({ 0.5, 1.5 }, nn.map_file(path, 24, 2)) -- the file is unchanged
    local none, err = nn.map_file(path, 24, 3)
    assert.is_nil(none)
    assert.truthy(err:find('exceed the file', 1, true))
    assert.is_nil((nn.map_file('/nonexistent', 0, 1)))
    os.remove(path)
  end)
end)
