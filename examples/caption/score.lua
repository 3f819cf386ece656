--- Scores captions given as token ids (bench/caption_twin.py's
--- torch_test.ids) with the same vocabulary and metric code as the nnlua
--- run that exported them: BLEU-4 and CIDEr-D against every reference.
---   nnlua examples/caption/score.lua --export DIR [--ids DIR/torch_test.ids]
local here = arg[0]:gsub('[^/]*$', '')
package.path = here .. '?.lua;' .. here .. '../mt/?.lua;' .. package.path
local nn = require 'nnlua'
local seq2seq = require 'seq2seq'

local opt = nn.cli.parse(arg, {
  { 'export', '', 'the folder an nnlua run wrote with --export', path = 'dir' },
  { 'ids', '', 'captions as token ids, one a line (default: EXPORT/torch_test.ids)' },
  { 'refs', '', 'the references, a JSON list of lists (default: EXPORT/test.refs.json)' },
})
if opt.export == '' then nn.cli.fail('--export is required') end
local ids = opt.ids ~= '' and opt.ids or opt.export .. '/torch_test.ids'
local bpe = nn.cli.try('--export', nn.tokenizer.BPE.load, opt.export .. '/vocab.bpe')
local f = nn.cli.try('--refs', io.open, opt.refs ~= '' and opt.refs or opt.export .. '/test.refs.json')
local refs = require('cjson').decode(f:read('a'))
f:close()
local hyps = {}
for i, h in ipairs(nn.cli.try('--ids', seq2seq.read_ids, ids)) do hyps[i] = seq2seq.text(bpe, h) end
if #hyps ~= #refs then nn.cli.fail('%s has %d lines, the test split %d pictures', ids, #hyps, #refs) end
local b, c = nn.metrics.bleu(hyps, refs), nn.metrics.cider(hyps, refs)
print(('BLEU-4 %.2f  CIDEr-D %.2f  (%d pictures)'):format(b.score, 100 * c.score, #hyps))
