--- Decodes the test split with a model trained by examples/mt/train.lua or
--- examples/summarize/train.lua (its .safetensors and .bpe files) and
--- scores it: BLEU for translation, ROUGE for summaries. --greedy adds
--- greedy decoding; --time_single N times batched against one-at-a-time
--- beam decoding of the first N items.
---   nnlua examples/mt/translate.lua --model mt.safetensors --greedy
package.path = arg[0]:gsub('[^/]*$', '') .. '?.lua;' .. package.path
local nn = require 'nnlua'
local ddtp = require 'ddtp'
local seq2seq = require 'seq2seq'
local Seq2Seq = require 'model'

local opt = nn.cli.parse(arg, {
  { 'model', '', 'a model written by examples/mt/train.lua or examples/summarize/train.lua', path = 'file' },
  { 'task', 'en-de', 'which test split', choices = { 'en-de', 'en-fr', 'summarize' } },
  { 'data', '', 'as for train.lua: a folder of TSV splits or one TSV file; empty: the prepared Debian data in --cache' },
  { 'cache', 'data/ddtp', 'where the Debian files are fetched and prepared' },
  { 'max_src', 0, 'source tokens at most (0: 128 for translation, 160 for summaries)', integer = true, min = 0 },
  { 'max_tgt', 32, 'summary tokens at most', integer = true, min = 1 },
  { 'beam', 4, 'beam size', integer = true, min = 1 },
  { 'length_penalty', 1.0, 'hypothesis score = log p / length ^ this', min = 0 },
  { 'decode_batch', 64, 'sentences decoded together', integer = true, min = 1 },
  { 'test_items', 0, 'test items scored (0: all)', integer = true, min = 0 },
  { 'threads', 0, 'threads (0: all cores)', integer = true, min = 0 },
  { 'hyps', '', 'write the hypotheses here, one a line', path = 'out' },
  { 'greedy', false, 'also decode greedily and report its score' },
  { 'time_single', 0, 'also time decoding the first N items one at a time', integer = true, min = 0 },
})
if opt.model == '' then nn.cli.fail('--model FILE is required') end
if opt.threads > 0 then nn.set_num_threads(opt.threads) end
local tensors, meta = nn.cli.try('--model', nn.load, opt.model)
if not meta.config then nn.cli.fail('--model: %s has no model settings in its metadata', opt.model) end
local bpe = nn.cli.try('--model', nn.tokenizer.BPE.load, opt.model:gsub('%.safetensors$', '') .. '.bpe')
local model = Seq2Seq(require('cjson').decode(meta.config))
nn.cli.try('--model', function() model:load_state_dict(tensors); return true end)

local summary = opt.task == 'summarize'
local splits = nn.cli.try('--data', ddtp.load, opt.data, opt.task, opt.cache)
local max_src = opt.max_src > 0 and opt.max_src or (summary and 160 or 128)
local n = opt.test_items > 0 and math.min(opt.test_items, #splits.test) or #splits.test
local src, refs = {}, {}
for i = 1, n do
  src[i] = seq2seq.ids(bpe, splits.test[i][1], max_src, summary and max_src // 2 or nil)
  refs[i] = splits.test[i][2]
end
local score, task
if summary then
  score = function(h, r) return 100 * nn.metrics.rouge(h, r).rougeL.f, 'ROUGE-L' end
  task = { len_a = opt.max_tgt, len_b = 0 }
else
  score = function(h, r) return nn.metrics.bleu(h, r).score, 'BLEU' end
  task = { len_a = 10, len_b = 1.5 }
end
local r = seq2seq.test(model, bpe, src, refs, opt, score, task)
if summary then
  local x = nn.metrics.rouge(r.hyps, refs)
  print(('ROUGE-1 %.2f  ROUGE-2 %.2f  ROUGE-L %.2f'):format(100 * x.rouge1.f, 100 * x.rouge2.f, 100 * x.rougeL.f))
end
