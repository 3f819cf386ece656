--- Real parallel and summarisation text from the Debian archive: the
--- Debian Description Translation Project's package descriptions.
---
--- fetch() runs `apt-get update -o Acquire::Languages=... -o
--- Dir::State::Lists=CACHE/lists`, which downloads the archive's
--- *_i18n_Translation-LANG.lz4 files into the cache without touching the
--- system's own lists. A record there is
---   Package: 0ad
---   Description-md5: d943...
---   Description-de: <synopsis>
---    <long description, paragraphs separated by a line " .">
--- Records of different languages describe the same English text when their
--- Description-md5 agree.
---
--- Pairs: for translation, the synopses and, when both sides have as many
--- paragraphs, the paragraphs one by one; for summarisation, the English
--- long description -> its synopsis. Cleaning normalises whitespace and
--- drops empty pairs, pairs with the same text on both sides and (for
--- translation) pairs whose word counts differ by more than 3x. Many
--- packages share descriptions (foo, foo-dev, foo-doc...): a source text is
--- kept once, and the split is decided per description by a hash of its
--- first English paragraph, which the variants of one package share, so they
--- all land in one split and no source text appears in two splits.
local files = require 'nnlua.files'

local M = {}

M.LANGS = { en = true, de = true, fr = true }

local function shell_quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

local function exists(path)
  local f = io.open(path, 'rb')
  if f then f:close() end
  return f ~= nil
end

local function list_files(dir, lang)
  local found = {}
  local p = io.popen('ls ' .. shell_quote(dir) .. ' 2>/dev/null')
  for name in p:lines() do
    -- apt's lz4 files, or plain ones (the test slice)
    local stem = name:gsub('%.lz4$', '')
    if stem:match('_main_i18n_Translation%-' .. lang .. '$') then found[#found + 1] = dir .. '/' .. name end
  end
  p:close()
  table.sort(found)
  return found
end

--- fetch(cache, langs): downloads the Translation files of langs (a list)
--- into cache/lists unless they are there; returns {lang = {files}}.
function M.fetch(cache, langs)
  local lists = cache .. '/lists'
  local have = true
  for _, l in ipairs(langs) do have = have and #list_files(lists, l) > 0 end
  if not have then
    assert(os.execute('mkdir -p ' .. shell_quote(lists .. '/partial')))
    local cmd = ('apt-get update -qq -o Acquire::Languages=%s -o Dir::State::Lists=%s >&2')
      :format(table.concat(langs, ','), shell_quote(lists))
    io.stderr:write('fetching the Debian translation files: ', cmd, '\n')
    if not os.execute(cmd) then error('ddtp: apt-get update failed (it needs root and the Debian archive)', 0) end
  end
  local files = {}
  for _, l in ipairs(langs) do
    files[l] = list_files(lists, l)
    if #files[l] == 0 then error(('ddtp: apt-get gave no Translation-%s file in %s'):format(l, lists), 0) end
  end
  return files
end

--- normalise(s): whitespace runs to one space, trimmed
function M.normalise(s) return (s:gsub('%s+', ' '):gsub('^ ', ''):gsub(' $', '')) end

local function words(s)
  local n = 0
  for _ in s:gmatch('%S+') do n = n + 1 end
  return n
end
M.words = words

-- one record's description: the synopsis and the long description's
-- paragraphs (normalised; empty paragraphs dropped)
local function finish(rec, lines)
  local paragraphs, cur = {}, {}
  local function flush()
    local p = M.normalise(table.concat(cur, ' '))
    if p ~= '' then paragraphs[#paragraphs + 1] = p end
    cur = {}
  end
  for _, l in ipairs(lines) do
    if l == ' .' then flush() else cur[#cur + 1] = l end
  end
  flush()
  rec.paragraphs = paragraphs
  return rec
end

--- parse(lines_iterator, lang, into): reads records into `into` (md5 ->
--- {package, md5, synopsis, paragraphs}, the first record of an md5 kept)
--- and the list into.order of md5s in file order.
function M.parse(lines, lang, into)
  into = into or { order = {} }
  local field = 'Description-' .. lang .. ':'
  local rec, body
  local function close()
    if rec and rec.md5 and rec.synopsis and not into[rec.md5] then
      into[rec.md5] = finish(rec, body)
      into.order[#into.order + 1] = rec.md5
    end
    rec, body = nil, nil
  end
  for line in lines do
    if line == '' then close()
    elseif line:sub(1, 1) == ' ' and body then body[#body + 1] = line
    else
      rec = rec or {}
      local k, v = line:match('^([%w%-]+:)%s*(.*)$')
      if k == 'Package:' then rec.package = v
      elseif k == 'Description-md5:' then rec.md5 = v
      elseif k == field then rec.synopsis, body = M.normalise(v), {}
      end
    end
  end
  close()
  return into
end

--- read(files, lang): parse every file (lz4 through apt-helper, or plain text)
function M.read(files, lang)
  local into = { order = {} }
  for _, f in ipairs(files) do
    if f:match('%.lz4$') then
      local p = assert(io.popen('/usr/lib/apt/apt-helper cat-file ' .. shell_quote(f)))
      M.parse(p:lines(), lang, into)
      if not p:close() then error('ddtp: could not decompress ' .. f, 0) end
    else
      local h = assert(io.open(f))
      M.parse(h:lines(), lang, into)
      h:close()
    end
  end
  return into
end

--- write_records(path, db, md5s, lang): records in the Translation file
--- format (the test slice in tests/data/ddtp is made by this)
function M.write_records(path, db, md5s, lang)
  local out = {}
  for _, md5 in ipairs(md5s) do
    local r = db[md5]
    out[#out + 1] = ('Package: %s\nDescription-md5: %s\nDescription-%s: %s'):format(r.package, md5, lang, r.synopsis)
    for i, p in ipairs(r.paragraphs) do
      if i > 1 then out[#out + 1] = ' .' end
      out[#out + 1] = ' ' .. p
    end
    out[#out + 1] = ''
  end
  return files.write_atomic(path, table.concat(out, '\n'))
end

-- 32-bit FNV-1a of a string: the split of a description
local function fnv(s)
  local h = 2166136261
  for i = 1, #s do h = ((h ~ s:byte(i)) * 16777619) & 0xffffffff end
  return h
end

local function split_of(rec, o)
  local key = (rec.paragraphs[1] or rec.synopsis):lower()
  local b = fnv(key) % 1000
  if b < o.test * 10 then return 'test' end
  if b < (o.test + o.valid) * 10 then return 'valid' end
  return 'train'
end

local function default_split(o)
  o = o or {}
  return { test = o.test or 5, valid = o.valid or 3, max_ratio = o.max_ratio or 3 }
end

-- adds (src, tgt) to its split unless it is empty, the same on both sides,
-- its source was seen, or (with a ratio) its lengths are too far apart
local function add(out, seen, split, src, tgt, max_ratio)
  local st = out.stats
  if src == '' or tgt == '' then st.empty = st.empty + 1 return end
  if src == tgt then st.same = st.same + 1 return end
  if max_ratio then
    local a, b = words(src), words(tgt)
    if math.max(a, b) > max_ratio * math.min(a, b) then st.ratio = st.ratio + 1 return end
  end
  if seen[src] then st.duplicate = st.duplicate + 1 return end
  seen[src] = true
  local list = out[split]
  list[#list + 1] = { src, tgt }
end

local function new_out()
  return { train = {}, valid = {}, test = {}, stats = { empty = 0, same = 0, ratio = 0, duplicate = 0, pairs = 0 } }
end

--- translation(en, other[, {test = 5, valid = 3, max_ratio = 3}]): pairs
--- English -> other language, split {train, valid, test, stats}; test and
--- valid are percentages of descriptions.
function M.translation(en, other, o)
  o = default_split(o)
  local out, seen = new_out(), {}
  for _, md5 in ipairs(en.order) do
    local e, t = en[md5], other[md5]
    if t then
      local split = split_of(e, o)
      out.stats.pairs = out.stats.pairs + 1
      add(out, seen, split, e.synopsis, t.synopsis, o.max_ratio)
      if #e.paragraphs == #t.paragraphs then
        for i, p in ipairs(e.paragraphs) do
          out.stats.pairs = out.stats.pairs + 1
          add(out, seen, split, p, t.paragraphs[i], o.max_ratio)
        end
      end
    end
  end
  return out
end

--- summaries(en[, {test = 5, valid = 3}]): English long description (its
--- paragraphs joined) -> synopsis, split as translation() does.
function M.summaries(en, o)
  o = default_split(o)
  local out, seen = new_out(), {}
  for _, md5 in ipairs(en.order) do
    local e = en[md5]
    if #e.paragraphs > 0 then
      out.stats.pairs = out.stats.pairs + 1
      add(out, seen, split_of(e, o), table.concat(e.paragraphs, ' '), e.synopsis, nil)
    end
  end
  return out
end

-- ---- TSV files: source<TAB>target, one pair a line --------------------------

local function clean_field(s) return (s:gsub('[\t\r\n]', ' ')) end

function M.write_tsv(path, pairs)
  local lines = {}
  for i, p in ipairs(pairs) do lines[i] = clean_field(p[1]) .. '\t' .. clean_field(p[2]) end
  return files.write_atomic(path, table.concat(lines, '\n') .. (#lines > 0 and '\n' or ''))
end

--- read_tsv(path) -> list of {source, target}; errors name the line
function M.read_tsv(path)
  local f, err = io.open(path)
  if not f then error(err, 0) end
  local pairs, n = {}, 0
  for line in f:lines() do
    n = n + 1
    if line ~= '' then
      local s, t = line:match('^([^\t]*)\t([^\t]*)$')
      if not s then
        f:close()
        error(('%s:%d: expected source<TAB>target'):format(path, n), 0)
      end
      pairs[#pairs + 1] = { M.normalise(s), M.normalise(t) }
    end
  end
  f:close()
  return pairs
end

--- load(data, task, cache, o) -> {train, valid, test}. data: '' (fetch the
--- Debian files into cache and prepare the task: 'en-de', 'en-fr' or
--- 'summarize'), a directory with train.tsv, valid.tsv and test.tsv, or one
--- TSV file split here by a hash of each source.
function M.load(data, task, cache, o)
  if data ~= '' then
    if exists(data .. '/train.tsv') then
      return { train = M.read_tsv(data .. '/train.tsv'), valid = M.read_tsv(data .. '/valid.tsv'),
        test = M.read_tsv(data .. '/test.tsv') }
    end
    o = default_split(o)
    local out = { train = {}, valid = {}, test = {} }
    for _, p in ipairs(M.read_tsv(data)) do
      local l = out[split_of({ paragraphs = { p[1] } }, o)]
      l[#l + 1] = p
    end
    return out
  end
  local dir = ('%s/%s'):format(cache, task)
  if not exists(dir .. '/train.tsv') then M.prepare(cache, task, o) end
  return M.load(dir, task, cache, o)
end

--- prepare(cache, task[, o]): fetch, join, clean, split and write
--- cache/task/{train,valid,test}.tsv; returns the split and its stats
function M.prepare(cache, task, o)
  local other = task:match('^en%-(%a%a)$')
  if not (other and M.LANGS[other]) and task ~= 'summarize' then
    error("ddtp: task must be 'en-de', 'en-fr' or 'summarize', got " .. tostring(task), 0)
  end
  local langs = other and { 'en', other } or { 'en' }
  local files = M.fetch(cache, langs)
  local en = M.read(files.en, 'en')
  local out = other and M.translation(en, M.read(files[other], other), o) or M.summaries(en, o)
  local dir = ('%s/%s'):format(cache, task)
  assert(os.execute('mkdir -p ' .. shell_quote(dir)))
  for _, s in ipairs({ 'train', 'valid', 'test' }) do assert(M.write_tsv(('%s/%s.tsv'):format(dir, s), out[s])) end
  return out
end

return M
