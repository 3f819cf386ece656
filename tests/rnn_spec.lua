-- RNN (tanh, relu), LSTM and GRU against PyTorch 1.13
-- (tests/ref/gen_rnn.py -> tests/ref/rnn.json): outputs, final states,
-- gradients of the input, the initial states and every parameter, with
-- multiple layers, both directions, batch_first and variable lengths;
-- finite-difference checks of the recurrence; argument errors.
local nn = require 'nnlua'
local support = require 'support'

local ref = support.reference('rnn')
local near = support.near

local function T(v) return nn.tensor(v) end

local function build(c)
  local opts = next(c.options) and c.options or nil
  local layer = nn[c.layer](c.args[1], c.args[2], opts)
  local st = {}
  for k, v in pairs(c.state) do st[k] = T(v) end
  layer:load_state_dict(st)
  return layer
end

describe('recurrent layers against PyTorch', function()
  for _, c in ipairs(ref.cases) do
    it(c.name, function()
      local layer = build(c)
      local x = T(c.x):requires_grad_()
      local init = {}
      for k, v in pairs(c.initial) do init[k] = T(v):requires_grad_() end
      local state = init.h0
      if c.layer == 'LSTM' and init.h0 then state = { init.h0, init.c0 } end
      local lengths = type(c.lengths) == 'table' and nn.tensor(c.lengths, 'i64') or nil
      local out, final = layer(x, state, lengths)
      local h, cn = final, nil
      if c.layer == 'LSTM' then h, cn = final[1], final[2] end
      near(c.output, out, 'output', 1e-4)
      near(c.h_n, h, 'h_n', 1e-4)
      local loss = (out * T(c.proj)):sum() + (h * T(c.proj_h)):sum()
      if cn then
        near(c.c_n, cn, 'c_n', 1e-4)
        loss = loss + (cn * T(c.proj_c)):sum()
      end
      loss:backward()
      near(c.grad_x, x.grad, 'input gradient', 1e-4)
      for k, g in pairs(c.grad_initial) do near(g, init[k].grad, k .. ' gradient', 1e-4) end
      for name, g in pairs(c.param_grads) do near(g, layer[name].grad, name .. ' gradient', 1e-4) end
    end)
  end
end)

describe('recurrent layers', function()
  it('pass finite-difference checks through the recurrence, lengths and states', function()
    nn.manual_seed(3)
    for _, kind in ipairs({ 'RNN', 'LSTM', 'GRU' }) do
      local m = nn[kind](2, 3, { bidirectional = true })
      local lens = nn.tensor({ 4, 2 }, 'i64')
      local h0 = nn.randn(2, 2, 3):requires_grad_()
      local c0 = nn.randn(2, 2, 3):requires_grad_()
      local params = { nn.randn(4, 2, 2):requires_grad_(), h0, m.weight_hh_l0, m.bias_hh_l0_reverse }
      if kind == 'LSTM' then params[#params + 1] = c0 end
      assert(nn.gradcheck(function(x, h, whh, b, c)
        local o, s = m(x, kind == 'LSTM' and { h, c } or h, lens)
        if kind == 'LSTM' then return o:sum() + (s[1] * 0.5):sum() + (s[2] * 0.3):sum() end
        return o:sum() + (s * 0.5):sum()
      end, params), kind)
    end
  end)

  it('take a padding mask, zero the outputs past each length, and carry state between calls', function()
    nn.manual_seed(4)
    local m = nn.GRU(3, 4, { batch_first = true })
    local x = nn.randn(2, 5, 3)
    local mask = nn.tensor({ { 1, 1, 1, 0, 0 }, { 1, 1, 1, 1, 1 } })
    local a, ha = m(x, nil, mask)
    local b, hb = m(x, nil, nn.tensor({ 3, 5 }, 'i64'))
    assert.same(a:totable(), b:totable())
    assert.same(ha:totable(), hb:totable())
    assert.same({ 0, 0, 0, 0 }, a[1][4]:totable())
    -- the state after 3 steps equals the output at step 3
    assert.same(a[1][3]:totable(), ha[1][1]:totable())
    -- two calls of 2 + 3 steps, passing the state, equal one of 5
    local full, hf = m(x)
    local first, h1 = m(x:narrow(2, 1, 2))
    local second, h2 = m(x:narrow(2, 3, 3), h1)
    support.near(full:narrow(2, 3, 3):totable(), second, 'continued output', 1e-6)
    support.near(hf:totable(), h2, 'continued state', 1e-6)
    local lstm = nn.LSTM(3, 2, { num_layers = 2, dropout = 0.5 })
    lstm:eval()
    local o1 = lstm(nn.ones(4, 1, 3))
    local o2 = lstm(nn.ones(4, 1, 3))
    assert.same(o1:totable(), o2:totable())   -- no dropout in eval
  end)

  it('print, name their parameters as PyTorch, and reject bad shapes and options', function()
    local m = nn.LSTM(3, 4, { num_layers = 2, bidirectional = true })
    assert.matches('^LSTM%(input_size=3, hidden_size=4, num_layers=2', tostring(m))
    local names = {}
    for k in pairs(m:state_dict()) do names[#names + 1] = k end
    table.sort(names)
    assert.equal(16, #names)
    assert.equal('bias_hh_l0', names[1])
    assert.equal('weight_ih_l1_reverse', names[#names])
    assert.same({ 16, 8 }, m.weight_ih_l1:size())
    assert.error_matches(function() nn.LSTM(3, 4)(nn.randn(5, 2, 2)) end,
      'LSTM%(3, 4%): expected input %(T, B, I%) with 3 features, got 5x2x2')
    assert.error_matches(function() nn.GRU(3, 4)(nn.randn(5, 2, 3), nn.randn(1, 3, 4)) end,
      'GRU: h0 1x3x4 must be %(num_layers %* directions, B, H%) = %(1, 2, 4%)')
    assert.error_matches(function() nn.LSTM(3, 4)(nn.randn(5, 2, 3), nn.randn(1, 2, 4)) end,
      'LSTM: the initial state must be {h0, c0}')
    assert.error_matches(function() nn.RNN(3, 4)(nn.randn(5, 2, 3), nil, nn.tensor({ 6, 1 }, 'i64')) end,
      'RNN: length 6 of sequence 1 is outside 1..5')
    assert.error_matches(function() nn.RNN(3, 4)(nn.randn(5, 2, 3), nil, nn.tensor({ 1, 1, 1 }, 'i64')) end,
      'RNN: lengths 3 must be i64 %(B%) = %(2%)')
    assert.error_matches(function()
      nn.RNN(3, 4)(nn.randn(3, 2, 3), nil, nn.tensor({ { 1, 0 }, { 0, 1 }, { 0, 1 } }))
    end, 'RNN: the padding mask of sequence 2 is not a prefix %(step 2 is real after padding%)')
    assert.error_matches(function() nn.RNN(3, 4, { nonlinearity = 'sigmoid' }) end, 'invalid option')
    assert.error_matches(function() nn.GRU(3, 4, { num_layers = 9 }) end, 'num_layers must be in 1..8')
    assert.error_matches(function() nn.GRU(3, 4, { dropout = 1 }) end, 'dropout must be in')
    assert.error_matches(function() nn.GRU(3, 4, { nonlinearity = 'relu' }) end, "unknown option 'nonlinearity'")
  end)
end)
