-- Layers, losses and optimizers against PyTorch 1.13 on the fixtures that
-- tests/ref/gen_layers.py wrote (PyTorch is not needed to run this).
local nn = require 'nnlua'
local cjson = require 'cjson'

local f = assert(io.open('tests/ref/layers.json'))
local ref = cjson.decode(f:read('a'))
f:close()
assert(ref.format == 'nnlua-ref' and ref.version == 1, 'unknown fixture format')

local cases = {}
for _, c in ipairs(ref.cases) do cases[c.name] = c end

local T = function(x) return nn.tensor(x) end
local I = function(x) return nn.tensor(x, 'i64') end
local RTOL, ATOL = 1e-5, 1e-5

-- Runs fn on fresh leaves made from the case's inputs, then checks the
-- output and the gradients of sum(output * proj) against PyTorch's.
local function check(name, fn, rtol, atol)
  local c = assert(cases[name], 'no fixture ' .. name)
  local leaves = {}
  for k, v in pairs(c.inputs) do leaves[k] = T(v):requires_grad_() end
  local out = fn(leaves, c)
  assert.tensor_near(c.output, out, rtol or RTOL, atol or ATOL)
  ;(out * T(c.proj)):sum():backward()
  for k, g in pairs(c.grads) do
    assert.tensor_near(g, leaves[k].grad, rtol or RTOL, atol or ATOL)
  end
end

describe('against PyTorch ' .. ref.torch, function()
  describe('layers', function()
    it('Linear, with and without bias', function()
      check('linear', function(l) return nn.linear(l.x, l.w, l.b) end)
      check('linear_nobias', function(l) return nn.linear(l.x, l.w) end)
      local lin = nn.Linear(4, 5)
      local c = cases.linear
      nn.no_grad(function()
        lin.weight:copy_(T(c.inputs.w))
        lin.bias:copy_(T(c.inputs.b))
      end)
      assert.tensor_near(c.output, lin(T(c.inputs.x)))
    end)

    it('LayerNorm over one and two trailing dims', function()
      check('layer_norm', function(l) return nn.layer_norm(l.x, 1, l.w, l.b, 1e-5) end)
      check('layer_norm_2d', function(l) return nn.layer_norm(l.x, 2, l.w, l.b, 1e-5) end)
    end)

    it('RMSNorm', function()
      check('rms_norm', function(l) return nn.rms_norm(l.x, 1, l.w, 1e-6) end)
    end)

    it('Embedding with a padding row', function()
      check('embedding', function(l, c) return nn.embedding(I(c.idx), l.w, c.padding_idx) end)
    end)

    it('Conv2d with stride, padding and dilation', function()
      check('conv2d', function(l, c)
        return nn.conv2d(l.x, l.w, l.b, { stride = c.stride, padding = c.padding })
      end, 1e-5, 2e-5)
      check('conv2d_dilated', function(l, c)
        return nn.conv2d(l.x, l.w, nil, { stride = c.stride, padding = c.padding,
                                           dilation = c.dilation })
      end)
      check('conv2d_groups', function(l, c)
        return nn.conv2d(l.x, l.w, l.b, { padding = c.padding, groups = c.groups })
      end)
    end)

    it('MaxPool2d and AvgPool2d', function()
      check('max_pool2d', function(l, c) return nn.max_pool2d(l.x, c.kernel, { stride = c.stride }) end)
      check('avg_pool2d', function(l, c)
        return nn.avg_pool2d(l.x, c.kernel, { stride = c.stride, padding = c.padding })
      end)
    end)

    it('activations and softmax', function()
      check('gelu', function(l) return l.x:gelu() end)
      check('gelu_tanh', function(l) return nn.GELU({ approximate = 'tanh' })(l.x) end)
      check('silu', function(l) return nn.SiLU()(l.x) end)
      check('softmax', function(l) return l.x:softmax(2) end)
      check('log_softmax', function(l) return l.x:log_softmax(1) end)
    end)
  end)

  describe('losses', function()
    it('cross_entropy with weights, ignore_index and label smoothing', function()
      for _, red in ipairs({ 'mean', 'sum', 'none' }) do
        check('cross_entropy_' .. red, function(l, c)
          return nn.cross_entropy(l.x, I(c.target), { weight = T(c.weight),
            ignore_index = c.ignore_index, label_smoothing = c.label_smoothing, reduction = red })
        end)
      end
    end)

    it('cross_entropy with probabilities', function()
      check('cross_entropy_probs', function(l, c)
        return nn.cross_entropy(l.x, T(c.probs), { label_smoothing = c.label_smoothing })
      end)
    end)

    it('nll, mse, l1, smooth_l1', function()
      check('nll_loss', function(l, c)
        return nn.F.nll_loss(l.x:log_softmax(2), I(c.target), { weight = T(c.weight),
          ignore_index = c.ignore_index })
      end)
      check('mse_loss', function(l, c) return nn.F.mse_loss(l.x, T(c.y)) end)
      check('l1_loss', function(l, c) return nn.F.l1_loss(l.x, T(c.y), { reduction = 'sum' }) end)
      check('smooth_l1_loss', function(l, c) return nn.F.smooth_l1_loss(l.x, T(c.y), { beta = 0.5 }) end)
    end)

    it('binary cross-entropy, on probabilities and on logits with pos_weight', function()
      check('binary_cross_entropy', function(l, c) return nn.F.binary_cross_entropy(l.p, T(c.y)) end)
      check('bce_with_logits', function(l, c)
        return nn.F.binary_cross_entropy_with_logits(l.x, T(c.y), { pos_weight = T(c.pos_weight) })
      end)
    end)

    it('margin ranking, cosine embedding and KL divergence', function()
      check('margin_ranking_loss', function(l, c)
        return nn.F.margin_ranking_loss(l.a, l.b, T(c.y), { margin = 0.3 })
      end)
      check('cosine_embedding_loss', function(l, c)
        return nn.F.cosine_embedding_loss(l.a, l.b, T(c.y), { margin = 0.2 })
      end)
      check('kl_div', function(l, c)
        return nn.F.kl_div(l.x:log_softmax(2), T(c.target), { reduction = 'batchmean' })
      end)
    end)
  end)

  describe('optimizers, three steps on fixed gradients', function()
    local classes = { sgd = 'SGD', sgd_dampening = 'SGD', adam = 'Adam', adamw = 'AdamW',
                      rmsprop = 'RMSprop', adagrad = 'Adagrad' }
    for name, cls in pairs(classes) do
      it(name, function()
        local c = cases['optim_' .. name]
        local p = T(c.param):requires_grad_()
        local opt = nn.optim[cls]({ p }, c.options)
        for step, g in ipairs(c.grads) do
          p.grad = T(g)
          opt:step()
          assert.tensor_near(c.after[step], p, 1e-5, 1e-6)
        end
      end)
    end
  end)
end)
