--- Summarisation on real text: Debian package long descriptions -> their
--- one-line synopses (English DDTP records, examples/mt/ddtp.lua), with the
--- machinery of examples/mt (the same pre-norm encoder-decoder, shared BPE,
--- label smoothing, schedule and batched beam search). A description longer
--- than --max_src tokens keeps its first and last halves of that budget
--- (what a -dev or -doc variant adds is at the end). Reports ROUGE-1/2/L F1
--- on the test split beside two baselines: the lead (the first N words of
--- the description, N the median training synopsis length) and retrieval
--- (the synopsis of the training description nearest by TF-IDF cosine).
---   nnlua examples/summarize/train.lua           # fetches the data first
local here = arg[0]:gsub('[^/]*$', '')
package.path = here .. '?.lua;' .. here .. '../mt/?.lua;' .. package.path
local nn = require 'nnlua'
local ddtp = require 'ddtp'
local seq2seq = require 'seq2seq'
local baselines = require 'baselines'

local spec = seq2seq.options({ steps = 1000, batch_tokens = 4000, vocab = 8000, warmup = 300,
  max_src = 160, max_tgt = 32, eval_every = 200, out = 'summarize.safetensors' })
local opt = nn.cli.parse(arg, spec)
seq2seq.check(opt)

local splits = nn.cli.try('--data', ddtp.load, opt.data, 'summarize', opt.cache)
local function rouge(hyps, refs) return 100 * nn.metrics.rouge(hyps, refs).rougeL.f, 'ROUGE-L' end
local function report(name, hyps, refs)
  local r = nn.metrics.rouge(hyps, refs)
  print(('%-28s ROUGE-1 %.2f  ROUGE-2 %.2f  ROUGE-L %.2f'):format(name, 100 * r.rouge1.f, 100 * r.rouge2.f,
    100 * r.rougeL.f))
end

local test = opt.test_items > 0 and table.move(splits.test, 1, math.min(opt.test_items, #splits.test), 1, {})
  or splits.test
local refs = {}
for i, p in ipairs(test) do refs[i] = p[2] end
local n = baselines.median_words(splits.train)
local t0 = nn.clock()
report(('lead-%d baseline'):format(n), baselines.lead(test, n), refs)
report('TF-IDF retrieval baseline', baselines.retrieval(splits.train, test), refs)
print(('baselines in %.1f s'):format(nn.clock() - t0))

local r = seq2seq.run(opt, splits, rouge, { metric = 'rougeL', ylabel = 'ROUGE-L F1', title = 'validation ROUGE-L (greedy)',
  len_a = opt.max_tgt, len_b = 0, cut_train = true })
report(('model, beam %d'):format(opt.beam), r.hyps, r.test_refs)
