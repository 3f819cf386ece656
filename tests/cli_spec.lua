-- nn.cli: `--name value` options typed by their defaults, booleans as flags.
local nn = require 'nnlua'

describe('cli.parse', function()
  local defaults = { lr = 1e-3, data = 'wordnet', bernoulli = false, shuffle = true }

  it('keeps defaults and types values by them', function()
    local opt = nn.cli.parse({ '--lr', '0.5', '--data', 'dir' }, defaults)
    assert.equal(0.5, opt.lr)
    assert.equal('dir', opt.data)
    assert.is_false(opt.bernoulli)
    assert.is_true(opt.shuffle)
  end)

  it('reads a boolean as a flag, or as an explicit true / false', function()
    assert.is_true(nn.cli.parse({ '--bernoulli' }, defaults).bernoulli)
    assert.is_true(nn.cli.parse({ '--bernoulli', '--lr', '2' }, defaults).bernoulli)
    local opt = nn.cli.parse({ '--bernoulli', 'false', '--shuffle', 'false', '--lr', '2' }, defaults)
    assert.is_false(opt.bernoulli) -- "false" is not a truthy string
    assert.is_false(opt.shuffle)
    assert.equal(2, opt.lr)
    assert.is_true(nn.cli.parse({ '--bernoulli', 'true' }, defaults).bernoulli)
  end)
end)

describe('cli.parse with a spec', function()
  local spec = {
    { 'iters', 100, 'iterations', integer = true, min = 1 },
    { 'p', 0.5, 'a probability', min = 0, max = 1 },
    { 'model', 'mlp', 'architecture', choices = { 'mlp', 'cnn' } },
    { 'only', '', 'which rows', each = { 'a', 'b', 'c' } },
    { 'data', '', 'input file', path = 'file' },
    { 'dir', '', 'a folder', path = 'dir' },
    { 'out', '', 'output file', path = 'out' },
    { 'force', false, 'overwrite' },
  }
  local function fails(args, message)
    local ok, err = pcall(nn.cli.parse, args, spec)
    assert.is_false(ok)
    assert.equal(2, err.exit_code)
    assert.truthy(tostring(err):find(message, 1, true), tostring(err))
    assert.is_nil(tostring(err):find('\n'), tostring(err)) -- one line
  end

  it('checks numbers, choices, lists and paths before returning', function()
    local opt = nn.cli.parse({ '--iters', '5', '--model', 'cnn', '--only', 'a,c', '--data', 'README.md',
                               '--dir', 'tests', '--out', os.tmpname() .. '.x', '--force' }, spec)
    assert.equal(5, opt.iters)
    assert.equal('integer', math.type(opt.iters))
    assert.equal('cnn', opt.model)
    assert.is_true(opt.force)
    fails({ '--iters', '0' }, '--iters must be an integer >= 1, got 0')
    fails({ '--iters', '1.5' }, '--iters must be an integer >= 1, got 1.5')
    fails({ '--p', '2' }, '--p must be in [0, 1], got 2')
    fails({ '--p', 'nan' }, '--p must be a number')
    fails({ '--model', 'rnn' }, '--model must be one of mlp|cnn, got rnn')
    fails({ '--only', 'a,d' }, '--only: unknown item "d"')
    fails({ '--data', '/nonexistent' }, '--data: /nonexistent: No such file or directory')
    fails({ '--data', 'tests' }, '--data: tests: Is a directory')
    fails({ '--dir', 'README.md' }, '--dir: README.md is not a directory')
    fails({ '--out', '/nonexistent/x' }, '--out: directory /nonexistent does not exist')
    fails({ '--out', 'tests' }, '--out: tests is a directory')
    fails({ '--bogus', '1' }, 'unknown option --bogus')
    fails({ '--iters' }, '--iters needs a value')
    fails({ 'stray' }, 'unexpected argument "stray"')
  end)

  it('describes every option in --help', function()
    local ok, err = pcall(nn.cli.parse, { '--help' }, spec)
    assert.is_false(ok)
    assert.equal(0, err.exit_code)
    local usage = tostring(err)
    assert.truthy(usage:find('--iters N%s+iterations %(default 100; an integer >= 1%)'), usage)
    assert.truthy(usage:find('--model mlp|cnn%s+architecture %(default "mlp"%)'), usage)
    assert.truthy(usage:find('--data FILE%s+input file\n'), usage)
    assert.truthy(usage:find('--force%s+overwrite$'), usage)
    assert.truthy(usage:find('items: a,b,c', 1, true), usage)
  end)

  it('keep refuses to overwrite a file unless forced; fail is a user error', function()
    local f = os.tmpname()
    local ok, err = pcall(nn.cli.keep, f, false)
    assert.is_false(ok)
    assert.truthy(tostring(err):find('exists; pass --force to overwrite it', 1, true))
    nn.cli.keep(f, true)
    os.remove(f)
    nn.cli.keep(f, false) -- gone: nothing to keep
    ok, err = pcall(nn.cli.fail, '%d is too big', 7)
    assert.equal(2, err.exit_code)
    assert.truthy(tostring(err):find(': 7 is too big$'))
  end)
end)

describe('cli.try', function()
  it('turns a failed load into one short user error', function()
    local ok, err = pcall(nn.cli.try, '--resume', function() error('checkpoint.load: a; b; c; d; e', 2) end)
    assert.equal(2, err.exit_code)
    assert.truthy(tostring(err):find(': %-%-resume: checkpoint.load: a; b; c; and 2 more$'), tostring(err))
    ok, err = pcall(nn.cli.try, '--model', function() return nil, 'x: No such file or directory' end)
    assert.truthy(tostring(err):find(': %-%-model: x: No such file or directory$'), tostring(err))
    assert.same({ 1, 2 }, { nn.cli.try('--x', function() return 1, 2 end) })
  end)
end)
