--- nnlua.multimodal: bringing modalities together -- fusion layers, cross-
--- modal attention, FiLM, a vision Transformer, contrastive (CLIP) training
--- and retrieval metrics, and multitask heads. Modules over the engine's
--- fused C ops (Linear, attention, layer norm, conv); autograd differentiates
--- every composition.
---
--- Fusion layers take a list of modality tensors (B, d_i) with their own
--- widths, and an optional mask (B, M) whose zero entries mark a missing
--- modality for that sample: missing inputs are ignored (zeroed for concat,
--- left out of sums and gates).
local nn = require 'nnlua'
local Module = require('nnlua.module').Module
local ModuleList = require('nnlua.module').ModuleList
local ModuleDict = require('nnlua.module').ModuleDict

local M = {}

-- The fusion layers are built-in layers (C userdata, bindings/lfusionlayers.c):
--   ConcatFusion({d_1, ..., d_M}, out): concatenation, then a projection
--   SumFusion({d_i}, out[, {shared = false}]): the sum of per-modality
--     projections (one shared projection when all widths agree and shared)
--   GatedFusion({d_i}, out): the gated multimodal unit (Arevalo et al. 2017)
--   BilinearFusion(d_1, d_2, out[, {factor = 5}]): MFB pooling (Yu et al. 2017)
--   FiLM(cond_dim, channels[, {channel_dim = 2}]): out = (1 + gamma) x + beta
--   CrossModalAttention(d_query, d_context, heads[, {dropout = 0}]):
--     LayerNorm(q + attn(q, context, context)), context_mask marking padding
for _, name in ipairs({ 'ConcatFusion', 'SumFusion', 'GatedFusion', 'BilinearFusion', 'FiLM',
                        'CrossModalAttention' }) do
  M[name] = nn[name]
end

-- ---- vision ------------------------------------------------------------------

--- PatchEmbedding(image_size, patch, channels, dim): a convolution with
--- stride = patch, a class token and learned positions: (B, C, H, W) ->
--- (B, 1 + (H/patch)(W/patch), dim)
local PatchEmbedding = Module:extend()
PatchEmbedding._name = 'PatchEmbedding'
M.PatchEmbedding = PatchEmbedding
function PatchEmbedding:_init(size, patch, channels, dim)
  assert(size % patch == 0, 'PatchEmbedding: the image size must be a multiple of the patch')
  self.patches = (size // patch) ^ 2 // 1
  self.proj = nn.Conv2d(channels, dim, patch, { stride = patch })
  self.cls_token = nn.init.normal_(nn.empty(1, 1, dim):requires_grad_(), 0, 0.02)
  self.pos_embedding = nn.init.normal_(nn.empty(1, self.patches + 1, dim):requires_grad_(), 0, 0.02)
end
function PatchEmbedding:forward(x)
  local b = x:size(1)
  local p = self.proj(x):flatten(3):transpose(2, 3) -- (B, N, dim)
  local cls = self.cls_token:expand(b, 1, self.cls_token:size(3))
  return nn.cat({ cls, p }, 2) + self.pos_embedding
end

--- ViT{image_size, patch_size, channels = 1, dim, depth, heads, mlp_dim,
--- num_classes, dropout = 0}: a pre-norm Transformer encoder over patch
--- tokens, classified from the class token. forward(x) -> logits;
--- forward(x, true) also returns the last layer's attention weights
--- (B, T, T), averaged over heads, for pictures of where it looks.
local ViT = Module:extend()
ViT._name = 'ViT'
M.ViT = ViT
local OPTIONS_VIT = nn.define_options('ViT', { 'image_size', 'patch_size', 'channels', 'num_classes', 'dim', 'depth', 'heads', 'mlp_dim', 'dropout' })
function ViT:_init(o)
  o = OPTIONS_VIT(o)
  local tr = require 'nnlua.transformer'
  self.embed = PatchEmbedding(o.image_size, o.patch_size, o.channels or 1, o.dim)
  self.blocks = ModuleList()
  for _ = 1, o.depth do
    self.blocks:append(tr.TransformerEncoderLayer(o.dim, o.heads, { dim_feedforward = o.mlp_dim,
      dropout = o.dropout or 0, activation = 'gelu', norm_first = true }))
  end
  self.norm = nn.LayerNorm(o.dim)
  self.head = nn.Linear(o.dim, o.num_classes)
end
function ViT:forward(x, want_attention)
  local h = self.embed(x)
  local n = #self.blocks
  for i, blk in self.blocks:ipairs() do
    if i == n and want_attention then
      local _, w = blk.self_attn(blk.norm1(h), nil, nil, { need_weights = true })
      want_attention = w
    end
    h = blk(h)
  end
  local logits = self.head(self.norm(h):select(2, 1))
  if want_attention then return logits, want_attention end
  return logits
end

-- ---- contrastive learning ---------------------------------------------------------

--- ContrastiveLoss([{temperature = 0.07, learnable = true}]): the symmetric
--- InfoNCE of CLIP over in-batch negatives, with a learnable temperature
--- (kept as log(1/T), capped at 100). forward(a, b) for paired rows
--- (B, d) -> loss, logits
local ContrastiveLoss = Module:extend()
ContrastiveLoss._name = 'ContrastiveLoss'
M.ContrastiveLoss = ContrastiveLoss
local OPTIONS_CONTRASTIVELOSS = nn.define_options('ContrastiveLoss', { 'temperature', 'learnable' })
function ContrastiveLoss:_init(o)
  o = OPTIONS_CONTRASTIVELOSS(o)
  local t = (o and o.temperature) or 0.07
  local s = nn.tensor({ math.log(1 / t) })
  if not (o and o.learnable == false) then s:requires_grad_() end
  self.logit_scale = s
end
function ContrastiveLoss:forward(a, b)
  if a.ndim ~= 2 or b.ndim ~= 2 or a:size(1) ~= b:size(1) or a:size(2) ~= b:size(2) then
    error(('ContrastiveLoss: embeddings %s and %s must be (B, d) pairs'):format(
      table.concat(a.shape, 'x'), table.concat(b.shape, 'x')), 2)
  end
  local an = a / (a:norm(2, 2, true) + 1e-12)
  local bn = b / (b:norm(2, 2, true) + 1e-12)
  local logits = an:matmul(bn:t()) * self.logit_scale:exp():clamp(0, 100)
  local target = nn.arange(1, a:size(1) + 1)
  local loss = (nn.cross_entropy(logits, target) + nn.cross_entropy(logits:t(), target)) / 2
  return loss, logits
end

--- recall_at_k(similarity (N, M), ks[, row_labels, col_labels]) ->
--- {[k] = recall}. Without labels row i's match is column i (the paired
--- item); with labels (N) and (M) a hit is any of the top k columns whose
--- label equals the row's (retrieval by class).
function M.recall_at_k(sim, ks, row_labels, col_labels)
  ks = ks or { 1, 5, 10 }
  local n = sim:size(1)
  local out = {}
  if row_labels then
    local kmax = 0
    for _, k in ipairs(ks) do kmax = math.max(kmax, k) end
    local _, top = sim:topk(math.min(kmax, sim:size(2)), 2) -- (N, kmax) best first
    local hit = col_labels:index_select(1, top:reshape(-1)):view(n, -1):eq(row_labels:view(n, 1))
    for _, k in ipairs(ks) do
      out[k] = hit:narrow(2, 1, math.min(k, hit:size(2))):max(2):mean():item()
    end
    return out
  end
  local target = sim:gather(2, nn.arange(1, n + 1):view(n, 1))
  local rank = sim:gt(target):sum(2) + 1 -- 1 + items scored strictly higher
  for _, k in ipairs(ks) do out[k] = rank:le(k):float():mean():item() end
  return out
end

-- ---- multitask ------------------------------------------------------------------

--- MultiTask(trunk, {name = head, ...}[, {weights = {name = w}}]):
--- forward(x) -> {name = output}; loss(outputs, {name = loss_fn(out)})
--- -> the weighted sum and the per-task losses
local MultiTask = Module:extend()
MultiTask._name = 'MultiTask'
M.MultiTask = MultiTask
local OPTIONS_MULTITASK = nn.define_options('MultiTask', { 'weights' })
function MultiTask:_init(trunk, heads, o)
  o = OPTIONS_MULTITASK(o)
  self.trunk = trunk
  self.heads = ModuleDict(heads)
  self.weights = (o and o.weights) or {}
end
function MultiTask:forward(x)
  local h = self.trunk(x)
  local out = {}
  for name, head in self.heads:named_children() do out[name] = head(h) end
  return out
end
function MultiTask:loss(losses)
  local total, parts = nil, {}
  for name, l in pairs(losses) do
    local w = self.weights[name] or 1
    parts[name] = l:item()
    total = total and total + l * w or l * w
  end
  return total, parts
end

return M
