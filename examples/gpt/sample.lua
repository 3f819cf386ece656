--- Generate text from a GPT saved by examples/gpt/train.lua.
---
--- Usage: nnlua examples/gpt/sample.lua [--model gpt.safetensors]
---        [--prompt TEXT] [--tokens N] [--temperature X] [--top_k N]
---        [--top_p X] [--greedy 1] [--seed N]
package.path = arg[0]:gsub('[^/]*$', '') .. '?.lua;' .. package.path
local nn = require 'nnlua'
local GPT = require 'model'

local opt = nn.cli.parse(arg, { model = 'gpt.safetensors', prompt = '\n', tokens = 500, temperature = 0.8,
              top_k = 40, top_p = 1, greedy = 0, seed = 1 })
nn.manual_seed(opt.seed)

local sd, meta = nn.load(opt.model)
if not sd then
  io.stderr:write(meta, '\n(train one with: nnlua examples/gpt/train.lua)\n')
  os.exit(1)
end
local cfg = { dropout = 0, bias = true }
for k, v in meta.config:gmatch('([%w_]+)=(%d+)') do cfg[k] = tonumber(v) end
local vocab, id = {}, {}
for b in meta.vocab:gmatch('%d+') do
  vocab[#vocab + 1] = string.char(tonumber(b))
  id[vocab[#vocab]] = #vocab
end

local model = GPT(cfg)
model:load_state_dict(sd)
model:eval()

local ids = {}
for c in opt.prompt:gmatch('.') do ids[#ids + 1] = id[c] or 1 end
local prompt = nn.tensor({ ids }, 'i64')
local t0 = nn.clock()
local out = nn.generate.generate(model, prompt, opt.tokens, {
  greedy = opt.greedy ~= 0, temperature = opt.temperature, top_k = opt.top_k,
  top_p = opt.top_p, block_size = cfg.block_size })
local text = {}
for k, v in ipairs(out[1]:totable()) do text[k] = vocab[v] end
io.write(table.concat(text), '\n')
io.stdout:flush()
io.stderr:write(('(%d tokens in %.2fs, val loss at save %s)\n')
  :format(opt.tokens, nn.clock() - t0, meta.val_loss or '?'))
