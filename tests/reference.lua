--- Compares nnlua modules with PyTorch fixtures written by tests/ref/gen_*.py
--- (state dict, inputs, output, gradients of sum(output * proj)).
local nn = require 'nnlua'
local cjson = require 'cjson'
local assert = require 'luassert'

local M = {}

--- The cases of tests/ref/<file> by name, and the PyTorch version.
function M.load(file)
  local f = assert(io.open('tests/ref/' .. file))
  local ref = cjson.decode(f:read('a'))
  f:close()
  local cases = {}
  for _, c in ipairs(ref.cases) do cases[c.name] = c end
  return cases, ref.torch
end

--- Loads case c's state into module m, runs fn(m, inputs, c), compares the
--- output and every input and parameter gradient with PyTorch's.
function M.check_module(c, m, fn, rtol, atol)
  rtol, atol = rtol or 1e-5, atol or 1e-5
  local sd = {}
  for k, v in pairs(c.state) do sd[k] = nn.tensor(v) end
  m:load_state_dict(sd)
  m:eval()
  local leaves = {}
  for k, v in pairs(c.inputs) do leaves[k] = nn.tensor(v):requires_grad_() end
  local out = fn(m, leaves, c)
  assert.tensor_near(c.output, out, rtol, atol)
  m:zero_grad()
  ;(out * nn.tensor(c.proj)):sum():backward()
  for k, g in pairs(c.grads) do assert.tensor_near(g, leaves[k].grad, rtol, atol) end
  local params = {}
  for n, p in m:named_parameters() do params[n] = p end
  for n, g in pairs(c.param_grads) do
    assert(params[n], 'no parameter ' .. n)
    -- an unused parameter has no gradient here, zeros in PyTorch
    assert.tensor_near(g, params[n].grad or nn.zeros_like(params[n]), rtol, atol)
  end
end

return M
