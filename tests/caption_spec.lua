-- examples/caption end to end on a small generated set (coloured shapes
-- on white, each with a caption saying which): the TSV reader, splits,
-- training, beam decoding, both scores, the nearest-neighbour baseline,
-- the picture and the export the PyTorch twin reads; and the dataset
-- builder's rules (English titles, normalised keys).
local nn = require 'nnlua'
local support = require 'support'

package.path = 'examples/caption/?.lua;examples/mt/?.lua;' .. package.path
local data = require 'data'

local COLOURS = { { 'red', { 1, 0, 0 } }, { 'green', { 0, 0.7, 0 } }, { 'blue', { 0, 0, 1 } }, { 'black', { 0, 0, 0 } } }
local PLACES = { { 'left', { 3, 2 } }, { 'right', { 3, 10 } }, { 'top', { 1, 6 } }, { 'bottom', { 10, 6 } } }

local function make_set(dir)
  local lines, i = {}, 0
  nn.manual_seed(2)
  for _, colour in ipairs(COLOURS) do
    local cname, rgb = colour[1], colour[2]
    for _, place in ipairs(PLACES) do
      local pname, at = place[1], place[2]
      for size = 3, 5 do
        i = i + 1
        local img = nn.ones(3, 16, 16)
        for c = 1, 3 do img[c]:narrow(1, at[1], size):narrow(2, at[2], size):fill_(rgb[c]) end
        img = (img + nn.rand(3, 16, 16) * 0.05):clamp(0, 1)
        local name = ('p%02d.png'):format(i)
        nn.image.write(dir .. '/' .. name, img)
        lines[#lines + 1] = ('%s\t%s %s'):format(name, cname, pname)
      end
    end
  end
  support.write(dir .. '/set.tsv', table.concat(lines, '\n') .. '\n')
  return dir .. '/set.tsv'
end

describe('examples/caption', function()
  it('trains, decodes, scores and draws on a TSV set', function()
    local dir = support.tempdir()
    local tsv = make_set(dir)
    local cmd = table.concat({ support.exe, 'examples/caption/train.lua', '--data', tsv, '--size 16 --steps 6',
      '--batch 8 --vocab 270 --width 4 --d_model 16 --heads 2 --layers 1 --ff 32 --eval_every 3 --beam 2',
      '--max_len 8 --out', dir .. '/m.safetensors', '--picture', dir .. '/p.svg', '--hyps', dir .. '/h.txt',
      '--export', dir .. '/exp', '--log', dir .. '/log.jsonl' }, ' ')
    local out, code = support.run(cmd)
    assert.equal(0, code, out)
    assert.truthy(out:find('data: 48 pictures', 1, true), out)
    assert.truthy(out:find('model, beam 2%s+BLEU%-4%s+[%d.]+%s+CIDEr%-D%s+[%d.]+'), out)
    assert.truthy(out:find('nearest%-neighbour caption baseline%s+BLEU%-4'), out)
    local svg = support.read(dir .. '/p.svg')
    local n = select(2, svg:gsub('<image ', ''))
    assert.truthy(n >= 1 and n <= 12, svg:sub(1, 200))
    for _, f in ipairs({ 'images.safetensors', 'train.rows', 'train.ids', 'plan.txt', 'test.rows', 'test.refs.json',
      'config.json', 'init.safetensors', 'vocab.bpe' }) do
      assert.truthy(io.open(dir .. '/exp/' .. f), 'export lacks ' .. f)
    end
    local plan = support.read(dir .. '/exp/plan.txt')
    assert.equal(6, select(2, plan:gsub('\n', '')))
    assert.truthy(plan:match('^%-?%d %-?%d %d+:%d'), plan:sub(1, 80))
    -- the scorer reads the export (here the nnlua run's own captions as ids)
    local hyps = {}
    local bpe = nn.tokenizer.BPE.load(dir .. '/exp/vocab.bpe')
    for line in io.lines(dir .. '/h.txt') do
      local ids = line == '' and {} or bpe:encode(line):totable()
      for k = 1, #ids do ids[k] = ids[k] + 3 end
      hyps[#hyps + 1] = table.concat(ids, ' ')
    end
    support.write(dir .. '/exp/mine.ids', table.concat(hyps, '\n') .. '\n')
    local sout, scode = support.run(support.exe .. ' examples/caption/score.lua --export ' .. dir .. '/exp --ids '
      .. dir .. '/exp/mine.ids')
    assert.equal(0, scode, sout)
    local pattern = 'BLEU%-4%s+([%d.]+)%s+CIDEr%-D%s+([%d.]+)'
    local b1, c1 = out:match('model, beam 2%s+' .. pattern)
    local b2, c2 = sout:match(pattern)
    assert.same({ b1, c1 }, { b2, c2 }, sout .. ' vs ' .. out)
  end)

  it('keeps English titles and joins near-duplicate captions', function()
    if not io.open(data.WORDS) then return pending('no word list (wamerican)') end
    assert.is_true(data.english('Red apple'))
    assert.is_true(data.english("Children's toys"))
    assert.is_false(data.english('Barattolo di pillole'))
    assert.is_false(data.english('Clipart by Nicu Buculei - head1'))
    assert.is_false(data.english('arki_arrow_down'))
    assert.equal('red apple', data.key('A red apple.'))
    assert.equal(data.key('The red apple'), data.key('red, apple!'))
  end)
end)
