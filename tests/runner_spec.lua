-- The nnlua executable behaves like lua, with the engine as global `nn`.
local support = require 'support'
local exe, run = support.exe, support.run

local function script(text) return support.tempfile(text, '.lua') end

describe('the nnlua executable', function()
  it('runs -e statements with nn as a global', function()
    local out, code = run(exe .. [[ -e 'print(nn.randn(2,3):matmul(nn.randn(3,4)).shape[2])']])
    assert.equal(0, code)
    assert.equal('4\n', out)
  end)

  it('runs a script with arg and ... like lua', function()
    local s = script('#!/usr/bin/env nnlua\nprint(arg[0] ~= nil, arg[1], arg[2], select("#", ...))\n')
    local out, code = run(exe .. ' ' .. s .. ' a b')
    os.remove(s)
    assert.equal(0, code)
    assert.equal('true\ta\tb\t2\n', out)
  end)

  it('exits non-zero with a traceback on an error', function()
    local s = script('local x = nn.ones(4, 3)\nx:matmul(nn.ones(5, 2))\n')
    local out, code = run(exe .. ' ' .. s)
    os.remove(s)
    assert.equal(1, code)
    assert.truthy(out:find('size mismatch: 4x3 @ 5x2', 1, true))
    assert.truthy(out:find('stack traceback', 1, true))
  end)

  it('honours os.exit codes', function()
    local _, code = run(exe .. [[ -e 'os.exit(3)']])
    assert.equal(3, code)
  end)

  it('reads a chunk from standard input with -', function()
    local out, code = run(exe .. ' -', 'print(nn.ones(2):sum():item())')
    assert.equal(0, code)
    assert.equal('2.0\n', out)
  end)

  it('prints expression results in the REPL and survives errors', function()
    local out, code = run(exe .. ' -i', table.concat({
      'x = nn.arange(6):view(2,3)',
      'x',
      'error("boom")',
      'for i = 1, 2 do',
      '  print("line", i)',
      'end',
      'x:sum()',
    }, '\n') .. '\n')
    assert.equal(0, code)
    assert.truthy(out:find('tensor([[0, 1, 2],\n        [3, 4, 5]], shape={2, 3}, dtype=i64)', 1, true))
    assert.truthy(out:find('boom', 1, true))
    assert.truthy(out:find('line\t1\nline\t2', 1, false))
    assert.truthy(out:find('tensor(15, shape={}, dtype=i64)', 1, true))
  end)

  it('prints its version', function()
    local out, code = run(exe .. ' -v')
    assert.equal(0, code)
    assert.truthy(out:match('^nnlua %d+%.%d+%.%d+'))
  end)

  it('rejects unknown options with usage', function()
    local out, code = run(exe .. ' -Q')
    assert.equal(1, code)
    assert.truthy(out:find('usage:', 1, true))
  end)

  local stock = (os.getenv('ASAN') or '') == '' and it or pending
  stock('loads the same library from stock lua5.4 with require', function()
    local dir = exe:match('^(.*)/[^/]*$') or '.'
    local out, code = run(("LUA_CPATH='%s/?.so;;' lua5.4 -e 'local nn = require \"nnlua\"; print(nn.ones(2))'"):format(dir))
    assert.equal(0, code)
    assert.equal('tensor([1., 1.], shape={2}, dtype=f32)\n', out)
  end)
end)
