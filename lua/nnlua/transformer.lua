--- nnlua.transformer: MultiheadAttention, Transformer encoder and decoder
--- layers and stacks, the full encoder-decoder Transformer, and positional
--- encodings (sinusoidal, learned, rotary). Every tensor op runs in C: the
--- projections are fused Linear ops and attention is the fused kernel of
--- engine/attention.c; these modules only wire them together.
---
--- Parameter names follow PyTorch 1.13 so its state dicts load:
---   MultiheadAttention (built in, in C): in_proj_weight (3E, E), in_proj_bias
---     (3E), out_proj.weight, out_proj.bias; with kdim/vdim different from E:
---     q_proj_weight, k_proj_weight, v_proj_weight instead of in_proj_weight.
---   TransformerEncoderLayer: self_attn.*, linear1, linear2, norm1, norm2.
---   TransformerDecoderLayer: self_attn.*, multihead_attn.*, linear1,
---     linear2, norm1, norm2, norm3.
--- Inputs are batch-first (B, T, E).
local nn = require 'nnlua'
local Module = require('nnlua.module').Module
local ModuleList = require('nnlua.module').ModuleList

local M = {}

-- ---- masks -------------------------------------------------------------

--- An additive (B, 1, 1, S) mask from a (B, S) key padding mask whose
--- nonzero entries mark padding (PyTorch's key_padding_mask).
function M.padding_mask(kpm)
  local b, s = kpm:size(1), kpm:size(2)
  return nn.zeros(b, 1, 1, s):masked_fill(kpm:view(b, 1, 1, s):ne(0), -math.huge)
end

--- An additive (T, S) mask that blocks the future (-inf above the diagonal).
function M.causal_mask(t, s)
  s = s or t
  return nn.full({ t, s }, -math.huge):triu(s - t + 1)
end

-- ---- a growing key/value cache for incremental decoding -----------------

--- KVCache(): holds keys and values (B, H, n, D) of the tokens seen so far,
--- in buffers that double when full, so each new token costs O(n).
local KVCache = nn.class()
M.KVCache = KVCache
function KVCache:_init() self.n = 0 end

local function grow(buf, b, h, cap, d)
  local new = nn.empty(b, h, cap, d) -- only the first n positions are ever read
  if buf then new:narrow(3, 1, buf:size(3)):copy_(buf) end
  return new
end

--- Keeps batch rows idx (i64, 1-based) of the cache, in that order (beam
--- search forking beams and dropping finished items). Rows are moved in
--- place (x:keep_rows_): only the rows that change are copied, and only
--- the keys and values held so far; more rows than before take a copy.
function KVCache:reorder(idx)
  if not self.k then return end
  local m = idx:numel()
  for _, name in ipairs({ 'k', 'v' }) do
    local buf = self[name]
    if m > buf:size(1) then
      self[name] = buf:index_select(1, idx)
    else
      buf:narrow(3, 1, self.n):keep_rows_(idx)
      self[name] = buf:narrow(1, 1, m)
    end
  end
end

--- Appends k, v (B, H, t, D) and returns views of all keys and values.
function KVCache:append(k, v)
  local t = k:size(3)
  local need = self.n + t
  if not self.k or need > self.k:size(3) then
    local cap = math.max(need, 2 * (self.k and self.k:size(3) or 16))
    self.k = grow(self.k, k:size(1), k:size(2), cap, k:size(4))
    self.v = grow(self.v, v:size(1), v:size(2), cap, v:size(4))
  end
  self.k:narrow(3, self.n + 1, t):copy_(k)
  self.v:narrow(3, self.n + 1, t):copy_(v)
  self.n = need
  return self.k:narrow(3, 1, self.n), self.v:narrow(3, 1, self.n)
end

-- ---- MultiheadAttention -----------------------------------------------------

--- MultiheadAttention(embed_dim, num_heads[, {bias = true, dropout = 0,
--- kdim = E, vdim = E, batch_first = true}]) is a built-in layer (C
--- userdata, bindings/lattnlayers.c); its forward(query, key, value[,
--- {key_padding_mask =, attn_mask =, is_causal =, need_weights =, cache =}]).
local MHA = nn.MultiheadAttention
M.MultiheadAttention = MHA

-- ---- encoder and decoder layers -------------------------------------------------

local function activation(name)
  if name == 'gelu' then return function(x) return x:gelu() end end
  if name == 'relu' or name == nil then return function(x) return x:relu() end end
  error("activation must be 'relu' or 'gelu'", 4)
end

-- the sublayers of an encoder layer, and with `cross` those of a decoder layer
-- (cross-attention, a third norm and dropout), created in PyTorch's order
local LAYER_KEYS = { 'dim_feedforward', 'dropout', 'activation', 'norm_first', 'layer_norm_eps', 'bias' }
local OPTIONS_ENCODER_LAYER = nn.define_options('TransformerEncoderLayer', LAYER_KEYS)
local OPTIONS_DECODER_LAYER = nn.define_options('TransformerDecoderLayer', LAYER_KEYS)
local function init_layer(self, d, nhead, o, cross)
  o = (cross and OPTIONS_DECODER_LAYER or OPTIONS_ENCODER_LAYER)(o)
  local ff, p = o.dim_feedforward or 2048, o.dropout or 0.1
  local eps, bias = o.layer_norm_eps or 1e-5, o.bias ~= false
  self.norm_first, self.act = o.norm_first or false, activation(o.activation)
  self.self_attn = MHA(d, nhead, { dropout = p, bias = bias })
  if cross then self.multihead_attn = MHA(d, nhead, { dropout = p, bias = bias }) end
  self.linear1 = nn.Linear(d, ff, { bias = bias })
  self.dropout = nn.Dropout(p)
  self.linear2 = nn.Linear(ff, d, { bias = bias })
  self.norm1 = nn.LayerNorm(d, { eps = eps })
  self.norm2 = nn.LayerNorm(d, { eps = eps })
  if cross then self.norm3 = nn.LayerNorm(d, { eps = eps }) end
  self.dropout1, self.dropout2 = nn.Dropout(p), nn.Dropout(p)
  if cross then self.dropout3 = nn.Dropout(p) end
end

local EncoderLayer = Module:extend()
EncoderLayer._name = 'TransformerEncoderLayer'
M.TransformerEncoderLayer = EncoderLayer

--- TransformerEncoderLayer(d_model, nhead[, {dim_feedforward = 2048,
--- dropout = 0.1, activation = 'relu', norm_first = false,
--- layer_norm_eps = 1e-5, bias = true}])
function EncoderLayer:_init(d, nhead, o) init_layer(self, d, nhead, o, false) end

function EncoderLayer:ff(x) return self.linear2(self.dropout(self.act(self.linear1(x)))) end

local OPTIONS_TRANSFORMERENCODERLAYER_FORWARD = nn.define_options('TransformerEncoderLayer:forward', { 'mask', 'key_padding_mask', 'is_causal' })
--- forward(x[, {mask =, key_padding_mask =, is_causal =}])
function EncoderLayer:forward(x, o)
  o = OPTIONS_TRANSFORMERENCODERLAYER_FORWARD(o)
  local function sa(h)
    return self.dropout1(self.self_attn(h, h, h, { attn_mask = o.mask,
      key_padding_mask = o.key_padding_mask, is_causal = o.is_causal }))
  end
  if self.norm_first then
    x = x + sa(self.norm1(x))
    return x + self.dropout2(self:ff(self.norm2(x)))
  end
  x = self.norm1(x + sa(x))
  return self.norm2(x + self.dropout2(self:ff(x)))
end

local DecoderLayer = Module:extend()
DecoderLayer._name = 'TransformerDecoderLayer'
M.TransformerDecoderLayer = DecoderLayer

--- TransformerDecoderLayer(d_model, nhead[, options as the encoder layer])
function DecoderLayer:_init(d, nhead, o) init_layer(self, d, nhead, o, true) end

local OPTIONS_TRANSFORMERDECODERLAYER_FORWARD = nn.define_options('TransformerDecoderLayer:forward', { 'tgt_mask', 'tgt_key_padding_mask', 'memory_key_padding_mask', 'tgt_is_causal', 'cache', 'memory_cache', 'beams' })

-- beams: tgt (B * beams, T, E) holds `beams` consecutive rows per memory row
local function check_beams(beams, tgt, mem)
  if beams == nil then return 1 end
  if math.type(beams) ~= 'integer' or beams < 1 then
    error('TransformerDecoderLayer:forward: beams must be an integer >= 1', 3)
  end
  if mem and tgt:size(1) ~= mem:size(1) * beams then
    error(('TransformerDecoderLayer:forward: tgt has %d rows, memory %d and beams %d (tgt rows must be memory rows x beams)')
      :format(tgt:size(1), mem:size(1), beams), 3)
  end
  return beams
end

--- forward(tgt, memory[, {tgt_mask =, tgt_is_causal =, tgt_key_padding_mask =,
--- memory_key_padding_mask =, cache =, memory_cache =, beams =}]); cache: a
--- KVCache for the self-attention when decoding one token at a time;
--- memory_cache: a table where the cross-attention keeps memory's projected
--- keys and values (filled by the first call, reused after: the memory is
--- projected once); beams = k: tgt has k consecutive rows per memory row
--- (beam search), so the memory and its keys and values are not repeated:
--- the k rows' queries attend to their memory row together
function DecoderLayer:forward(x, mem, o)
  o = OPTIONS_TRANSFORMERDECODERLAYER_FORWARD(o)
  local beams = check_beams(o.beams, x, mem or (o.memory_cache and o.memory_cache.k))
  local function sa(h)
    return self.dropout1(self.self_attn(h, h, h, { attn_mask = o.tgt_mask,
      is_causal = o.tgt_is_causal, key_padding_mask = o.tgt_key_padding_mask, cache = o.cache }))
  end
  local function ca(h)
    local b, t = h:size(1), h:size(2)
    local q = beams > 1 and h:reshape(b // beams, beams * t, h:size(3)) or h
    local out = self.multihead_attn(q, mem, mem,
      { key_padding_mask = o.memory_key_padding_mask, memory_cache = o.memory_cache })
    return self.dropout2(beams > 1 and out:reshape(b, t, out:size(3)) or out)
  end
  local function ff(h) return self.dropout3(EncoderLayer.ff(self, h)) end
  if self.norm_first then
    x = x + sa(self.norm1(x))
    x = x + ca(self.norm2(x))
    return x + ff(self.norm3(x))
  end
  x = self.norm1(x + sa(x))
  x = self.norm2(x + ca(x))
  return self.norm3(x + ff(x))
end

-- ---- stacks ---------------------------------------------------------------------

local Encoder = Module:extend()
Encoder._name = 'TransformerEncoder'
M.TransformerEncoder = Encoder

-- n layers from make_layer() (each with its own parameters), then norm
local function build_stack(self, make_layer, n, norm)
  self.layers = ModuleList()
  for _ = 1, n do self.layers:append(make_layer()) end
  if norm then self.norm = norm end
end

--- TransformerEncoder(make_layer, num_layers[, norm]): make_layer() builds
--- one layer (each gets its own parameters)
Encoder._init = build_stack

local OPTIONS_TRANSFORMERENCODER_FORWARD = nn.define_options('TransformerEncoder:forward', { 'mask', 'key_padding_mask', 'is_causal' })
function Encoder:forward(x, o)
  o = OPTIONS_TRANSFORMERENCODER_FORWARD(o)
  for _, layer in self.layers:ipairs() do x = layer(x, o) end
  return self.norm and self.norm(x) or x
end

local Decoder = Module:extend()
Decoder._name = 'TransformerDecoder'
M.TransformerDecoder = Decoder

--- TransformerDecoder(make_layer, num_layers[, norm])
Decoder._init = build_stack

local OPTIONS_TRANSFORMERDECODER_FORWARD = nn.define_options('TransformerDecoder:forward', { 'tgt_mask', 'tgt_key_padding_mask', 'memory_key_padding_mask', 'tgt_is_causal', 'caches', 'memory_caches', 'beams' })
--- forward(tgt, memory[, o]); o.caches: one KVCache per layer; o.memory_caches:
--- one memory_cache table per layer; o.beams as for the layer
function Decoder:forward(x, mem, o)
  o = OPTIONS_TRANSFORMERDECODER_FORWARD(o)
  for i, layer in self.layers:ipairs() do
    local lo = {}
    for k, v in pairs(o) do
      if k ~= 'caches' and k ~= 'memory_caches' then lo[k] = v end
    end
    lo.cache = o.caches and o.caches[i]
    lo.memory_cache = o.memory_caches and o.memory_caches[i]
    x = layer(x, mem, lo)
  end
  return self.norm and self.norm(x) or x
end

local Transformer = Module:extend()
Transformer._name = 'Transformer'
M.Transformer = Transformer

local OPTIONS_TRANSFORMER = nn.define_options('Transformer', { 'd_model', 'nhead', 'num_encoder_layers', 'num_decoder_layers', 'dim_feedforward', 'dropout', 'activation', 'layer_norm_eps', 'norm_first', 'bias' })
--- Transformer({d_model = 512, nhead = 8, num_encoder_layers = 6,
--- num_decoder_layers = 6, dim_feedforward = 2048, dropout = 0.1,
--- activation = 'relu', norm_first = false})
function Transformer:_init(o)
  o = OPTIONS_TRANSFORMER(o)
  local d, h = o.d_model or 512, o.nhead or 8
  local lo = {}
  for _, k in ipairs(LAYER_KEYS) do lo[k] = o[k] end
  self.encoder = Encoder(function() return EncoderLayer(d, h, lo) end,
    o.num_encoder_layers or 6, nn.LayerNorm(d, { eps = o.layer_norm_eps }))
  self.decoder = Decoder(function() return DecoderLayer(d, h, lo) end,
    o.num_decoder_layers or 6, nn.LayerNorm(d, { eps = o.layer_norm_eps }))
end

local OPTIONS_TRANSFORMER_FORWARD = nn.define_options('Transformer:forward', { 'src_key_padding_mask', 'tgt_key_padding_mask', 'memory_key_padding_mask' })
--- forward(src, tgt[, {src_key_padding_mask =, tgt_key_padding_mask =,
--- memory_key_padding_mask =}]): the decoder is causal
function Transformer:forward(src, tgt, o)
  o = OPTIONS_TRANSFORMER_FORWARD(o)
  local mem = self.encoder(src, { key_padding_mask = o.src_key_padding_mask })
  return self.decoder(tgt, mem, { tgt_is_causal = true, tgt_key_padding_mask = o.tgt_key_padding_mask,
    memory_key_padding_mask = o.memory_key_padding_mask or o.src_key_padding_mask })
end

-- ---- positional encodings ---------------------------------------------------------

local Sinusoidal = Module:extend()
Sinusoidal._name = 'SinusoidalPositionalEncoding'
M.SinusoidalPositionalEncoding = Sinusoidal

--- SinusoidalPositionalEncoding(d_model, max_len = 5000): adds
--- pe[t][2i] = sin(t / 10000^(2i/d)), pe[t][2i+1] = cos(...) to (B, T, d)
function Sinusoidal:_init(d, max_len)
  max_len = max_len or 5000
  local pos = nn.arange(max_len):float():unsqueeze(2)
  local div = (nn.arange(0, d, 2):float() * (-math.log(10000) / d)):exp()
  local pe = nn.zeros(max_len, d)
  local angles = pos * div
  pe[{ {}, { 1, d, 2 } }] = angles:sin()
  pe[{ {}, { 2, d, 2 } }] = angles:narrow(2, 1, d // 2):cos()
  self:register_buffer('pe', pe)
end

--- forward(x[, offset = 0]): positions offset + 1 .. offset + T
function Sinusoidal:forward(x, offset)
  return x + self.pe:narrow(1, (offset or 0) + 1, x:size(2))
end

local Learned = Module:extend()
Learned._name = 'LearnedPositionalEncoding'
M.LearnedPositionalEncoding = Learned

--- LearnedPositionalEncoding(d_model, max_len): adds a trained embedding of
--- each position (GPT's wpe) to (B, T, d)
function Learned:_init(d, max_len)
  self.max_len = assert(max_len, 'LearnedPositionalEncoding needs max_len')
  self.embedding = nn.Embedding(max_len, d)
end

--- forward(x[, offset = 0]): positions offset + 1 .. offset + T
function Learned:forward(x, offset)
  offset = offset or 0
  local t = x:size(2)
  if offset + t > self.max_len then
    error(('LearnedPositionalEncoding: position %d beyond max_len %d'):format(offset + t, self.max_len), 2)
  end
  return x + self.embedding(nn.arange(offset + 1, offset + t + 1))
end

--- rotary(x (B, H, T, D)[, offset = 0[, base = 10000]]): rotary position
--- embedding (RoPE) in the half-split layout (GPT-NeoX, LLaMA): dims i and
--- i + D/2 rotate by angle pos * base^(-2i/D).
function M.rotary(x, offset, base)
  offset, base = offset or 0, base or 10000
  local t, d = x:size(3), x:size(4)
  assert(d % 2 == 0, 'rotary needs an even head dimension')
  local half = d // 2
  local inv = (nn.arange(0, half):float() * (-2 * math.log(base) / d)):exp()
  local ang = nn.arange(offset, offset + t):float():unsqueeze(2) * inv -- (T, D/2)
  local cos, sin = ang:cos(), ang:sin()
  local x1, x2 = x:narrow(4, 1, half), x:narrow(4, half + 1, half)
  return nn.cat({ x1 * cos - x2 * sin, x1 * sin + x2 * cos }, 4)
end

return M
