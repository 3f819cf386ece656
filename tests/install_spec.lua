-- nnlua inside a C host, and installed into a scratch DESTDIR.
local support = require 'support'
local exe, run = support.exe, support.run
local dir = exe:match('^(.*)/[^/]*$') or '.'
local build = dir == '.' and 'build' or dir

describe('embedding in a C host', function()
  it('runs examples/embed/host.c: data from C arrays in, predictions out, errors back', function()
    local out, code = run(build .. '/embed-host examples/embed/model.lua')
    assert.equal(0, code, out)
    assert.truthy(out:find('xor%(0, 1%) = %d%.%d+ %-> 1'))
    assert.truthy(out:find('xor%(1, 1%) = %d%.%d+ %-> 0'))
    assert.truthy(out:find('error as expected', 1, true))
  end)

  it('runs two lua_States in two host threads, training and saving to one path', function()
    local dir = support.tempdir()
    local out, code = run(build .. '/embed-threads ' .. dir)
    assert.equal(0, code, out)
    assert.truthy(out:find('threads: ok', 1, true), out)
    os.execute('rm -rf ' .. dir)
  end)

  it('reports a broken model script as a Lua error', function()
    local bad = support.tempfile('this is not lua', '.lua')
    local out, code = run(build .. '/embed-host ' .. bad)
    assert.equal(1, code)
    assert.truthy(out:find('syntax error', 1, true) or out:find('unexpected symbol', 1, true))
    os.remove(bad)
  end)
end)

local installable = (os.getenv('ASAN') or '') == '' and describe or pending
installable('make install', function()
  it('installs into DESTDIR a working nnlua, module, headers and pkg-config file', function()
    local root = os.tmpname()
    os.remove(root)
    local out, code = run(('make -s install DESTDIR=%s PREFIX=/usr/local 2>&1'):format(root))
    assert.equal(0, code, out)
    local prefix = root .. '/usr/local'
    local o2, c2 = run(prefix .. "/bin/nnlua -e 'print(nn.Linear(2, 3)(nn.ones(1, 2)).shape[2], nn.optim ~= nil)'")
    assert.equal(0, c2, o2)
    assert.equal('3\ttrue\n', o2)
    local o3, c3 = run(('LUA_CPATH=%s/lib/lua/5.4/?.so LUA_PATH=%s/share/lua/5.4/?.lua lua5.4 -e '
      .. '\'local nn = require "nnlua"; print(nn.F.mse_loss(nn.ones(2), nn.zeros(2)):item())\'')
      :format(prefix, prefix))
    assert.equal(0, c3, o3)
    assert.equal('1.0\n', o3)
    -- a host compiled against the installed pkg-config file
    local host = root .. '/host'
    -- the .pc file names the final prefix; point a copy at the scratch tree
    local pcdir = root .. '/pc'
    os.execute(('mkdir -p %s && sed "s|^prefix=.*|prefix=%s|" %s/lib/pkgconfig/nnlua.pc > %s/nnlua.pc')
      :format(pcdir, prefix, prefix, pcdir))
    local pc = ('PKG_CONFIG_PATH=%s pkg-config'):format(pcdir)
    local o4, c4 = run(('cc examples/embed/host.c $(%s --cflags --libs nnlua) -fopenmp -ldl -lm '
      .. '-o %s -Wl,-rpath,%s/lib'):format(pc, host, prefix))
    assert.equal(0, c4, o4)
    local o5, c5 = run(host .. ' examples/embed/model.lua')
    assert.equal(0, c5, o5)
    assert.truthy(o5:find('-> 1', 1, true))
    assert.truthy(io.open(prefix .. '/share/man/man1/nnlua.1'))
    local o6, c6 = run(('make -s uninstall DESTDIR=%s PREFIX=/usr/local 2>&1'):format(root))
    assert.equal(0, c6, o6)
    assert.is_nil(io.open(prefix .. '/bin/nnlua'))
    os.execute('rm -rf ' .. root)
  end)

  -- into the real /usr/local (root only; never over an nnlua already there)
  local root_ok = io.popen('id -u'):read('l') == '0' and not io.open('/usr/local/bin/nnlua')
    and not io.open('/usr/local/lib/libnnlua.so.0')
  local as_root = root_ok and it or pending
  as_root('make install runs ldconfig: a host built with pkg-config starts, no rpath needed', function()
    local out, code = run('make -s install PREFIX=/usr/local 2>&1')
    local ok, err = pcall(function()
      assert.equal(0, code, out)
      local host = os.tmpname()
      local o2, c2 = run(('cc examples/embed/host.c $(pkg-config --cflags --libs nnlua) -fopenmp -ldl -lm -o %s')
        :format(host))
      assert.equal(0, c2, o2)
      local o3, c3 = run(host .. ' examples/embed/model.lua')
      assert.equal(0, c3, o3) -- was: libnnlua.so.0: cannot open shared object file
      assert.truthy(o3:find('-> 1', 1, true), o3)
      os.remove(host)
    end)
    local o4, c4 = run('make -s uninstall PREFIX=/usr/local 2>&1')
    assert(ok, err)
    assert.equal(0, c4, o4)
    assert.is_nil(io.open('/usr/local/lib/libnnlua.so.0'))
  end)

  it('installs with luarocks make into a scratch tree', function()
    local tree = os.tmpname()
    os.remove(tree)
    local out, code = run(('luarocks --lua-version 5.4 --tree %s make nnlua-scm-1.rockspec 2>&1'):format(tree))
    assert.equal(0, code, out)
    local o2, c2 = run(('LUA_CPATH="%s/lib/lua/5.4/?.so" LUA_PATH="%s/share/lua/5.4/?.lua" lua5.4 -e '
      .. '\'local nn = require "nnlua"; print(nn.optim.SGD ~= nil, nn.ones(2):sum():item())\''):format(tree, tree))
    assert.equal(0, c2, o2)
    assert.equal('true\t2.0\n', o2)
    os.execute('rm -rf ' .. tree)
  end)
end)
