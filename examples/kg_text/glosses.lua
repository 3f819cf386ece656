--- The kg_text data: every WordNet synset's definition as word ids, its
--- lexicographer file as the label, a random train/valid/test split
--- (80/10/10), and the synsets' rows of a trained KG entity table.
local nn = require 'nnlua'
local wordnet = require 'wordnet'
local kge = nn.kge

local M = {}

local PAD, UNK = 1, 2

local function words_of(text)
  local out = {}
  for w in text:lower():gmatch('%a+') do out[#out + 1] = w end
  return out
end

--- load(dir, {len, limit, seed}) -> {n, ids (n, len) i64, pad (n, len) f32
--- (1 = padding), labels (n), classes = {names}, vocab = {words},
--- entities = {"<offset>.<pos>"}, split = {train, valid, test} (row
--- indices)}. The vocabulary holds the training split's words seen twice.
function M.load(dir, o)
  local synsets = {}
  for _, pos in ipairs({ 'n', 'v', 'a', 'r' }) do
    for s in wordnet.each(pos, dir) do
      synsets[#synsets + 1] = { entity = s.offset .. '.' .. (s.pos == 's' and 'a' or s.pos),
                                class = s.lexfile, words = words_of(wordnet.definition(s)) }
    end
  end
  nn.manual_seed(o.seed)
  local order = select(2, nn.rand(#synsets):sort()):totable()
  local n = o.limit > 0 and math.min(o.limit, #synsets) or #synsets
  local n_valid, n_test = n // 10, n // 10
  local n_train = n - n_valid - n_test

  local counts = {}
  for i = 1, n_train do
    for _, w in ipairs(synsets[order[i]].words) do counts[w] = (counts[w] or 0) + 1 end
  end
  local vocab, word_id = { '<pad>', '<unk>' }, {}
  local sorted = {}
  for w, c in pairs(counts) do if c >= 2 then sorted[#sorted + 1] = w end end
  table.sort(sorted)
  for _, w in ipairs(sorted) do
    vocab[#vocab + 1] = w
    word_id[w] = #vocab
  end

  local classes, class_id = {}, {}
  for i = 0, #wordnet.lexnames do
    classes[#classes + 1] = wordnet.lexnames[i]
    class_id[wordnet.lexnames[i]] = #classes
  end

  local ids, pad, labels, entities = {}, {}, {}, {}
  for i = 1, n do
    local s = synsets[order[i]]
    local row, prow = {}, {}
    for j = 1, o.len do
      local w = s.words[j]
      row[j] = w and (word_id[w] or UNK) or PAD
      prow[j] = w and 0 or 1
    end
    if #s.words == 0 then row[1], prow[1] = UNK, 0 end -- never an all-padding row
    ids[i], pad[i], labels[i], entities[i] = row, prow, class_id[s.class], s.entity
  end
  local function range(a, b) return nn.arange(a, b + 1) end
  return { n = n, ids = nn.tensor(ids):long(), pad = nn.tensor(pad), labels = nn.tensor(labels):long(),
           classes = classes, vocab = vocab, entities = entities,
           split = { train = range(1, n_train), valid = range(n_train + 1, n_train + n_valid),
                     test = range(n_train + n_valid + 1, n) } }
end

--- kg_features(path, entities) -> (n, d) the entity rows of the KG model
--- saved at path (by examples/kge/train.lua, its id mapping beside it),
--- zeros for synsets not in the graph; and (n) 1 / 0: in the graph
function M.kg_features(path, entities)
  local tensors, err = nn.load(path)
  if not tensors then error(err, 2) end
  local table_ = tensors['model.entity']
  if not table_ then error(path .. ': no model.entity table (not a KG checkpoint)', 2) end
  local names = assert(kge.load_mapping(path))
  local row_of = {}
  for id, name in pairs(names) do row_of[name] = id end
  local rows, known = {}, {}
  for i, e in ipairs(entities) do
    rows[i] = row_of[e] or 1
    known[i] = row_of[e] and 1 or 0
  end
  local k = nn.tensor(known)
  local feats = table_:index_select(1, nn.tensor(rows):long()) * k:unsqueeze(2)
  -- unit scale per feature, so the fusion sees inputs like the token embeddings
  local std = feats:std(1) + 1e-6
  return feats / std, k
end

return M
