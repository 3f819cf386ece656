--- nnlua.functional (nn.F): losses and functions composed from engine
--- primitives (so autograd differentiates them with no code here), plus
--- the fused C ops under their PyTorch names.
---
--- Every loss takes reduction = 'mean' (default), 'sum' or 'none' in its
--- options table. Class indices count from 1.
local nn = require 'nnlua'

local F = {}

for _, name in ipairs({ 'linear', 'layer_norm', 'rms_norm', 'embedding', 'dropout',
                        'cross_entropy', 'conv2d', 'max_pool2d', 'avg_pool2d',
                        'softmax', 'log_softmax', 'relu', 'gelu', 'gelu_tanh', 'silu',
                        'sigmoid', 'tanh', 'leaky_relu' }) do
  F[name] = nn[name]
end

local OPTIONS_F_SCALED_DOT_PRODUCT_ATTENTION = nn.define_options('F.scaled_dot_product_attention', { 'mask', 'causal', 'scale', 'dropout', 'training', 'need_weights', 'key_padding_mask' })
--- scaled_dot_product_attention(q, k, v[, {mask =, key_padding_mask =,
--- causal =, dropout =, scale =, need_weights =, training = true}]) over
--- (B, H, T, D) tensors -- the fused kernel of engine/attention.c. mask is
--- additive (-inf blocks); key_padding_mask (B, Tk) marks padding with
--- nonzero entries. Returns out[, weights (B, H, Tq, Tk), for inspection].
function F.scaled_dot_product_attention(q, k, v, o)
  o = OPTIONS_F_SCALED_DOT_PRODUCT_ATTENTION(o)
  local mask = o.mask
  if o.key_padding_mask then
    local kpm = o.key_padding_mask
    local b, s = kpm:size(1), kpm:size(2)
    local pad = nn.zeros(b, 1, 1, s):masked_fill(kpm:view(b, 1, 1, s):ne(0), -math.huge)
    mask = mask and mask + pad or pad
  end
  return nn.attention(q, k, v, { mask = mask, causal = o.causal, dropout = o.dropout,
    scale = o.scale, need_weights = o.need_weights, training = o.training })
end

local function reduce(loss, o, fname)
  local r = (o and o.reduction) or 'mean'
  if r == 'mean' then return loss:mean() end
  if r == 'sum' then return loss:sum() end
  if r == 'none' then return loss end
  error(("%s: reduction must be 'mean', 'sum' or 'none', not '%s'"):format(fname, tostring(r)), 3)
end

local function same_shape(a, b, fname)
  if table.concat(a:size(), 'x') ~= table.concat(b:size(), 'x') then
    error(('%s: input %s and target %s differ in shape'):format(fname,
      table.concat(a:size(), 'x'), table.concat(b:size(), 'x')), 3)
  end
end

local OPTIONS_F_MSE_LOSS = nn.define_options('F.mse_loss', { 'reduction' })
function F.mse_loss(input, target, o)
  o = OPTIONS_F_MSE_LOSS(o)
  same_shape(input, target, 'mse_loss')
  return reduce((input - target):square(), o, 'mse_loss')
end

local OPTIONS_F_L1_LOSS = nn.define_options('F.l1_loss', { 'reduction' })
function F.l1_loss(input, target, o)
  o = OPTIONS_F_L1_LOSS(o)
  same_shape(input, target, 'l1_loss')
  return reduce((input - target):abs(), o, 'l1_loss')
end

local OPTIONS_F_SMOOTH_L1_LOSS = nn.define_options('F.smooth_l1_loss', { 'beta', 'reduction' })
--- smooth_l1_loss(input, target, {beta = 1}): 0.5 d^2 / beta below beta,
--- |d| - beta / 2 above.
function F.smooth_l1_loss(input, target, o)
  o = OPTIONS_F_SMOOTH_L1_LOSS(o)
  same_shape(input, target, 'smooth_l1_loss')
  local beta = (o and o.beta) or 1
  local d = (input - target):abs()
  local loss = beta > 0 and nn.where(d:lt(beta), d:square() * (0.5 / beta), d - 0.5 * beta) or d
  return reduce(loss, o, 'smooth_l1_loss')
end

local OPTIONS_F_NLL_LOSS = nn.define_options('F.nll_loss', { 'weight', 'ignore_index', 'reduction' })
--- nll_loss(logp (N, C), target (N) i64, {weight =, ignore_index = -100})
function F.nll_loss(logp, target, o)
  o = OPTIONS_F_NLL_LOSS(o)
  local ignore = o.ignore_index or -100
  local keep = target:ne(ignore)
  local safe = nn.where(keep, target, 1):long()
  local w = o.weight and o.weight:index_select(1, safe) * keep or keep
  local picked = -logp:gather(2, safe:unsqueeze(2)):squeeze(2) * w
  local r = o.reduction or 'mean'
  if r == 'mean' then return picked:sum() / w:sum() end
  return reduce(picked, o, 'nll_loss')
end

local OPTIONS_F_BINARY_CROSS_ENTROPY = nn.define_options('F.binary_cross_entropy', { 'weight', 'reduction' })
--- binary_cross_entropy(p, y, {weight =}): logs clamped at -100 as PyTorch.
function F.binary_cross_entropy(p, y, o)
  o = OPTIONS_F_BINARY_CROSS_ENTROPY(o)
  same_shape(p, y, 'binary_cross_entropy')
  local lp, lq = p:log():clamp(-100), (1 - p):log():clamp(-100)
  local loss = -(y * lp + (1 - y) * lq)
  if o and o.weight then loss = loss * o.weight end
  return reduce(loss, o, 'binary_cross_entropy')
end

local OPTIONS_F_BINARY_CROSS_ENTROPY_WITH_LOGITS = nn.define_options('F.binary_cross_entropy_with_logits', { 'weight', 'pos_weight', 'reduction' })
--- binary_cross_entropy_with_logits(x, y, {weight =, pos_weight =}):
--- (1 - y) x + (1 + (pw - 1) y) (log(1 + e^-|x|) + max(-x, 0)), stable.
function F.binary_cross_entropy_with_logits(x, y, o)
  o = OPTIONS_F_BINARY_CROSS_ENTROPY_WITH_LOGITS(o)
  same_shape(x, y, 'binary_cross_entropy_with_logits')
  o = o or {}
  local log_weight = o.pos_weight and (o.pos_weight - 1) * y + 1 or 1
  local softplus = (-x:abs()):exp():log1p() + (-x):relu()
  local loss = (1 - y) * x + softplus * log_weight
  if o.weight then loss = loss * o.weight end
  return reduce(loss, o, 'binary_cross_entropy_with_logits')
end

local OPTIONS_F_MARGIN_RANKING_LOSS = nn.define_options('F.margin_ranking_loss', { 'margin', 'reduction' })
--- margin_ranking_loss(x1, x2, y, {margin = 0}): max(0, -y (x1 - x2) + margin)
function F.margin_ranking_loss(x1, x2, y, o)
  o = OPTIONS_F_MARGIN_RANKING_LOSS(o)
  local margin = (o and o.margin) or 0
  return reduce((-y * (x1 - x2) + margin):relu(), o, 'margin_ranking_loss')
end

--- cosine_similarity(a, b[, dim = -1[, eps = 1e-8]])
function F.cosine_similarity(a, b, dim, eps)
  dim, eps = dim or -1, eps or 1e-8
  local na = a:norm(2, dim):clamp(eps)
  local nb = b:norm(2, dim):clamp(eps)
  return (a * b):sum(dim) / (na * nb)
end

local OPTIONS_F_COSINE_EMBEDDING_LOSS = nn.define_options('F.cosine_embedding_loss', { 'margin', 'reduction' })
--- cosine_embedding_loss(x1, x2, y (1 or -1), {margin = 0}) on rows
function F.cosine_embedding_loss(x1, x2, y, o)
  o = OPTIONS_F_COSINE_EMBEDDING_LOSS(o)
  local margin = (o and o.margin) or 0
  local eps = 1e-12 -- PyTorch's EPSILON for this loss
  local dot = (x1 * x2):sum(-1)
  local cos = dot / ((x1:square():sum(-1) + eps) * (x2:square():sum(-1) + eps)):sqrt()
  local pos, neg = y:eq(1), y:eq(-1)
  local loss = (1 - cos) * pos + (cos - margin):relu() * neg
  return reduce(loss, o, 'cosine_embedding_loss')
end

local OPTIONS_F_KL_DIV = nn.define_options('F.kl_div', { 'reduction', 'log_target' })
--- kl_div(input (log-probs), target, {reduction = 'mean'|'batchmean'|'sum'|
--- 'none', log_target = false}): target (log target - input), 0 where target = 0
function F.kl_div(input, target, o)
  o = OPTIONS_F_KL_DIV(o)
  local loss
  if o.log_target then
    loss = target:exp() * (target - input)
  else
    local safe = nn.where(target:gt(0), target, 1)
    loss = nn.where(target:gt(0), target * (safe:log() - input), 0)
  end
  if o.reduction == 'batchmean' then return loss:sum() / input:size(1) end
  return reduce(loss, o, 'kl_div')
end

return F
