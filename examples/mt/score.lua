--- Scores hypotheses given as token ids (bench/mt_twin.py's torch_test.ids)
--- with the same vocabulary and metric code as the nnlua run that exported
--- them: BLEU for translation, ROUGE for summarisation.
---   nnlua examples/mt/score.lua --export DIR [--ids DIR/torch_test.ids]
package.path = arg[0]:gsub('[^/]*$', '') .. '?.lua;' .. package.path
local nn = require 'nnlua'
local seq2seq = require 'seq2seq'

local opt = nn.cli.parse(arg, {
  { 'export', '', 'the folder an nnlua run wrote with --export', path = 'dir' },
  { 'ids', '', 'hypotheses as token ids, one a line (default: EXPORT/torch_test.ids)' },
  { 'refs', '', 'the references, one a line (default: EXPORT/test.ref)' },
})
if opt.export == '' then nn.cli.fail('--export is required') end
local ids = opt.ids ~= '' and opt.ids or opt.export .. '/torch_test.ids'
local bpe = nn.cli.try('--export', nn.tokenizer.BPE.load, opt.export .. '/vocab.bpe')
local config = require('cjson').decode(assert(io.open(opt.export .. '/config.json')):read('a'))
local hyps = {}
for i, h in ipairs(nn.cli.try('--ids', seq2seq.read_ids, ids)) do hyps[i] = seq2seq.text(bpe, h) end
local refs = {}
local ref_path = opt.refs ~= '' and opt.refs or opt.export .. '/test.ref'
local f = nn.cli.try('--refs', io.open, ref_path)
for line in f:lines() do refs[#refs + 1] = line end
f:close()
if #hyps ~= #refs then nn.cli.fail('%s has %d lines, the test split %d', ids, #hyps, #refs) end
if config.task == 'rougeL' then
  local r = nn.metrics.rouge(hyps, refs)
  print(('ROUGE-1 %.2f  ROUGE-2 %.2f  ROUGE-L %.2f (F1, %d items)'):format(100 * r.rouge1.f, 100 * r.rouge2.f,
    100 * r.rougeL.f, #hyps))
else
  local b = nn.metrics.bleu(hyps, refs)
  print(('BLEU %.2f (n-gram precisions %.1f/%.1f/%.1f/%.1f, brevity penalty %.3f; %d items)'):format(b.score,
    b.precisions[1], b.precisions[2], b.precisions[3], b.precisions[4], b.bp, #hyps))
end
