--- Train a character-level LSTM on a text file in the spirit of Karpathy's
--- char-rnn (2 layers, Adam, gradient clipping at 5, the state carried
--- across batches of B contiguous streams), report train and validation
--- loss as it goes, sample from the trained model at the end and save it
--- to --out (safetensors). bench/char_rnn_twin_train.py trains the same
--- model in PyTorch on the same split, batches and steps.
---   nnlua examples/char_rnn/train.lua --data ../shared/data/tinyshakespeare/input.txt
package.path = arg[0]:gsub('[^/]*$', '') .. '?.lua;' .. package.path
local nn = require 'nnlua'
local CharRNN = require 'model'
local chars = require 'data'

local opt = nn.cli.parse(arg, {
  { 'data', '../shared/data/tinyshakespeare/input.txt', 'text file to train on', path = 'file' },
  { 'steps', 2000, 'training steps', integer = true, min = 1 },
  { 'batch', 32, 'streams per batch', integer = true, min = 1 },
  { 'seq_len', 100, 'characters per stream per step (backpropagation through time)', integer = true, min = 1 },
  { 'hidden', 512, 'LSTM hidden size', integer = true, min = 1 },
  { 'layers', 2, 'LSTM layers', integer = true, min = 1, max = 8 },
  { 'embed', 128, 'character embedding size', integer = true, min = 1 },
  { 'dropout', 0.0, 'dropout between LSTM layers', min = 0, max = 0.99 },
  { 'lr', 2e-3, 'Adam learning rate', min = 0 },
  { 'decay_after', 1000, 'halve the learning rate every N steps after this many (0: never)', integer = true, min = 0 },
  { 'grad_clip', 5.0, 'clip the gradient norm to this', min = 0 },
  { 'eval_interval', 250, 'validate every N steps', integer = true, min = 1 },
  { 'eval_chunks', 0, 'batches per validation (0: the whole split)', integer = true, min = 0 },
  { 'seed', 123, 'random seed', integer = true },
  { 'threads', 0, 'threads (0: all cores)', integer = true, min = 0 },
  { 'sample_len', 400, 'characters sampled at the end (0: none)', integer = true, min = 0 },
  { 'temperature', 0.8, 'sampling temperature', min = 0 },
  { 'prime', 'ROMEO:', 'text the sample starts from' },
  { 'init', '', 'start from the weights in this safetensors file (e.g. the PyTorch twin\'s)', path = 'file' },
  { 'log', '', 'write metrics as JSON lines (or CSV for a .csv name)', path = 'out' },
  { 'out', 'char_rnn.safetensors', 'where the trained model is saved', path = 'out' },
  { 'force', false, 'overwrite --out if it exists' },
})
nn.cli.keep(opt.out, opt.force)
if opt.threads > 0 then nn.set_num_threads(opt.threads) end
nn.manual_seed(opt.seed)

local text, err = nn.data.read_text(opt.data)
if not text then nn.cli.fail('--data: %s', err) end
local d = chars.split(text)
local V = #d.vocab
local train = chars.streams(d.train, opt.batch, opt.seq_len)
local val = chars.streams(d.val, opt.batch, opt.seq_len)
if not train or not val then
  nn.cli.fail('%s is too short for --batch %d streams of --seq_len %d in a 90/10 split',
    opt.data, opt.batch, opt.seq_len)
end
print(('data: %s, %d characters, vocabulary %d; train %d, val %d')
  :format(opt.data, #text, V, d.train:size(1), d.val:size(1)))

local model = CharRNN({ vocab = V, embed = opt.embed, hidden = opt.hidden, layers = opt.layers,
  dropout = opt.dropout })
if opt.init ~= '' then model:load_state_dict(assert(nn.load(opt.init))) end
print(('model: %d parameters%s'):format(model:num_parameters(), opt.init ~= '' and ', from ' .. opt.init or ''))
local optim = nn.optim.Adam(model:parameters(), { lr = opt.lr })

local function detach(state) return { state[1]:detach(), state[2]:detach() } end

local function loss_of(logits, y) return nn.cross_entropy(logits:view(-1, V), y:reshape(-1)) end

--- mean loss over the validation streams (from a fresh state)
local function validate()
  model:eval()
  local v = chars.streams(d.val, opt.batch, opt.seq_len)
  local n = opt.eval_chunks > 0 and math.min(opt.eval_chunks, v.chunks()) or v.chunks()
  local total, state = 0, nil
  nn.no_grad(function()
    for _ = 1, n do
      local x, y = v:next()
      local logits
      logits, state = model(x, state)
      total = total + loss_of(logits, y):item()
    end
  end)
  model:train()
  return total / n
end

local log = opt.log ~= '' and assert(nn.progress.log(opt.log)) or nil
local state, t0 = nil, nn.clock()
for step, _, bar in nn.progress(opt.steps, { desc = 'train', every = opt.eval_interval }) do
  if opt.decay_after > 0 and step > opt.decay_after and (step - opt.decay_after - 1) % opt.decay_after == 0 then
    for _, g in ipairs(optim.param_groups) do g.lr = g.lr / 2 end
  end
  local x, y, wrapped = train:next()
  if wrapped then state = nil end
  local logits, final = model(x, state)
  local loss = loss_of(logits, y)
  optim:zero_grad()
  loss:backward()
  nn.utils.clip_grad_norm_(model:parameters(), opt.grad_clip)
  optim:step()
  state = detach(final)
  bar.loss = loss:item()
  if log then log:write({ step = step, loss = bar.loss }) end
  if step % opt.eval_interval == 0 or step == opt.steps then
    local vl = validate()
    local dt = nn.clock() - t0
    print(('step %d: train loss %.4f, val loss %.4f, %.1f s (%.0f ms/step)'):format(step, bar.loss, vl, dt,
      dt / step * 1e3))
    if log then log:write({ step = step, val_loss = vl, seconds = dt }) end
  end
end
if log then log:close() end
assert(model:save(opt.out, { vocab = table.concat(d.vocab) }))
print(('saved %s'):format(opt.out))

if opt.sample_len > 0 then
  model:eval()
  nn.no_grad(function()
    local ids = d.encode(opt.prime)
    local st, logits
    logits, st = model(ids:view(1, -1))
    local out = {}
    local last = logits:select(2, logits:size(2))
    for i = 1, opt.sample_len do
      local id = nn.generate.sample(last, { temperature = opt.temperature })
      out[i] = id:view(1, 1)
      logits, st = model(out[i], st)
      last = logits:select(2, 1)
    end
    print(('--- sample (temperature %g) ---\n%s%s'):format(opt.temperature, opt.prime,
      d.decode(nn.cat(out, 2):view(-1))))
  end)
end
