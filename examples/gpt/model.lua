--- A GPT (decoder-only Transformer) in nnlua, shaped like nanoGPT so its
--- parameter names (wte, wpe, h.0.attn.c_attn, ..., lm_head) match.
--- step(idx, state) runs with a KV cache for generation (nnlua.generate).
local nn = require 'nnlua'

local CausalSelfAttention = nn.Module:extend()
CausalSelfAttention._name = 'CausalSelfAttention'

function CausalSelfAttention:_init(c)
  self.n_head, self.n_embd, self.dropout_p = c.n_head, c.n_embd, c.dropout
  self.c_attn = nn.Linear(c.n_embd, 3 * c.n_embd, { bias = c.bias })
  self.c_proj = nn.Linear(c.n_embd, c.n_embd, { bias = c.bias })
  self.resid_dropout = nn.Dropout(c.dropout)
end

function CausalSelfAttention:forward(x, cache)
  local b, t, e = x:size(1), x:size(2), self.n_embd
  local qkv = self.c_attn(x):view(b, t, 3, self.n_head, e // self.n_head)
  local p = qkv:unbind(3) -- one node: its backward fills qkv's gradient in one pass
  local q = p[1]:transpose(2, 3) -- (B, H, T, D) views, no copies
  local k = p[2]:transpose(2, 3)
  local v = p[3]:transpose(2, 3)
  if cache then k, v = cache:append(k, v) end
  local y = nn.attention(q, k, v, { causal = true, dropout = self.dropout_p,
                                    training = self.training })
  return self.resid_dropout(self.c_proj(y:transpose(2, 3):reshape(b, t, e)))
end

local MLP = nn.Module:extend()
MLP._name = 'MLP'
function MLP:_init(c)
  self.c_fc = nn.Linear(c.n_embd, 4 * c.n_embd, { bias = c.bias })
  self.c_proj = nn.Linear(4 * c.n_embd, c.n_embd, { bias = c.bias })
  self.dropout = nn.Dropout(c.dropout)
end
function MLP:forward(x) return self.dropout(self.c_proj(self.c_fc(x):gelu())) end

local Block = nn.Module:extend()
Block._name = 'Block'
function Block:_init(c)
  self.ln_1 = nn.LayerNorm(c.n_embd, { bias = c.bias })
  self.attn = CausalSelfAttention(c)
  self.ln_2 = nn.LayerNorm(c.n_embd, { bias = c.bias })
  self.mlp = MLP(c)
end
function Block:forward(x, cache)
  x = x + self.attn(self.ln_1(x), cache)
  return x + self.mlp(self.ln_2(x))
end

local GPT = nn.Module:extend()
GPT._name = 'GPT'

--- GPT{vocab_size, block_size, n_layer, n_head, n_embd, dropout = 0, bias = true,
--- checkpoint = false}: with checkpoint, training recomputes each block in
--- backward (nn.utils.checkpoint) instead of keeping its activations
function GPT:_init(c)
  self.config = c
  self.wte = nn.Embedding(c.vocab_size, c.n_embd)
  self.wpe = nn.Embedding(c.block_size, c.n_embd)
  self.drop = nn.Dropout(c.dropout)
  self.h = nn.ModuleList()
  for _ = 1, c.n_layer do self.h:append(Block(c)) end
  self.ln_f = nn.LayerNorm(c.n_embd, { bias = c.bias })
  self.lm_head = nn.Linear(c.n_embd, c.vocab_size, { bias = false })
  self.lm_head.weight = self.wte.weight -- tied, as in GPT-2
  -- GPT-2's initialisation: N(0, 0.02), residual projections scaled down
  for name, p in self:named_parameters() do
    if name:match('bias$') then nn.init.zeros_(p)
    elseif name:match('c_proj%.weight$') then nn.init.normal_(p, 0, 0.02 / math.sqrt(2 * c.n_layer))
    elseif not name:match('^ln') and not name:match('%.ln_') then nn.init.normal_(p, 0, 0.02) end
  end
end

--- state for incremental decoding: one KV cache per layer
function GPT:new_state()
  local caches = {}
  for i = 1, self.config.n_layer do caches[i] = nn.KVCache() end
  return { caches = caches, offset = 0 }
end

--- step(idx (B, T) i64[, state]) -> logits (B, T, V)
function GPT:step(idx, state)
  local t, offset = idx:size(2), state and state.offset or 0
  if offset + t > self.config.block_size then
    error(('GPT: %d positions exceed the block size %d'):format(offset + t, self.config.block_size), 2)
  end
  local pos = nn.arange(offset + 1, offset + t + 1)
  local x = self.drop(self.wte(idx) + self.wpe(pos))
  local ckpt = self.config.checkpoint and not state and nn.is_grad_enabled()
  for i, block in self.h:ipairs() do
    if ckpt then x = nn.utils.checkpoint(block, x)
    else x = block(x, state and state.caches[i]) end
  end
  return self.lm_head(self.ln_f(x))
end

--- forward(idx[, targets]) -> logits, mean cross-entropy (when targets given)
function GPT:forward(idx, targets)
  local logits = self:step(idx)
  if not targets then return logits end
  local v = logits:size(3)
  return logits, nn.cross_entropy(logits:view(-1, v), targets:view(-1))
end

--- model:optimizer{lr =, weight_decay =, betas = {0.9, 0.99}} -> AdamW with
--- the weight decay on the 2-D weights only (nanoGPT's configure_optimizers:
--- not on biases and norms)
function GPT:optimizer(o)
  local decay, no_decay = {}, {}
  for _, p in self:named_parameters() do
    if p:dim() >= 2 then decay[#decay + 1] = p else no_decay[#no_decay + 1] = p end
  end
  return nn.optim.AdamW({ { params = decay, weight_decay = o.weight_decay }, { params = no_decay, weight_decay = 0 } },
                        { lr = o.lr, betas = o.betas or { 0.9, 0.99 } })
end

--- GPT.load(path) -> model (eval mode), {vocab = {chars}, id = {char = id},
--- meta = metadata}; or nil and a message. path is a model saved by
--- examples/gpt/train.lua (--out: config and vocabulary in the metadata)
--- or one of its training checkpoints (--ckpt: in the extra values).
function GPT.load(path)
  local sd, meta = nn.load(path)
  if not sd then return nil, meta end
  local is_ckpt = meta['nnlua.checkpoint'] ~= nil
  if is_ckpt then meta = nn.checkpoint.info(path).extra or {} end
  if type(meta.config) ~= 'string' or type(meta.vocab) ~= 'string' then
    return nil, path .. ' has no GPT config and vocabulary: ' .. (is_ckpt
      and 'a checkpoint from an older train.lua; use the model file it saved with --out'
      or 'not a model saved by examples/gpt/train.lua')
  end
  local cfg = { dropout = 0, bias = true }
  for k, v in meta.config:gmatch('([%w_]+)=(%d+)') do cfg[k] = tonumber(v) end
  local vocab, id = {}, {}
  for b in meta.vocab:gmatch('%d+') do
    vocab[#vocab + 1] = string.char(tonumber(b))
    id[vocab[#vocab]] = #vocab
  end
  local model = GPT(cfg)
  if is_ckpt then nn.checkpoint.load(path, { model = model }) else model:load_state_dict(sd) end
  model:eval()
  return model, { vocab = vocab, id = id, meta = meta }
end

return GPT
