local nn = require 'nnlua'

local function check(fn, inputs, opts)
  local ok, msg = nn.gradcheck(fn, inputs, opts)
  assert(ok, msg)
end

local function leaf(...) return nn.randn(...):requires_grad_() end

describe('built-in layers', function()
  before_each(function() nn.manual_seed(3) end)

  describe('gradcheck of the fused ops', function()
    it('linear', function()
      check(function(x, w, b) return nn.linear(x, w, b) end, { leaf(2, 3, 4), leaf(5, 4), leaf(5) })
      check(function(x, w) return nn.linear(x, w) end, { nn.randn(3, 4):t():requires_grad_(), leaf(2, 3) })
    end)

    it('layer_norm and rms_norm', function()
      check(function(x, w, b) return nn.layer_norm(x, 1, w, b) end, { leaf(3, 5), leaf(5), leaf(5) })
      check(function(x, w, b) return nn.layer_norm(x, 2, w, b) end, { leaf(2, 3, 4), leaf(3, 4), leaf(3, 4) })
      check(function(x) return nn.layer_norm(x, 1) end, { leaf(4, 6) })
      check(function(x, w) return nn.rms_norm(x, 1, w) end, { leaf(3, 5), leaf(5) })
    end)

    it('embedding', function()
      local idx = nn.tensor({ { 1, 3, 3 }, { 4, 2, 1 } }, 'i64')
      check(function(w) return nn.embedding(idx, w) end, { leaf(4, 3) })
      -- the padding row gets no gradient; the others the same as without it
      local w = leaf(4, 3)
      nn.embedding(idx, w):sum():backward()
      local full = w.grad
      w.grad = nil
      nn.embedding(idx, w, 3):sum():backward()
      assert.tensor_near({ 0, 0, 0 }, w.grad[3])
      assert.tensor_near(full[1], w.grad[1])
      assert.tensor_near(full[4], w.grad[4])
    end)

    it('conv2d', function()
      check(function(x, w, b) return nn.conv2d(x, w, b, { padding = 1 }) end,
        { leaf(2, 2, 4, 4), leaf(3, 2, 3, 3), leaf(3) })
      check(function(x, w) return nn.conv2d(x, w, nil, { stride = { 2, 1 }, dilation = 2, padding = { 1, 2 } }) end,
        { leaf(1, 2, 6, 5), leaf(2, 2, 2, 3) })
      check(function(x, w, b) return nn.conv2d(x, w, b, { padding = 1, groups = 2 }) end,
        { leaf(1, 4, 4, 4), leaf(6, 2, 3, 3), leaf(6) })
    end)

    it('grouped conv2d: the Conv2d layer and its errors', function()
      local c = nn.Conv2d(4, 6, 3, { groups = 2, padding = 1 })
      assert.same({ 6, 2, 3, 3 }, c.weight.shape)
      assert.equal(2, c.groups)
      local x = nn.randn(2, 4, 5, 5)
      local y = c(x)
      -- each half of the output sees its half of the input only
      local half = nn.conv2d(x:narrow(2, 3, 2), c.weight:narrow(1, 4, 3), c.bias:narrow(1, 4, 3), { padding = 1 })
      assert.tensor_near(half, y:narrow(2, 4, 3), 1e-5, 1e-5)
      assert.error_contains(function() nn.Conv2d(4, 6, 3, { groups = 4 }) end,
        'groups = 4 must divide in_channels 4 and out_channels 6')
      assert.error_contains(function() nn.Conv2d(4, 6, 3, { groups = 1.5 }) end, 'groups must be an integer')
      assert.error_contains(function() nn.conv2d(x, nn.ones(6, 4, 3, 3), nil, { groups = 2 }) end,
        'weight 6x4x3x3 does not match input 2x4x5x5 (expected (out, 2, kh, kw), out divisible by groups)')
      assert.error_contains(function() nn.conv2d(x, nn.ones(6, 2, 3, 3), nil, { groups = 0 }) end,
        'groups must be an integer in 1..4096')
    end)

    it('pooling', function()
      check(function(x) return nn.max_pool2d(x, 2) end, { leaf(2, 2, 4, 6) })
      check(function(x) return nn.avg_pool2d(x, 3, { stride = 2, padding = 1 }) end, { leaf(1, 2, 5, 5) })
    end)

    it('dropout with a fixed mask', function()
      local x = leaf(4, 5)
      nn.manual_seed(9)
      check(function(x) nn.manual_seed(9); return nn.dropout(x, 0.4) end, { x })
    end)

    it('cross_entropy', function()
      local t = nn.tensor({ 1, 3, 2, 2 }, 'i64')
      check(function(x) return nn.cross_entropy(x, t) end, { leaf(4, 3) })
      check(function(x) return nn.cross_entropy(x, t, { reduction = 'none', label_smoothing = 0.2,
        ignore_index = 3 }) end, { leaf(4, 3) })
      local probs = nn.rand(4, 3):softmax(2)
      check(function(x) return nn.cross_entropy(x, probs) end, { leaf(4, 3) })
    end)

    it('cross_entropy over rows wide enough to split across threads', function()
      -- (64, 1000): the row-parallel loops, against log_softmax and gather
      local t = nn.randint(1, 1001, 64)
      t[5] = 7 -- an ignored row
      for _, opts in ipairs({ {}, { ignore_index = 7, label_smoothing = 0.1 } }) do
        local x1, x2 = leaf(64, 1000), nil
        x2 = x1:detach():requires_grad_()
        local got = nn.cross_entropy(x1, t, opts)
        local lp = x2:log_softmax(2)
        local keep = nn.ones(64)
        if opts.ignore_index then keep[5] = 0 end
        local eps = opts.label_smoothing or 0
        local rows = -(lp:gather(2, t:view(64, 1)):view(64) * (1 - eps) + lp:mean(2):view(64) * eps)
        local want = (rows * keep):sum() / keep:sum()
        assert.is_true(math.abs(got:item() - want:item()) < 1e-4 * math.abs(want:item()))
        got:backward()
        want:backward()
        assert.is_true((x1.grad - x2.grad):abs():max():item() < 1e-6)
      end
    end)
  end)

  describe('as objects', function()
    it('holds named parameters initialised as PyTorch does', function()
      local lin = nn.Linear(100, 30)
      assert.same({ 30, 100 }, lin.weight.shape)
      assert.is_true(lin.weight.requires_grad)
      local bound = 1 / math.sqrt(100)
      assert.is_true(lin.weight:abs():max():item() <= bound)
      assert.is_true(lin.weight:std():item() > 0.8 * bound / math.sqrt(3))
      local names = {}
      for n in lin:named_parameters() do names[#names + 1] = n end
      assert.same({ 'weight', 'bias' }, names)
      assert.is_nil(nn.Linear(3, 2, { bias = false }).bias)
      assert.equal(1, #nn.Linear(3, 2, { bias = false }):parameters())
      assert.equal(100, lin.in_features)
      assert.equal('Linear(in_features=100, out_features=30, bias=True)', tostring(lin))
      local ln = nn.LayerNorm(8)
      assert.tensor_near(nn.ones(8), ln.weight)
      assert.tensor_near(nn.zeros(8), ln.bias)
      local emb = nn.Embedding(10, 4, { padding_idx = 2 })
      assert.tensor_near(nn.zeros(4), emb.weight[2])
    end)

    it('switches dropout off in eval mode', function()
      local d = nn.Dropout(0.5)
      local x = nn.ones(1000)
      local y = d(x)
      assert.is_true(math.abs(y:eq(0):mean():item() - 0.5) < 0.06)
      assert.tensor_near({ 2 }, y:max():view(1))
      d:eval()
      assert.is_false(d.training)
      assert.tensor_near(x, d(x))
    end)

    it('accepts new parameter tensors of the right shape only', function()
      local lin = nn.Linear(3, 2)
      lin.weight = nn.ones(2, 3)
      assert.tensor_near({ { 3, 3 } }, lin(nn.ones(1, 3)) - lin.bias)
      assert.is_true(lin.weight.requires_grad)
      assert.error_contains(function() lin.weight = nn.ones(3, 2) end, 'must be an f32 tensor of shape 2x3')
      assert.error_contains(function() lin.nope = nn.ones(1) end, "no parameter 'nope'")
    end)

    it('zeroes gradients', function()
      local lin = nn.Linear(3, 2)
      lin(nn.ones(4, 3)):sum():backward()
      assert.is_not_nil(lin.weight.grad)
      lin:zero_grad()
      assert.is_nil(lin.weight.grad)
    end)

    it('computes the usual layers', function()
      local x = nn.tensor({ { -1, 0.5, 2 } })
      assert.tensor_near(x:relu(), nn.ReLU()(x))
      assert.tensor_near(x:tanh(), nn.Tanh()(x))
      assert.tensor_near(x:sigmoid(), nn.Sigmoid()(x))
      assert.tensor_near(x:softmax(2), nn.Softmax()(x))
      assert.tensor_near(x:leaky_relu(0.2), nn.LeakyReLU(0.2)(x))
      assert.same({ 2, 12 }, nn.Flatten()(nn.zeros(2, 3, 4)).shape)
      assert.same({ 2, 4, 3, 3 }, nn.Conv2d(1, 4, 3, { stride = 2, padding = 1 })(nn.zeros(2, 1, 5, 5)).shape)
      assert.same({ 1, 1, 2, 2 }, nn.AvgPool2d(2)(nn.zeros(1, 1, 4, 5)).shape)
      local ln = nn.LayerNorm(3, { elementwise_affine = false })
      assert.equal(0, #ln:parameters())
      assert.is_true(math.abs(ln(x):mean():item()) < 1e-6)
    end)

    it('rejects bad inputs with the shapes involved', function()
      assert.error_contains(function() nn.Linear(3, 2)(nn.ones(4, 5)) end, 'does not end in 3 features')
      assert.error_contains(function() nn.Linear(0, 2) end, 'must be positive')
      assert.error_contains(function() nn.Conv2d(3, 4, 3)(nn.ones(1, 2, 5, 5)) end, 'does not match input')
      assert.error_contains(function() nn.Conv2d(1, 1, 5)(nn.ones(1, 1, 3, 3)) end, 'larger than the padded input')
      assert.error_contains(function() nn.Embedding(5, 2)(nn.tensor({ 6 }, 'i64')) end, 'out of range')
      assert.error_contains(function() nn.Embedding(5, 2)(nn.tensor({ 1 })) end, 'i64')
      assert.error_contains(function() nn.LayerNorm(4)(nn.ones(2, 3)) end, 'does not match the 3')
      assert.error_contains(function() nn.cross_entropy(nn.ones(2, 3), nn.tensor({ 1, 4 }, 'i64')) end,
        'target 4 out of range')
      assert.error_contains(function() nn.cross_entropy(nn.ones(2, 3), nn.tensor({ 1 }, 'i64')) end,
        'does not match logits 2x3')
      assert.error_contains(function() nn.MaxPool2d(3)(nn.ones(1, 1, 2, 2)) end, 'window larger')
      local pair_msg = 'must be an integer or a pair {h, w} of integers'
      assert.error_contains(function() nn.Conv2d(1, 2, { 3, 'x' }) end, 'kernel_size ' .. pair_msg)
      assert.error_contains(function() nn.Conv2d(1, 2) end, "bad argument #3 to 'Conv2d'")
      assert.error_contains(function() nn.Conv2d(1, 2, 3, { stride = 2.5 }) end, 'stride ' .. pair_msg)
      assert.error_contains(function() nn.MaxPool2d({ 2, 2 ^ 40 }) end, 'kernel_size ' .. pair_msg)
      assert.error_contains(function() nn.F.max_pool2d(nn.ones(1, 1, 4, 4), 2, { stride = 'a' }) end,
        'stride ' .. pair_msg)
      assert.error_contains(function() nn.F.conv2d(nn.ones(1, 1, 4, 4), nn.ones(1, 1, 2, 2), nil,
        { padding = { 1 } }) end, 'padding ' .. pair_msg)
      assert.error_contains(function() nn.Dropout(1.5) end, 'in [0, 1]')
    end)
  end)

  describe('nn.init', function()
    it('fills tensors in place with the documented distributions', function()
      local w = nn.zeros(200, 300):requires_grad_()
      nn.init.xavier_uniform_(w)
      local a = math.sqrt(6 / 500)
      assert.is_true(w:abs():max():item() <= a)
      assert.is_true(math.abs(w:std():item() - a / math.sqrt(3)) < 0.05 * a)
      nn.init.kaiming_normal_(w, { nonlinearity = 'relu' })
      assert.is_true(math.abs(w:std():item() - math.sqrt(2 / 300)) < 0.05 * math.sqrt(2 / 300))
      nn.init.kaiming_uniform_(w, { a = math.sqrt(5) })
      assert.is_true(w:abs():max():item() <= 1 / math.sqrt(300) + 1e-6)
      nn.init.normal_(w, 2, 0.5)
      assert.is_true(math.abs(w:mean():item() - 2) < 0.01)
      nn.init.uniform_(w, -1, 3)
      assert.is_true(w:min():item() >= -1 and w:max():item() < 3)
      nn.init.zeros_(w)
      assert.equal(0, w:abs():sum():item())
      nn.init.constant_(w, 0.5)
      assert.equal(0.5, w:mean():item())
      assert.is_true(w.requires_grad)
      assert.near(5 / 3, nn.init.calculate_gain('tanh'), 1e-12)
    end)
  end)
end)
