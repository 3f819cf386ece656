--- bench/tokenize.lua: MB/s of character and byte-level BPE encoding on
--- ~100 MB of text (Tiny Shakespeare repeated, or --data FILE), and the BPE
--- training time. Usage: nnlua bench/tokenize.lua [--data FILE] [--mb N]
local nn = require 'nnlua'
local opt = nn.cli.parse(arg, {
  { 'data', '', 'text to encode (default: Tiny Shakespeare from ../shared/data)', path = 'file' },
  { 'mb', 100, 'megabytes of text (the file repeated)', min = 0.001 },
  { 'vocab', 2048, 'BPE vocabulary size', integer = true, min = 257 },
})
local path = opt.data ~= '' and opt.data or (arg[0]:gsub('[^/]*$', '') .. '../../shared/data/tinyshakespeare/input.txt')
local base = assert(nn.data.read_text(path))
local text = base:rep(math.max(1, math.floor(opt.mb * 1e6 / #base)))
local mb = #text / 1e6
print(('%.1f MB of %s'):format(mb, path))

local t0 = nn.clock()
local chars = nn.tokenizer.Char.fit(text)
local ids = chars:encode(text)
local dt = nn.clock() - t0
print(('char:  fit+encode %.2fs  %.0f MB/s  (%d ids, vocabulary %d)'):format(dt, mb / dt, ids:numel(), chars:vocab_size()))

t0 = nn.clock()
local bpe = nn.tokenizer.BPE.train(base, opt.vocab)
print(('bpe:   trained %d merges on %.1f MB in %.2fs'):format(opt.vocab - 256, #base / 1e6, nn.clock() - t0))
t0 = nn.clock()
ids = bpe:encode(text)
dt = nn.clock() - t0
print(('bpe:   encode %.2fs  %.0f MB/s  (%d ids, %.2f bytes per token)'):format(dt, mb / dt, ids:numel(), #text / ids:numel()))
t0 = nn.clock()
assert(bpe:decode(ids) == text, 'BPE round trip failed')
print(('bpe:   decode %.2fs  %.0f MB/s, round trip exact'):format(nn.clock() - t0, mb / (nn.clock() - t0)))
