--- Generate text from a GPT saved by examples/gpt/train.lua.
---
--- Usage: nnlua examples/gpt/sample.lua [--model gpt.safetensors]
---        [--prompt TEXT] [--tokens N] [--temperature X] [--top_k N]
---        [--top_p X] [--greedy 1] [--seed N]
package.path = arg[0]:gsub('[^/]*$', '') .. '?.lua;' .. package.path
local nn = require 'nnlua'
local GPT = require 'model'

local opt = nn.cli.parse(arg, { model = 'gpt.safetensors', prompt = '\n', tokens = 500, temperature = 0.8,
              top_k = 40, top_p = 1, greedy = 0, seed = 1, attention_svg = '', embedding_svg = '' })
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

-- pictures: where the last layer looks, and how the characters cluster
local function label(c)
  if c == '\n' then return '\\n' end
  if c == ' ' then return '_' end
  local b = c:byte()
  return (b < 32 or b > 126) and ('\\x%02x'):format(b) or c
end
if opt.attention_svg ~= '' then
  local n = math.min(32, out:size(2), cfg.block_size)
  local idx = out:narrow(2, out:size(2) - n + 1, n)
  local w = nn.no_grad(function()
    -- the last block's attention, recomputed from its parameters, averaged over heads
    local pos = nn.arange(1, n + 1)
    local x = model.wte(idx) + model.wpe(pos)
    local last = #model.h
    for b = 1, last - 1 do x = model.h[b](x) end
    local blk = model.h[last]
    local e, h = cfg.n_embd, cfg.n_head
    local qkv = blk.attn.c_attn(blk.ln_1(x)):view(1, n, 3, h, e // h)
    local q, k = qkv:select(3, 1):transpose(2, 3), qkv:select(3, 2):transpose(2, 3)
    local s = q:matmul(k:transpose(-1, -2)) / math.sqrt(e // h)
    s = s + nn.full({ n, n }, -math.huge):triu(1)
    return s:softmax(-1):mean(2)[1]
  end)
  local chars = {}
  for k, v in ipairs(idx[1]:totable()) do chars[k] = label(vocab[v]) end
  print(assert(nn.plot.heatmap(opt.attention_svg, w, { rows = chars, cols = chars,
    title = 'last layer attention (mean over heads): rows attend to columns' }))
    and 'wrote ' .. opt.attention_svg)
end
if opt.embedding_svg ~= '' then
  local xy = nn.plot.pca2(model.wte.weight:detach())
  local labels = {}
  for k, c in ipairs(vocab) do labels[k] = label(c) end
  print(assert(nn.plot.scatter(opt.embedding_svg, xy, { labels = labels,
    title = 'character embeddings, first two principal components' })) and 'wrote ' .. opt.embedding_svg)
end
