-- nn.metrics.bleu against NLTK's corpus_bleu on DDTP text with sacreBLEU's
-- 13a tokenisation (tests/ref/gen_metrics.py -> tests/ref/metrics.json), and
-- nn.metrics.rouge on hand-worked cases (rouge-score's definitions).
local nn = require 'nnlua'
local support = require 'support'

local ref = support.reference('metrics')

local function close(a, b, tol) return math.abs(a - b) <= (tol or 1e-9) * math.max(1, math.abs(b)) end

describe('nn.metrics.bleu', function()
  for _, c in ipairs(ref) do
    it(c.name .. ': 13a tokens and corpus BLEU as NLTK', function()
      for i, h in ipairs(c.hyps) do
        assert.same(c.hyp_tokens[i], nn.metrics.tokenize_13a(h))
        local r = type(c.refs[i]) == 'table' and c.refs[i][1] or c.refs[i]
        assert.same(c.ref_tokens[i], nn.metrics.tokenize_13a(r))
      end
      local b = nn.metrics.bleu(c.hyps, c.refs)
      assert(close(b.score, c.bleu), ('BLEU %.10f, NLTK %.10f'):format(b.score, c.bleu))
    end)
  end

  it('works out a small case by hand', function()
    -- hyp "the cat sat on the mat" vs ref "the cat is on the mat":
    -- 1-grams 5/6, 2-grams 3/5, 3-grams 1/4, 4-grams 0/3 (smoothed: 100/(2*3))
    local b = nn.metrics.bleu({ 'the cat sat on the mat' }, { 'the cat is on the mat' })
    assert.same({ 5, 3, 1, 0 }, b.counts)
    assert.same({ 6, 5, 4, 3 }, b.totals)
    local want = math.exp((math.log(500 / 6) + math.log(60) + math.log(25) + math.log(100 / 6)) / 4)
    assert(close(b.score, want), b.score .. ' vs ' .. want)
    assert.equal(1, b.bp)
    assert.equal(0, nn.metrics.bleu({ 'the cat sat on the mat' }, { 'the cat is on the mat' }, { smooth = 'none' }).score)
    assert(close(nn.metrics.bleu({ 'a b c d' }, { 'a b c d' }).score, 100))
  end)

  it('applies the brevity penalty over the corpus', function()
    local b = nn.metrics.bleu({ 'a b c d' }, { 'a b c d e f g h' })
    assert(close(b.bp, math.exp(1 - 8 / 4)))
    assert(close(b.score, 100 * math.exp(1 - 2)))
    assert.equal(0, nn.metrics.bleu({ '' }, { 'a b' }).score)
  end)

  it('rejects bad arguments by name', function()
    local function err(f, ...) local ok, e = pcall(f, ...); assert(not ok); return tostring(e) end
    assert.matches('2 hypotheses but 1 references', err(nn.metrics.bleu, { 'a', 'b' }, { 'a' }))
    assert.matches('hypothesis 1 is a number', err(nn.metrics.bleu, { 1 }, { 'a' }))
    assert.matches('reference 1 is an empty list', err(nn.metrics.bleu, { 'a' }, { {} }))
    assert.matches("tokenize must be '13a' or 'none'", err(nn.metrics.bleu, { 'a' }, { 'a' }, { tokenize = 'intl' }))
    assert.matches('unknown option', err(nn.metrics.bleu, { 'a' }, { 'a' }, { lowercase = true }))
  end)
end)

describe('nn.metrics.rouge', function()
  it('tokenises as rouge-score: lowercase runs of a-z0-9', function()
    assert.same({ 'the', 'gnu', 'c', 'library', 'v2', '3', 'm', 'nchen' },
      nn.metrics.tokenize_rouge('The GNU C-library (v2.3) München'))
  end)

  it('works out ROUGE-1, ROUGE-2 and ROUGE-L by hand', function()
    -- ref: police killed the gunman; hyp: police kill the gunman
    -- 1-grams: overlap 3 of 4 and 4 -> F 0.75; 2-grams: "the gunman" 1 of 3
    -- and 3 -> 1/3; LCS police the gunman = 3 -> 0.75
    local r = nn.metrics.rouge({ 'police kill the gunman' }, { 'police killed the gunman' })
    assert(close(r.rouge1.f, 0.75) and close(r.rouge2.f, 1 / 3) and close(r.rougeL.f, 0.75))
    -- hyp: the gunman kill police (same words, other order): R1 1... 3/4;
    -- R2: "the gunman" 1/3; LCS "the gunman" = 2 -> 0.5
    r = nn.metrics.rouge({ 'the gunman kill police' }, { 'police killed the gunman' })
    assert(close(r.rouge1.f, 0.75) and close(r.rouge2.f, 1 / 3) and close(r.rougeL.f, 0.5))
    -- unequal lengths: hyp "a b c" vs ref "a x b y": R1 P 2/3 R 2/4 F 4/7;
    -- LCS "a b" = 2 -> the same; R2 none -> 0
    r = nn.metrics.rouge({ 'a b c' }, { 'a x b y' })
    assert(close(r.rouge1.precision, 2 / 3) and close(r.rouge1.recall, 0.5) and close(r.rouge1.f, 4 / 7))
    assert(close(r.rougeL.f, 4 / 7) and r.rouge2.f == 0)
    -- clipped counts: hyp "the the the" vs ref "the cat": overlap 1
    r = nn.metrics.rouge({ 'the the the' }, { 'the cat' })
    assert(close(r.rouge1.precision, 1 / 3) and close(r.rouge1.recall, 0.5))
  end)

  it('averages per-pair F1 over the corpus; empty texts score 0', function()
    local r = nn.metrics.rouge({ 'a b', 'x', '' }, { 'a b', 'y', 'z' }, { n = { 1 } })
    assert(close(r.rouge1.f, 1 / 3) and close(r.rougeL.f, 1 / 3))
    assert.is_nil(r.rouge2)
    assert.equal(3, #r.per_item)
    assert.is_nil(nn.metrics.rouge({ 'a' }, { 'a' }, { lcs = false }).rougeL)
  end)

  it('finds the longest common subsequence', function()
    assert.equal(4, nn.metrics.lcs({ 'a', 'b', 'c', 'b', 'd', 'a', 'b' }, { 'b', 'd', 'c', 'a', 'b', 'a' }))
    assert.equal(0, nn.metrics.lcs({}, { 'a' }))
  end)

  it('rejects bad arguments by name', function()
    local ok, e = pcall(nn.metrics.rouge, { 'a' }, { 'a' }, { n = { 0 } })
    assert(not ok and tostring(e):find('not an order >= 1', 1, true))
    ok, e = pcall(nn.metrics.rouge, { 'a' }, { { 'a', 'b' } })
    assert(not ok and tostring(e):find('reference 1 must be one string', 1, true))
  end)

  it('computes CIDEr-D on hand-worked cases', function()
    -- images with refs "a b" and "c d": every n-gram in one image's refs,
    -- so each weight is tf * log(2) (L) and unseen n-grams weigh L too.
    -- "a b" vs "a b": orders 1 and 2 cosine 1, 3 and 4 empty: 10 * 2/4 = 5.
    -- "c e" vs "c d": order 1 = L^2 / (sqrt2 L)^2 = 0.5, order 2: 0 -> 1.25
    local r = nn.metrics.cider({ 'a b', 'c e' }, { 'a b', 'c d' })
    assert(close(r.per_item[1], 5) and close(r.per_item[2], 1.25) and close(r.score, 3.125))
    -- "a b b" vs "a b": order 1 (L*L + L*L) / (sqrt5 L sqrt2 L) = 2/sqrt10,
    -- order 2 L^2 / (sqrt2 L L) = 1/sqrt2, lengths in bigrams 2 and 1:
    -- penalty exp(-1/72)
    r = nn.metrics.cider({ 'a b b', 'c d' }, { 'a b', 'c d' })
    assert(close(r.per_item[1], (2 / math.sqrt(10) + 1 / math.sqrt(2)) * math.exp(-1 / 72) / 4 * 10))
    -- two references: the mean over them ("a b" matches one of them fully)
    r = nn.metrics.cider({ 'a b', 'c d' }, { { 'a b', 'x y' }, 'c d' })
    assert(close(r.per_item[1], 2.5) and close(r.per_item[2], 5))
    local ok, e = pcall(nn.metrics.cider, { 'a' }, { 'a' }, { sigma = 0 })
    assert(not ok and tostring(e):find('sigma must be positive', 1, true))
  end)
end)
