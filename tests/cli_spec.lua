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
