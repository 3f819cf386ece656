--- nnlua.metrics: text-generation scores.
---
--- bleu(hypotheses, references[, {tokenize = '13a' | 'none', smooth = 'exp'
--- | 'none'}]): corpus BLEU as sacreBLEU computes it by default: its 13a
--- tokenisation of detokenised text (mteval-v13a's rules), clipped n-gram
--- counts for n = 1..4 summed over the corpus, the brevity penalty from the
--- closest reference length of each sentence, and 'exp' smoothing of an order
--- with no match. references: one string per hypothesis, or a list of
--- strings per hypothesis (several references).
---
--- rouge(hypotheses, references[, {n = {1, 2}, lcs = true}]): ROUGE-N and
--- ROUGE-L F1 (and precision and recall) as Google's rouge-score package
--- defines them without stemming: lowercased text cut into runs of ASCII
--- letters and digits, clipped n-gram overlap, the longest common
--- subsequence for L; each pair scored on its own, then averaged.
local nn = require 'nnlua'

local M = {}

-- ---- tokenisation -------------------------------------------------------------

--- cider(hypotheses, references[, {n = 4, sigma = 6}]): CIDEr-D as the
--- COCO caption evaluation code (pycocoevalcap's CiderD) computes it:
--- rouge-style tokens; TF-IDF vectors of 1..n-grams with document
--- frequencies counted over the images' references (log of the number of
--- images as the corpus length); per order the cosine with clipped
--- hypothesis weights, times exp(-delta^2 / (2 sigma^2)) where delta is
--- the difference of the two lengths -- counted, as that code does, in
--- bigrams; the mean over orders and references, times 10, averaged over
--- images.
--- tokenize_13a(line) -> list of tokens (sacreBLEU's default tokeniser)
function M.tokenize_13a(line)
  line = line:gsub('<skipped>', ''):gsub('%-\n', ''):gsub('\n', ' ')
  if line:find('&', 1, true) then
    line = line:gsub('&quot;', '"'):gsub('&amp;', '&'):gsub('&lt;', '<'):gsub('&gt;', '>')
  end
  line = ' ' .. line .. ' '
  -- every ASCII symbol but ' , - . gets spaces around it
  line = line:gsub('([%{%|%}~%[\\%]%^_`%s!"#%$%%&%(%)%*%+:;<=>%?@/])', ' %1 ')
  line = line:gsub('([^0-9])([%.,])', '%1 %2 ') -- . and , unless after a digit
  line = line:gsub('([%.,])([^0-9])', ' %1 %2') -- . and , unless before a digit
  line = line:gsub('([0-9])(%-)', '%1 %2 ') -- - after a digit
  local out = {}
  for w in line:gmatch('%S+') do out[#out + 1] = w end
  return out
end

local function split_spaces(line)
  local out = {}
  for w in line:gmatch('%S+') do out[#out + 1] = w end
  return out
end

--- tokenize_rouge(text) -> lowercased runs of a-z and 0-9 (rouge-score's)
function M.tokenize_rouge(text)
  local out = {}
  for w in text:lower():gmatch('[a-z0-9]+') do out[#out + 1] = w end
  return out
end

-- counts of the n-grams of tokens (keys joined by a byte no token holds)
local function ngrams(tokens, n)
  local counts, total = {}, 0
  for i = 1, #tokens - n + 1 do
    local key = table.concat(tokens, '\1', i, i + n - 1)
    counts[key] = (counts[key] or 0) + 1
    total = total + 1
  end
  return counts, total
end

-- ---- BLEU --------------------------------------------------------------------------

local OPTIONS_BLEU = nn.define_options('metrics.bleu', { 'tokenize', 'smooth' })

local function check_lists(name, hyps, refs)
  if type(hyps) ~= 'table' or type(refs) ~= 'table' then
    error(('metrics.%s: hypotheses and references must be lists of strings'):format(name), 3)
  end
  if #hyps ~= #refs then
    error(('metrics.%s: %d hypotheses but %d references'):format(name, #hyps, #refs), 3)
  end
  for i, h in ipairs(hyps) do
    if type(h) ~= 'string' then error(('metrics.%s: hypothesis %d is a %s, not a string'):format(name, i, type(h)), 3) end
    local r = refs[i]
    if type(r) == 'table' then
      if #r == 0 then error(('metrics.%s: reference %d is an empty list'):format(name, i), 3) end
      for _, s in ipairs(r) do
        if type(s) ~= 'string' then error(('metrics.%s: reference %d holds a %s'):format(name, i, type(s)), 3) end
      end
    elseif type(r) ~= 'string' then
      error(('metrics.%s: reference %d is a %s, not a string'):format(name, i, type(r)), 3)
    end
  end
end

--- bleu(...) -> {score (0-100), precisions = {p1..p4} (percent), bp,
--- ratio = sys_len / ref_len, sys_len, ref_len, counts, totals}
function M.bleu(hyps, refs, o)
  o = OPTIONS_BLEU(o)
  check_lists('bleu', hyps, refs)
  local tok = o.tokenize or '13a'
  if tok ~= '13a' and tok ~= 'none' then error("metrics.bleu: tokenize must be '13a' or 'none', got " .. tostring(tok), 2) end
  local smooth = o.smooth or 'exp'
  if smooth ~= 'exp' and smooth ~= 'none' then error("metrics.bleu: smooth must be 'exp' or 'none', got " .. tostring(smooth), 2) end
  local tokenize = tok == '13a' and M.tokenize_13a or split_spaces
  local correct, total = { 0, 0, 0, 0 }, { 0, 0, 0, 0 }
  local sys_len, ref_len = 0, 0
  for i, h in ipairs(hyps) do
    local ht = tokenize(h)
    local rs = type(refs[i]) == 'table' and refs[i] or { refs[i] }
    local rts = {}
    for j, r in ipairs(rs) do rts[j] = tokenize(r) end
    -- the closest reference length (ties: the shorter)
    local best
    for _, rt in ipairs(rts) do
      local d = math.abs(#rt - #ht)
      if not best or d < math.abs(best - #ht) or (d == math.abs(best - #ht) and #rt < best) then best = #rt end
    end
    sys_len, ref_len = sys_len + #ht, ref_len + best
    for n = 1, 4 do
      local hc, ht_n = ngrams(ht, n)
      local maxref = {}
      for _, rt in ipairs(rts) do
        for k, c in pairs((ngrams(rt, n))) do
          if c > (maxref[k] or 0) then maxref[k] = c end
        end
      end
      for k, c in pairs(hc) do correct[n] = correct[n] + math.min(c, maxref[k] or 0) end
      total[n] = total[n] + ht_n
    end
  end
  local precisions, logsum, smooth_mteval, zero = {}, 0, 1, false
  for n = 1, 4 do
    if total[n] == 0 then
      precisions[n], zero = 0, true
    elseif correct[n] == 0 then
      if smooth == 'exp' then
        smooth_mteval = smooth_mteval * 2
        precisions[n] = 100 / (smooth_mteval * total[n])
      else
        precisions[n], zero = 0, true
      end
    else
      precisions[n] = 100 * correct[n] / total[n]
    end
    if precisions[n] > 0 then logsum = logsum + math.log(precisions[n]) end
  end
  local bp = 1
  if sys_len == 0 then bp = 0
  elseif sys_len < ref_len then bp = math.exp(1 - ref_len / sys_len) end
  local score = zero and 0 or bp * math.exp(logsum / 4)
  return { score = score, precisions = precisions, bp = bp, ratio = ref_len > 0 and sys_len / ref_len or 0,
    sys_len = sys_len, ref_len = ref_len, counts = correct, totals = total }
end

-- ---- ROUGE --------------------------------------------------------------------------

local function prf(overlap, nh, nr)
  local p = nh > 0 and overlap / nh or 0
  local r = nr > 0 and overlap / nr or 0
  return { precision = p, recall = r, f = (p + r) > 0 and 2 * p * r / (p + r) or 0 }
end

--- rouge_n(hyp_tokens, ref_tokens, n) -> {precision, recall, f}
function M.rouge_n(ht, rt, n)
  local hc, nh = ngrams(ht, n)
  local rc, nr = ngrams(rt, n)
  local overlap = 0
  for k, c in pairs(hc) do overlap = overlap + math.min(c, rc[k] or 0) end
  return prf(overlap, nh, nr)
end

--- lcs(a, b) -> the length of the longest common subsequence of two lists
function M.lcs(a, b)
  if #a == 0 or #b == 0 then return 0 end
  local prev, cur = {}, {}
  for j = 0, #b do prev[j] = 0 end
  for i = 1, #a do
    cur[0] = 0
    local ai = a[i]
    for j = 1, #b do
      if ai == b[j] then cur[j] = prev[j - 1] + 1
      else
        local u, l = prev[j], cur[j - 1]
        cur[j] = u > l and u or l
      end
    end
    prev, cur = cur, prev
  end
  return prev[#b]
end

local OPTIONS_ROUGE = nn.define_options('metrics.rouge', { 'n', 'lcs' })

--- rouge(...) -> {rouge1 = {precision, recall, f}, rouge2 = ..., rougeL =
--- ...} averaged over the pairs (fractions in [0, 1]), and per_item (the
--- list of each pair's scores)
function M.rouge(hyps, refs, o)
  o = OPTIONS_ROUGE(o)
  check_lists('rouge', hyps, refs)
  local orders = o.n or { 1, 2 }
  if type(orders) ~= 'table' then error('metrics.rouge: n must be a list of orders, got ' .. type(orders), 2) end
  for _, n in ipairs(orders) do
    if math.type(n) ~= 'integer' or n < 1 then error('metrics.rouge: n holds ' .. tostring(n) .. ', not an order >= 1', 2) end
  end
  local names = {}
  for _, n in ipairs(orders) do names[#names + 1] = 'rouge' .. n end
  if o.lcs ~= false then names[#names + 1] = 'rougeL' end
  local sums, items = {}, {}
  for _, k in ipairs(names) do sums[k] = { precision = 0, recall = 0, f = 0 } end
  for i, h in ipairs(hyps) do
    if type(refs[i]) ~= 'string' then error(('metrics.rouge: reference %d must be one string'):format(i), 2) end
    local ht, rt = M.tokenize_rouge(h), M.tokenize_rouge(refs[i])
    local item = {}
    for _, n in ipairs(orders) do item['rouge' .. n] = M.rouge_n(ht, rt, n) end
    if o.lcs ~= false then item.rougeL = prf(M.lcs(ht, rt), #ht, #rt) end
    for k, s in pairs(item) do
      for f, v in pairs(s) do sums[k][f] = sums[k][f] + v end
    end
    items[i] = item
  end
  local out = { per_item = items }
  for k, s in pairs(sums) do
    out[k] = {}
    for f, v in pairs(s) do out[k][f] = #hyps > 0 and v / #hyps or 0 end
  end
  return out
end

-- ---- CIDEr-D ---------------------------------------------------------------------------

local OPTIONS_CIDER = nn.define_options('metrics.cider', { 'n', 'sigma' })

local function cooked(text, n)
  local tokens, out = M.tokenize_rouge(text), {}
  for k = 1, n do out[k] = ngrams(tokens, k) end
  return out
end

--- cider(...) -> {score, per_item}
function M.cider(hyps, refs, o)
  o = OPTIONS_CIDER(o) or {}
  check_lists('cider', hyps, refs)
  local n, sigma = o.n or 4, o.sigma or 6
  if math.type(n) ~= 'integer' or n < 1 then error('metrics.cider: n must be an integer >= 1, got ' .. tostring(n), 2) end
  if type(sigma) ~= 'number' or not (sigma > 0) then error('metrics.cider: sigma must be positive, got ' .. tostring(sigma), 2) end
  local crefs, df = {}, {}
  for i, r in ipairs(refs) do
    local list, seen = type(r) == 'table' and r or { r }, {}
    crefs[i] = {}
    for j, text in ipairs(list) do
      crefs[i][j] = cooked(text, n)
      for k = 1, n do
        for g in pairs(crefs[i][j][k]) do
          if not seen[g] then seen[g], df[g] = true, (df[g] or 0) + 1 end
        end
      end
    end
  end
  local ref_len = math.log(math.max(#refs, 1))
  local function vec(c)
    local v, norm, length = {}, {}, 0
    for k = 1, n do
      v[k], norm[k] = {}, 0
      for g, tf in pairs(c[k]) do
        local w = tf * (ref_len - math.log(math.max(1, df[g] or 0)))
        v[k][g], norm[k] = w, norm[k] + w * w
        if k == 2 then length = length + tf end -- the reference code's length: bigrams
      end
      norm[k] = math.sqrt(norm[k])
    end
    return v, norm, length
  end
  local total, per_item = 0, {}
  for i, h in ipairs(hyps) do
    local vh, nh, lh = vec(cooked(h, n))
    local score = 0
    for _, cr in ipairs(crefs[i]) do
      local vr, nr, lr = vec(cr)
      local penalty = math.exp(-((lh - lr) ^ 2) / (2 * sigma * sigma))
      for k = 1, n do
        local val = 0
        for g, w in pairs(vh[k]) do
          local wr = vr[k][g] or 0
          val = val + math.min(w, wr) * wr
        end
        if nh[k] ~= 0 and nr[k] ~= 0 then val = val / (nh[k] * nr[k]) end
        score = score + val * penalty
      end
    end
    per_item[i] = score / n / #crefs[i] * 10
    total = total + per_item[i]
  end
  return { score = #hyps > 0 and total / #hyps or 0, per_item = per_item }
end

return M
