-- Random arguments to every nn function (tests/fuzz/api.lua): errors are
-- fine, crashes are not. Longer runs: build-asan/nnlua tests/fuzz/api.lua N SEED
local support = require 'support'

describe('the API under random arguments', function()
  it('raises errors and never crashes', function()
    local out, code = support.run(support.exe .. ' tests/fuzz/api.lua 4000 7')
    assert.equal(0, code, out)
    assert.truthy(out:find('no crash', 1, true), out)
  end)
end)
