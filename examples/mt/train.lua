--- Machine translation on real text: English -> German (or French) package
--- descriptions of the Debian Description Translation Project (see
--- examples/mt/ddtp.lua), with a pre-norm Transformer encoder-decoder over
--- one shared BPE vocabulary, label smoothing, warmup + inverse-square-root
--- decay, and batched beam search with a KV cache (the encoder memory's keys
--- and values projected once per sentence). Reports detokenised corpus BLEU
--- (sacreBLEU's 13a tokenisation, nn.metrics.bleu) on the test split.
---   nnlua examples/mt/train.lua                  # fetches the data first
---   nnlua examples/mt/train.lua --pair en-fr
--- bench/mt_twin.py trains the same model in PyTorch from --export's files.
package.path = arg[0]:gsub('[^/]*$', '') .. '?.lua;' .. package.path
local nn = require 'nnlua'
local ddtp = require 'ddtp'
local seq2seq = require 'seq2seq'

local spec = seq2seq.options({ steps = 600, batch_tokens = 3000, vocab = 8000, warmup = 150,
  max_src = 128, max_tgt = 128, eval_every = 100, out = 'mt.safetensors' })
table.insert(spec, 1, { 'pair', 'en-de', 'language pair', choices = { 'en-de', 'en-fr' } })
local opt = nn.cli.parse(arg, spec)
seq2seq.check(opt)

local splits = nn.cli.try('--data', ddtp.load, opt.data, opt.pair, opt.cache)
local function bleu(hyps, refs) return nn.metrics.bleu(hyps, refs).score, 'BLEU' end
local r = seq2seq.run(opt, splits, bleu, { metric = 'bleu', ylabel = 'BLEU', title = 'validation BLEU (greedy, 100 sentences) - ' .. opt.pair,
  len_a = 10, len_b = 1.5 })
local b = nn.metrics.bleu(r.hyps, r.test_refs)
print(('test BLEU %.2f (%s; n-gram precisions %.1f/%.1f/%.1f/%.1f, brevity penalty %.3f, length ratio %.3f)')
  :format(b.score, opt.pair, b.precisions[1], b.precisions[2], b.precisions[3], b.precisions[4], b.bp, b.ratio))
