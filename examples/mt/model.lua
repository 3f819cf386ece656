--- A pre-norm Transformer encoder-decoder over one shared vocabulary: one
--- embedding table for source, target and output (tied, scaled by
--- sqrt(d_model)), sinusoidal positions, nn.Transformer with norm_first.
--- Token ids: PAD 1, BOS 2, EOS 3, then the BPE tokens shifted by 3.
--- bench/mt_twin.py builds the same model in PyTorch (nn.Transformer with
--- norm_first=True, the same parameter names).
local nn = require 'nnlua'

local Seq2Seq = nn.Module:extend()
Seq2Seq._name = 'Seq2Seq'
Seq2Seq.PAD, Seq2Seq.BOS, Seq2Seq.EOS = 1, 2, 3

--- Seq2Seq{vocab, d_model, heads, layers, ff, dropout, max_len}
function Seq2Seq:_init(o)
  self.config = o
  self.embed = nn.Embedding(o.vocab, o.d_model, { padding_idx = Seq2Seq.PAD })
  nn.init.normal_(self.embed.weight, 0, o.d_model ^ -0.5)
  nn.no_grad(function() self.embed.weight[Seq2Seq.PAD]:zero_() end)
  self.pos = nn.SinusoidalPositionalEncoding(o.d_model, o.max_len + 2)
  self.drop = nn.Dropout(o.dropout)
  self.transformer = nn.Transformer({ d_model = o.d_model, nhead = o.heads,
    num_encoder_layers = o.layers, num_decoder_layers = o.layers, dim_feedforward = o.ff,
    dropout = o.dropout, norm_first = true })
  self.scale = math.sqrt(o.d_model)
end

function Seq2Seq:embed_tokens(ids, offset)
  return self.drop(self.pos(self.embed(ids) * self.scale, offset))
end

--- encode(src (B, S)) -> memory (B, S, d), the padding mask (B, S)
function Seq2Seq:encode(src)
  local pad = src:eq(Seq2Seq.PAD)
  return self.transformer.encoder(self:embed_tokens(src), { key_padding_mask = pad }), pad
end

-- logits over the vocabulary from decoder states (tied output embedding)
function Seq2Seq:logits(h) return h:matmul(self.embed.weight:t()) end

--- forward(src (B, S), tgt_in (B, T)) -> logits (B, T, V)
function Seq2Seq:forward(src, tgt)
  local mem, pad = self:encode(src)
  local h = self.transformer.decoder(self:embed_tokens(tgt), mem, { tgt_is_causal = true,
    tgt_key_padding_mask = tgt:eq(Seq2Seq.PAD), memory_key_padding_mask = pad })
  return self:logits(h)
end

-- ---- incremental decoding ------------------------------------------------------

local State = nn.class()

-- mem, pad: one row per item (pad nil: no padding); beams: rows per item in the decoder
function State:_init(model, mem, pad, beams)
  self.model, self.mem, self.pad, self.offset, self.beams = model, mem, pad, 0, beams
  self.caches, self.memory = {}, {}
  for i = 1, model.config.layers do
    self.caches[i] = nn.KVCache()
    self.memory[i] = {} -- filled with memory's keys and values by the first step
  end
end

--- reorder(idx, same_items): keep rows idx (beam search). The memory's
--- keys and values are held once per item: they move only when items left
--- the batch.
function State:reorder(idx, same_items)
  for _, c in ipairs(self.caches) do c:reorder(idx) end
  self.mem = nil -- projected once; the caches hold what the decoder needs
  if same_items then return end
  local k, rows, items = self.beams, idx:totable(), {}
  for i = 1, #rows // k do items[i] = (rows[(i - 1) * k + 1] - 1) // k + 1 end
  items = nn.tensor(items, 'i64')
  for _, m in ipairs(self.memory) do -- in place: only the items that move are copied
    if m.k then m.k, m.v = m.k:keep_rows_(items), m.v:keep_rows_(items) end
  end
  if self.pad then self.pad = self.pad:keep_rows_(items) end
end

--- step(tokens (N, 1), state) -> log-probabilities of the next token (N, V)
function State.step(tokens, st)
  local m = st.model
  local h = m.transformer.decoder(m:embed_tokens(tokens, st.offset), st.mem, {
    caches = st.caches, memory_caches = st.memory, memory_key_padding_mask = st.pad, beams = st.beams })
  st.offset = st.offset + 1
  return m:logits(h:select(2, 1)):log_softmax(2)
end

--- translate(src (B, S), {beam, max_len = list per item, length_penalty})
--- -> list of B token-id lists, scores
function Seq2Seq:translate(src, o)
  return nn.no_grad(function()
    local mem, pad = self:encode(src)
    return nn.generate.batch_beam_search(State.step, State(self, mem, pad, o.beam), src:size(1), {
      beam = o.beam, bos = Seq2Seq.BOS, eos = Seq2Seq.EOS, max_len = o.max_len,
      length_penalty = o.length_penalty })
  end)
end

return Seq2Seq
