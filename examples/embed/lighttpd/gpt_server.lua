--- A GPT saved by examples/gpt/train.lua, answering completions inside a
--- host's own Lua 5.4 (lighttpd's mod_magnet here: see magnet.lua). The
--- model is loaded once, on the first request, and kept in package.loaded.
---
---   local server = require 'gpt_server'
---   local text, err = server.complete('To be', 20)  -- greedy, deterministic
local nn = require 'nnlua'
local GPT = require 'model' -- examples/gpt/model.lua

local M = {}
local model, saved

--- load(path): the model to serve (default $NNLUA_MODEL or gpt.safetensors)
function M.load(path)
  path = path or os.getenv('NNLUA_MODEL') or 'gpt.safetensors'
  local m, info = GPT.load(path)
  if not m then return nil, info end
  model, saved = m, info
  return true
end

--- complete(prompt, n) -> prompt and n more characters (greedy), or nil
--- and a message for a bad request
function M.complete(prompt, n)
  if not model then
    local ok, err = M.load()
    if not ok then return nil, err end
  end
  if #prompt == 0 then return nil, 'empty prompt' end
  if not n or n < 1 or n > 200 then return nil, 'n must be in 1..200' end
  local ids = {}
  for c in prompt:gmatch('.') do
    ids[#ids + 1] = saved.id[c]
    if not ids[#ids] then return nil, ('%q is not in the vocabulary'):format(c) end
  end
  local out = nn.no_grad(function()
    return nn.generate.generate(model, nn.tensor({ ids }, 'i64'), n,
      { greedy = true, block_size = model.config.block_size })
  end)
  local text = {}
  for k, v in ipairs(out[1]:totable()) do text[k] = saved.vocab[v] end
  return table.concat(text)
end

return M
