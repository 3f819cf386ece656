--- nnlua.tokenizer: character-level and byte-level BPE tokenizers. Token
--- ids count from 1 (they index Embedding rows); the work is done in C.
---
---   local tok = nn.tokenizer.BPE.train(text, 1024)   -- 256 bytes + 768 merges
---   local ids = tok:encode('To be or not')            -- i64 tensor
---   print(tok:decode(ids)); tok:save('vocab.bpe')
---   local same = nn.tokenizer.BPE.load('vocab.bpe')
---   local chars = nn.tokenizer.Char.fit(text)          -- one id per distinct byte
local nn = require 'nnlua'
local class = require 'nnlua.class'
local files = require 'nnlua.files'

local M = {}

-- ---- characters (bytes) ----------------------------------------------------

local Char = class()
M.Char = Char

--- Char.fit(text): the vocabulary is the sorted set of bytes in text
function Char.fit(text)
  local counts = nn.byte_counts(text):totable()
  local bytes = {}
  for b = 0, 255 do if counts[b + 1] > 0 then bytes[#bytes + 1] = b end end
  return Char(bytes)
end

function Char:_init(bytes)
  self.bytes = bytes
  self.lut = nn.ones(256, 'i64') -- byte -> id; unknown bytes map to id 1
  self.table = nn.tensor(bytes, 'i64')
  for i, b in ipairs(bytes) do self.lut[b + 1] = i end
end

function Char:vocab_size() return #self.bytes end

--- encode(text) -> i64 ids, one table lookup per byte in C
function Char:encode(text) return nn.map_bytes(text, self.lut) end

function Char:decode(ids)
  local b = self.table:index_select(1, ids:view(-1)):totable()
  local parts = {}
  for i = 1, #b, 4096 do parts[#parts + 1] = string.char(table.unpack(b, i, math.min(i + 4095, #b))) end
  return table.concat(parts)
end

function Char:save(path)
  return files.write_atomic(path, 'nnlua-char 1\n' .. table.concat(self.bytes, ' ') .. '\n')
end

--- Char.load(path): a vocabulary saved by Char:save, or nil and a message
--- (a file that is not one, an empty vocabulary, bytes out of 0..255 or
--- repeated)
function Char.load(path)
  local f, err = files.open(path)
  if not f then return nil, err end
  local head, body = f:read('l'), f:read('l')
  f:close()
  if head ~= 'nnlua-char 1' or not body then return nil, path .. ': not an nnlua character vocabulary' end
  local bytes, seen = {}, {}
  for word in body:gmatch('%S+') do
    local b = math.tointeger(tonumber(word))
    if not b or b < 0 or b > 255 or seen[b] then
      return nil, ('%s: bad byte %q in the vocabulary'):format(path, word)
    end
    seen[b], bytes[#bytes + 1] = true, b
  end
  if #bytes == 0 then return nil, path .. ': empty vocabulary' end
  return Char(bytes)
end

-- ---- byte-level BPE -----------------------------------------------------------

local BPE = class()
M.BPE = BPE

--- BPE.train(text, vocab_size): learns up to vocab_size - 256 merges (fewer
--- when every chunk of the corpus is already a single token)
function BPE.train(text, vocab_size)
  local obj = BPE()
  obj.model = nn.bpe_train(text, vocab_size)
  return obj
end

function BPE:vocab_size() return self.model:vocab_size() end
function BPE:encode(text) return self.model:encode(text) end
function BPE:decode(ids) return self.model:decode(ids) end

--- save(path): "nnlua-bpe 1", then one merge per line ("a b", 1-based ids)
function BPE:save(path)
  local lines = { 'nnlua-bpe 1' }
  for _, m in ipairs(self.model:merges()) do lines[#lines + 1] = m[1] .. ' ' .. m[2] end
  return files.write_atomic(path, table.concat(lines, '\n') .. '\n')
end

function BPE.load(path)
  local f, err = files.open(path)
  if not f then return nil, err end
  if f:read('l') ~= 'nnlua-bpe 1' then
    f:close()
    return nil, path .. ': not an nnlua BPE vocabulary'
  end
  local merges = {}
  for line in f:lines() do
    local a, b = line:match('^(%d+) (%d+)$')
    if not a then
      f:close()
      return nil, ('%s: bad merge line %q'):format(path, line)
    end
    merges[#merges + 1] = { tonumber(a), tonumber(b) }
  end
  f:close()
  local ok, model = pcall(nn.bpe_from_merges, merges)
  if not ok then return nil, path .. ': ' .. tostring(model) end
  local obj = BPE()
  obj.model = model
  return obj
end

return M
