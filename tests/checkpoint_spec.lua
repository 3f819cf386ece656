local nn = require 'nnlua'
local support = require 'support'

local function bytes(header, data)
  return ('<I8'):pack(#header) .. header .. (data or '')
end

local function load_bytes(b)
  local name = support.tempfile(b)
  local t, err = nn.load(name)
  os.remove(name)
  return t, err
end

describe('checkpoints (safetensors)', function()
  it('round-trips both dtypes, 0-dim and non-contiguous tensors, and metadata', function()
    local name = os.tmpname()
    local m = nn.arange(12):view(3, 4):float()
    local tensors = { w = m:t(), idx = nn.tensor({ 5, -7 }, 'i64'), s = nn.tensor(2.5),
                      empty = nn.zeros(0, 3) }
    assert.is_true(nn.save(name, tensors, { step = '42', note = 'a "quoted" \\ value\n' }))
    local t, meta = nn.load(name)
    os.remove(name)
    assert.tensor_near(m:t(), t.w, 0, 0)
    assert.same({ 5, -7 }, t.idx:totable())
    assert.equal('i64', t.idx.dtype)
    assert.equal(2.5, t.s:item())
    assert.same({ 0, 3 }, t.empty.shape)
    assert.equal('42', meta.step)
    assert.equal('a "quoted" \\ value\n', meta.note)
  end)

  it('saves and loads modules by their state-dict names', function()
    nn.manual_seed(1)
    local a = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    local b = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    local name = os.tmpname()
    assert.is_true(a:save(name, { epoch = '3' }))
    local meta = b:load(name)
    os.remove(name)
    assert.equal('3', meta.epoch)
    local x = nn.randn(5, 3)
    assert.tensor_near(a(x), b(x), 0, 0)
  end)

  it('loads a PyTorch state dict exported to safetensors into the matching model', function()
    local cjson = require 'cjson'
    local m = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    local meta = assert(m:load('tests/ref/torch_mlp.safetensors'))
    local x = nn.tensor(cjson.decode(meta.input))
    assert.tensor_near(cjson.decode(meta.output), m(x), 1e-5, 1e-6)
  end)

  it('returns nil and a message for files it cannot read', function()
    local t, err = nn.load('/nonexistent/model.safetensors')
    assert.is_nil(t)
    assert.truthy(err:find('No such file', 1, true))
    local ok, err2 = nn.save('/nonexistent-dir/x.safetensors', { a = nn.ones(1) })
    assert.is_nil(ok)
    assert.truthy(err2:find('No such file', 1, true))
    assert.error_contains(function() nn.save(os.tmpname(), { a = 5 }) end, "'a' is number, not a tensor")
  end)

  it('leaves the previous file intact when a save fails midway', function()
    local dir = support.tempdir()
    local name = dir .. '/ckpt.safetensors'
    assert.is_true(nn.save(name, { a = nn.ones(3) }))
    os.execute('chmod 500 ' .. dir) -- the temporary file cannot be created
    local ok = nn.save(name, { a = nn.zeros(3) })
    os.execute('chmod 700 ' .. dir)
    if ok == nil then -- (root may write anyway; then the new file is whole)
      assert.tensor_near({ 1, 1, 1 }, nn.load(name).a)
    else
      assert.tensor_near({ 0, 0, 0 }, nn.load(name).a)
    end
    os.execute('rm -rf ' .. dir)
  end)

  it('keeps the previous checkpoint loadable when the writer is killed midway', function()
    local name = os.tmpname() .. '.safetensors'
    assert.is_true(nn.save(name, { w = nn.full({ 4 }, 7) }))
    -- a writer saving 256 MiB tensors in a loop, killed with SIGKILL
    local script = support.tempfile(([[
      local big = nn.ones(64, 1024, 1024)
      io.write('ready\n'); io.flush()
      while true do nn.save(%q, { w = big }) end
    ]]):format(name), '.lua')
    local p = io.popen(('%s %s & pid=$!; sleep 1.5; kill -9 $pid; wait $pid 2>/dev/null; echo killed')
      :format(support.exe, script))
    local out = p:read('a')
    p:close()
    assert.truthy(out:find('killed', 1, true))
    local t, err = nn.load(name)
    assert(t, err)
    local n = t.w:numel()
    assert.truthy(n == 4 or n == 64 * 1024 * 1024, 'unexpected tensor of ' .. n .. ' elements')
    os.remove(name)
    os.remove(script)
    os.execute(('rm -f %s.tmp*'):format(name))
  end)

  describe('rejects malformed files without crashing', function()
    local good_header = '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}'
    local good = bytes(good_header, ('<ff'):pack(1, 2))

    it('reads the well-formed file the cases below corrupt', function()
      local t = assert(load_bytes(good))
      assert.tensor_near({ 1, 2 }, t.a)
    end)

    it('truncated at every byte', function()
      for cut = 0, #good - 1 do
        local t, err = load_bytes(good:sub(1, cut))
        assert.is_nil(t, 'accepted a file cut at ' .. cut)
        assert.is_string(err)
      end
    end)

    local cases = {
      { 'a huge header length', ('<I8'):pack(1 << 62) .. good_header, 'exceeds the file' },
      { 'offsets past the end', bytes('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8000]}}', ('<ff'):pack(1, 2)), 'do not match' },
      { 'a size that lies about the shape', bytes('{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}', ('<ff'):pack(1, 2)), 'do not match' },
      { 'negative offsets', bytes('{"a":{"dtype":"F32","shape":[2],"data_offsets":[-8,0]}}', ('<ff'):pack(1, 2)), 'non-negative' },
      { 'overlapping tensors', bytes('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', ('<ff'):pack(1, 2)), 'overlap' },
      { 'a gap in the data', bytes('{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', ('<ff'):pack(1, 2)), 'overlap or leave gaps' },
      { 'an unsupported dtype', bytes('{"a":{"dtype":"I32","shape":[2],"data_offsets":[0,8]}}', ('<ff'):pack(1, 2)), 'unsupported dtype' },
      { 'duplicate names', bytes('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', ('<ff'):pack(1, 2)), 'duplicate' },
      { 'a name that is not UTF-8', bytes('{"\255":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}', ('<ff'):pack(1, 2)), 'UTF-8' },
      { 'trailing garbage in the header', bytes(good_header .. 'x', ('<ff'):pack(1, 2)), 'trailing' },
      { 'a missing field', bytes('{"a":{"dtype":"F32","data_offsets":[0,8]}}', ('<ff'):pack(1, 2)), 'lacks' },
      { 'not JSON at all', bytes('hello', ''), 'malformed' },
      { 'extra data after the tensors', bytes(good_header, ('<fff'):pack(1, 2, 3)), 'longer than its tensors' },
      { 'a shape too large to be real', bytes('{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}}', ''), 'shape too large' },
    }
    for _, c in ipairs(cases) do
      it(c[1], function()
        local t, err = load_bytes(c[2])
        assert.is_nil(t)
        assert.truthy(err:find(c[3], 1, true), 'message: ' .. tostring(err))
      end)
    end
  end)
end)
