--- An image captioner: a small CNN turns a (3, S, S) picture into an
--- (S/8)^2 grid of d_model features, a Transformer encoder mixes them, and
--- the pre-norm Transformer decoder of examples/mt (tied embeddings,
--- sinusoidal positions, cross-attention to the grid) writes the caption.
--- Decoding is examples/mt's batched beam search with KV caches (the
--- grid's keys and values projected once per image). bench/caption_twin.py
--- builds the same model in PyTorch with the same parameter names.
local nn = require 'nnlua'
local Seq2Seq = require 'model' -- examples/mt/model.lua

local Captioner = Seq2Seq:extend()
Captioner._name = 'Captioner'

local function block(cin, cout, stride)
  return { nn.Conv2d(cin, cout, 3, { stride = stride, padding = 1, bias = false }), nn.BatchNorm2d(cout), nn.ReLU() }
end

--- Captioner{vocab, d_model, heads, layers, ff, dropout, max_len, size, width}
function Captioner:_init(o)
  Seq2Seq._init(self, o)
  local w = o.width
  local layers = {}
  for _, b in ipairs({ block(3, w, 2), block(w, 2 * w, 1), { nn.MaxPool2d(2) }, block(2 * w, 4 * w, 1),
    { nn.MaxPool2d(2) }, { nn.Conv2d(4 * w, o.d_model, 1) } }) do
    for _, l in ipairs(b) do layers[#layers + 1] = l end
  end
  self.cnn = nn.Sequential(table.unpack(layers))
  self.grid = (o.size // 8) ^ 2
  self.grid_pos = nn.randn(1, self.grid, o.d_model):mul_(0.02):requires_grad_()
end

--- encode(images (B, 3, S, S)) -> memory (B, grid, d), no padding mask
function Captioner:encode(images)
  local f = self.cnn(images)
  local b, d = f:size(1), f:size(2)
  local tokens = f:view(b, d, self.grid):transpose(2, 3) + self.grid_pos
  return self.transformer.encoder(self.drop(tokens)), nil
end

--- features(images) -> (B, d): the encoder's grid averaged (for retrieval)
function Captioner:features(images)
  return (self:encode(images)):mean(2)
end

return Captioner
