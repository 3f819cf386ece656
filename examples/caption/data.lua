--- The caption dataset: real images with human-written captions from two
--- Debian packages, deduplicated and split by image.
---
---  * Tux Paint stamps (tuxpaint-stamps-default): NAME.png with NAME.txt,
---    whose first line is the English caption ("A blackbird.") and whose
---    `LANG.utf8=...` lines are translations; NAME.ogg is the stamp's sound
---    effect and NAME_desc[_LANG].ogg its spoken description.
---  * Open Clip Art Library (openclipart-png, -svg): each PNG's SVG twin has
---    the artist's <dc:title> and often a <dc:description>. Titles are kept
---    as captions only when they read as English: every word in Debian's
---    American English word list (wamerican), no file-name debris ("Clipart
---    by ...", underscores, digits); that drops the Italian, French, Spanish
---    ... titles and the artist-name placeholders. A short English
---    description that differs from the title becomes a second reference.
---
--- Deduplication and splits: identical pictures (the same pixels after
--- resizing, e.g. one SVG filed under two categories) are one item with
--- the union of their captions; items whose captions are near-duplicates
--- (the same normalised form -- lowercased words without articles, in
--- order -- or, from three words up, the same form but for one word) are
--- joined into one group, and each group goes to one split by a hash of
--- its first item, so no image and no near-duplicate caption crosses splits.
local nn = require 'nnlua'

local M = {}

M.PACKAGES = { 'tuxpaint-stamps-default', 'openclipart-png', 'openclipart-svg', 'wamerican' }
M.TUXPAINT = '/usr/share/tuxpaint/stamps'
M.CLIPART = '/usr/share/openclipart'
M.WORDS = '/usr/share/dict/american-english'

--- ensure_packages(): installs the Debian packages that are missing (as root)
function M.ensure_packages()
  local missing = {}
  for _, p in ipairs(M.PACKAGES) do
    if not os.execute('dpkg -s ' .. p .. ' >/dev/null 2>&1') then missing[#missing + 1] = p end
  end
  if #missing == 0 then return end
  print('installing ' .. table.concat(missing, ' ') .. ' (Debian packages)')
  local ok = os.execute('{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq '
    .. table.concat(missing, ' ') .. '; } >/dev/null')
  if not ok then error('could not install ' .. table.concat(missing, ' ') .. ' (run as root, or install them)') end
end

local function lines_of(cmd)
  local p = assert(io.popen(cmd))
  local out = {}
  for l in p:lines() do out[#out + 1] = l end
  p:close()
  return out
end

local function read_all(path)
  local f = io.open(path, 'rb')
  if not f then return nil end
  local s = f:read('a')
  f:close()
  return s
end

local function trim(s) return (s:gsub('^%s+', ''):gsub('%s+$', ''):gsub('%s+', ' ')) end

--- words(text) -> lowercased alphanumeric words (ROUGE's tokens)
function M.words(text) return nn.metrics.tokenize_rouge(text) end

local ARTICLES = { a = true, an = true, the = true }
--- key(caption): the normalised form near-duplicates share
function M.key(caption)
  local out = {}
  for _, w in ipairs(M.words(caption)) do
    if not ARTICLES[w] then out[#out + 1] = w end
  end
  return table.concat(out, ' ')
end

-- ---- Tux Paint ---------------------------------------------------------------------

--- tuxpaint(root) -> items {image, captions = {English}, translations = {lang = text},
--- category, sound, speech = {lang = path}, source = 'tuxpaint'}
function M.tuxpaint(root)
  local items = {}
  for _, png in ipairs(lines_of("find '" .. root .. "' -name '*.png' -type f | LC_ALL=C sort")) do
    local base = png:sub(1, -5)
    local txt = read_all(base .. '.txt')
    local first = txt and txt:match('^[^\n]*')
    if first and trim(first) ~= '' then
      local item = { image = png, captions = { trim(first) }, translations = {}, speech = {}, source = 'tuxpaint',
        category = png:sub(#root + 2):match('^[^/]+') }
      for lang, text in txt:gmatch('\n([%w_@%-]+)%.utf8=([^\n]*)') do
        if trim(text) ~= '' then item.translations[lang] = trim(text) end
      end
      if read_all(base .. '.ogg') then item.sound = base .. '.ogg' end
      for _, d in ipairs(lines_of("ls '" .. base .. "'_desc*.ogg 2>/dev/null")) do
        local lang = d:match('_desc_?([^/]*)%.ogg$') or ''
        item.speech[lang == '' and 'en' or lang] = d
      end
      items[#items + 1] = item
    end
  end
  return items
end

-- ---- Open Clip Art ---------------------------------------------------------------

local ENTITIES = { amp = '&', lt = '<', gt = '>', quot = '"', apos = "'" }
local function unescape(s)
  return (s:gsub('&(%a+);', ENTITIES):gsub('&#(%d+);', function(n) return utf8.char(tonumber(n)) end))
end

local dictionary
local function english_words()
  if not dictionary then
    dictionary = {}
    for w in io.lines(M.WORDS) do dictionary[w:lower()] = true end
  end
  return dictionary
end

--- english(text): every word in the word list (a plural or possessive of
--- one counts), no digits, underscores or placeholders
function M.english(text)
  if text:find('[_%d@/\\]') or text:lower():find('clipart') or text:lower():find('clip art') then return false end
  if text:find('[\128-\255]') then return false end
  local dict, n = english_words(), 0
  for w in text:gmatch("[%a']+") do
    local lw = w:lower():gsub("'s$", '')
    if not (dict[lw] or dict[lw:gsub('s$', '')] or dict[lw:gsub('es$', '')]) then return false end
    n = n + 1
  end
  return n > 0
end

--- openclipart(root) -> items {image, captions, keywords, category, source = 'openclipart'}
function M.openclipart(root)
  local items, dropped = {}, 0
  for _, png in ipairs(lines_of("find '" .. root .. "/png' -name '*.png' -type f | LC_ALL=C sort")) do
    local svg = read_all(root .. '/svg' .. png:sub(#root + 5, -5) .. '.svg')
    local work = svg and (svg:match('<cc:Work.-</cc:Work>') or svg)
    local title = work and work:match('<dc:title>(.-)</dc:title>')
    title = title and trim(unescape(title)) or ''
    if title ~= '' and M.english(title) then
      local captions = { title }
      local desc = work:match('<dc:description>(.-)</dc:description>')
      desc = desc and trim(unescape(desc)) or ''
      local nwords = #M.words(desc)
      if nwords >= 2 and nwords <= 15 and M.key(desc) ~= M.key(title) and M.english(desc) then
        captions[2] = desc
      end
      local keywords = {}
      for k in work:gmatch('<rdf:li>(.-)</rdf:li>') do keywords[#keywords + 1] = trim(unescape(k)) end
      items[#items + 1] = { image = png, captions = captions, keywords = keywords, source = 'openclipart',
        category = png:sub(#root + 6):match('^[^/]+') }
    else
      dropped = dropped + 1
    end
  end
  return items, dropped
end

--- tsv(path) -> items from lines "image.png<TAB>caption[<TAB>caption...]"
--- (relative image paths are taken from the file's folder)
function M.tsv(path)
  local dir = path:match('^(.*)/[^/]*$') or '.'
  local items = {}
  for line in io.lines(path) do
    local fields = {}
    for f in (line .. '\t'):gmatch('([^\t]*)\t') do fields[#fields + 1] = trim(f) end
    if #fields >= 2 and fields[1] ~= '' then
      local img = fields[1]:sub(1, 1) == '/' and fields[1] or dir .. '/' .. fields[1]
      local caps = {}
      for i = 2, #fields do if fields[i] ~= '' then caps[#caps + 1] = fields[i] end end
      if #caps > 0 then items[#items + 1] = { image = img, name = fields[1], captions = caps, source = 'tsv' } end
    end
  end
  if #items == 0 then error(path .. ': no "image<TAB>caption" lines', 0) end
  return items
end

-- ---- pictures ------------------------------------------------------------------------

--- picture(path, size) -> (3, size, size) in [0, 1]: alpha composited on
--- white, padded to a square with white, then area-resized
function M.picture(path, size)
  -- closed as soon as they are used: a clip-art picture may be 10562x16000
  local img <close> = nn.image.read(path, { channels = 3, background = 1 })
  local h, w = img:size(2), img:size(3)
  if h == w then return nn.image.resize(img, size, { filter = 'area' }) end
  local d = math.abs(h - w)
  local a, b = d // 2, d - d // 2
  local square <close> = img:pad(h > w and { a, b, 0, 0 } or { 0, 0, a, b }, 'constant', 1)
  img:close()
  return nn.image.resize(square, size, { filter = 'area' })
end

--- fnv1a(s) -> the 32-bit FNV-1a hash of a string (splits by hash)
function M.fnv1a(s)
  local h = 2166136261
  for i = 1, #s do h = ((h ~ s:byte(i)) * 16777619) & 0xffffffff end
  return h
end

-- union-find over item indices
local function groups_of(n, links)
  local parent = {}
  for i = 1, n do parent[i] = i end
  local function find(i)
    while parent[i] ~= i do parent[i] = parent[parent[i]]; i = parent[i] end
    return i
  end
  for _, l in ipairs(links) do
    local a, b = find(l[1]), find(l[2])
    if a ~= b then parent[math.max(a, b)] = math.min(a, b) end
  end
  local out = {}
  for i = 1, n do out[i] = find(i) end
  return out
end

--- build(o) -> {items, images (N, 3, S, S) f16, stats}: scans both packages
--- (or takes o.items: {image = path, captions = {...}}),
--- decodes and resizes every picture, merges identical pictures, assigns
--- splits (o.size, o.valid and o.test fractions of the hash space)
function M.build(o)
  local t0 = nn.clock()
  local tux, clip, dropped = {}, {}, 0
  local all = o.items
  if not all then
    tux = M.tuxpaint(o.tuxpaint or M.TUXPAINT)
    clip, dropped = M.openclipart(o.clipart or M.CLIPART)
    all = table.move(clip, 1, #clip, #tux + 1, table.move(tux, 1, #tux, 1, {}))
  end
  -- decode; identical pixels (after resizing) are one item
  local by_pixels, items, pictures, dup_pictures = {}, {}, {}, 0
  for _, it in ipairs(all) do
    local ok, img = pcall(M.picture, it.image, o.size)
    if ok then
      local q = (img * 255):round():to('i64')
      local sig = table.concat({ q:sum():item(), (q * nn.arange(q:numel()):view(q.shape) % 9973):sum():item(),
        q:narrow(2, 1, 1):sum():item() }, ':')
      local same = by_pixels[sig]
      if same then
        dup_pictures = dup_pictures + 1
        for _, c in ipairs(it.captions) do same.captions[#same.captions + 1] = c end
      else
        by_pixels[sig] = it
        items[#items + 1] = it
        pictures[#pictures + 1] = img:to('f16')
      end
    end
  end
  -- one caption per normalised form in each item
  for _, it in ipairs(items) do
    local seen, caps = {}, {}
    for _, c in ipairs(it.captions) do
      local k = M.key(c)
      if k ~= '' and not seen[k] then seen[k], caps[#caps + 1] = true, c end
    end
    it.captions = caps
  end
  -- groups: items sharing a caption's normalised form, or (for forms of
  -- three words or more) all of it but one word: "led rectangular v blue"
  -- and "led rectangular h blue" are one group
  local first_with, links = {}, {}
  local function link(k, i)
    if first_with[k] then links[#links + 1] = { first_with[k], i } else first_with[k] = i end
  end
  for i, it in ipairs(items) do
    for _, c in ipairs(it.captions) do
      local k = M.key(c)
      link(k, i)
      local w = {}
      for word in k:gmatch('%S+') do w[#w + 1] = word end
      if #w >= 3 then
        for j = 1, #w do
          local saved = w[j]
          w[j] = '*'
          link(table.concat(w, ' '), i)
          w[j] = saved
        end
      end
    end
  end
  local root = groups_of(#items, links)
  local counts = { train = 0, valid = 0, test = 0 }
  for i, it in ipairs(items) do
    local r = items[root[i]] -- hashed with its path as given (a TSV's own, so the split does not move with the folder)
    local h = M.fnv1a(M.key(r.captions[1]) .. '|' .. (r.name or r.image)) % 10000 / 10000
    it.split = h < o.test and 'test' or h < o.test + o.valid and 'valid' or 'train'
    counts[it.split] = counts[it.split] + 1
  end
  if #items == 0 then error('no readable pictures with captions', 0) end
  local images = nn.stack(pictures, 1)
  return { items = items, images = images, stats = { tuxpaint = #tux, openclipart = #clip,
    openclipart_dropped = dropped, duplicate_pictures = dup_pictures, unreadable = #all - #items - dup_pictures,
    items = #items, splits = counts, seconds = nn.clock() - t0 } }
end

--- load(o) -> the dataset, built once into o.cache (caption-S.safetensors
--- + caption-S.json), or read from there; o.items (a user's list) is built
--- each time
function M.load(o)
  local files = require 'nnlua.files'
  local cjson = require 'cjson'
  local key = ('caption-v2-%d'):format(o.size) -- v2: near-duplicates by one word
  if o.items then return M.build(o) end -- the user's own list: not cached
  local ipath, jpath = o.cache .. '/' .. key .. '.safetensors', o.cache .. '/' .. key .. '.json'
  local meta = read_all(jpath)
  if meta and read_all(ipath) then
    local d = cjson.decode(meta)
    d.images = nn.load(ipath).images
    return d
  end
  M.ensure_packages()
  local d = M.build(o)
  assert(os.execute("mkdir -p '" .. o.cache .. "'"))
  assert(nn.save(ipath, { images = d.images }))
  assert(files.write_atomic(jpath, cjson.encode({ items = d.items, stats = d.stats })))
  return d
end

return M
