--- Text for the GPT example: a file given with --data, or a default corpus a
--- fresh Debian machine can install (the `fortunes` package), encoded
--- character by character (ids 1..V, vocabulary sorted).
local nn = require 'nnlua'

local M = {}

-- the gentler fortune files (the package's offensive ones live apart)
local FORTUNES = { 'art', 'computers', 'cookie', 'definitions', 'education', 'food',
  'fortunes', 'goedel', 'humorists', 'kids', 'law', 'linux', 'literature', 'love',
  'magic', 'medicine', 'miscellaneous', 'news', 'people', 'pets', 'platitudes',
  'politics', 'riddles', 'science', 'songs-poems', 'sports', 'startrek', 'wisdom',
  'work', 'zippy' }
M.fortunes_dir = '/usr/share/games/fortunes'

local function slurp(path)
  local f, err = io.open(path, 'rb')
  if not f then return nil, err end
  local s = f:read('a')
  f:close()
  return s
end

--- the default corpus: fortunes with their % separators removed
function M.fortunes()
  local parts = {}
  for _, name in ipairs(FORTUNES) do
    local s = slurp(M.fortunes_dir .. '/' .. name)
    if s then parts[#parts + 1] = (s:gsub('\n%%\n', '\n\n')) end
  end
  if #parts == 0 then
    error('no corpus: install the fortunes package or pass --data FILE', 0)
  end
  return table.concat(parts)
end

--- text -> {data = (N) i64 ids, vocab = {chars}, encode = fn, decode = fn}
function M.encode_chars(text)
  local seen, vocab = {}, {}
  for c in text:gmatch('.') do
    if not seen[c] then seen[c] = true; vocab[#vocab + 1] = c end
  end
  table.sort(vocab)
  local lut = nn.ones(256, 'i64') -- byte -> id (unknown bytes: id 1)
  for i, c in ipairs(vocab) do lut[c:byte() + 1] = i end
  local function encode(s) -- in C: bytes widened, then looked up
    return lut:index_select(1, nn.from_bytes(s, 0, #s, 'i64') + 1)
  end
  local function decode(t)
    local out = {}
    for i, v in ipairs(t:totable()) do out[i] = vocab[v] end
    return table.concat(out)
  end
  return { data = encode(text), vocab = vocab, encode = encode, decode = decode }
end

--- load(path or nil) -> the text
function M.load(path)
  if not path or path == '' then return M.fortunes(), 'fortunes (Debian package)' end
  local s, err = slurp(path)
  if not s then error(err, 0) end
  return s, path
end

return M
