local nn = require 'nnlua'
local support = require 'support'

-- rows by "name kind phase"
local function index(report)
  local by = {}
  for _, r in ipairs(report.rows) do by[r.name .. ' ' .. r.kind .. ' ' .. r.phase] = r end
  return by
end

describe('nn.profile', function()
  it('counts ops and layers, forward and backward, with self times inside totals', function()
    nn.manual_seed(1)
    local m = nn.Sequential(nn.Linear(6, 5), nn.Tanh(), nn.Linear(5, 3))
    local x = nn.randn(4, 6)
    local report, a, b = nn.profile(function()
      for _ = 1, 4 do
        local y = m(x)
        local loss = (y * y):mean()
        loss:backward()
      end
      return 'a', 'b'
    end)
    assert.equal('a', a)
    assert.equal('b', b)
    local by = index(report)
    assert.equal(8, by['Linear layer forward'].calls)
    assert.equal(4, by['Tanh layer forward'].calls)
    assert.equal(4, by['Sequential layer forward'].calls)
    assert.equal(4, by['mul op forward'].calls) -- y * y is the metamethod, named as the op
    assert.equal(4, by['mean op forward'].calls)
    assert.equal(4, by['backward op forward'].calls)
    assert.equal(4, by['mean op backward'].calls)
    assert.equal(4, by['mul op backward'].calls)
    -- the backward nodes recorded inside each Linear call, summed per layer
    assert.truthy(by['Linear layer backward'].calls >= 8)
    assert.truthy(by['Tanh layer backward'].calls >= 4)
    local scoped = 0
    for _, r in ipairs(report.rows) do
      assert.truthy(r.self <= r.total + 1e-9, r.name)
      assert.truthy(r.self >= -1e-6 and r.outer <= r.total + 1e-9, r.name)
      assert.truthy(r.threads >= 0, r.name)
      scoped = scoped + r.outer
    end
    assert.truthy(scoped <= report.wall + 1e-6)
    -- a layer's total holds its children: Sequential >= the two Linears and the Tanh
    local seq = by['Sequential layer forward']
    assert.truthy(seq.total + 1e-9 >= by['Linear layer forward'].total + by['Tanh layer forward'].total)
    -- memory: each (4, 5) / (4, 3) output is allocated inside the layers
    assert.truthy(by['Linear layer forward'].self_bytes >= 4 * (4 * 5 + 4 * 3) * 4)
  end)

  it('times Lua modules by class name and nested layers apart', function()
    local Block = nn.Module:extend()
    Block._name = 'Block'
    function Block:_init() self.fc = nn.Linear(3, 3) end
    function Block:forward(x) return self.fc(x):relu() end
    local blk = Block()
    local report = nn.profile(function()
      for _ = 1, 3 do blk(nn.randn(2, 3)) end
    end)
    local by = index(report)
    assert.equal(3, by['Block layer forward'].calls)
    assert.equal(3, by['Linear layer forward'].calls)
    assert.equal(3, by['relu op forward'].calls)
    assert.truthy(by['Block layer forward'].total + 1e-9 >= by['Linear layer forward'].total)
  end)

  it('puts every function back, also when fn fails, and refuses to nest', function()
    local add, sum, mt_add = nn.add, nn.sum, getmetatable(nn.zeros(1)).__add
    assert.error_matches(function()
      nn.profile(function() nn.ones(2):sum(); error('boom') end)
    end, 'boom')
    assert.truthy(rawequal(add, nn.add) and rawequal(sum, nn.sum))
    assert.truthy(rawequal(mt_add, getmetatable(nn.zeros(1)).__add))
    nn.profile(function()
      assert.is_false(rawequal(add, nn.add)) -- wrapped while it runs
      assert.error_matches(function() nn.profile(function() end) end, 'a profile is already running')
    end)
    assert.truthy(rawequal(add, nn.add))
    -- an error inside an op still closes its scope: the next profile is sane
    local report = nn.profile(function()
      pcall(nn.matmul, nn.ones(2, 3), nn.ones(2, 3))
      nn.ones(2):sum()
    end)
    local by = index(report)
    assert.equal(1, by['matmul op forward'].calls)
    assert.equal(1, by['sum op forward'].calls)
    assert.truthy(by['sum op forward'].outer > 0) -- not counted inside the failed matmul
  end)

  it('sorts, limits and writes JSON; checks its arguments', function()
    local report = nn.profile(function()
      for _ = 1, 5 do nn.ones(3):add(1) end
      nn.zeros(1000)
    end, { sort = 'calls', limit = 2 })
    local rows = report:sorted({ sort = 'calls', limit = 2 })
    assert.equal(2, #rows)
    assert.truthy(rows[1].calls >= rows[2].calls)
    assert.equal('zeros', report:sorted({ sort = 'bytes', limit = 1 })[1].name)
    local text = tostring(report)
    assert.truthy(text:find('outside every op and layer', 1, true))
    assert.truthy(select(2, text:gsub('\n', '')) == 3) -- header, column names, two rows
    local decoded = require('cjson').decode(report:json())
    assert.equal(#report.rows, #decoded.rows)
    assert.truthy(decoded.wall > 0)
    assert.error_matches(function() nn.profile(42) end, 'expected a function, got number')
    assert.error_matches(function() nn.profile(function() end, { sort = 'name' }) end, "sort must be 'self'")
    assert.error_matches(function() nn.profile(function() end, { limit = 0 }) end, 'limit must be an integer >= 1')
  end)

  it('profiles a whole script with NNLUA_PROFILE and writes the JSON there', function()
    local dir = support.tempdir()
    local script, json = dir .. '/s.lua', dir .. '/p.json'
    support.write(script, "local nn = require 'nnlua'\nlocal m = nn.Linear(3, 2)\n" ..
      "for _ = 1, 7 do m(nn.randn(2, 3)):sum():backward() end\nprint('done')\n")
    local out = support.run(("NNLUA_PROFILE='%s' %s '%s' 2>&1"):format(json, support.exe, script))
    assert.truthy(out:find('done', 1, true), out)
    assert.truthy(out:find('Linear', 1, true), out)
    local rows = require('cjson').decode((support.read(json))).rows
    local by = {}
    for _, r in ipairs(rows) do by[r.name .. ' ' .. r.kind .. ' ' .. r.phase] = r end
    assert.equal(7, by['Linear layer forward'].calls)
    assert.equal(7, by['sum op backward'].calls)
  end)
end)
