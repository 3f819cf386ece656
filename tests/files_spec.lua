local files = require 'nnlua.files'
local nn = require 'nnlua'

describe('files.write_atomic', function()
  local dir = os.tmpname()
  os.remove(dir)
  assert(os.execute('mkdir -p ' .. dir))
  teardown(function() os.execute('rm -rf ' .. dir) end)

  local function read(path)
    local f = io.open(path)
    if not f then return nil end
    local s = f:read('a')
    f:close()
    return s
  end

  it('replaces the file and leaves no temporary behind', function()
    local path = dir .. '/a.txt'
    assert.is_true(files.write_atomic(path, 'one\n'))
    assert.is_true(files.write_atomic(path, 'two\n'))
    assert.equal('two\n', read(path))
    assert.is_nil(read(path .. '.tmp'))
  end)

  it('fails with a message and keeps the old file when it cannot write', function()
    local ok, err = files.write_atomic(dir .. '/missing/b.txt', 'x')
    assert.is_nil(ok)
    assert.matches('missing/b.txt', err)
    -- a directory where the file should go: the rename fails, the temporary goes
    local target = dir .. '/sub'
    assert(os.execute('mkdir -p ' .. target .. '/keep'))
    ok, err = files.write_atomic(target, 'x')
    assert.is_nil(ok)
    assert.is_string(err)
    assert.is_nil(read(target .. '.tmp'))
  end)

  it('is how tokenizers and plots report a failed save', function()
    local tok = nn.tokenizer.Char.fit('hello')
    local ok, err = tok:save(dir .. '/missing/tok.txt')
    assert.is_nil(ok)
    assert.matches('missing/tok.txt', err)
    ok, err = nn.plot.svg(dir .. '/missing/p.svg', { { name = 'a', y = { 1, 2 } } })
    assert.is_nil(ok)
    assert.matches('missing/p.svg', err)
  end)
end)
