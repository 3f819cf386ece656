--- WordNet 3.0 database files (Debian's wordnet-base, /usr/share/wordnet),
--- read for the examples that need real text or a real knowledge graph:
--- synsets with their words, gloss, lexicographer file and pointers.
--- Format: wndb(5WN). A synset's id is its byte offset in data.<pos>.
local M = {}

M.default_dir = '/usr/share/wordnet'

--- the 45 lexicographer files, by number (lexnames(5WN))
M.lexnames = {
  [0] = 'adj.all', 'adj.pert', 'adv.all', 'noun.Tops', 'noun.act', 'noun.animal', 'noun.artifact',
  'noun.attribute', 'noun.body', 'noun.cognition', 'noun.communication', 'noun.event',
  'noun.feeling', 'noun.food', 'noun.group', 'noun.location', 'noun.motive', 'noun.object',
  'noun.person', 'noun.phenomenon', 'noun.plant', 'noun.possession', 'noun.process',
  'noun.quantity', 'noun.relation', 'noun.shape', 'noun.state', 'noun.substance', 'noun.time',
  'verb.body', 'verb.change', 'verb.cognition', 'verb.communication', 'verb.competition',
  'verb.consumption', 'verb.contact', 'verb.creation', 'verb.emotion', 'verb.motion',
  'verb.perception', 'verb.possession', 'verb.social', 'verb.stative', 'verb.weather', 'adj.ppl' }

--- pointer symbols (wninput(5WN)) to readable relation names
M.pointer_names = {
  ['@'] = 'hypernym', ['@i'] = 'instance_hypernym', ['~'] = 'hyponym', ['~i'] = 'instance_hyponym',
  ['#m'] = 'member_holonym', ['#s'] = 'substance_holonym', ['#p'] = 'part_holonym',
  ['%m'] = 'member_meronym', ['%s'] = 'substance_meronym', ['%p'] = 'part_meronym',
  ['='] = 'attribute', ['+'] = 'derivationally_related_form', [';c'] = 'domain_topic',
  ['-c'] = 'member_of_domain_topic', [';r'] = 'domain_region', ['-r'] = 'member_of_domain_region',
  [';u'] = 'domain_usage', ['-u'] = 'member_of_domain_usage', ['!'] = 'antonym',
  ['*'] = 'entailment', ['>'] = 'cause', ['^'] = 'also_see', ['$'] = 'verb_group',
  ['&'] = 'similar_to', ['<'] = 'participle', ['\\'] = 'pertainym',
}

local files = { n = 'noun', v = 'verb', a = 'adj', s = 'adj', r = 'adv' }

local function open(dir, kind, pos)
  local name = ('%s/%s.%s'):format(dir or M.default_dir, kind, files[pos] or pos)
  local f, err = io.open(name, 'rb')
  if not f then require('nnlua').cli.fail('%s (install wordnet-base or pass --wordnet DIR)', err) end
  return f
end

--- parse(line) -> {offset, pos, lexfile, words, pointers = {{symbol,
--- offset, pos}}, gloss}, or nil for the license header lines
function M.parse(line)
  if line:sub(1, 2) == '  ' then return nil end
  local body, gloss = line:match('^(.-)%s*|%s*(.-)%s*$')
  body = body or line
  local f = {}
  for w in body:gmatch('%S+') do f[#f + 1] = w end
  local s = { offset = f[1], lexfile = M.lexnames[tonumber(f[2])], pos = f[3], words = {},
              pointers = {}, gloss = gloss or '' }
  local nw = tonumber(f[4], 16)
  local i = 5
  for _ = 1, nw do
    s.words[#s.words + 1] = f[i]:gsub('%(.-%)$', '') -- drop adjective markers like (a)
    i = i + 2
  end
  local np = tonumber(f[i])
  i = i + 1
  for _ = 1, np do
    s.pointers[#s.pointers + 1] = { symbol = f[i], offset = f[i + 1], pos = f[i + 2] }
    i = i + 4
  end
  return s
end

--- synset(offset, pos[, dir]) -> the synset at that offset of data.<pos>
function M.synset(offset, pos, dir)
  local f = open(dir, 'data', pos)
  f:seek('set', tonumber(offset, 10))
  local line = f:read('l')
  f:close()
  return M.parse(line)
end

--- lookup(lemma, pos[, dir]) -> the offsets of the lemma's senses, most
--- frequent first (index.<pos>)
function M.lookup(lemma, pos, dir)
  local f = open(dir, 'index', pos)
  local want = lemma:lower():gsub(' ', '_') .. ' '
  for line in f:lines() do
    if line:sub(1, #want) == want then
      f:close()
      local offsets = {}
      for o in line:gmatch('%d%d%d%d%d%d%d%d') do offsets[#offsets + 1] = o end
      return offsets
    end
  end
  f:close()
  return {}
end

--- each(pos[, dir]) iterates over every synset of data.<pos>
function M.each(pos, dir)
  local f = open(dir, 'data', pos)
  local lines = f:lines()
  return function()
    for line in lines do
      local s = M.parse(line)
      if s then return s end
    end
    f:close()
  end
end

--- the gloss's definition without its quoted examples
function M.definition(s)
  return (s.gloss:gsub('%s*;?%s*"[^"]*"', ''):gsub('[;%s]+$', ''))
end

-- of each pair of inverse relations only one is kept (as in WN18RR),
-- so a test triple cannot be read off its inverse in training
local dropped = { ['~'] = true, ['~i'] = true, ['#m'] = true, ['#s'] = true, ['#p'] = true,
                  ['-c'] = true, ['-r'] = true, [';u'] = true }

--- knowledge_graph([dir]) -> triples {{head, relation, tail}, ...} over
--- every synset of every part of speech: entities are synsets named
--- "<offset>.<pos>", relations are pointer types (hyponym-like inverses
--- left out)
function M.knowledge_graph(dir)
  local triples = {}
  for _, pos in ipairs({ 'n', 'v', 'a', 'r' }) do
    for s in M.each(pos, dir) do
      local from = s.offset .. '.' .. (s.pos == 's' and 'a' or s.pos)
      for _, p in ipairs(s.pointers) do
        local rel = M.pointer_names[p.symbol]
        if rel and not dropped[p.symbol] then
          local to_pos = p.pos == 's' and 'a' or p.pos
          triples[#triples + 1] = { from, '_' .. rel, p.offset .. '.' .. to_pos }
        end
      end
    end
  end
  return triples
end

return M
