--- Generate text from a GPT saved by examples/gpt/train.lua.
---
--- Usage: nnlua examples/gpt/sample.lua [--model gpt.safetensors] [options]; --help lists them.
package.path = arg[0]:gsub('[^/]*$', '') .. '?.lua;' .. package.path
local nn = require 'nnlua'
local GPT = require 'model'

local opt = nn.cli.parse(arg, {
  { 'model', 'gpt.safetensors', 'a model saved by train.lua (--out), or a training checkpoint (--ckpt)', path = 'file' },
  { 'prompt', '\n', 'text to continue' },
  { 'tokens', 500, 'characters to generate', integer = true, min = 1 },
  { 'temperature', 0.8, 'sampling temperature', min = 1e-6 },
  { 'top_k', 40, 'sample among the k likeliest (0: all)', integer = true, min = 0 },
  { 'top_p', 1, 'nucleus sampling mass', min = 1e-6, max = 1 },
  { 'greedy', false, 'take the likeliest character every time' },
  { 'seed', 1, 'random seed', integer = true },
  { 'attention_len', 48, 'characters shown in the attention picture', integer = true, min = 2 },
  { 'attention_svg', '', 'draw the last layer\'s attention over the text here', path = 'out' },
  { 'embedding_svg', '', 'draw the character embeddings here', path = 'out' },
})
nn.manual_seed(opt.seed)

local model, saved = GPT.load(opt.model)
if not model then nn.cli.fail('--model: %s', saved) end
local cfg, vocab, id, meta = model.config, saved.vocab, saved.id, saved.meta

local ids = {}
for c in opt.prompt:gmatch('.') do
  ids[#ids + 1] = id[c] or nn.cli.fail('--prompt: %q is not in the model\'s vocabulary', c)
end
local prompt = nn.tensor({ ids }, 'i64')
local t0 = nn.clock()
local out = nn.generate.generate(model, prompt, opt.tokens, {
  greedy = opt.greedy, temperature = opt.temperature, top_k = opt.top_k,
  top_p = opt.top_p, block_size = cfg.block_size })
local text = {}
for k, v in ipairs(out[1]:totable()) do text[k] = vocab[v] end
io.write(table.concat(text), '\n')
io.stdout:flush()
io.stderr:write(('(%d tokens in %.2fs, val loss at save %s)\n')
  :format(opt.tokens, nn.clock() - t0, meta.val_loss or '?'))

-- pictures: where the last layer looks, and how the characters cluster.
-- Labels are the characters; a UTF-8 character spread over several byte
-- tokens labels its first byte, the others show as '+'.
local function labels_of(bytes)
  local out, i = {}, 1
  while i <= #bytes do
    local c = bytes[i]
    local len = c >= 0xF0 and 4 or c >= 0xE0 and 3 or c >= 0xC0 and 2 or 1
    local ch = table.concat(bytes, '', i, math.min(#bytes, i + len - 1))
    if len > 1 and utf8.len(ch) == 1 then
      out[i] = ch
      for k = i + 1, i + len - 1 do out[k] = '+' end
      i = i + len
    else
      out[i] = c == 10 and '\\n' or c == 32 and '_' or c == 9 and '\\t'
        or (c < 32 or c > 126) and ('%02X'):format(c) or string.char(c)
      i = i + 1
    end
  end
  return out
end
if opt.attention_svg ~= '' then
  -- the text from its start (the prompt first), as far as the picture is wide
  local n = math.min(opt.attention_len, out:size(2), cfg.block_size)
  local idx = out:narrow(2, 1, n)
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
  local bytes = {}
  for k, v in ipairs(idx[1]:totable()) do bytes[k] = vocab[v]:byte() end
  local chars = labels_of(bytes)
  print(assert(nn.plot.heatmap(opt.attention_svg, w, { rows = chars, cols = chars,
    title = ('last layer attention, mean over %d heads: characters 1-%d of %d (prompt %d)')
      :format(cfg.n_head, n, out:size(2), #ids),
    xlabel = 'attended character (key)', ylabel = 'attending character (query)',
    colorbar = 'attention weight' })) and 'wrote ' .. opt.attention_svg)
end
if opt.embedding_svg ~= '' then
  -- bytes that are pieces of UTF-8 characters have no glyph of their own: left out
  local keep, labels = {}, {}
  for k, c in ipairs(vocab) do
    local b = c:byte()
    if b < 128 then
      keep[#keep + 1] = k
      labels[#keep] = b == 10 and '\\n' or b == 32 and '_' or b < 32 and ('%02X'):format(b) or c
    end
  end
  local xy = nn.plot.pca2(model.wte.weight:detach():index_select(1, nn.tensor(keep, 'i64')))
  local dropped = #vocab - #keep
  print(assert(nn.plot.scatter(opt.embedding_svg, xy, { labels = labels,
    title = 'character embeddings, first two principal components'
      .. (dropped > 0 and (' (%d non-ASCII byte tokens not shown)'):format(dropped) or ''),
    xlabel = 'PC 1', ylabel = 'PC 2' })) and 'wrote ' .. opt.embedding_svg)
end
