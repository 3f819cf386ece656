-- The C API reference (docs/c-api.md): every function of the engine's headers and
-- bindings/nnlua.h is named, and every example compiles against the engine
-- library and runs.
local support = require 'support'

local read = require('support').read

local doc = read('docs/c-api.md')
local build = (support.exe:match('^(.*)/[^/]*$') or '.'):gsub('^%.$', 'build')

describe('docs/c-api.md', function()
  it('names every function of the public headers', function()
    local named = {}
    for heading in doc:gmatch('\n### ([^\n]+)') do
      for name in heading:gmatch('[%w_]+') do named[name] = true end
    end
    local missing = {}
    for _, h in ipairs({ 'engine/core/nn_tensor.h', 'engine/ops/nn_ops.h', 'engine/nn/nn_layers.h',
      'engine/io/nn_io.h', 'engine/dist/nn_dist.h', 'bindings/nnlua.h' }) do
      for name in read(h):gmatch('([%w_]+)%(') do
        if (name:match('^nn_') or name:match('^nnlua_') or name:match('^luaopen_nnlua')) and not named[name] then
          missing[name] = true
        end
      end
    end
    local list = {}
    for k in pairs(missing) do list[#list + 1] = k end
    table.sort(list)
    assert(#list == 0, 'undocumented: ' .. table.concat(list, ', '))
  end)

  local n = 0
  for code in doc:gmatch('```c\n(.-)```') do
    n = n + 1
    local k = n
    -- lines above a "/* ---- main */" line are at file scope (callbacks)
    local top, body = code:match('^(.-)/%* %-%-%-%- main %*/\n(.*)$')
    if top then code = body else top = '' end
    it('example ' .. k .. ' compiles and runs', function()
      local src = support.tempfile('#include "nn.h"\n#include <assert.h>\n#include <stdio.h>\n'
        .. '#include <stdlib.h>\n#include <string.h>\n' .. top .. 'int main(void) {\n' .. code
        .. '\nreturn 0;\n}\n', '.c')
      local bin = os.tmpname()
      local out, status = support.run(('cc -std=c11 -D_GNU_SOURCE -w %s %s -o %s %s/libnnengine.a '
        .. '%s $(echo "%s" | grep -q asan && echo -fsanitize=address,undefined)')
        :format(support.engine_cflags, src, bin, build, support.engine_libs(), build))
      assert.equal(0, status, out)
      local out2, status2 = support.run(bin)
      assert.equal(0, status2, out2)
      os.remove(src)
      os.remove(bin)
    end)
  end
end)
