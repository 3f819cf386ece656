-- The engine's folders are layers that depend in one direction only:
-- core <- ops <- nn <- io <- dist (a file includes headers of its own
-- folder or of lower ones; dist needs only core), and every public header is ready for C++ hosts and opens
-- with a worked example that compiles and runs.
local support = require 'support'

local rank = { core = 1, ops = 2, nn = 3, io = 4, dist = 5 }
local public = { 'engine/core/nn_tensor.h', 'engine/ops/nn_ops.h', 'engine/ops/nn_unary_ops.h',
  'engine/nn/nn_layers.h', 'engine/io/nn_io.h', 'engine/dist/nn_dist.h', 'engine/nn.h' }

local function files()
  local list, p = {}, io.popen('ls engine/*/*.c engine/*/*.h')
  for f in p:lines() do list[#list + 1] = f end
  p:close()
  return list
end

describe('engine layout', function()
  local where = {} -- header name -> folder
  for _, f in ipairs(files()) do
    local folder, name = f:match('^engine/(%w+)/([%w_]+%.h)$')
    if name then where[name] = folder end
  end

  it('has the five folders and nothing loose beside the umbrella header', function()
    local p = io.popen('ls engine')
    local loose = {}
    for f in p:lines() do
      if not rank[f] and f ~= 'nn.h' then loose[#loose + 1] = f end
    end
    p:close()
    assert.same({}, loose)
  end)

  it('includes only its own folder and lower ones', function()
    local bad = {}
    for _, f in ipairs(files()) do
      local folder = f:match('^engine/(%w+)/')
      for name in support.read(f):gmatch('#include "([^"]+)"') do
        local target = where[name]
        if not target then
          bad[#bad + 1] = ('%s includes %s, which is not an engine header'):format(f, name)
        elseif rank[target] > rank[folder] then
          bad[#bad + 1] = ('%s (%s) includes %s (%s)'):format(f, folder, name, target)
        end
      end
    end
    assert.same({}, bad)
  end)

  it('would notice a lower folder including a higher one', function()
    local src = '#include "nn_layers.h"\n'
    local name = src:match('#include "([^"]+)"')
    assert.truthy(rank[where[name]] > rank.core)
  end)

  for _, h in ipairs(public) do
    it(h .. ' has an extern "C" guard and opens with a comment', function()
      local text = support.read(h)
      assert.truthy(text:match('^/%*'), 'no opening comment')
      if h ~= 'engine/nn.h' then
        assert.truthy(text:find('extern "C" {', 1, true), 'no extern "C" guard')
      end
    end)
  end

  local cxx = os.execute('command -v g++ > /dev/null 2>&1') and it or pending
  cxx('nn.h compiles as C++', function()
    local src = support.tempfile('#include "nn.h"\nint main() { return nn_numel == 0; }\n', '.cpp')
    local out, status = support.run(('g++ -fsyntax-only %s %s'):format(support.engine_cflags, src))
    assert.equal(0, status, out)
    os.remove(src)
  end)

  it("nn_tensor.h's worked example compiles and runs: a tensor, an op, backward", function()
    local text = support.read('engine/core/nn_tensor.h')
    local lines = {}
    for line in text:match('^/%*(.-)%*/'):gmatch('[^\n]*') do
      local code = line:match('^ %*     (.*)$')
      if code then lines[#lines + 1] = code end
    end
    assert.truthy(#lines >= 8, 'no example found')
    local body = table.concat(lines, '\n')
    assert.truthy(body:find('nn_backward', 1, true))
    local src = support.tempfile('#include "nn.h"\n#include <stdio.h>\nint main(void) {\n'
      .. body .. '\nreturn 0;\n}\n', '.c')
    local bin = os.tmpname()
    local build = (support.exe:match('^(.*)/[^/]*$') or '.'):gsub('^%.$', 'build')
    local out, status = support.run(('cc -std=c11 -D_GNU_SOURCE %s %s -o %s %s/libnnengine.a %s '
      .. '$(echo "%s" | grep -q asan && echo -fsanitize=address,undefined)'):format(support.engine_cflags,
      src, bin, build, support.engine_libs(), build))
    assert.equal(0, status, out)
    local run_out, run_status = support.run(bin)
    assert.equal(0, run_status, run_out)
    assert.truthy(run_out:match('^%-?[%d.e+-]+ 0%.5\n$'), run_out)
    os.remove(src)
    os.remove(bin)
  end)
end)
