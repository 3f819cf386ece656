-- The documentation cannot rot: every ```lua block in docs/*.md runs, and
-- every public function appears in docs/api.md (a new function without
-- documentation fails here).
local nn = require 'nnlua'

local read = require('support').read

local function doc_files()
  local p = io.popen('ls docs/*.md')
  local files = {}
  for line in p:lines() do files[#files + 1] = line end
  p:close()
  return files
end

describe('docs', function()
  for _, file in ipairs(doc_files()) do
    it('runs every example in ' .. file, function()
      local n, text = 0, read(file)
      for code in text:gmatch('```lua\n(.-)```') do
        n = n + 1
        local env = setmetatable({ nn = nn }, { __index = _G })
        local chunk, err = load(code, ('=%s block %d'):format(file, n), 't', env)
        assert(chunk, err)
        local ok, msg = pcall(chunk)
        assert(ok, ('%s block %d: %s'):format(file, n, tostring(msg)))
      end
      -- (C examples are compiled and run by tests/capi_spec.lua)
      assert.is_true(n > 0 or text:find('```c\n', 1, true) ~= nil, file .. ' has no examples')
    end)
  end

  it('documents every public function of nn in docs/api.md', function()
    local api = read('docs/api.md')
    local documented = {}
    for heading in api:gmatch('\n### ([^\n]+)') do
      for name in heading:gmatch('nn%.([%w_]+)') do documented[name] = true end
    end
    if documented.op_table then -- the op tables' section covers every op in them
      local ops = nn.op_table()
      for _, op in ipairs(ops.unary) do documented[op.name] = true end
      for _, name in ipairs(ops.binary) do documented[name] = true end
    end
    local names = {}
    for k in pairs(nn) do names[#names + 1] = k end
    for _, k in ipairs(nn._lazy) do names[#names + 1] = k end
    local missing = {}
    for _, k in ipairs(names) do
      local base = k:match('^(.-)_$')
      if not k:match('^_') and not documented[k] and not (base and documented[base]) then
        missing[#missing + 1] = k
      end
    end
    table.sort(missing)
    assert(#missing == 0, 'undocumented: nn.' .. table.concat(missing, ', nn.'))
  end)

  it('names every public function of the Lua modules in docs/api.md', function()
    local api = read('docs/api.md')
    local missing = {}
    for _, mod in ipairs({ 'optim', 'init', 'F', 'data', 'generate', 'transformer', 'checkpoint',
                           'progress', 'plot', 'cli', 'tokenizer', 'multimodal', 'kge', 'dist' }) do
      for k, v in pairs(nn[mod]) do
        if type(k) == 'string' and not k:match('^_') and (type(v) == 'function' or type(v) == 'table')
           and not api:find(k, 1, true) then
          missing[#missing + 1] = mod .. '.' .. k
        end
      end
    end
    table.sort(missing)
    assert(#missing == 0, 'undocumented: nn.' .. table.concat(missing, ', nn.'))
  end)
end)
