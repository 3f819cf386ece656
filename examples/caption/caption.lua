--- The machinery of examples/caption/train.lua: options, splits and
--- vocabulary, the batch plan (which bench/caption_twin.py replays), the
--- schedule, decoding, the nearest-neighbour baseline, the picture of test
--- captions and the export for the PyTorch twin.
local nn = require 'nnlua'
local data = require 'data'
local seq2seq = require 'seq2seq'
local Seq2Seq = require 'model'

local M = {}

function M.options()
  return {
    { 'data', '', 'a TSV of image.png<TAB>caption[<TAB>caption...] (paths relative to it); empty: the Debian packages' },
    { 'cache', 'data/caption', 'where the decoded Debian set is kept' },
    { 'size', 64, 'picture side in pixels (a multiple of 8)', integer = true, min = 8, max = 512 },
    { 'steps', 3000, 'training steps', integer = true, min = 1 },
    { 'batch', 64, 'pictures per batch', integer = true, min = 1 },
    { 'vocab', 1500, 'BPE vocabulary size', integer = true, min = 260 },
    { 'width', 32, 'CNN channels of the first block (then 2x, 4x)', integer = true, min = 1 },
    { 'd_model', 192, 'Transformer width', integer = true, min = 8 },
    { 'heads', 4, 'attention heads', integer = true, min = 1 },
    { 'layers', 2, 'encoder and decoder layers', integer = true, min = 1 },
    { 'ff', 768, 'feed-forward width', integer = true, min = 8 },
    { 'dropout', 0.1, 'dropout', min = 0, max = 0.9 },
    { 'lr', 1e-3, 'peak learning rate (AdamW, betas 0.9 0.98)', min = 0 },
    { 'weight_decay', 0.05, 'AdamW weight decay of the matrices', min = 0 },
    { 'warmup', 200, 'warmup steps, then cosine decay to 0', integer = true, min = 1 },
    { 'smoothing', 0.1, 'label smoothing', min = 0, max = 0.9 },
    { 'shift', 4, 'random translation of each batch, up to N pixels', integer = true, min = 0 },
    { 'max_len', 24, 'caption tokens at most', integer = true, min = 2 },
    { 'beam', 3, 'beam size for the test set', integer = true, min = 1 },
    { 'length_penalty', 1.0, 'hypothesis score = log p / length ^ this', min = 0 },
    { 'decode_batch', 64, 'pictures decoded together', integer = true, min = 1 },
    { 'eval_every', 500, 'validate every N steps', integer = true, min = 1 },
    { 'seed', 1, 'random seed', integer = true },
    { 'threads', 0, 'threads (0: all cores)', integer = true, min = 0 },
    { 'log', '', 'append metrics (JSON lines) here', path = 'out' },
    { 'out', 'caption.safetensors', 'the trained model and its vocabulary (.bpe)', path = 'out' },
    { 'force', false, 'overwrite --out' },
    { 'hyps', '', 'write the test captions here, one a line', path = 'out' },
    { 'picture', '', 'an SVG of 12 test pictures with their reference, generated and nearest captions', path = 'out' },
    { 'export', '', 'write the data, batches, initial weights and settings here for bench/caption_twin.py' },
  }
end

local SPLIT = { valid = 0.05, test = 0.1 }

--- dataset(opt) -> {items, images (N, 3, S, S) f32, stats}
function M.dataset(opt)
  local set
  if opt.data ~= '' then
    set = data.load({ items = data.tsv(opt.data), size = opt.size, valid = SPLIT.valid, test = SPLIT.test })
  else
    set = data.load({ cache = opt.cache, size = opt.size, valid = SPLIT.valid, test = SPLIT.test })
  end
  set.images = set.images:float() -- kept as f16 in the cache
  return set
end

--- text(caption) -> lowercased words joined by spaces (what is learnt and scored)
function M.text(c) return table.concat(data.words(c), ' ') end

--- splits(set) -> {train, valid, test}: lists of {row (in set.images), captions}
function M.splits(set)
  local out = { train = {}, valid = {}, test = {} }
  for i, it in ipairs(set.items) do
    local caps = {}
    for _, c in ipairs(it.captions) do caps[#caps + 1] = M.text(c) end
    local s = out[it.split]
    s[#s + 1] = { row = i, captions = caps, item = it }
  end
  return out
end

function M.vocabulary(train, size)
  local text = {}
  for _, e in ipairs(train) do
    for _, c in ipairs(e.captions) do text[#text + 1] = c end
  end
  return nn.tokenizer.BPE.train(table.concat(text, '\n'), size)
end

--- encode(bpe, split, max_len): entry.ids = the token lists of its captions
function M.encode(bpe, split, max_len)
  for _, e in ipairs(split) do
    e.ids = {}
    for k, c in ipairs(e.captions) do e.ids[k] = seq2seq.ids(bpe, c, max_len) end
  end
end

--- plan(train, batch, steps, shift) -> per step {entries, captions, dy, dx}:
--- every (picture, caption) pair once an epoch in a random order, and one
--- random translation per batch
function M.plan(train, batch, steps, shift)
  local units = {}
  for j, e in ipairs(train) do
    for k = 1, #e.captions do units[#units + 1] = { j, k } end
  end
  local out = {}
  while #out < steps do
    local _, perm = nn.rand(#units):sort()
    perm = perm:totable()
    for s = 1, #perm - batch + 1, batch do
      if #out == steps then break end
      local b = { entries = {}, captions = {} }
      for i = s, s + batch - 1 do
        local u = units[perm[i]]
        b.entries[#b.entries + 1], b.captions[#b.captions + 1] = u[1], u[2]
      end
      local r = nn.rand(2):totable()
      b.dy, b.dx = math.floor(r[1] * (2 * shift + 1)) - shift, math.floor(r[2] * (2 * shift + 1)) - shift
      out[#out + 1] = b
    end
    if #units < batch then error(('%d training captions: fewer than --batch'):format(#units), 0) end
  end
  return out
end

-- pictures of the entries as f32 (B, 3, S, S), moved by (dy, dx) over white
local function pictures(images, split, entries, dy, dx)
  local rows = {}
  for i, j in ipairs(entries) do rows[i] = split[j].row end
  local x = images:index_select(1, nn.tensor(rows, 'i64'))
  if (dy or 0) ~= 0 or (dx or 0) ~= 0 then
    local s, h, w = math.max(math.abs(dy), math.abs(dx)), x:size(3), x:size(4)
    x = x:pad({ s, s, s, s }, 'constant', 1):narrow(3, s - dy + 1, h):narrow(4, s - dx + 1, w):contiguous()
  end
  return x
end
M.pictures = pictures

local pad = seq2seq.pad

--- batch(images, split, b) -> pictures, tgt_in (BOS first), tgt_out (EOS last)
function M.batch(images, split, b)
  local tin, tout, len = {}, {}, 0
  for i, j in ipairs(b.entries) do
    local t = split[j].ids[b.captions[i]]
    tin[i] = table.move(t, 1, #t, 2, { Seq2Seq.BOS })
    tout[i] = table.move(t, 1, #t, 1, {})
    tout[i][#t + 1] = Seq2Seq.EOS
    len = math.max(len, #t + 1)
  end
  return pictures(images, split, b.entries, b.dy, b.dx), pad(tin, len), pad(tout, len)
end

--- lr(step, opt): linear warmup, then cosine decay to 0 at opt.steps
function M.lr(step, opt)
  if step <= opt.warmup then return opt.lr * step / opt.warmup end
  local t = (step - opt.warmup) / math.max(1, opt.steps - opt.warmup)
  return opt.lr * 0.5 * (1 + math.cos(math.pi * t))
end

--- evaluate_loss(model, images, split) -> per-token cross-entropy over all
--- (picture, caption) pairs, no smoothing
function M.evaluate_loss(model, images, split)
  model:eval()
  local total, count = 0, 0
  nn.no_grad(function()
    local units = { entries = {}, captions = {} }
    for j, e in ipairs(split) do
      for k = 1, #e.captions do units.entries[#units.entries + 1], units.captions[#units.captions + 1] = j, k end
    end
    for s = 1, #units.entries, 128 do
      local b = { entries = table.move(units.entries, s, math.min(s + 127, #units.entries), 1, {}),
                  captions = table.move(units.captions, s, math.min(s + 127, #units.captions), 1, {}) }
      local x, tin, tout = M.batch(images, split, b)
      local logits = model(x, tin)
      local n = tout:ne(Seq2Seq.PAD):sum():item()
      local loss = nn.cross_entropy(logits:view(-1, logits:size(3)), tout:view(-1), { ignore_index = Seq2Seq.PAD })
      total, count = total + loss:item() * n, count + n
    end
  end)
  model:train()
  return total / math.max(count, 1)
end

--- decode(model, images, split, {beam, batch, max_len, length_penalty, bpe}) -> caption texts
function M.decode(model, images, split, o)
  model:eval()
  local out = {}
  for s = 1, #split, o.batch do
    local entries = {}
    for j = s, math.min(s + o.batch - 1, #split) do entries[#entries + 1] = j end
    local hyps = model:translate(pictures(images, split, entries), { beam = o.beam, max_len = o.max_len,
      length_penalty = o.length_penalty })
    for i, j in ipairs(entries) do out[j] = seq2seq.text(o.bpe, hyps[i]) end
  end
  model:train()
  return out
end

function M.references(split)
  local out = {}
  for i, e in ipairs(split) do out[i] = e.captions end
  return out
end

function M.multi(split)
  local n = 0
  for _, e in ipairs(split) do if #e.captions > 1 then n = n + 1 end end
  return n
end

-- the unit-length mean grid features of a split's pictures
local function features(model, images, split)
  local parts = {}
  for s = 1, #split, 128 do
    local entries = {}
    for j = s, math.min(s + 127, #split) do entries[#entries + 1] = j end
    local f = model:features(pictures(images, split, entries))
    parts[#parts + 1] = f / (f:norm(2, 2, true) + 1e-12)
  end
  return nn.cat(parts, 1)
end

--- nearest(model, images, train, test) -> per test picture the first
--- caption of the most similar training picture (cosine of features)
function M.nearest(model, images, train, test)
  model:eval()
  local out = {}
  nn.no_grad(function()
    local ftrain, ftest = features(model, images, train), features(model, images, test)
    local best = ftest:matmul(ftrain:t()):argmax(2):totable()
    for i, j in ipairs(best) do out[i] = train[j].captions[1] end
  end)
  model:train()
  return out
end

-- ---- the picture ---------------------------------------------------------------------

local B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'
local function base64(s)
  local out = {}
  for i = 1, #s, 3 do
    local a, b, c = s:byte(i, i + 2)
    local n = (a << 16) | ((b or 0) << 8) | (c or 0)
    for k = 3, 0, -1 do
      local idx = (n >> (6 * k)) & 63
      out[#out + 1] = (k == 1 and not b or k == 0 and not c) and '=' or B64:sub(idx + 1, idx + 1)
    end
  end
  return table.concat(out)
end

local function escape(s) return (s:gsub('&', '&amp;'):gsub('<', '&lt;'):gsub('>', '&gt;')) end

--- picture(path, images, test, hyps, nearest, n): an SVG grid of the first
--- n test pictures (evenly spaced over the split) with the reference
--- (grey), the model's caption (black) and the nearest-neighbour one (blue)
function M.picture(path, images, test, hyps, nearest, n)
  n = math.min(n, #test)
  local cols, cw, ch = 4, 230, 215
  local rows = (n + cols - 1) // cols
  local svg = { ('<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">')
    :format(cols * cw, rows * ch + 30),
    ('<rect width="100%" height="100%" fill="white"/><text x="8" y="18" font-size="13">test pictures: '
      .. '<tspan fill="#777">reference</tspan> / <tspan font-weight="bold">model</tspan> / '
      .. '<tspan fill="#2255bb">nearest training picture\'s caption</tspan></text>') }
  local tmp = os.tmpname()
  for i = 1, n do
    local j = 1 + (i - 1) * (#test - 1) // math.max(1, n - 1)
    local img = images[test[j].row]
    nn.image.write(tmp, nn.image.resize(img, 128, { filter = 'bilinear' }))
    local f = assert(io.open(tmp, 'rb'))
    local png = f:read('a')
    f:close()
    local x, y = ((i - 1) % cols) * cw, 30 + ((i - 1) // cols) * ch
    svg[#svg + 1] = ('<image x="%d" y="%d" width="128" height="128" href="data:image/png;base64,%s"/>')
      :format(x + (cw - 128) // 2, y, base64(png))
    for k, line in ipairs({ { test[j].captions[1], '#777', '' }, { hyps[j], '#000', ' font-weight="bold"' },
      { nearest[j], '#2255bb', '' } }) do
      svg[#svg + 1] = ('<text x="%d" y="%d" text-anchor="middle" fill="%s"%s>%s</text>')
        :format(x + cw // 2, y + 128 + 16 * k, line[2], line[3], escape(#line[1] > 34 and line[1]:sub(1, 32) .. '...' or line[1]))
    end
  end
  os.remove(tmp)
  svg[#svg + 1] = '</svg>'
  assert(require('nnlua.files').write_atomic(path, table.concat(svg, '\n') .. '\n'))
end

-- ---- export for the PyTorch twin ------------------------------------------------------

local ids_lines = seq2seq.ids_lines

--- export(dir, {model, set, splits, plan, opt, bpe}): what bench/caption_twin.py
--- needs to train and decode the same model on the same batches: every
--- picture (images.safetensors), the training captions' ids per entry,
--- the plan (per step: dy dx, then entry:caption pairs, 1-based), the test
--- rows, the initial weights, the settings and the vocabulary
function M.export(dir, e)
  local files = require 'nnlua.files'
  assert(os.execute("mkdir -p '" .. dir .. "'"))
  assert(nn.save(dir .. '/images.safetensors', { images = e.set.images:to('f16') })) -- the cache's values
  local rows, caps = {}, {}
  for j, entry in ipairs(e.splits.train) do
    rows[j] = { entry.row }
    for k, ids in ipairs(entry.ids) do caps[#caps + 1] = table.concat({ j, k, table.concat(ids, ' ') }, '\t') end
  end
  assert(files.write_atomic(dir .. '/train.rows', ids_lines(rows)))
  assert(files.write_atomic(dir .. '/train.ids', table.concat(caps, '\n') .. '\n'))
  local plan = {}
  for s, b in ipairs(e.plan) do
    local units = {}
    for i, j in ipairs(b.entries) do units[i] = j .. ':' .. b.captions[i] end
    plan[s] = b.dy .. ' ' .. b.dx .. ' ' .. table.concat(units, ' ')
  end
  assert(files.write_atomic(dir .. '/plan.txt', table.concat(plan, '\n') .. '\n'))
  local test = {}
  for i, entry in ipairs(e.splits.test) do test[i] = { entry.row } end
  assert(files.write_atomic(dir .. '/test.rows', ids_lines(test)))
  assert(files.write_atomic(dir .. '/test.refs.json', require('cjson').encode(M.references(e.splits.test))))
  local o = e.opt
  assert(files.write_atomic(dir .. '/config.json', require('cjson').encode({
    vocab = e.bpe:vocab_size() + 3, d_model = o.d_model, heads = o.heads, layers = o.layers, ff = o.ff,
    dropout = o.dropout, max_len = o.max_len, size = o.size, width = o.width, lr = o.lr, warmup = o.warmup,
    steps = o.steps, weight_decay = o.weight_decay, smoothing = o.smoothing, beam = o.beam,
    length_penalty = o.length_penalty, decode_batch = o.decode_batch, threads = o.threads, seed = o.seed })))
  assert(nn.save(dir .. '/init.safetensors', e.model:state_dict()))
  assert(e.bpe:save(dir .. '/vocab.bpe'))
  print('exported the run for bench/caption_twin.py to ' .. dir)
end

return M
