--- nnlua.init (nn.init): in-place parameter initialisers, as PyTorch's
--- torch.nn.init. Each fills t without recording gradients and returns it.
--- Defaults of the built-in layers: Linear and Conv2d weights and biases
--- ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (PyTorch's kaiming_uniform_ with
--- a = sqrt(5)); Embedding ~ N(0, 1); norms: weight 1, bias 0.
local nn = require 'nnlua'

local M = {}

local function fill(t, src)
  nn.no_grad(function() t:copy_(src) end)
  return t
end

--- fan_in, fan_out of a weight: (out, in, k...) as PyTorch counts them.
function M.fans(t)
  local s = t:size()
  if #s < 2 then error('fan in and fan out need at least 2 dims', 3) end
  local field = 1
  for i = 3, #s do field = field * s[i] end
  return s[2] * field, s[1] * field
end

--- The recommended gain for a nonlinearity (PyTorch's calculate_gain).
function M.calculate_gain(nonlinearity, param)
  if nonlinearity == 'tanh' then return 5 / 3 end
  if nonlinearity == 'relu' then return math.sqrt(2) end
  if nonlinearity == 'leaky_relu' then
    local slope = param or 0.01
    return math.sqrt(2 / (1 + slope * slope))
  end
  if nonlinearity == 'selu' then return 3 / 4 end
  return 1 -- linear, conv, sigmoid
end

function M.uniform_(t, a, b)
  a, b = a or 0, b or 1
  return fill(t, nn.rand_like(t) * (b - a) + a)
end

function M.normal_(t, mean, std)
  return fill(t, nn.randn_like(t) * (std or 1) + (mean or 0))
end

function M.constant_(t, v) nn.no_grad(function() t:fill_(v) end) return t end
function M.zeros_(t) return M.constant_(t, 0) end
function M.ones_(t) return M.constant_(t, 1) end

function M.xavier_uniform_(t, gain)
  local fi, fo = M.fans(t)
  local a = (gain or 1) * math.sqrt(6 / (fi + fo))
  return M.uniform_(t, -a, a)
end

function M.xavier_normal_(t, gain)
  local fi, fo = M.fans(t)
  return M.normal_(t, 0, (gain or 1) * math.sqrt(2 / (fi + fo)))
end

local function kaiming_std(t, o)
  o = o or {}
  local fi, fo = M.fans(t)
  local fan = (o.mode or 'fan_in') == 'fan_in' and fi or fo
  return M.calculate_gain(o.nonlinearity or 'leaky_relu', o.a or 0) / math.sqrt(fan)
end

local OPTIONS_INIT_KAIMING_UNIFORM_ = nn.define_options('init.kaiming_uniform_', { 'a', 'mode', 'nonlinearity' })
--- kaiming_uniform_(t, {a = 0, mode = 'fan_in', nonlinearity = 'leaky_relu'})
function M.kaiming_uniform_(t, o)
  o = OPTIONS_INIT_KAIMING_UNIFORM_(o)
  local bound = math.sqrt(3) * kaiming_std(t, o)
  return M.uniform_(t, -bound, bound)
end

local OPTIONS_INIT_KAIMING_NORMAL_ = nn.define_options('init.kaiming_normal_', { 'a', 'mode', 'nonlinearity' })
function M.kaiming_normal_(t, o)
  o = OPTIONS_INIT_KAIMING_NORMAL_(o)
  return M.normal_(t, 0, kaiming_std(t, o))
end

return M
