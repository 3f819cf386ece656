-- The DDTP data preparation of examples/mt/ddtp.lua on the committed slice
-- tests/data/ddtp (80 English records with their German and French
-- translations, written by `examples/mt/prepare.lua --slice 80`): parsing,
-- joining, cleaning, deduplication, the split by description, TSV files.
-- Never the network.
package.path = 'examples/mt/?.lua;' .. package.path
local ddtp = require 'ddtp'
local support = require 'support'

local SLICE = 'tests/data/ddtp/Translation-'

local function read(lang) return ddtp.read({ SLICE .. lang }, lang) end

describe('ddtp', function()
  local en, de, fr = read('en'), read('de'), read('fr')

  it('parses records: synopsis, paragraphs, md5, in file order', function()
    assert.equal(80, #en.order)
    local first = en[en.order[1]]
    assert.equal('activemq', first.package)
    assert.equal('Java message broker - server', first.synopsis)
    assert.equal(3, #first.paragraphs)
    assert.equal('This package contains a server installation of ActiveMQ.', first.paragraphs[3])
    assert.equal('Java-Message-Broker - Server', de[first.md5].synopsis)
    for _, md5 in ipairs(en.order) do assert.truthy(de[md5] and fr[md5]) end
  end)

  it('parses the Translation format: continuation lines, " ." paragraph breaks, first record of an md5 wins', function()
    local db = ddtp.parse(([[
Package: a
Description-md5: 1
Description-en: first  synopsis
 one
   two
 .
 three

Package: a-dev
Description-md5: 1
Description-en: second

Package: b
Description-md5: 2
Description-de: nicht englisch
]]):gmatch('[^\n]*'), 'en')
    assert.same({ '1' }, db.order)
    assert.equal('first synopsis', db['1'].synopsis)
    assert.same({ 'one two', 'three' }, db['1'].paragraphs)
  end)

  it('joins translation pairs, cleans, deduplicates and splits by description', function()
    local out = ddtp.translation(en, de, { test = 20, valid = 10 })
    local n = #out.train + #out.valid + #out.test
    assert.truthy(n > 100 and #out.test > 0 and #out.valid > 0, n)
    assert.equal(out.stats.pairs, n + out.stats.duplicate + out.stats.same + out.stats.ratio + out.stats.empty)
    assert.truthy(out.stats.duplicate > 0) -- aide and aide-common share a paragraph
    local where = {}
    for _, s in ipairs({ 'train', 'valid', 'test' }) do
      for _, p in ipairs(out[s]) do
        assert.is_nil(where[p[1]], 'a source in two places: ' .. p[1])
        where[p[1]] = s
        assert.are_not.equal(p[1], p[2])
        local a, b = ddtp.words(p[1]), ddtp.words(p[2])
        assert.truthy(math.max(a, b) <= 3 * math.min(a, b))
        assert.is_nil(p[1]:find('%s%s') or p[1]:find('^%s') or p[1]:find('%s$'))
      end
    end
    -- a package's variants (sharing the first paragraph) land in one split
    local aide = en[en.order[2]]
    assert.equal('aide', aide.package)
    local common
    for _, md5 in ipairs(en.order) do if en[md5].package == 'aide-common' then common = en[md5] end end
    assert.equal(where[aide.synopsis], where[common.synopsis])
    -- deterministic
    assert.same(out.test, ddtp.translation(en, de, { test = 20, valid = 10 }).test)
  end)

  it('drops empty pairs, the same text on both sides and length ratios above 3', function()
    local function db(lang, syn) return ddtp.parse(('Package: p\nDescription-md5: m\nDescription-%s: %s\n'):format(lang, syn):gmatch('[^\n]*'), lang) end
    local function pairs_of(a, b) local o = ddtp.translation(db('en', a), db('de', b), { test = 0, valid = 0 }); return #o.train, o.stats end
    local n, st = pairs_of('the same', 'the same')
    assert.equal(0, n); assert.equal(1, st.same)
    n, st = pairs_of('one two three four', 'eins')
    assert.equal(0, n); assert.equal(1, st.ratio)
    n = pairs_of('one two three', 'eins')
    assert.equal(1, n)
  end)

  it('makes summarisation pairs: the whole long description -> synopsis', function()
    local out = ddtp.summaries(en, { test = 20, valid = 10 })
    local all = {}
    for _, s in ipairs({ 'train', 'valid', 'test' }) do
      for _, p in ipairs(out[s]) do all[#all + 1] = p end
    end
    assert.truthy(#all >= 60)
    local first = en[en.order[1]]
    local found
    for _, p in ipairs(all) do if p[2] == first.synopsis then found = p end end
    assert.equal(table.concat(first.paragraphs, ' '), found[1])
  end)

  it('prepares TSV splits from a cache of Translation files, and loads them back', function()
    local cache = support.tempdir()
    assert(os.execute(('mkdir -p %s/lists'):format(cache)))
    for _, l in ipairs({ 'en', 'de' }) do
      assert(os.execute(('cp %s%s %s/lists/slice_main_i18n_Translation-%s'):format(SLICE, l, cache, l)))
    end
    local out = ddtp.prepare(cache, 'en-de', { test = 20, valid = 10 })
    local back = ddtp.load('', 'en-de', cache)
    assert.same(out.test, back.test)
    assert.same(out.train, back.train)
    -- one TSV file is split here by a hash of each source
    local one = ddtp.load(cache .. '/en-de/train.tsv', 'en-de', cache)
    assert.equal(#out.train, #one.train + #one.valid + #one.test)
    assert.has_error(function() ddtp.prepare(cache, 'en-xx') end, "ddtp: task must be 'en-de', 'en-fr' or 'summarize', got en-xx")
    os.execute('rm -rf ' .. cache)
  end)

  it('reads TSV files strictly', function()
    local path = support.tempfile('a\tb\nno tab here\n')
    local ok, err = pcall(ddtp.read_tsv, path)
    assert(not ok and tostring(err):find(':2: expected source<TAB>target', 1, true), tostring(err))
    os.remove(path)
  end)
end)
