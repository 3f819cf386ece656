-- Every options-taking function, C or Lua, is in nn.option_registry(); for
-- each there is a call below, which must work with its valid options and
-- fail with an unknown one naming the key and the accepted list. A new
-- function that declares options and has no call here fails the test.
local nn = require 'nnlua'
local support = require 'support'

-- every Lua module declares its options when loaded
for _, name in ipairs(nn._lazy) do local _ = nn[name] end
package.path = 'examples/gpt/?.lua;' .. package.path
local GPT = require 'model'

local function with(base, extra)
  local t = {}
  for k, v in pairs(base or {}) do t[k] = v end
  for k, v in pairs(extra or {}) do t[k] = v end
  return t
end

local function param(...) return nn.randn(...):requires_grad_() end
local L = function(t) return nn.tensor(t, 'i64') end

local function tiny_gpt()
  nn.manual_seed(5)
  local m = GPT({ vocab_size = 11, block_size = 16, n_layer = 1, n_head = 2, n_embd = 8, dropout = 0 })
  return m:eval()
end

local function kge_model()
  return nn.KGEmbedding { model = 'distmult', num_entities = 4, num_relations = 1, dim = 4, sparse = false }
end

local dir = support.tempdir()
local tsv = dir .. '/t.tsv'
assert(nn.write_file(tsv, 'a\t1\nb\t2\n'))
for _, split in ipairs({ 'train', 'valid', 'test' }) do
  assert(nn.write_file(dir .. '/' .. split .. '.txt', 'x\tr\ty\n'))
end
local jl = dir .. '/log.jsonl'
assert(nn.write_file(jl, '{"step": 1, "loss": 2}\n{"step": 2, "loss": 1}\n'))

local function opt() return nn.optim.SGD({ param(2) }, { lr = 0.1 }) end

-- name -> function(extra): the call with its valid options plus `extra`
local calls = {
  Linear = function(x) return nn.Linear(3, 2, with({ bias = false }, x)) end,
  Embedding = function(x) return nn.Embedding(5, 2, with({ padding_idx = 1 }, x)) end,
  LayerNorm = function(x) return nn.LayerNorm(3, with({ eps = 1e-6 }, x)) end,
  RMSNorm = function(x) return nn.RMSNorm(3, with({ eps = 1e-6 }, x)) end,
  GELU = function(x) return nn.GELU(with({ approximate = 'tanh' }, x)) end,
  Conv2d = function(x) return nn.Conv2d(2, 2, 3, with({ padding = 1, groups = 2 }, x)) end,
  AdaptiveMaxPool2d = function(x) return nn.AdaptiveMaxPool2d(2, with({ return_indices = true }, x)) end,
  adaptive_max_pool2d = function(x)
    return nn.adaptive_max_pool2d(nn.randn(1, 1, 4, 4), 2, with({ return_indices = false }, x))
  end,
  BatchNorm1d = function(x)
    return nn.BatchNorm1d(3, with({ eps = 1e-3, momentum = 0.2, affine = true, track_running_stats = true }, x))
  end,
  BatchNorm2d = function(x) return nn.BatchNorm2d(3, with({ momentum = false, affine = false }, x)) end,
  InstanceNorm2d = function(x)
    return nn.InstanceNorm2d(3, with({ eps = 1e-4, momentum = 0.1, affine = true, track_running_stats = true }, x))
  end,
  Conv1d = function(x)
    return nn.Conv1d(2, 4, 3, with({ stride = 1, padding = 1, dilation = 1, groups = 2, bias = false }, x))
  end,
  ConvTranspose2d = function(x)
    return nn.ConvTranspose2d(2, 4, 3, with({ stride = 2, padding = 1, output_padding = 1, dilation = 1,
      groups = 2, bias = true }, x))
  end,
  conv1d = function(x)
    return nn.conv1d(nn.randn(1, 2, 5), nn.randn(2, 1, 3), nil, with({ stride = 1, padding = 1, dilation = 1,
      groups = 2 }, x))
  end,
  conv_transpose2d = function(x)
    return nn.conv_transpose2d(nn.randn(1, 2, 3, 3), nn.randn(2, 1, 3, 3), nil, with({ stride = 2, padding = 1,
      output_padding = 1, dilation = 1, groups = 2 }, x))
  end,
  Upsample = function(x) return nn.Upsample(with({ scale_factor = 2, mode = 'bilinear', align_corners = true }, x)) end,
  stft = function(x)
    return nn.stft(nn.randn(40), with({ n_fft = 8, hop_length = 2, win_length = 6, window = nn.ones(6), center = true,
      pad_mode = 'constant', normalized = true }, x))
  end,
  resample = function(x) return nn.resample(nn.randn(30), 3, 2, with({ lowpass_filter_width = 4, rolloff = 0.9 }, x)) end,
  mel_filterbank = function(x)
    return nn.mel_filterbank(33, 0, 4000, 8, 8000, with({ norm = 'slaney', mel_scale = 'slaney' }, x))
  end,
  MelSpectrogram = function(x)
    return nn.audio.MelSpectrogram(with({ sample_rate = 8000, n_fft = 64, win_length = 48, hop_length = 16,
      f_min = 20, f_max = 3000, n_mels = 8, window = 'hamming', power = 1, normalized = false, center = true,
      pad_mode = 'reflect', norm = 'slaney', mel_scale = 'htk' }, x))
  end,
  ['audio.amplitude_to_db'] = function(x)
    return nn.audio.amplitude_to_db(nn.rand(2, 3, 4), with({ multiplier = 20, amin = 1e-5, ref = 2, top_db = 40 }, x))
  end,
  ['audio.read'] = function(x) return nn.audio.read('tests/data/media/tone_mono.ogg', with({ rate = 8000, mono = true }, x)) end,
  ['audio.spectrogram'] = function(x)
    return nn.audio.spectrogram(nn.randn(100), with({ n_fft = 16, hop_length = 4, win_length = 12, window = 'ones',
      center = false, pad_mode = 'reflect', normalized = true, power = 1 }, x))
  end,
  ['audio.window'] = function(x) return nn.audio.hann_window(8, with({ periodic = false }, x)) end,
  ['image.read'] = function(x)
    return nn.image.read('tests/data/media/rgba8.png', with({ channels = 3, background = 0, size = 2, filter = 'bilinear' }, x))
  end,
  ['image.resize'] = function(x) return nn.image.resize(nn.rand(1, 4, 4), 2, with({ filter = 'nearest' }, x)) end,
  interpolate = function(x)
    return nn.interpolate(nn.randn(1, 1, 2, 2), with({ size = 3, mode = 'bilinear', align_corners = false }, x))
  end,
  EmbeddingBag = function(x) return nn.EmbeddingBag(5, 2, with({ mode = 'sum', padding_idx = 1, include_last_offset = true }, x)) end,
  embedding_bag = function(x)
    return nn.embedding_bag(nn.tensor({ 1, 2 }, 'i64'), nn.randn(3, 2), nn.tensor({ 1, 3 }, 'i64'),
      with({ mode = 'sum', per_sample_weights = nn.ones(2), padding_idx = 3, include_last_offset = true }, x))
  end,
  unique = function(x) return nn.ones(3):unique(with({ sorted = true, return_inverse = true, return_counts = true }, x)) end,
  RNN = function(x)
    return nn.RNN(2, 3, with({ num_layers = 2, nonlinearity = 'relu', bias = true, batch_first = true,
      dropout = 0.1, bidirectional = true }, x))
  end,
  LSTM = function(x) return nn.LSTM(2, 3, with({ num_layers = 2, dropout = 0.2, bidirectional = true }, x)) end,
  GRU = function(x) return nn.GRU(2, 3, with({ bias = false, batch_first = true }, x)) end,
  GroupNorm = function(x) return nn.GroupNorm(2, 4, with({ eps = 1e-4, affine = false }, x)) end,
  batch_norm = function(x)
    return nn.batch_norm(nn.randn(4, 3), nn.zeros(3), nn.ones(3), nil, nil,
      with({ training = true, momentum = 0.1, eps = 1e-5 }, x))
  end,
  MaxPool2d = function(x)
    return nn.MaxPool2d(2, with({ stride = 1, padding = 1, ceil_mode = true, return_indices = true }, x))
  end,
  AvgPool2d = function(x) return nn.AvgPool2d(2, with({ stride = 1, padding = 1, ceil_mode = true }, x)) end,
  cross_entropy = function(x)
    return nn.cross_entropy(nn.randn(3, 4), L({ 1, 2, 3 }), with({ label_smoothing = 0.1 }, x))
  end,
  conv2d = function(x)
    return nn.conv2d(nn.randn(1, 2, 4, 4), nn.randn(2, 1, 3, 3), nil, with({ padding = 1, groups = 2 }, x))
  end,
  max_pool2d = function(x)
    return nn.max_pool2d(nn.randn(1, 1, 4, 4), 2, with({ stride = 2, padding = 1, ceil_mode = true,
      return_indices = true }, x))
  end,
  avg_pool2d = function(x)
    return nn.avg_pool2d(nn.randn(1, 1, 4, 4), 2, with({ stride = 2, padding = 1, ceil_mode = true }, x))
  end,
  attention = function(x)
    local q = nn.randn(1, 1, 3, 2)
    return nn.attention(q, q, q, with({ causal = true }, x))
  end,
  sgd_step = function(x) return nn.sgd_step(nn.randn(2), nn.randn(2), nil, with({ lr = 0.1 }, x)) end,
  adam_step = function(x)
    return nn.adam_step(nn.randn(2), nn.randn(2), nn.zeros(2), nn.zeros(2), nil, with({ lr = 0.1 }, x))
  end,
  rmsprop_step = function(x)
    return nn.rmsprop_step(nn.randn(2), nn.randn(2), nn.zeros(2), nil, nil, with({ lr = 0.1 }, x))
  end,
  adagrad_step = function(x) return nn.adagrad_step(nn.randn(2), nn.randn(2), nn.zeros(2), with({ lr = 0.1 }, x)) end,
  kge_score = function(x)
    return nn.kge_score(nn.randn(4, 2), nn.randn(1, 2), L({ 1 }), L({ 1 }), L({ 2, 3 }), with({ model = 'transe' }, x))
  end,
  prefetch = function(x) return nn.prefetch({ nn.randn(4, 2) }, nn.arange(1, 5), 2, with({ depth = 1 }, x)):next() end,
  ['prefetch augment'] = function(x)
    return nn.prefetch({ nn.randn(4, 1, 2, 2) }, nn.arange(1, 5), 2, { augment = with({ flip = true }, x) }):next()
  end,
  backward = function(x) return param(2):sum():backward(with({ retain_graph = false }, x)) end,
  gradcheck = function(x) return nn.gradcheck(function(a) return a:tanh() end, { param(3) }, with({ eps = 1e-3 }, x)) end,
  ['autograd.grad'] = function(x)
    local p = param(2)
    return nn.autograd.grad((p * p):sum(), p, with({ create_graph = true }, x))
  end,
  ['F.scaled_dot_product_attention'] = function(x)
    local q = nn.randn(1, 1, 3, 2)
    return nn.F.scaled_dot_product_attention(q, q, q, with({ causal = true }, x))
  end,
  ['F.mse_loss'] = function(x) return nn.F.mse_loss(nn.randn(3), nn.randn(3), with({ reduction = 'sum' }, x)) end,
  ['F.l1_loss'] = function(x) return nn.F.l1_loss(nn.randn(3), nn.randn(3), with({ reduction = 'sum' }, x)) end,
  ['F.smooth_l1_loss'] = function(x) return nn.F.smooth_l1_loss(nn.randn(3), nn.randn(3), with({ beta = 0.5 }, x)) end,
  ['F.nll_loss'] = function(x)
    return nn.F.nll_loss(nn.randn(3, 4):log_softmax(2), L({ 1, 2, 3 }), with({ reduction = 'sum' }, x))
  end,
  ['F.binary_cross_entropy'] = function(x)
    return nn.F.binary_cross_entropy(nn.rand(3), nn.ones(3), with({ reduction = 'sum' }, x))
  end,
  ['F.binary_cross_entropy_with_logits'] = function(x)
    return nn.F.binary_cross_entropy_with_logits(nn.randn(3), nn.ones(3), with({ pos_weight = nn.ones(3) }, x))
  end,
  ['F.margin_ranking_loss'] = function(x)
    return nn.F.margin_ranking_loss(nn.randn(3), nn.randn(3), nn.ones(3), with({ margin = 0.1 }, x))
  end,
  ['F.cosine_embedding_loss'] = function(x)
    return nn.F.cosine_embedding_loss(nn.randn(3, 2), nn.randn(3, 2), nn.ones(3), with({ margin = 0.1 }, x))
  end,
  ['F.kl_div'] = function(x)
    return nn.F.kl_div(nn.randn(3):log_softmax(1), nn.rand(3), with({ reduction = 'sum' }, x))
  end,
  ['generate.sample'] = function(x) return nn.generate.sample(nn.randn(2, 5), with({ top_k = 2 }, x)) end,
  ['generate.generate'] = function(x)
    return nn.generate.generate(tiny_gpt(), L({ { 1, 2 } }), 2, with({ greedy = true, block_size = 16 }, x))
  end,
  ['generate.batch_beam_search'] = function(x)
    local state = { reorder = function() end }
    local function step(tokens) return nn.tensor({ { -0.1, -3, -3 } }):expand(tokens:size(1), 3) end
    return nn.generate.batch_beam_search(step, state, 1, with({ beam = 1, bos = 3, eos = 1, max_len = 3,
      length_penalty = 1 }, x))
  end,
  ['nn.profile'] = function(x) return nn.profile(function() return nn.ones(1) + 1 end, with({ sort = 'calls', limit = 5 }, x)) end,
  ['metrics.bleu'] = function(x) return nn.metrics.bleu({ 'a b' }, { 'a b' }, with({ tokenize = '13a', smooth = 'exp' }, x)) end,
  ['metrics.cider'] = function(x) return nn.metrics.cider({ 'a b' }, { 'a b' }, with({ n = 2, sigma = 3 }, x)) end,
  ['metrics.rouge'] = function(x) return nn.metrics.rouge({ 'a b' }, { 'a b' }, with({ n = { 1 }, lcs = true }, x)) end,
  ['generate.beam_search'] = function(x)
    return nn.generate.beam_search(tiny_gpt(), L({ { 1, 2 } }), 2, 2, with({ length_penalty = 1 }, x))
  end,
  ['init.kaiming_uniform_'] = function(x) return nn.init.kaiming_uniform_(nn.empty(3, 4), with({ a = 1 }, x)) end,
  ['init.kaiming_normal_'] = function(x) return nn.init.kaiming_normal_(nn.empty(3, 4), with({ mode = 'fan_out' }, x)) end,
  KGEmbedding = function(x)
    return nn.KGEmbedding(with({ model = 'transe', num_entities = 4, num_relations = 1, dim = 2 }, x))
  end,
  ['kge.self_adversarial_loss'] = function(x)
    return nn.kge.self_adversarial_loss(nn.randn(3), nn.randn(3, 2), with({ temperature = 0.5 }, x))
  end,
  ['kge.NegativeSampler'] = function(x) return nn.kge.NegativeSampler(L({ { 1, 1, 2 } }), 4, with({ bernoulli = true }, x)) end,
  ['kge.evaluate'] = function(x)
    local test = L({ { 2, 1, 2 } })
    return nn.kge.evaluate(kge_model(), test, nn.kge.filter_index({ test }), with({ batch = 4 }, x))
  end,
  ['kge.load_triples'] = function(x) return nn.kge.load_triples(dir, with({ splits = { 'train', 'test' } }, x)) end,
  SumFusion = function(x) return nn.SumFusion({ 2, 3 }, 4, with({ shared = false }, x)) end,
  BilinearFusion = function(x) return nn.BilinearFusion(2, 3, 4, with({ factor = 2 }, x)) end,
  FiLM = function(x) return nn.FiLM(2, 3, with({ channel_dim = 2 }, x)) end,
  CrossModalAttention = function(x) return nn.CrossModalAttention(4, 6, 2, with({ dropout = 0 }, x)) end,
  ViT = function(x)
    return nn.ViT(with({ image_size = 4, patch_size = 2, channels = 1, num_classes = 3, dim = 8, depth = 1,
      heads = 2, mlp_dim = 8 }, x))
  end,
  ContrastiveLoss = function(x) return nn.ContrastiveLoss(with({ temperature = 0.1 }, x)) end,
  MultiTask = function(x)
    return nn.multimodal.MultiTask(nn.Linear(4, 6), { a = nn.Linear(6, 2) }, with({ weights = { a = 1 } }, x))
  end,
  ['optim.finite'] = function(x) return nn.optim.finite(nn.tensor(1), { param(2) }, with({ step = 1 }, x)) end,
  ['optim.SGD'] = function(x) return nn.optim.SGD({ param(2) }, with({ momentum = 0.9 }, x)) end,
  ['optim.Adam'] = function(x) return nn.optim.Adam({ param(2) }, with({ amsgrad = true }, x)) end,
  ['optim.AdamW'] = function(x) return nn.optim.AdamW({ param(2) }, with({ weight_decay = 0.1 }, x)) end,
  ['optim.RMSprop'] = function(x) return nn.optim.RMSprop({ param(2) }, with({ centered = true }, x)) end,
  ['optim.Adagrad'] = function(x) return nn.optim.Adagrad({ param(2) }, with({ lr_decay = 0.1 }, x)) end,
  ['optim.StepLR'] = function(x) return nn.optim.StepLR(opt(), with({ step_size = 2 }, x)) end,
  ['optim.CosineLR'] = function(x) return nn.optim.CosineLR(opt(), with({ total = 10 }, x)) end,
  ['optim.LinearLR'] = function(x) return nn.optim.LinearLR(opt(), with({ total = 10 }, x)) end,
  ['optim.OneCycleLR'] = function(x) return nn.optim.OneCycleLR(opt(), with({ max_lr = 1, total = 10 }, x)) end,
  ['optim.ReduceLROnPlateau'] = function(x) return nn.optim.ReduceLROnPlateau(opt(), with({ patience = 2 }, x)) end,
  ['plot.svg'] = function(x) return nn.plot.svg(dir .. '/a.svg', { { name = 'l', y = { 3, 2 } } }, with({ title = 't' }, x)) end,
  ['plot.heatmap'] = function(x) return nn.plot.heatmap(dir .. '/h.svg', nn.rand(2, 2), with({ title = 't' }, x)) end,
  ['plot.scatter'] = function(x) return nn.plot.scatter(dir .. '/s.svg', nn.rand(3, 2), with({ title = 't' }, x)) end,
  ['plot.image_grid'] = function(x)
    return nn.plot.image_grid(dir .. '/g.svg', { { images = { nn.rand(3, 3) }, caption = { 'a' } } }, with({ title = 't' }, x))
  end,
  ['plot.from_log'] = function(x) return nn.plot.from_log(jl, dir .. '/l.svg', { 'loss' }, with({ title = 't' }, x)) end,
  progress = function(x)
    for _ in nn.progress(2, with({ tty = false, every = 10 }, x)) do end
    return true
  end,
  ['progress.log'] = function(x) return nn.progress.log(dir .. '/w.jsonl', with({ format = 'jsonl' }, x)) end,
  ['dist.init'] = function(x) return nn.dist.init(with({ timeout = 60, log = 'rank0' }, x)) end,
  ['dist.DistributedDataParallel'] = function(x)
    return nn.dist.DistributedDataParallel(nn.Linear(2, 2), with({ bucket_mb = 1 }, x))
  end,
  ['dist.DistributedSampler'] = function(x)
    return nn.dist.DistributedSampler(8, with({ shuffle = true, seed = 1, drop_last = true, rank = 0,
      world_size = 2 }, x))
  end,
  ['data.DataLoader'] = function(x)
    local ds = nn.data.TensorDataset(nn.randn(4, 2))
    return nn.data.DataLoader(ds, with({ batch_size = 2 }, x))
  end,
  ['data.read_table'] = function(x) return nn.data.read_table(tsv, with({ header = false }, x)) end,
  MultiheadAttention = function(x) return nn.MultiheadAttention(4, 2, with({ dropout = 0 }, x)) end,
  ['MultiheadAttention:forward'] = function(x)
    local q = nn.randn(1, 3, 4)
    return nn.MultiheadAttention(4, 2)(q, q, q, with({ is_causal = true }, x))
  end,
  TransformerEncoderLayer = function(x) return nn.TransformerEncoderLayer(4, 2, with({ dim_feedforward = 8 }, x)) end,
  TransformerDecoderLayer = function(x) return nn.TransformerDecoderLayer(4, 2, with({ dim_feedforward = 8 }, x)) end,
  ['TransformerEncoderLayer:forward'] = function(x)
    return nn.TransformerEncoderLayer(4, 2, { dim_feedforward = 8 })(nn.randn(1, 3, 4), with({ is_causal = true }, x))
  end,
  ['TransformerDecoderLayer:forward'] = function(x)
    return nn.TransformerDecoderLayer(4, 2, { dim_feedforward = 8 })(nn.randn(1, 3, 4), nn.randn(1, 2, 4),
      with({ tgt_is_causal = true, beams = 1 }, x))
  end,
  ['TransformerEncoder:forward'] = function(x)
    local enc = nn.TransformerEncoder(function() return nn.TransformerEncoderLayer(4, 2, { dim_feedforward = 8 }) end, 1)
    return enc(nn.randn(1, 3, 4), with({ is_causal = true }, x))
  end,
  ['TransformerDecoder:forward'] = function(x)
    local dec = nn.TransformerDecoder(function() return nn.TransformerDecoderLayer(4, 2, { dim_feedforward = 8 }) end, 1)
    return dec(nn.randn(1, 3, 4), nn.randn(1, 2, 4), with({ tgt_is_causal = true }, x))
  end,
  Transformer = function(x)
    return nn.Transformer(with({ d_model = 4, nhead = 2, num_encoder_layers = 1, num_decoder_layers = 1,
      dim_feedforward = 8 }, x))
  end,
  ['Transformer:forward'] = function(x)
    local m = nn.Transformer({ d_model = 4, nhead = 2, num_encoder_layers = 1, num_decoder_layers = 1, dim_feedforward = 8 })
    return m(nn.randn(1, 3, 4), nn.randn(1, 2, 4), with({}, x))
  end,
  ['checkpoint.save'] = function(x)
    return nn.checkpoint.save(dir .. '/c.safetensors', with({ model = nn.Linear(2, 2), step = 3 }, x))
  end,
  ['checkpoint.load'] = function(x)
    local m = nn.Linear(2, 2)
    assert(nn.checkpoint.save(dir .. '/d.safetensors', { model = m, step = 3 }))
    return nn.checkpoint.load(dir .. '/d.safetensors', with({ model = m }, x))
  end,
}

describe('options tables', function()
  local registry = nn.option_registry()
  local foreign = { ['my.fn'] = true, ['spec.fn'] = true } -- declared by docs/api.md and below
  local names = {}
  for name in pairs(registry) do
    if not foreign[name] then names[#names + 1] = name end
  end
  table.sort(names)

  it('covers every options-taking function in the registry', function()
    local missing = {}
    for _, name in ipairs(names) do
      if not calls[name] then missing[#missing + 1] = name end
    end
    assert.same({}, missing)
    assert.truthy(#names >= 80, #names .. ' functions')
  end)

  for _, name in ipairs(names) do
    it(name .. ' accepts its options and rejects an unknown one', function()
      local call = assert(calls[name], 'no call for ' .. name)
      call({}) -- the valid call works (an error fails the test)
      local ok, err = pcall(call, { zz_unknown = 1 })
      assert.is_false(ok, name .. ' accepted an unknown option')
      local accepted = table.concat(registry[name], ', ')
      local want = ("%s: unknown option 'zz_unknown' (accepted: %s)"):format(name, accepted)
      assert.truthy(tostring(err):find(want, 1, true), tostring(err))
    end)
  end

  it('rejects a known option the function does not implement', function()
    assert.error_contains(function() nn.MultiheadAttention(4, 2, { batch_first = false }) end,
      'only batch_first = true is implemented')
  end)

  it('rejects keys that are not strings and options that are not tables', function()
    assert.error_contains(function() nn.Linear(2, 2, { 1 }) end, 'options are named by strings')
    assert.error_contains(function() nn.Linear(2, 2, 5) end, 'options table expected')
    local check = nn.define_options('spec.fn', { 'a' })
    assert.error_contains(function() check({ [true] = 1 }) end, 'options are named by strings')
    assert.equal(1, check({ a = 1 }).a)
  end)
end)
