--- Answers (head, relation, ?) and (?, relation, tail) queries with a model
--- saved by examples/kge/train.lua: the top-k entities by score, by name.
--- With --wordnet, WordNet synset ids ("02084071", "02084071.n") are shown
--- with their words.
---
--- Usage: nnlua examples/kge/predict.lua --model FILE --head NAME --relation NAME
---        nnlua examples/kge/predict.lua --model FILE --tail NAME --relation NAME
---        [--k 10] [--wordnet DIR]
local here = arg[0]:gsub('[^/]*$', '')
package.path = here .. '../common/?.lua;' .. package.path
local nn = require 'nnlua'

local opt = nn.cli.parse(arg, {
  { 'model', 'kge_model.safetensors', 'a model saved by examples/kge/train.lua', path = 'file' },
  { 'head', '', 'the known head entity: rank tails' },
  { 'tail', '', 'the known tail entity: rank heads' },
  { 'relation', '', 'the relation of the query' },
  { 'k', 10, 'answers shown', integer = true, min = 1 },
  { 'wordnet', '/usr/share/wordnet', 'WordNet folder, to show synsets with their words', path = 'dir' },
})
if (opt.head == '') == (opt.tail == '') then nn.cli.fail('give exactly one of --head and --tail') end
if opt.relation == '' then nn.cli.fail('--relation is required') end
local entities, relations = nn.kge.load_mapping(opt.model)
if not entities then nn.cli.fail('cannot read the id mapping beside %s: %s', opt.model, relations) end
local info = nn.cli.try('--model', nn.checkpoint.info, opt.model)
local meta = info.extra or {} -- the hyperparameters
if not meta.model then nn.cli.fail('--model %s was not saved by examples/kge/train.lua', opt.model) end
local ent_id, rel_id = {}, {}
for i, n in ipairs(entities) do ent_id[n] = i end
for i, n in ipairs(relations) do rel_id[n] = i end

local model = nn.KGEmbedding { model = meta.model, num_entities = #entities,
  num_relations = #relations, dim = math.tointeger(meta.dim), gamma = meta.gamma, sparse = false }
nn.cli.try('--model', nn.checkpoint.load, opt.model, { model = model })

local function describe(name)
  local offset, pos = name:match('^(%d%d%d%d%d%d%d%d)%.?(%a?)$')
  if not offset then return name end
  local ok, s = pcall(require('wordnet').synset, offset, pos ~= '' and pos or 'n', opt.wordnet)
  return ok and s and ('%s (%s)'):format(name, table.concat(s.words, ', ')) or name
end

local r = rel_id[opt.relation]
if not r then
  nn.cli.fail('unknown relation %q; the model knows: %s', opt.relation, table.concat(relations, ', '))
end
local anchor_name = opt.head ~= '' and opt.head or opt.tail
local a = ent_id[anchor_name]
if not a then nn.cli.fail('unknown entity %q', anchor_name) end
local all = nn.arange(1, #entities + 1)
local scores = nn.no_grad(function()
  local q, rel = nn.tensor({ a }):long(), nn.tensor({ r }):long()
  return opt.head ~= '' and model:score_tails(q, rel, all) or model:score_heads(q, rel, all)
end)
local top, idx = scores:view(-1):topk(math.min(opt.k, #entities))
print(opt.head ~= '' and ('(%s, %s, ?)'):format(describe(anchor_name), opt.relation)
  or ('(?, %s, %s)'):format(opt.relation, describe(anchor_name)))
for i = 1, math.min(opt.k, #entities) do print(('%2d. %8.3f  %s'):format(i, top[i], describe(entities[idx[i]]))) end
