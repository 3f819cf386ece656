local nn = require 'nnlua'
package.path = 'examples/gpt/?.lua;' .. package.path
local GPT = require 'model'
local gen = nn.generate

local function tiny()
  nn.manual_seed(5)
  local m = GPT({ vocab_size = 11, block_size = 16, n_layer = 2, n_head = 2, n_embd = 8, dropout = 0 })
  m:eval()
  return m
end

describe('nnlua.generate', function()
  it('samples greedily, within the top k and within the top p mass', function()
    local logits = nn.tensor({ { 0, 3, 1, 2 }, { 5, 0, 0, 4 } })
    assert.same({ 2, 1 }, gen.sample(logits, { greedy = true }):totable())
    nn.manual_seed(1)
    for _ = 1, 50 do
      local ids = gen.sample(logits, { top_k = 2 }):totable()
      assert.truthy(ids[1] == 2 or ids[1] == 4)
      assert.truthy(ids[2] == 1 or ids[2] == 4)
      local p = gen.sample(nn.tensor({ { 10, 0, 9.5, -5 } }), { top_p = 0.5 }):item()
      assert.equal(1, p) -- the first token alone holds more than half the mass
    end
  end)

  it('samples in proportion to the probabilities', function()
    nn.manual_seed(2)
    local logits = nn.tensor({ { math.log(0.7), math.log(0.2), math.log(0.1) } }):expand(4000, 3)
    local ids = gen.sample(logits)
    local share = ids:eq(1):float():mean():item()
    assert.is_true(math.abs(share - 0.7) < 0.03, 'share ' .. share)
  end)

  it('gives the same tokens with and without the KV cache', function()
    local m = tiny()
    local prompt = nn.tensor({ { 3, 1, 4 } }, 'i64')
    local a = gen.generate(m, prompt, 10, { greedy = true })
    local b = gen.generate(m, prompt, 10, { greedy = true, use_cache = false })
    assert.same(b:totable(), a:totable())
    assert.same({ 1, 13 }, a.shape)
  end)

  it('keeps going past the context with a restarted cache', function()
    local m = tiny()
    local out = gen.generate(m, nn.tensor({ { 1 } }, 'i64'), 40, { block_size = 16, temperature = 0.9 })
    assert.same({ 1, 41 }, out.shape)
  end)

  it('beam search of width 1 is greedy decoding, and wider beams score at least as well', function()
    local m = tiny()
    local prompt = nn.tensor({ { 2, 7 } }, 'i64')
    local greedy = gen.generate(m, prompt, 6, { greedy = true })
    local beam1 = gen.beam_search(m, prompt, 6, 1)
    assert.same(greedy:totable(), beam1:totable())
    local function logprob(seq)
      local logits = nn.no_grad(function() return m:step(seq) end)
      local lp = logits:log_softmax(3)
      local s = 0
      for t = 3, seq:size(2) do s = s + lp[{ 1, t - 1, seq[1][t] }] end
      return s
    end
    local beam4, score4 = gen.beam_search(m, prompt, 6, 4)
    assert.near(logprob(beam4), score4, 1e-4)
    assert.is_true(logprob(beam4) >= logprob(greedy) - 1e-5)
  end)
end)
