-- The examples run end to end on tiny settings (their real runs are
-- reported in the README and the closing notes, not timed here).
local support = require 'support'
local exe, run = support.exe, support.run

describe('examples', function()
  it('gpt: trains, saves, and samples from the saved model', function()
    local text = support.tempfile(('To be, or not to be, that is the question.\n'):rep(200))
    local ckpt = os.tmpname() .. '.safetensors'
    local out, code = run(('%s examples/gpt/train.lua --data %s --iters 20 --n_layer 1 --n_head 2 '
      .. '--n_embd 16 --block_size 16 --batch 4 --eval_interval 10 --eval_iters 2 '
      .. '--log_interval 10 --sample_len 20 --out %s'):format(exe, text, ckpt))
    assert.equal(0, code, out)
    assert.truthy(out:find('val loss', 1, true))
    assert.truthy(out:find('tokens/s', 1, true))
    assert.truthy(out:find('saved ' .. ckpt, 1, true))
    local s, code2 = run(('%s examples/gpt/sample.lua --model %s --tokens 30 --prompt "To "'):format(exe, ckpt))
    assert.equal(0, code2, s)
    assert.truthy(s:find('^To '))
    local missing, code3 = run(exe .. ' examples/gpt/sample.lua --model /nonexistent.safetensors')
    assert.equal(1, code3)
    assert.truthy(missing:find('No such file', 1, true))
    os.remove(text)
    os.remove(ckpt)
  end)

  it('translate: trains a few steps and reports held-out exact match', function()
    local out, code = run(exe .. ' examples/translate/train.lua --steps 10 --max 200 --test 50 '
      .. '--eval_every 100 --batch 8')
    assert.equal(0, code, out)
    assert.truthy(out:find('held-out exact match', 1, true))
  end)

  it('rejects unknown options with a usage line', function()
    local out, code = run(exe .. ' examples/gpt/train.lua --bogus 1')
    assert.equal(2, code)
    assert.truthy(out:find('usage:', 1, true))
  end)
end)
