-- examples/sound end to end on a generated stamps folder laid out as Tux
-- Paint's (NAME.png, NAME.txt with translations, NAME.ogg, NAME_desc_LANG.ogg;
-- the sounds are the committed test recordings): all four experiments run
-- and print their tables.
local nn = require 'nnlua'
local support = require 'support'

local function copy(from, to)
  local f = assert(io.open(from, 'rb'))
  local s = f:read('a')
  f:close()
  support.write(to, s)
end

describe('examples/sound', function()
  it('runs retrieval, fusion and unseen-language retrieval on a stamps folder', function()
    local root = support.tempdir()
    nn.manual_seed(4)
    local words = { 'red', 'blue', 'green', 'black', 'pink', 'grey' }
    for _, cat in ipairs({ 'animals', 'food' }) do
      assert(os.execute("mkdir -p '" .. root .. '/' .. cat .. "/sub'"))
      for i = 1, 12 do
        local base = ('%s/%s/sub/%s%d'):format(root, cat, cat, i)
        local img = nn.rand(3, 12, 12)
        if cat == 'food' then img:narrow(2, 1, 6):fill_(1) end
        nn.image.write(base .. '.png', img)
        local w = words[(i - 1) % #words + 1]
        support.write(base .. '.txt', ('A %s %s.\nde.utf8=Ein %s %s.\nfr.utf8=Un %s %s.\n')
          :format(w, cat, w, cat, cat, w))
        if i % 2 == 0 then copy('tests/data/media/tone_mono.ogg', base .. '.ogg') end
        copy('tests/data/media/chirp_stereo.ogg', base .. '_desc_fr.ogg')
        copy('tests/data/media/tone_mono.ogg', base .. '_desc_es.ogg')
      end
    end
    local out, code = support.run(table.concat({ support.exe, 'examples/sound/train.lua', '--root', root,
      '--cache', root .. '/cache', '--size 16 --seconds 0.2 --steps 3 --batch 8 --embed 8 --vocab 270 --test 0.3' }, ' '))
    assert.equal(0, code, out)
    assert.truthy(out:find('data: 24 stamps', 1, true), out)
    for _, want in ipairs({ 'sound effects: image %-> sound%s+R@1', 'spoken descriptions: recording %-> image%s+R@1',
      'gated%s+[%d.]+%%', 'sound only%s+[%d.]+%%', 'caption %(de%) %-> image%s+R@1' }) do
      assert.truthy(out:find(want), want .. ' in\n' .. out)
    end
    -- built once: a second run reads the cache (the same build time) and
    -- every experiment runs on what it read back
    local again, again_code = support.run(table.concat({ support.exe, 'examples/sound/train.lua', '--root', root,
      '--cache', root .. '/cache', '--size 16 --seconds 0.2 --steps 1 --batch 8 --embed 8 --vocab 270 --test 0.3' }, ' '))
    assert.equal(0, again_code, again)
    local built = out:match('%(([%d.]+ s) to build%)')
    assert.truthy(built and again:find('(' .. built .. ' to build)', 1, true), again)
    for _, want in ipairs({ 'sound effects: image %-> sound%s+R@1', 'gated%s+[%d.]+%%', 'caption %(de%) %-> image%s+R@1' }) do
      assert.truthy(again:find(want), want .. ' in\n' .. again)
    end
  end)
end)
