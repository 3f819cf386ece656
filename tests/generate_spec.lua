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

describe('nnlua.generate.batch_beam_search', function()
  -- a toy "model": the next token's log-probabilities depend on the item
  -- and the last token only (a fixed random table), so exhaustive search
  -- over every sequence up to max_len finds the true best hypothesis
  local V, EOS, BOS = 5, 1, 6
  local function toy(n)
    nn.manual_seed(11)
    local tab = nn.randn(n, V + 1, V):mul(2):log_softmax(3) -- (item, last token, next)
    local state = { rows = nil }
    function state:reorder(idx) self.rows = self.rows:index_select(1, idx) end
    local function step(tokens, st)
      local out = {}
      for r = 1, tokens:size(1) do
        out[r] = tab[st.rows[r]][tokens[r][1]]:view(1, V)
      end
      return nn.cat(out, 1)
    end
    return tab, state, step
  end

  local function best_by_search(tab, item, max_len, lp)
    local best, bs = nil, -math.huge
    local function walk(seq, last, logp)
      local t = #seq + 1
      for tok = 1, V do
        local l = logp + tab[item][last][tok]
        if tok == EOS or t == max_len then
          local s = l / t ^ lp
          if s > bs then
            best, bs = table.move(seq, 1, #seq, 1, {}), s
            if tok ~= EOS then best[#best + 1] = tok end
          end
        end
        if tok ~= EOS and t < max_len then
          seq[t] = tok
          walk(seq, tok, l)
          seq[t] = nil
        end
      end
    end
    walk({}, BOS, 0)
    return best, bs
  end

  it('finds what exhaustive search finds with a wide beam, per item, with length penalties', function()
    local n, k = 3, 16
    for _, lp in ipairs({ 0, 1, 2 }) do
      local tab, st, step = toy(n)
      local rows = {}
      for i = 1, n do for _ = 1, k do rows[#rows + 1] = i end end
      st.rows = nn.tensor(rows, 'i64')
      local got, scores = nn.generate.batch_beam_search(step, st, n, { beam = k, bos = BOS, eos = EOS,
        max_len = { 3, 4, 2 }, length_penalty = lp })
      for i, m in ipairs({ 3, 4, 2 }) do
        local want, ws = best_by_search(tab, i, m, lp)
        assert.same(want, got[i])
        assert.near(ws, scores[i], 1e-4)
      end
    end
  end)

  it('with beam 1 is greedy decoding, and batching does not change the results', function()
    local n = 4
    local tab, st, step = toy(n)
    st.rows = nn.arange(1, n + 1)
    local got = nn.generate.batch_beam_search(step, st, n, { beam = 1, bos = BOS, eos = EOS, max_len = 6 })
    for i = 1, n do
      local seq, last = {}, BOS
      for _ = 1, 6 do
        local _, tok = tab[i][last]:max(1)
        tok = tok:item()
        if tok == EOS then break end
        seq[#seq + 1], last = tok, tok
      end
      assert.same(seq, got[i])
    end
    local _, st2, step2 = toy(n)
    st2.rows = nn.tensor({ 3, 3, 3 }, 'i64')
    local one = nn.generate.batch_beam_search(step2, st2, 1, { beam = 3, bos = BOS, eos = EOS, max_len = 5 })
    local _, st3, step3 = toy(n)
    local rows = {}
    for i = 1, n do for _ = 1, 3 do rows[#rows + 1] = i end end
    st3.rows = nn.tensor(rows, 'i64')
    local all = nn.generate.batch_beam_search(step3, st3, n, { beam = 3, bos = BOS, eos = EOS, max_len = 5 })
    assert.same(one[1], all[3])
  end)

  it('checks its options', function()
    local _, st, step = toy(1)
    st.rows = nn.tensor({ 1 }, 'i64')
    assert.error_matches(function() nn.generate.batch_beam_search(step, st, 1, { beam = 0, bos = 1, eos = 2, max_len = 3 }) end, 'beam must be an integer >= 1')
    assert.error_matches(function() nn.generate.batch_beam_search(step, st, 1, { bos = 1, max_len = 3 }) end, 'bos and eos must be token ids')
    assert.error_matches(function() nn.generate.batch_beam_search(step, st, 1, { bos = 6, eos = 1 }) end, 'max_len must be integers >= 1')
    assert.error_matches(function() nn.generate.batch_beam_search(step, st, 1, { bos = 6, eos = 1, max_len = 2, width = 3 }) end, 'unknown option')
  end)
end)
