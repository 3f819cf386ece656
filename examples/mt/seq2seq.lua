--- The machinery examples/mt/train.lua and examples/summarize/train.lua
--- share: a shared BPE vocabulary, token-budget batches, training with
--- label smoothing and warmup + inverse-square-root decay, batched beam
--- decoding, and the export that bench/mt_twin.py reads so its PyTorch run
--- sees the same ids, batches, initial weights and schedule.
local nn = require 'nnlua'
local Seq2Seq = require 'model'

local M = {}
local SHIFT = 3 -- BPE id i is token i + 3 (after PAD, BOS, EOS)

--- vocabulary(pairs, size): a BPE trained on both sides of the pairs
function M.vocabulary(pairs, size)
  local text = {}
  for i, p in ipairs(pairs) do text[i] = p[1] .. '\n' .. p[2] end
  return nn.tokenizer.BPE.train(table.concat(text, '\n'), size)
end

--- ids(bpe, text[, max[, head]]) -> token list; longer than max: the first
--- `head` and the last max - head tokens (all the first max without head)
function M.ids(bpe, text, max, head)
  local t = bpe:encode(text):totable()
  for i = 1, #t do t[i] = t[i] + SHIFT end
  if max and #t > max then
    local out = table.move(t, 1, head or max, 1, {})
    if head then table.move(t, #t - (max - head) + 1, #t, head + 1, out) end
    t = out
  end
  return t
end

function M.text(bpe, ids)
  local t = {}
  for _, id in ipairs(ids) do
    if id > SHIFT then t[#t + 1] = id - SHIFT end
  end
  if #t == 0 then return '' end
  return bpe:decode(nn.tensor(t, 'i64'))
end

function M.texts(bpe, list)
  local out = {}
  for i, ids in ipairs(list) do out[i] = M.text(bpe, ids) end
  return out
end

--- encode(bpe, pairs, o) -> list of {src ids, tgt ids} (tgt without BOS/EOS);
--- pairs longer than o.max_src / o.max_tgt are dropped, or cut when o.cut
function M.encode(bpe, pairs, o)
  local out = {}
  for _, p in ipairs(pairs) do
    local s = M.ids(bpe, p[1], o.cut and o.max_src, o.cut and o.head)
    local t = M.ids(bpe, p[2], o.cut and o.max_tgt)
    if #s >= 1 and #t >= 1 and #s <= o.max_src and #t <= o.max_tgt then out[#out + 1] = { s, t } end
  end
  return out
end

-- a random permutation of 1..n (the shared generator, so seeded)
local function permutation(n)
  local _, perm = nn.rand(n):sort()
  return perm:totable()
end

--- plan(data, batch_tokens, steps) -> list of batches (lists of indices):
--- each epoch a permutation, cut in pools of 100 batches' worth, each pool
--- sorted by length and cut so that rows x longest side <= batch_tokens,
--- the epoch's batches in random order
function M.plan(data, batch_tokens, steps)
  local out = {}
  local function len(i) return math.max(#data[i][1], #data[i][2] + 1) end
  while #out < steps do
    local perm = permutation(#data)
    local batches = {}
    local pool = 100 * math.max(1, batch_tokens // 32)
    for s = 1, #perm, pool do
      local chunk = table.move(perm, s, math.min(s + pool - 1, #perm), 1, {})
      table.sort(chunk, function(a, b) return len(a) < len(b) or (len(a) == len(b) and a < b) end)
      local cur, longest = {}, 0
      for _, i in ipairs(chunk) do
        local l = math.max(longest, len(i))
        if #cur > 0 and l * (#cur + 1) > batch_tokens then
          batches[#batches + 1] = cur
          cur, l = {}, len(i)
        end
        cur[#cur + 1], longest = i, l
      end
      if #cur > 0 then batches[#batches + 1] = cur end
    end
    for _, b in ipairs(permutation(#batches)) do
      if #out == steps then break end
      out[#out + 1] = batches[b]
    end
  end
  return out
end

--- pad(rows, width) -> (B, width) i64, each token list padded with PAD
function M.pad(rows, width)
  local out = {}
  for r, s in ipairs(rows) do
    local row = {}
    for j = 1, width do row[j] = s[j] or Seq2Seq.PAD end
    out[r] = row
  end
  return nn.tensor(out, 'i64')
end
local pad = M.pad

--- batch(data, idx) -> src (B, S), tgt_in (B, T) (BOS first), tgt_out (B, T) (EOS last)
function M.batch(data, idx)
  local src, tin, tout, ls, lt = {}, {}, {}, 0, 0
  for r, i in ipairs(idx) do
    local s, t = data[i][1], data[i][2]
    src[r] = s
    tin[r] = table.move(t, 1, #t, 2, { Seq2Seq.BOS })
    tout[r] = table.move(t, 1, #t, 1, {})
    tout[r][#t + 1] = Seq2Seq.EOS
    ls, lt = math.max(ls, #s), math.max(lt, #t + 1)
  end
  return pad(src, ls), pad(tin, lt), pad(tout, lt)
end

--- lr(step, o): linear warmup to o.lr over o.warmup steps, then lr * sqrt(warmup / step)
function M.lr(step, o)
  if step <= o.warmup then return o.lr * step / o.warmup end
  return o.lr * math.sqrt(o.warmup / step)
end

--- loss(model, data, idx, smoothing) -> mean label-smoothed cross-entropy
--- over the target tokens, and the token count
function M.loss(model, data, idx, smoothing)
  local src, tin, tout = M.batch(data, idx)
  local logits = model(src, tin)
  local v = logits:size(3)
  local loss = nn.cross_entropy(logits:view(-1, v), tout:view(-1),
    { ignore_index = Seq2Seq.PAD, label_smoothing = smoothing })
  return loss, tout:ne(Seq2Seq.PAD):sum():item()
end

--- evaluate_loss(model, data[, batch_tokens]) -> per-token cross-entropy (no smoothing)
function M.evaluate_loss(model, data, batch_tokens)
  model:eval()
  local total, count = 0, 0
  nn.no_grad(function()
    local idx = {}
    for i = 1, #data do idx[i] = i end
    table.sort(idx, function(a, b) return #data[a][1] < #data[b][1] end)
    local b = math.max(1, (batch_tokens or 4096) // 64)
    for s = 1, #idx, b do
      local chunk = table.move(idx, s, math.min(s + b - 1, #idx), 1, {})
      local loss, n = M.loss(model, data, chunk, 0)
      total, count = total + loss:item() * n, count + n
    end
  end)
  model:train()
  return total / math.max(count, 1)
end

--- decode(model, sources (lists of ids), o) -> token lists, in order:
--- o.batch sentences at a time (sorted by length), beam o.beam, at most
--- o.len_a + o.len_b * source length tokens, o.length_penalty
function M.decode(model, sources, o)
  model:eval()
  local order = {}
  for i = 1, #sources do order[i] = i end
  table.sort(order, function(a, b) return #sources[a] < #sources[b] or (#sources[a] == #sources[b] and a < b) end)
  local out = {}
  for s = 1, #order, o.batch do
    local chunk, rows, max_len = {}, {}, {}
    for j = s, math.min(s + o.batch - 1, #order) do
      chunk[#chunk + 1] = order[j]
      rows[#rows + 1] = sources[order[j]]
      max_len[#max_len + 1] = math.floor(o.len_a + o.len_b * #sources[order[j]])
    end
    local width = 0
    for _, r in ipairs(rows) do width = math.max(width, #r) end
    local hyps = model:translate(pad(rows, width), { beam = o.beam, max_len = max_len,
      length_penalty = o.length_penalty })
    for j, i in ipairs(chunk) do out[i] = hyps[j] end
  end
  model:train()
  return out
end

-- ---- export for the PyTorch twin ------------------------------------------------------

--- ids_lines(lists) -> the token lists as text, one a line
function M.ids_lines(list)
  local lines = {}
  for i, ids in ipairs(list) do lines[i] = table.concat(ids, ' ') end
  return table.concat(lines, '\n') .. '\n'
end
local ids_lines = M.ids_lines

--- export(dir, {model, train, test_sources, plan, config}): what
--- bench/mt_twin.py needs to train and decode the same model in PyTorch
function M.export(dir, e)
  local files = require 'nnlua.files'
  assert(os.execute("mkdir -p '" .. dir .. "'"))
  local src, tgt = {}, {}
  for i, p in ipairs(e.train) do src[i], tgt[i] = p[1], p[2] end
  assert(files.write_atomic(dir .. '/train.src', ids_lines(src)))
  assert(files.write_atomic(dir .. '/train.tgt', ids_lines(tgt)))
  assert(files.write_atomic(dir .. '/test.src', ids_lines(e.test_sources)))
  assert(files.write_atomic(dir .. '/test.ref', table.concat(e.test_refs, '\n') .. '\n'))
  assert(files.write_atomic(dir .. '/plan.txt', ids_lines(e.plan)))
  assert(files.write_atomic(dir .. '/config.json', require('cjson').encode(e.config)))
  assert(nn.save(dir .. '/init.safetensors', e.model:state_dict()))
end

--- read_ids(path) -> list of token lists (bench/mt_twin.py's output)
function M.read_ids(path)
  local out = {}
  for line in io.lines(path) do
    local ids = {}
    for w in line:gmatch('%d+') do ids[#ids + 1] = tonumber(w) end
    out[#out + 1] = ids
  end
  return out
end

--- The options both examples take (each adds its own and its defaults)
function M.options(defaults)
  local d = defaults
  return {
    { 'data', '', 'a folder with train.tsv, valid.tsv and test.tsv, or one TSV file (source<TAB>target); empty: the Debian translation files, fetched into --cache' },
    { 'cache', 'data/ddtp', 'where the Debian files are fetched and prepared' },
    { 'steps', d.steps, 'training steps', integer = true, min = 1 },
    { 'batch_tokens', d.batch_tokens, 'tokens per batch (rows x longest side)', integer = true, min = 16 },
    { 'vocab', d.vocab, 'shared BPE vocabulary size', integer = true, min = 260 },
    { 'd_model', 256, 'model width', integer = true, min = 8 },
    { 'heads', 4, 'attention heads', integer = true, min = 1 },
    { 'layers', 3, 'encoder and decoder layers', integer = true, min = 1 },
    { 'ff', 1024, 'feed-forward width', integer = true, min = 8 },
    { 'dropout', 0.1, 'dropout', min = 0, max = 0.9 },
    { 'lr', 1e-3, 'peak learning rate (AdamW, betas 0.9 0.98)', min = 0 },
    { 'warmup', d.warmup, 'warmup steps, then inverse-square-root decay', integer = true, min = 1 },
    { 'smoothing', 0.1, 'label smoothing', min = 0, max = 0.9 },
    { 'max_src', d.max_src, 'source tokens at most', integer = true, min = 4 },
    { 'max_tgt', d.max_tgt, 'target tokens at most', integer = true, min = 4 },
    { 'beam', 4, 'beam size for the test set', integer = true, min = 1 },
    { 'length_penalty', 1.0, 'hypothesis score = log p / length ^ this', min = 0 },
    { 'decode_batch', 64, 'sentences decoded together', integer = true, min = 1 },
    { 'eval_every', d.eval_every, 'validate every N steps', integer = true, min = 1 },
    { 'eval_items', 100, 'validation items decoded (greedy) at each validation (0: none)', integer = true, min = 0 },
    { 'test_items', 0, 'test items scored (0: all)', integer = true, min = 0 },
    { 'seed', 1, 'random seed', integer = true },
    { 'threads', 0, 'threads (0: all cores)', integer = true, min = 0 },
    { 'log', '', 'append metrics (JSON lines) here', path = 'out' },
    { 'plot', '', 'an SVG of the validation score against steps, from the log', path = 'out' },
    { 'out', d.out, 'the trained model (safetensors) and its vocabulary (.bpe)', path = 'out' },
    { 'force', false, 'overwrite --out' },
    { 'export', '', 'write ids, batches, initial weights and settings here for bench/mt_twin.py' },
    { 'hyps', '', 'write the test hypotheses here, one a line', path = 'out' },
    { 'greedy', false, 'also decode the test set greedily and report its score' },
    { 'time_single', 0, 'also time decoding the first N test items one at a time', integer = true, min = 0 },
  }
end

--- run(opt, splits, score): trains on splits.train and scores decodes of
--- splits.valid / splits.test with score(hyp_texts, ref_texts) -> value,
--- description. Returns a table of results.
--- check(opt): the checks across options, before any work
function M.check(opt)
  if opt.d_model % opt.heads ~= 0 then nn.cli.fail('--heads %d must divide --d_model %d', opt.heads, opt.d_model) end
  nn.cli.keep(opt.out, opt.force)
end

function M.run(opt, splits, score, task)
  if opt.threads > 0 then nn.set_num_threads(opt.threads) end
  nn.manual_seed(opt.seed)
  local t0 = nn.clock()
  local bpe = M.vocabulary(splits.train, opt.vocab)
  -- translation drops pairs over the limits; summaries cut their sources
  -- to the first and last halves of max_src
  local head = task.cut_train and opt.max_src // 2 or nil
  local enc = { max_src = opt.max_src, max_tgt = opt.max_tgt, cut = task.cut_train, head = head }
  local train = M.encode(bpe, splits.train, enc)
  local function sources(pairs, n) -- the first n (all when n is nil)
    local src, refs = {}, {}
    for i = 1, math.min(n or #pairs, #pairs) do
      src[i] = M.ids(bpe, pairs[i][1], opt.max_src, head)
      refs[i] = pairs[i][2]
    end
    return src, refs
  end
  local valid = M.encode(bpe, splits.valid, enc)
  local vsrc, vrefs = sources(splits.valid, opt.eval_items)
  local tsrc, trefs = sources(splits.test, opt.test_items > 0 and opt.test_items or nil)
  print(('data: %d train pairs (%d within the length limits), %d valid, %d test; BPE %d tokens (%.1f s)')
    :format(#splits.train, #train, #splits.valid, #tsrc, bpe:vocab_size(), nn.clock() - t0))

  local model = Seq2Seq({ vocab = bpe:vocab_size() + 3, d_model = opt.d_model, heads = opt.heads,
    layers = opt.layers, ff = opt.ff, dropout = opt.dropout, max_len = math.max(opt.max_src, opt.max_tgt) * 4 })
  print(('model: %d parameters'):format(model:num_parameters()))
  local decay, no_decay = {}, {}
  for name, p in model:named_parameters() do
    if p:dim() >= 2 and not name:match('^embed') then decay[#decay + 1] = p else no_decay[#no_decay + 1] = p end
  end
  local optimizer = nn.optim.AdamW({ { params = decay, weight_decay = 0.01 }, { params = no_decay, weight_decay = 0 } },
    { lr = opt.lr, betas = { 0.9, 0.98 }, eps = 1e-9 })
  local plan = M.plan(train, opt.batch_tokens, opt.steps)
  local sched = { lr = opt.lr, warmup = opt.warmup }
  if opt.export ~= '' then
    M.export(opt.export, { model = model, train = train, test_sources = tsrc, test_refs = trefs, plan = plan, config = {
      task = task.metric,
      vocab = bpe:vocab_size() + 3, d_model = opt.d_model, heads = opt.heads, layers = opt.layers, ff = opt.ff,
      dropout = opt.dropout, max_len = math.max(opt.max_src, opt.max_tgt) * 4, lr = opt.lr, warmup = opt.warmup,
      smoothing = opt.smoothing, steps = opt.steps, beam = opt.beam, length_penalty = opt.length_penalty,
      decode_batch = opt.decode_batch, len_a = task.len_a, len_b = task.len_b, threads = opt.threads,
      seed = opt.seed } })
    assert(bpe:save(opt.export .. '/vocab.bpe'))
    print('exported the run for bench/mt_twin.py to ' .. opt.export)
  end
  local log = opt.log ~= '' and nn.progress.log(opt.log) or nil
  local dec = { beam = 1, batch = opt.decode_batch, len_a = task.len_a, len_b = task.len_b, length_penalty = opt.length_penalty }
  local function texts(ids) return M.texts(bpe, ids) end

  local train_t0, tokens = nn.clock(), 0
  for step, _, bar in nn.progress(opt.steps, { desc = 'train', every = math.max(1, opt.eval_every // 5) }) do
    local lr = M.lr(step, sched)
    for _, g in ipairs(optimizer.param_groups) do g.lr = lr end
    local loss, n = M.loss(model, train, plan[step], opt.smoothing)
    optimizer:zero_grad()
    loss:backward()
    nn.optim.clip_grad_norm_(model:parameters(), 1.0)
    optimizer:step()
    tokens = tokens + n
    bar.loss, bar.lr = loss:item(), lr
    bar['tok/s'] = tokens / (nn.clock() - train_t0)
    if step % opt.eval_every == 0 or step == opt.steps then
      local vloss = M.evaluate_loss(model, valid, opt.batch_tokens)
      local rec = { step = step, train_loss = bar.loss, val_loss = vloss, seconds = nn.clock() - train_t0 }
      local msg = ''
      if #vsrc > 0 then
        local value, what = score(texts(M.decode(model, vsrc, dec)), vrefs)
        rec['val_' .. task.metric] = value
        msg = ('  valid %s (greedy, %d items) %.2f'):format(what, #vsrc, value)
      end
      print(('step %d  train loss %.4f  val loss %.4f%s  (%.0f s)'):format(step, bar.loss, vloss, msg, rec.seconds))
      if log then log:write(rec) end
    end
  end
  local train_seconds = nn.clock() - train_t0
  assert(nn.save(opt.out, model:state_dict(), { config = require('cjson').encode(model.config) }))
  assert(bpe:save(opt.out:gsub('%.safetensors$', '') .. '.bpe'))
  if opt.plot ~= '' and log then
    assert(nn.plot.from_log(opt.log, opt.plot, { 'val_' .. task.metric }, { title = task.title, xlabel = 'training step',
      ylabel = task.ylabel }))
  end

  local results = M.test(model, bpe, tsrc, trefs, opt, score, task)
  results.train_seconds = train_seconds
  print(('wall: training %.1f s, test decoding %.1f s'):format(train_seconds, results.decode_seconds))
  return results
end

--- test(model, bpe, sources (ids), refs, opt, score, task): decodes the
--- test sources with --beam (and greedily with --greedy; --time_single
--- times one-at-a-time against batched decoding), writes --hyps, reports
--- the score; returns {hyps, score, what, greedy, decode_seconds, test_refs}
function M.test(model, bpe, tsrc, trefs, opt, score, task)
  local dec = { beam = opt.beam, batch = opt.decode_batch, len_a = task.len_a, len_b = task.len_b,
    length_penalty = opt.length_penalty }
  local function texts(ids) return M.texts(bpe, ids) end
  local results = { test_sources = tsrc, test_refs = trefs }
  local td = nn.clock()
  local hyps = texts(M.decode(model, tsrc, dec))
  results.decode_seconds = nn.clock() - td
  results.hyps = hyps
  results.score, results.what = score(hyps, trefs)
  print(('test: %s %.2f with beam %d (%d items, decoded in %.1f s, batches of %d)')
    :format(results.what, results.score, opt.beam, #tsrc, results.decode_seconds, opt.decode_batch))
  if opt.hyps ~= '' then assert(require('nnlua.files').write_atomic(opt.hyps, table.concat(hyps, '\n') .. '\n')) end
  if opt.greedy then
    dec.beam = 1
    local g = nn.clock()
    results.greedy = score(texts(M.decode(model, tsrc, dec)), trefs)
    print(('test: %s %.2f greedy (decoded in %.1f s)'):format(results.what, results.greedy, nn.clock() - g))
  end
  if opt.time_single > 0 then
    local n = math.min(opt.time_single, #tsrc)
    local sub = table.move(tsrc, 1, n, 1, {})
    dec.beam = opt.beam
    local a = nn.clock()
    M.decode(model, sub, dec)
    local batched = nn.clock() - a
    dec.batch = 1
    a = nn.clock()
    M.decode(model, sub, dec)
    local single = nn.clock() - a
    print(('beam %d decoding of %d test items: %.2f s in batches of %d, %.2f s one at a time (%.1fx)')
      :format(opt.beam, n, batched, opt.decode_batch, single, single / batched))
  end
  return results
end

return M
