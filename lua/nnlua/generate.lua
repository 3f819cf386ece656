--- nnlua.generate: sampling from language models -- greedy, temperature,
--- top-k, top-p (nucleus) and beam search -- with a KV cache so each new
--- token costs one position, not a recomputation of the whole prefix.
---
--- A model is driven through step(idx (B, t), state) -> logits (B, t, V):
--- state.caches (one nn.KVCache per layer, made by the caller's
--- new_state()) and state.offset (tokens already cached) let the model
--- attend over the past. Token ids count from 1.
local nn = require 'nnlua'

local M = {}

local OPTIONS_GENERATE_SAMPLE = nn.define_options('generate.sample', { 'temperature', 'top_k', 'top_p', 'greedy' })
--- sample(logits (B, V)[, {greedy =, temperature = 1, top_k =, top_p =}])
--- -> ids (B) i64
function M.sample(logits, o)
  o = OPTIONS_GENERATE_SAMPLE(o)
  if logits:ne(logits):sum():item() > 0 then -- NaN would pick an arbitrary token
    error('sample: the logits contain NaN', 2)
  end
  if o.greedy or o.temperature == 0 then
    local _, idx = logits:max(2)
    return idx
  end
  local l = logits / (o.temperature or 1)
  if o.top_k and o.top_k < l:size(2) then -- everything below the k-th largest out
    local kth = (l:topk(o.top_k, 2)):narrow(2, o.top_k, 1)
    l = l:masked_fill(l:lt(kth), -math.huge)
  end
  local probs = l:softmax(2)
  if o.top_p and o.top_p < 1 then -- the smallest set whose mass reaches top_p
    local sorted, order = probs:sort(2, true)
    local before = sorted:cumsum(2) - sorted -- mass strictly before each token
    local cut = sorted:masked_fill(before:ge(o.top_p), 0)
    probs = nn.zeros_like(probs):scatter(2, order, cut)
    probs = probs / probs:sum(2, true)
  end
  -- inverse-CDF sampling, one uniform draw per row
  local u = nn.rand(probs:size(1), 1)
  local idx = probs:cumsum(2):lt(u):sum(2):long() + 1
  return idx:clamp(1, probs:size(2))
end

local OPTIONS_GENERATE_GENERATE = nn.define_options('generate.generate', { 'temperature', 'top_k', 'top_p', 'greedy', 'block_size', 'use_cache' })
--- generate(model, prompt (B, T) i64, n[, opts]) -> (B, T + n) i64.
--- model:step(idx, state) and model:new_state(batch) as described above;
--- opts as sample(), plus use_cache (default true) and block_size (the
--- longest context: without a cache the context is cropped to it; with one,
--- the cache restarts from the last half block when it is full).
function M.generate(model, prompt, n, o)
  o = OPTIONS_GENERATE_GENERATE(o)
  local use_cache = o.use_cache ~= false
  local so = { temperature = o.temperature, top_k = o.top_k, top_p = o.top_p, greedy = o.greedy }
  return nn.no_grad(function()
    local seq = prompt
    local state = use_cache and model:new_state(prompt:size(1)) or nil
    local next_input = prompt
    for _ = 1, n do
      local logits
      if use_cache and o.block_size and state.offset + next_input:size(2) > o.block_size then
        -- the context is full: restart the cache from the last half block
        local keep = math.max(1, o.block_size // 2)
        state = model:new_state(prompt:size(1))
        next_input = seq:narrow(2, seq:size(2) - keep + 1, keep)
      end
      if use_cache then
        logits = model:step(next_input, state)
        state.offset = state.offset + next_input:size(2)
      else
        local ctx = seq
        if o.block_size and ctx:size(2) > o.block_size then
          ctx = ctx:narrow(2, ctx:size(2) - o.block_size + 1, o.block_size)
        end
        logits = model:step(ctx, nil)
      end
      local last = logits:select(2, logits:size(2))
      local id = M.sample(last, so):view(-1, 1)
      seq = nn.cat({ seq, id }, 2)
      next_input = id
    end
    return seq
  end)
end

local OPTIONS_GENERATE_BEAM_SEARCH = nn.define_options('generate.beam_search', { 'length_penalty' })
--- beam_search(model, prompt (1, T), n, width[, {length_penalty = 1}]) ->
--- the best continuation (1, T + n) and its log-probability. Beams share
--- one batched forward per step; their caches are reordered as beams fork.
function M.beam_search(model, prompt, n, width, o)
  o = OPTIONS_GENERATE_BEAM_SEARCH(o)
  return nn.no_grad(function()
    local state = model:new_state(1)
    local logits = model:step(prompt, state)
    state.offset = prompt:size(2)
    local logp = logits:select(2, logits:size(2)):log_softmax(2) -- (1, V)
    local v = logp:size(2)
    local scores, ids = logp:view(-1):topk(math.min(width, v))
    local beams = nn.cat({ prompt:expand(scores:size(1), prompt:size(2)), ids:view(-1, 1) }, 2)
    for _, c in ipairs(state.caches) do c:reorder(nn.ones(scores:size(1), 'i64')) end
    for _ = 2, n do
      local last = beams:narrow(2, beams:size(2), 1)
      logits = model:step(last, state)
      state.offset = state.offset + 1
      local total = logits:select(2, 1):log_softmax(2) + scores:view(-1, 1) -- (W, V)
      local best, flat = total:view(-1):topk(math.min(width, total:numel()))
      local from = ((flat - 1) // v) + 1 -- which beam each winner extends
      local tok = ((flat - 1) % v) + 1
      beams = nn.cat({ beams:index_select(1, from), tok:view(-1, 1) }, 2)
      for _, c in ipairs(state.caches) do c:reorder(from) end
      scores = best
    end
    local lp = o.length_penalty or 1
    local norm = scores / (n ^ lp)
    local _, i = norm:max(1)
    return beams:narrow(1, i:item(), 1), scores[i:item()]
  end)
end

local OPTIONS_BATCH_BEAM = nn.define_options('generate.batch_beam_search',
  { 'beam', 'bos', 'eos', 'max_len', 'length_penalty' })

-- a copy of list with x appended
local function extend(list, x)
  local out = table.move(list, 1, #list, 1, {})
  out[#out + 1] = x
  return out
end

--- batch_beam_search(step, state, n, {beam = 4, bos =, eos =, max_len =,
--- length_penalty = 1}) decodes n items at once, beam hypotheses each, for
--- encoder-decoder models. state holds n * beam rows (row (i-1)*beam + j is
--- beam j of item i, all alike at the start); step(tokens (rows, 1) i64,
--- state) returns the next token's log-probabilities (rows, V) (a
--- contiguous result is reused: the beams' scores are added into it);
--- state:reorder(idx, same_items) keeps rows idx (i64, 1-based) in that
--- order; same_items is true when no item left the batch (rows only moved
--- between the beams of one item, so per-item state such as an encoder's
--- memory can stay as it is). Each
--- step ranks beam x V continuations of every item in one topk, keeps the
--- best `beam` that do not end, and moves those ending in eos among the best
--- `beam` to the item's finished list, scored by log-probability / length ^
--- length_penalty (the length counts eos). An item is done once it has
--- `beam` finished hypotheses or reaches max_len tokens (a number, or one
--- per item); done items leave the batch, so later steps run on fewer rows.
--- Returns a list of n token lists (bos and eos left out) and their scores.
function M.batch_beam_search(step, state, n, o)
  o = OPTIONS_BATCH_BEAM(o)
  local k, lp = o.beam or 4, o.length_penalty or 1
  if math.type(k) ~= 'integer' or k < 1 then error('generate.batch_beam_search: beam must be an integer >= 1', 2) end
  if math.type(o.bos) ~= 'integer' or math.type(o.eos) ~= 'integer' then
    error('generate.batch_beam_search: bos and eos must be token ids', 2)
  end
  if math.type(n) ~= 'integer' or n < 1 then error('generate.batch_beam_search: n must be an integer >= 1', 2) end
  -- the first tokens before any per-item table: an absurd n * beam fails here
  local tokens = nn.full({ n * k, 1 }, o.bos, 'i64')
  local limits = {}
  for i = 1, n do
    local m = type(o.max_len) == 'table' and o.max_len[i] or o.max_len
    if math.type(m) ~= 'integer' or m < 1 then error('generate.batch_beam_search: max_len must be integers >= 1', 2) end
    limits[i] = m
  end
  local best, best_score = {}, {}
  return nn.no_grad(function()
    local live, finished = {}, {} -- the items still decoding, in row order
    for i = 1, n do live[i], finished[i] = i, {} end
    -- beam 1 of each item starts alone: the others are copies of it
    local init = {}
    for i = 1, n do
      for j = 1, k do init[#init + 1] = j == 1 and 0 or -math.huge end
    end
    local scores = nn.tensor(init)
    local seqs -- (rows, t - 1): the tokens of every live beam so far
    local function prefix(row) return seqs and seqs[row]:totable() or {} end
    local t = 0
    while #live > 0 do
      t = t + 1
      local logp = step(tokens, state) -- (rows, V)
      local v = logp:size(2)
      local add = scores:view(-1, 1)
      -- in place when it can (one pass, no copy): step's tensor is its own
      local total = (logp:is_contiguous() and not logp.requires_grad and logp:add_(add) or logp + add)
        :view(#live, k * v)
      local vals, idx = total:topk(math.min(2 * k, k * v), 2)
      vals, idx = vals:totable(), idx:totable()
      local keep, nscores, ntok, nlive, before = {}, {}, {}, {}, #live
      for b, item in ipairs(live) do
        local m, fin, new = limits[item], finished[item], {}
        local base = (b - 1) * k
        for c = 1, #vals[b] do
          local val = vals[b][c]
          if val == -math.huge then break end
          local from, tok = (idx[b][c] - 1) // v + 1, (idx[b][c] - 1) % v + 1
          if tok == o.eos then
            if c <= k then fin[#fin + 1] = { prefix(base + from), val / t ^ lp } end
          elseif #new < k then
            new[#new + 1] = { from, tok, val }
          end
        end
        if #fin < k and t >= m then -- out of length: the live beams end here
          for _, e in ipairs(new) do fin[#fin + 1] = { extend(prefix(base + e[1]), e[2]), e[3] / t ^ lp } end
        end
        if #fin >= k or t >= m or #new == 0 then
          local top, ts = {}, -math.huge
          for _, f in ipairs(fin) do
            if f[2] > ts then top, ts = f[1], f[2] end
          end
          best[item], best_score[item] = top, ts
        else
          -- a beam continuing from slot j takes slot j when it can, so rows
          -- that stay in place need no copy in state:reorder; slots left
          -- over (fewer than k continuations) are dead: score -inf, kept as
          -- they are
          local slot, rest = {}, {}
          for _, e in ipairs(new) do
            if slot[e[1]] then rest[#rest + 1] = e else slot[e[1]] = e end
          end
          for j = 1, k do
            if not slot[j] and #rest > 0 then slot[j] = table.remove(rest) end
            local e = slot[j]
            keep[#keep + 1] = base + (e and e[1] or j)
            nscores[#nscores + 1] = e and e[3] or -math.huge
            ntok[#ntok + 1] = e and e[2] or new[1][2]
          end
          nlive[#nlive + 1] = item
        end
      end
      live = nlive
      if #live == 0 then break end
      local idx_t = nn.tensor(keep, 'i64')
      state:reorder(idx_t, #live == before)
      scores = nn.tensor(nscores)
      tokens = nn.tensor(ntok, 'i64'):view(-1, 1)
      seqs = seqs and nn.cat({ seqs:index_select(1, idx_t), tokens }, 2) or tokens
    end
    return best, best_score
  end)
end

return M
