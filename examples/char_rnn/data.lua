--- Character data for the char-rnn example and its PyTorch twin
--- (bench/char_rnn_twin_train.py does the same): ids 1..V over the sorted
--- characters of the text; the first 90% trains, the rest validates. Each
--- split is cut into B contiguous streams read left to right, T characters
--- at a time, as Karpathy's char-rnn does, so the LSTM state carries from
--- one batch to the next (truncated backpropagation through time).
local nn = require 'nnlua'

local M = {}

--- text -> {train = (N) i64, val = (M) i64, vocab = {chars}, encode, decode}
function M.split(text)
  local tok = nn.tokenizer.Char.fit(text)
  local vocab = {}
  for i, b in ipairs(tok.bytes) do vocab[i] = string.char(b) end
  local data = tok:encode(text)
  local n = data:size(1)
  local n_train = math.floor(0.9 * n)
  return { train = data:narrow(1, 1, n_train), val = data:narrow(1, n_train + 1, n - n_train),
           vocab = vocab, encode = function(s) return tok:encode(s) end,
           decode = function(t) return tok:decode(t) end }
end

--- the batches of one split: stream(ids, B, T) -> an object whose :next()
--- gives x, y (B, T) i64 and whether the streams wrapped around (the state
--- should then start afresh); :chunks() is the number of batches a pass
--- over the split takes
function M.streams(ids, batch, seq)
  local len = (ids:size(1) - 1) // batch -- each stream needs one more id for its targets
  if len < seq + 1 then return nil end
  local x = ids:narrow(1, 1, batch * len):view(batch, len)
  local y = ids:narrow(1, 2, batch * len):view(batch, len)
  local s = { pos = 1, chunks = function() return (len - 1) // seq end }
  function s:next()
    local wrapped = false
    if self.pos + seq - 1 > len then self.pos, wrapped = 1, true end
    local bx, by = x:narrow(2, self.pos, seq), y:narrow(2, self.pos, seq)
    self.pos = self.pos + seq
    return bx, by, wrapped
  end
  return s
end

return M
