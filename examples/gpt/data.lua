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

local slurp = nn.data.read_text

--- the default corpus: fortunes with their % separators removed
function M.fortunes()
  local parts = {}
  for _, name in ipairs(FORTUNES) do
    local s = slurp(M.fortunes_dir .. '/' .. name)
    if s then parts[#parts + 1] = (s:gsub('\n%%\n', '\n\n')) end
  end
  if #parts == 0 then
    nn.cli.fail('no corpus: install the fortunes package or pass --data FILE')
  end
  return table.concat(parts)
end

--- text -> {data = (N) i64 ids, vocab = {chars}, encode = fn, decode = fn}
function M.encode_chars(text)
  local tok = nn.tokenizer.Char.fit(text)
  local vocab = {}
  for i, b in ipairs(tok.bytes) do vocab[i] = string.char(b) end
  return { data = tok:encode(text), vocab = vocab,
           encode = function(s) return tok:encode(s) end,
           decode = function(t) return tok:decode(t) end }
end

--- load(path or nil) -> the text
function M.load(path)
  if not path or path == '' then return M.fortunes(), 'fortunes (Debian package)' end
  local s, err = slurp(path)
  if not s then nn.cli.fail('--data: %s', err) end
  return s, path
end

return M
