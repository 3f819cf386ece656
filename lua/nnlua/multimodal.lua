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

-- checks a list of (B, d_i) inputs against the expected widths
local function check_inputs(name, xs, dims, mask)
  if type(xs) ~= 'table' or #xs ~= #dims then
    error(('%s: expected a list of %d modality tensors'):format(name, #dims), 3)
  end
  local b = xs[1]:size(1)
  for i, x in ipairs(xs) do
    if x.ndim ~= 2 or x:size(2) ~= dims[i] or x:size(1) ~= b then
      error(('%s: modality %d is %s, expected %dx%d'):format(name, i,
        table.concat(x.shape, 'x'), b, dims[i]), 3)
    end
  end
  if mask and (mask.ndim ~= 2 or mask:size(1) ~= b or mask:size(2) ~= #dims) then
    error(('%s: mask is %s, expected %dx%d'):format(name, table.concat(mask.shape, 'x'), b, #dims), 3)
  end
  return b
end

-- column i of the mask as a (B, 1) f32 factor
local function present(mask, i)
  return mask and mask:select(2, i):float():ne(0):float():unsqueeze(2) or nil
end

-- the inputs with a missing modality's rows zeroed
local function zero_missing(xs, mask)
  if not mask then return xs end
  local out = {}
  for i, x in ipairs(xs) do out[i] = x * present(mask, i) end
  return out
end

--- ConcatFusion({d_1, ..., d_M}, out): concatenation, then a projection
local ConcatFusion = Module:extend()
ConcatFusion._name = 'ConcatFusion'
M.ConcatFusion = ConcatFusion
function ConcatFusion:_init(dims, out)
  self.dims = dims
  local total = 0
  for _, d in ipairs(dims) do total = total + d end
  self.proj = nn.Linear(total, out)
end
function ConcatFusion:forward(xs, mask)
  check_inputs('ConcatFusion', xs, self.dims, mask)
  return self.proj(nn.cat(zero_missing(xs, mask), 2))
end

--- SumFusion({d_i}, out[, {shared = false}]): the sum of per-modality
--- projections (one shared projection when all widths agree and shared)
local SumFusion = Module:extend()
SumFusion._name = 'SumFusion'
M.SumFusion = SumFusion
local OPTIONS_SUMFUSION = nn.define_options('SumFusion', { 'shared' })
function SumFusion:_init(dims, out, o)
  o = OPTIONS_SUMFUSION(o)
  self.dims, self.shared = dims, o and o.shared or false
  if self.shared then
    for _, d in ipairs(dims) do
      if d ~= dims[1] then error('SumFusion: a shared projection needs equal widths', 2) end
    end
    self.proj = nn.Linear(dims[1], out)
  else
    self.projs = ModuleList()
    for _, d in ipairs(dims) do self.projs:append(nn.Linear(d, out)) end
  end
end
function SumFusion:forward(xs, mask)
  check_inputs('SumFusion', xs, self.dims, mask)
  local total
  for i, x in ipairs(xs) do
    local h = self.shared and self.proj(x) or self.projs[i](x)
    if mask then h = h * present(mask, i) end
    total = total and total + h or h
  end
  return total
end

--- GatedFusion({d_i}, out): the gated multimodal unit (Arevalo et al. 2017)
--- for any number of modalities: h_i = tanh(W_i x_i), gates z = softmax over
--- modalities of W_z [x_1; ...; x_M] per feature, output sum_i z_i h_i
local GatedFusion = Module:extend()
GatedFusion._name = 'GatedFusion'
M.GatedFusion = GatedFusion
function GatedFusion:_init(dims, out)
  self.dims, self.out = dims, out
  self.projs = ModuleList()
  local total = 0
  for _, d in ipairs(dims) do
    self.projs:append(nn.Linear(d, out))
    total = total + d
  end
  self.gate = nn.Linear(total, out * #dims)
end
function GatedFusion:forward(xs, mask)
  local b = check_inputs('GatedFusion', xs, self.dims, mask)
  local m = #self.dims
  xs = zero_missing(xs, mask)
  local hs = {}
  for i, x in ipairs(xs) do hs[i] = self.projs[i](x) end
  local logits = self.gate(nn.cat(xs, 2)):view(b, m, self.out)
  return nn.gated_fusion(nn.stack(hs, 2), logits, mask and mask:float())
end

--- BilinearFusion(d_1, d_2, out[, {factor = 5}]): low-rank bilinear pooling
--- (MFB, Yu et al. 2017): (U x_1) * (V x_2) in out*factor dims, sum-pooled
--- over each group of `factor`, then power- (signed sqrt) and L2-normalised
local BilinearFusion = Module:extend()
BilinearFusion._name = 'BilinearFusion'
M.BilinearFusion = BilinearFusion
local OPTIONS_BILINEARFUSION = nn.define_options('BilinearFusion', { 'factor' })
function BilinearFusion:_init(d1, d2, out, o)
  o = OPTIONS_BILINEARFUSION(o)
  self.dims, self.out, self.factor = { d1, d2 }, out, (o and o.factor) or 5
  self.u = nn.Linear(d1, out * self.factor)
  self.v = nn.Linear(d2, out * self.factor)
end
function BilinearFusion:forward(xs, mask)
  check_inputs('BilinearFusion', xs, self.dims, mask)
  xs = zero_missing(xs, mask) -- a missing modality counts as zeros
  return nn.mfb_pool(self.u(xs[1]), self.v(xs[2]), self.factor)
end

--- FiLM(cond_dim, channels[, {channel_dim = 2}]): one modality (B, cond_dim)
--- produces a per-channel scale and shift for another, whose channels lie
--- along channel_dim (2 for (B, C, H, W), -1 for (B, T, C)):
--- out = (1 + gamma) x + beta
local FiLM = Module:extend()
FiLM._name = 'FiLM'
M.FiLM = FiLM
local OPTIONS_FILM = nn.define_options('FiLM', { 'channel_dim' })
function FiLM:_init(cond_dim, channels, o)
  o = OPTIONS_FILM(o)
  self.channels, self.channel_dim = channels, (o and o.channel_dim) or 2
  self.film = nn.Linear(cond_dim, 2 * channels)
end
function FiLM:forward(x, cond)
  local b, c = x:size(1), self.channels
  local cd = self.channel_dim < 0 and x.ndim + self.channel_dim + 1 or self.channel_dim
  if cond.ndim ~= 2 or cond:size(1) ~= b or x:size(cd) ~= c then
    error(('FiLM: x %s and cond %s do not fit %d channels in dim %d'):format(
      table.concat(x.shape, 'x'), table.concat(cond.shape, 'x'), c, cd), 2)
  end
  local gb = self.film(cond)
  local shape = {}
  for d = 1, x.ndim do shape[d] = (d == 1 and b) or (d == cd and c) or 1 end
  local gamma = gb:narrow(2, 1, c):reshape(table.unpack(shape))
  local beta = gb:narrow(2, c + 1, c):reshape(table.unpack(shape))
  return x * (gamma + 1) + beta
end

--- CrossModalAttention(d_query, d_context, heads): tokens of one modality
--- (B, Tq, d_query) attend over another's (B, Tk, d_context) through the
--- fused attention kernel; context_mask (B, Tk) marks padding with nonzeros
local CrossModalAttention = Module:extend()
CrossModalAttention._name = 'CrossModalAttention'
M.CrossModalAttention = CrossModalAttention
local OPTIONS_CROSSMODALATTENTION = nn.define_options('CrossModalAttention', { 'dropout' })
function CrossModalAttention:_init(dq, dc, heads, o)
  o = OPTIONS_CROSSMODALATTENTION(o)
  self.attn = require('nnlua.transformer').MultiheadAttention(dq, heads,
    { kdim = dc, vdim = dc, dropout = o and o.dropout or 0 })
  self.norm = nn.LayerNorm(dq)
end
function CrossModalAttention:forward(q, context, context_mask)
  if q.ndim ~= 3 or context.ndim ~= 3 or q:size(1) ~= context:size(1) then
    error(('CrossModalAttention: query %s and context %s must be (B, T, d) with one batch'):format(
      table.concat(q.shape, 'x'), table.concat(context.shape, 'x')), 2)
  end
  return self.norm(q + self.attn(q, context, context, { key_padding_mask = context_mask }))
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
