-- The README's examples are run here, so they cannot rot.
local support = require 'support'
local exe = support.exe

local function readme() return support.read('README.md') end

local function capture(cmd, input) return (support.run(cmd, input)) end

describe('README.md', function()
  it('shows a REPL tour that prints exactly what the REPL prints', function()
    local block = readme():match('```\n%$ %./nnlua\n(.-)```')
    assert.truthy(block, 'no REPL block in README.md')
    local inputs, expected = {}, {}
    for line in block:gmatch('([^\n]*)\n') do
      if line:sub(1, 2) == '> ' then inputs[#inputs + 1] = line:sub(3)
      else expected[#expected + 1] = line end
    end
    local out = capture(exe .. ' -i', table.concat(inputs, '\n') .. '\n')
    out = out:gsub('^[^\n]*nnlua: ', './nnlua: '):gsub('\n[^\n]*nnlua: stdin', '\n./nnlua: stdin')
    assert.equal(table.concat(expected, '\n') .. '\n\n', out)
  end)

  it('shows a training example that runs', function()
    local code = readme():match('## Training a model\n\n```lua\n(.-)```')
    assert.truthy(code, 'no training example in README.md')
    local file = support.tempfile(code, '.lua')
    local out, status = support.run(exe .. ' ' .. file)
    os.remove(file)
    assert.equal(0, status, out)
    assert.equal('256x784\n', out)
  end)

  local stock = (os.getenv('ASAN') or '') == '' and it or pending
  stock('loads the library from stock lua5.4 as documented', function()
    local cmd = readme():match("\n(LUA_CPATH='%./%?%.so;;'[^\n]+)\n")
    assert.truthy(cmd, 'no lua5.4 command in README.md')
    local dir = exe:match('^(.*)/[^/]*$') or '.'
    cmd = cmd:gsub("'%./%?%.so;;'", "'" .. dir .. "/?.so;;'")
    assert.equal('tensor([1., 1.], shape={2}, dtype=f32)\n', capture(cmd, ''))
  end)
end)
