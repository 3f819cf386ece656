--- The two summarisation baselines: the lead (the first N words of the
--- description) and retrieval (the synopsis of the most similar training
--- description: TF-IDF vectors over rouge-score's tokens, with
--- idf = log((1 + N) / (1 + df)) + 1, compared by cosine through an
--- inverted index).
local nn = require 'nnlua'

local M = {}

--- median_words(pairs) -> the median word count of the targets
function M.median_words(pairs)
  local n = {}
  for i, p in ipairs(pairs) do n[i] = select(2, p[2]:gsub('%S+', '')) end
  table.sort(n)
  return n[(#n + 1) // 2]
end

--- lead(pairs, n) -> the first n words of each source
function M.lead(pairs, n)
  local out = {}
  for i, p in ipairs(pairs) do
    local w = {}
    for word in p[1]:gmatch('%S+') do
      if #w == n then break end
      w[#w + 1] = word
    end
    out[i] = table.concat(w, ' ')
  end
  return out
end

local function counts(text)
  local c = {}
  for _, t in ipairs(nn.metrics.tokenize_rouge(text)) do c[t] = (c[t] or 0) + 1 end
  return c
end

-- tf-idf weights of a term count table, L2-normalised
local function weigh(c, idf)
  local w, norm = {}, 0
  for t, n in pairs(c) do
    local x = n * (idf[t] or 0)
    if x > 0 then w[t], norm = x, norm + x * x end
  end
  norm = math.sqrt(norm)
  if norm > 0 then
    for t, x in pairs(w) do w[t] = x / norm end
  end
  return w
end

--- retrieval(train, test) -> for each test pair, the target of the train
--- pair whose source is nearest by TF-IDF cosine (ties: the first)
function M.retrieval(train, test)
  local df, docs = {}, {}
  for i, p in ipairs(train) do
    docs[i] = counts(p[1])
    for t in pairs(docs[i]) do df[t] = (df[t] or 0) + 1 end
  end
  local idf, n = {}, #train
  for t, d in pairs(df) do idf[t] = math.log((1 + n) / (1 + d)) + 1 end
  local postings = {}
  for i, c in ipairs(docs) do
    for t, x in pairs(weigh(c, idf)) do
      local p = postings[t]
      if not p then p = { docs = {}, w = {} }; postings[t] = p end
      p.docs[#p.docs + 1], p.w[#p.w + 1] = i, x
    end
  end
  local out = {}
  for j, p in ipairs(test) do
    local score = {}
    for t, x in pairs(weigh(counts(p[1]), idf)) do
      local post = postings[t]
      if post then
        local d, w = post.docs, post.w
        for k = 1, #d do
          local i = d[k]
          score[i] = (score[i] or 0) + x * w[k]
        end
      end
    end
    local best, bs = nil, -1
    for i, s in pairs(score) do
      if s > bs or (s == bs and i < best) then best, bs = i, s end
    end
    out[j] = best and train[best][2] or ''
  end
  return out
end

return M
