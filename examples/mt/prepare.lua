--- Prepares the translation and summarisation data from the Debian archive
--- (examples/mt/ddtp.lua says how): fetches the Translation files into
--- --cache, then writes CACHE/TASK/{train,valid,test}.tsv and prints the
--- counts. `make data-mt` runs it for every task.
---   nnlua examples/mt/prepare.lua --cache data/ddtp --task en-de
package.path = arg[0]:gsub('[^/]*$', '') .. '?.lua;' .. package.path
local nn = require 'nnlua'
local ddtp = require 'ddtp'

local opt = nn.cli.parse(arg, {
  { 'cache', 'data/ddtp', 'folder for the downloaded files and the prepared splits' },
  { 'task', 'all', 'what to prepare', choices = { 'all', 'en-de', 'en-fr', 'summarize' } },
  { 'test', 5, 'percent of descriptions for the test split', min = 0, max = 50 },
  { 'valid', 3, 'percent of descriptions for the validation split', min = 0, max = 50 },
  { 'slice', 0, 'instead: write the first N English records that have German and French translations, and those, as plain Translation files to --slice_out', integer = true, min = 0 },
  { 'slice_out', '', 'folder for --slice' },
})

if opt.slice > 0 then
  if opt.slice_out == '' then nn.cli.fail('--slice needs --slice_out') end
  local files = ddtp.fetch(opt.cache, { 'en', 'de', 'fr' })
  local db = {}
  for _, l in ipairs({ 'en', 'de', 'fr' }) do db[l] = ddtp.read(files[l], l) end
  local pick = {}
  for _, md5 in ipairs(db.en.order) do
    if #pick == opt.slice then break end
    if db.de[md5] and db.fr[md5] then pick[#pick + 1] = md5 end
  end
  for l, d in pairs(db) do assert(ddtp.write_records(('%s/Translation-%s'):format(opt.slice_out, l), d, pick, l)) end
  print(('%d records of each language in %s'):format(#pick, opt.slice_out))
  return
end

local tasks = opt.task == 'all' and { 'en-de', 'en-fr', 'summarize' } or { opt.task }
for _, task in ipairs(tasks) do
  local t0 = os.clock()
  local out = ddtp.prepare(opt.cache, task, { test = opt.test, valid = opt.valid })
  local s = out.stats
  print(('%-9s %6d candidate pairs -> train %d, valid %d, test %d (dropped: %d duplicate sources, %d empty, %d same text, %d length ratio > 3) in %.1f s; %s/%s/*.tsv')
    :format(task, s.pairs, #out.train, #out.valid, #out.test, s.duplicate, s.empty, s.same, s.ratio,
      os.clock() - t0, opt.cache, task))
end
