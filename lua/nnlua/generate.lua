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

return M
