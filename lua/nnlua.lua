--- nnlua: the package root. The C core (nnlua.core: tensors, ops,
--- autograd, built-in layers) plus the names the Lua half provides, each
--- loaded from lua/nnlua/*.lua on first use so `require "nnlua"` stays cheap.
local nn = require 'nnlua.core'
-- one name for the one table, so tracebacks say nnlua.f (requiring
-- nnlua.core again gives the same table)
package.loaded['nnlua.core'] = nil

-- name -> { module[, field] }
local lazy = {
  gradcheck = { 'nnlua.gradcheck' },
  gradgradcheck = { 'nnlua.gradgradcheck' },
  autograd = { 'nnlua.autograd' },
  utils = { 'nnlua.utils' },
  Module = { 'nnlua.module', 'Module' },
  Sequential = { 'nnlua.module', 'Sequential' },
  ModuleList = { 'nnlua.module', 'ModuleList' },
  ModuleDict = { 'nnlua.module', 'ModuleDict' },
  summary = { 'nnlua.module', 'summary' },
  is_module = { 'nnlua.module', 'is_module' },
  register_module_forward_hook = { 'nnlua.module', 'register_module_forward_hook' },
  register_module_forward_pre_hook = { 'nnlua.module', 'register_module_forward_pre_hook' },
  register_module_full_backward_hook = { 'nnlua.module', 'register_module_full_backward_hook' },
  register_module_full_backward_pre_hook = { 'nnlua.module',
    'register_module_full_backward_pre_hook' },
  optim = { 'nnlua.optim' },
  init = { 'nnlua.initializers' },
  F = { 'nnlua.functional' },
  class = { 'nnlua.class' },
  TransformerEncoderLayer = { 'nnlua.transformer', 'TransformerEncoderLayer' },
  TransformerDecoderLayer = { 'nnlua.transformer', 'TransformerDecoderLayer' },
  TransformerEncoder = { 'nnlua.transformer', 'TransformerEncoder' },
  TransformerDecoder = { 'nnlua.transformer', 'TransformerDecoder' },
  Transformer = { 'nnlua.transformer', 'Transformer' },
  SinusoidalPositionalEncoding = { 'nnlua.transformer', 'SinusoidalPositionalEncoding' },
  KVCache = { 'nnlua.transformer', 'KVCache' },
  LearnedPositionalEncoding = { 'nnlua.transformer', 'LearnedPositionalEncoding' },
  transformer = { 'nnlua.transformer' },
  generate = { 'nnlua.generate' },
  cli = { 'nnlua.cli' },
  checkpoint = { 'nnlua.checkpoint' },
  progress = { 'nnlua.progress' },
  plot = { 'nnlua.plot' },
  data = { 'nnlua.data' },
  tokenizer = { 'nnlua.tokenizer' },
  metrics = { 'nnlua.metrics' },
  image = { 'nnlua.image' },
  audio = { 'nnlua.audio' },
  multimodal = { 'nnlua.multimodal' },
  PatchEmbedding = { 'nnlua.multimodal', 'PatchEmbedding' },
  ViT = { 'nnlua.multimodal', 'ViT' },
  ContrastiveLoss = { 'nnlua.multimodal', 'ContrastiveLoss' },
  MultiTask = { 'nnlua.multimodal', 'MultiTask' },
  kge = { 'nnlua.kge' },
  dist = { 'nnlua.dist' },
  einsum = { 'nnlua.einsum', 'einsum' },
  profile = { 'nnlua.profile' },
}

-- the lazy names, sorted (the docs and fuzz tests walk them)
local names = {}
for k in pairs(lazy) do names[#names + 1] = k end
table.sort(names)
nn._lazy = names

setmetatable(nn, {
  __index = function(t, key)
    local where = lazy[key]
    if not where then return nil end
    local v = require(where[1])
    if where[2] then v = v[where[2]] end
    rawset(t, key, v) -- the next lookup is a plain field
    return v
  end,
})

-- Built-in layers answer the whole module protocol: the methods nn.Module
-- writes over _entries/_set_training are installed into their shared
-- method table the first time one is looked up.
setmetatable(nn._layer_methods, {
  __index = function(methods, key)
    setmetatable(methods, nil)
    for name, fn in pairs(require('nnlua.module').protocol) do
      if rawget(methods, name) == nil then rawset(methods, name, fn) end
    end
    return rawget(methods, key)
  end,
})

-- nn.Module's __call reads this on every call: a plain field, not a lazy lookup
if rawget(nn, '_profiling') == nil then rawset(nn, '_profiling', false) end

-- NNLUA_PROFILE=1 (or =FILE.json) profiles the whole program
local profile_env = os.getenv('NNLUA_PROFILE')
if profile_env and profile_env ~= '' and profile_env ~= '0' then
  package.loaded.nnlua = nn -- nnlua.profile requires it
  require('nnlua.profile').from_environment(profile_env)
end

return nn
