--- bench/generate.lua: 500 tokens from a GPT (4x128, context 512) with the
--- KV cache (each token one position) and without (each token recomputes
--- the whole prefix). Usage: nnlua bench/generate.lua [--tokens N]
package.path = arg[0]:gsub('[^/]*$', '') .. '../examples/gpt/?.lua;' .. package.path
local nn = require 'nnlua'
local GPT = require 'model'

local tokens = 500
for i = 1, #arg do if arg[i] == '--tokens' then tokens = tonumber(arg[i + 1]) end end
nn.manual_seed(0)
local m = GPT({ vocab_size = 65, block_size = tokens + 1, n_layer = 4, n_head = 4, n_embd = 128,
                dropout = 0, bias = true })
m:eval()
local prompt = nn.tensor({ { 1 } }, 'i64')
local function run(cache)
  local t0 = nn.clock()
  local out = nn.generate.generate(m, prompt, tokens, { greedy = true, use_cache = cache })
  return nn.clock() - t0, out
end
local t_cache, a = run(true)
local t_full, b = run(false)
assert(table.concat(a[1]:totable(), ',') == table.concat(b[1]:totable(), ','),
  'cached and uncached generation differ')
print(('%d tokens: with KV cache %.2fs (%.1f ms/token), without %.2fs (%.1f ms/token): %.1fx')
  :format(tokens, t_cache, t_cache / tokens * 1e3, t_full, t_full / tokens * 1e3, t_full / t_cache))
