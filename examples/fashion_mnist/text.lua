--- Text for Fashion-MNIST classes, composed from WordNet (wordnet-base):
--- each class is a synset; a description names it (any of its words or the
--- class name) and says what it is (its gloss) or what kind of thing it is
--- (its hypernym), in one of several phrasings, so the text side varies
--- from sample to sample. Words become ids in a fixed vocabulary.
local nn = require 'nnlua'
local wordnet = require 'wordnet'

local M = {}

-- class -> the WordNet lemma and sense that defines it
local senses = { { 't-shirt', 1 }, { 'trouser', 1 }, { 'pullover', 1 }, { 'dress', 1 }, { 'coat', 1 },
                 { 'sandal', 1 }, { 'shirt', 1 }, { 'sneaker', 1 }, { 'bag', 1 }, { 'boot', 1 } }
M.coarse_names = { 'top', 'bottom', 'one-piece', 'footwear', 'bag' }
M.coarse = { 1, 2, 1, 3, 1, 4, 1, 4, 5, 4 } -- class -> coarse group

local templates = {
  'a photo of a {w}', 'a picture of a {w} , {g}', '{g}', 'a {w} : {g}',
  'this is a {w} , a kind of {h}', 'a {h} known as a {w}', 'an image of {g}',
  'a {w} , which is a {h}', 'a small grey photo of a {w}', '{h} : {g}',
}

local function words(s)
  local out = {}
  for _, w in ipairs(s.words) do out[#out + 1] = (w:lower():gsub('_', ' ')) end
  return out
end

--- classes(class_names[, wordnet_dir]) -> per class {names, gloss,
--- hypernyms}, read from WordNet
function M.classes(class_names, dir)
  local out = {}
  for c, sense in ipairs(senses) do
    local offset = wordnet.lookup(sense[1], 'n', dir)[sense[2]]
    local s = assert(offset and wordnet.synset(offset, 'n', dir), 'no WordNet synset for ' .. sense[1])
    local names = words(s)
    table.insert(names, 1, (class_names[c]:lower():gsub('/', ' or ')))
    local hyper = {}
    for _, p in ipairs(s.pointers) do
      if p.symbol == '@' then
        for _, w in ipairs(words(wordnet.synset(p.offset, 'n', dir))) do hyper[#hyper + 1] = w end
      end
    end
    out[c] = { names = names, gloss = wordnet.definition(s), hypernyms = hyper }
  end
  return out
end

--- describe(class_info[, pick]) -> one description; pick(n) chooses among n
--- options (default: the engine's seeded generator)
function M.describe(info, pick)
  pick = pick or function(n) return nn.randint(1, n + 1, 1)[1] end
  local t = templates[pick(#templates)]
  local w, h = info.names[pick(#info.names)], info.hypernyms[pick(#info.hypernyms)] or 'thing'
  return (t:gsub('{w}', w):gsub('{h}', h):gsub('{g}', info.gloss))
end

--- A word vocabulary over every description the classes can produce.
function M.vocabulary(classes)
  local vocab, ids = { '<pad>', '<unk>' }, { ['<pad>'] = 1, ['<unk>'] = 2 }
  local function add(text)
    for w in text:lower():gmatch('[%w%-]+') do
      if not ids[w] then
        vocab[#vocab + 1] = w
        ids[w] = #vocab
      end
    end
  end
  for _, t in ipairs(templates) do add(t:gsub('{%a}', '')) end
  for _, info in ipairs(classes) do
    for _, w in ipairs(info.names) do add(w) end
    for _, w in ipairs(info.hypernyms) do add(w) end
    add(info.gloss)
  end
  return { words = vocab, ids = ids }
end

--- encode(vocab, texts, len) -> (N, len) i64 word ids (1 = padding) and the
--- (N, len) f32 padding mask (1 = padding)
function M.encode(vocab, texts, len)
  local ids = {}
  for i, text in ipairs(texts) do
    local row = {}
    for w in text:lower():gmatch('[%w%-]+') do
      if #row < len then row[#row + 1] = vocab.ids[w] or 2 end
    end
    for j = #row + 1, len do row[j] = 1 end
    ids[i] = row
  end
  local t = nn.tensor(ids):long()
  return t, t:eq(1):float()
end

--- bank(classes, vocab, per_class, len) -> `per_class` encoded descriptions
--- of every class, drawn once, so training steps only index them
function M.bank(classes, vocab, per_class, len)
  local texts = {}
  for c = 1, #classes do
    for _ = 1, per_class do texts[#texts + 1] = M.describe(classes[c]) end
  end
  local ids, pad = M.encode(vocab, texts, len)
  return { ids = ids, pad = pad, per_class = per_class }
end

--- draw(bank, labels (N) i64) -> ids, pad: a random description of each
--- label's class
function M.draw(bank, labels)
  local n, per = labels:size(1), bank.per_class
  local rows = (labels - 1) * per + nn.randint(1, per + 1, n)
  return bank.ids:index_select(1, rows), bank.pad:index_select(1, rows)
end

return M
