--- Builds a knowledge graph from Debian's wordnet-base (no download):
--- synsets are entities, pointer types are relations (one of each inverse
--- pair, as WN18RR does), deduplicated and split at random into
--- train/valid/test (--valid and --test triples each), keeping only
--- valid/test triples whose entities and relation occur in training.
--- Writes <out>/{train,valid,test}.txt (head<TAB>relation<TAB>tail).
---
--- Usage: nnlua examples/kge/wordnet.lua [--wordnet DIR] [--out DIR] [options]
--- (--help lists them all).
local here = arg[0]:gsub('[^/]*$', '')
package.path = here .. '../common/?.lua;' .. package.path
local nn = require 'nnlua'
local wordnet = require 'wordnet'
local files = require 'nnlua.files'

local opt = nn.cli.parse(arg, {
  { 'wordnet', wordnet.default_dir, 'WordNet database folder (the wordnet-base package)', path = 'dir' },
  { 'out', 'build/wordnet-kg', 'folder the three splits are written to (created)' },
  { 'valid', 5000, 'validation triples', integer = true, min = 1 },
  { 'test', 5000, 'test triples', integer = true, min = 1 },
  { 'seed', 1, 'random seed', integer = true },
})
nn.manual_seed(opt.seed)

local t0 = nn.clock()
local seen, triples = {}, {}
for _, x in ipairs(wordnet.knowledge_graph(opt.wordnet)) do
  local line = table.concat(x, '\t')
  if not seen[line] then
    seen[line] = true
    triples[#triples + 1] = x
  end
end
local order = select(2, nn.rand(#triples):sort()):totable()
local n_eval = opt.valid + opt.test
local train, held = {}, {}
for i, k in ipairs(order) do
  if i <= n_eval then held[#held + 1] = triples[k] else train[#train + 1] = triples[k] end
end
local known = {}
for _, x in ipairs(train) do known[x[1]], known[x[2]], known[x[3]] = true, true, true end
local splits = { train = train, valid = {}, test = {} }
for i, x in ipairs(held) do
  if known[x[1]] and known[x[2]] and known[x[3]] then
    local s = i <= opt.valid and splits.valid or splits.test
    s[#s + 1] = x
  end
end
if not os.execute(('mkdir -p %q'):format(opt.out)) then nn.cli.fail('--out: cannot create %s', opt.out) end
for name, rows in pairs(splits) do
  local lines = {}
  for i, x in ipairs(rows) do lines[i] = table.concat(x, '\t') end
  local ok, err = files.write_atomic(('%s/%s.txt'):format(opt.out, name), table.concat(lines, '\n') .. '\n')
  if not ok then nn.cli.fail('--out: %s', err) end
end
local ents, rels = {}, {}
for _, x in ipairs(train) do ents[x[1]], ents[x[3]], rels[x[2]] = true, true, true end
local function count(t) local n = 0 for _ in pairs(t) do n = n + 1 end return n end
print(('WordNet knowledge graph in %s: %d entities, %d relations, %d / %d / %d triples (%.1f s)')
  :format(opt.out, count(ents), count(rels), #splits.train, #splits.valid, #splits.test, nn.clock() - t0))
