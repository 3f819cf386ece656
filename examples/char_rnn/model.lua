--- A character-level LSTM language model in the spirit of Karpathy's
--- char-rnn: characters embedded, a multi-layer LSTM (dropout between
--- layers), a linear read-out to the vocabulary. forward(idx (B, T)[,
--- state]) returns logits (B, T, V) and the LSTM's final {h, c}, to carry
--- into the next chunk (truncated backpropagation through time) or the
--- next sampled character.
local nn = require 'nnlua'

local CharRNN = nn.Module:extend()
CharRNN._name = 'CharRNN'

--- CharRNN{vocab = V, embed = 128, hidden = 512, layers = 2, dropout = 0}
function CharRNN:_init(o)
  self.embed = nn.Embedding(o.vocab, o.embed or 128)
  self.lstm = nn.LSTM(o.embed or 128, o.hidden or 512,
    { num_layers = o.layers or 2, dropout = o.dropout or 0, batch_first = true })
  self.head = nn.Linear(o.hidden or 512, o.vocab)
end

function CharRNN:forward(idx, state)
  local out, final = self.lstm(self.embed(idx), state)
  return self.head(out), final
end

return CharRNN
