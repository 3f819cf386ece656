--- nnlua.gradgradcheck: check second derivatives by finite differences.
---
---   ok, msg = nn.gradgradcheck(fn, inputs[, opts])
---
--- The gradients of sum(fn(...) * v) (v a fixed random tensor per output)
--- with respect to the inputs that require grad, taken with create_graph,
--- are themselves a function of the inputs: nn.gradcheck checks that
--- function, so the double backward of every op fn uses is compared with
--- central differences of its first backward. opts as nn.gradcheck's.
local nn = require 'nnlua'

local function as_list(out)
  if nn.is_tensor(out) then return { out } end
  assert(type(out) == 'table', 'gradgradcheck: fn must return a tensor or a list of tensors')
  return out
end

return function(fn, inputs, opts)
  assert(type(fn) == 'function', 'gradgradcheck: fn must be a function')
  assert(type(inputs) == 'table', 'gradgradcheck: inputs must be a list')
  local n = math.max(select('#', table.unpack(inputs)), #inputs)
  local vs
  local function first(...)
    local args = table.pack(...)
    return nn.enable_grad(function()
      local outs = as_list(fn(table.unpack(args, 1, n)))
      if not vs then
        vs = {}
        for i, o in ipairs(outs) do vs[i] = nn.randn_like(o) end
      end
      local loss
      for i, o in ipairs(outs) do
        local term = (o * vs[i]):sum()
        loss = loss and loss + term or term
      end
      local wrt = {}
      for i = 1, n do
        local x = args[i]
        if nn.is_tensor(x) and x.requires_grad then wrt[#wrt + 1] = x end
      end
      assert(#wrt > 0 and loss and loss.requires_grad,
        'gradgradcheck: the output does not depend on any input that requires grad')
      local grads = table.pack(nn.autograd.grad(loss, wrt, { create_graph = true, allow_unused = true }))
      local out = {}
      for k = 1, #wrt do
        -- + 0 x: a gradient that does not depend on the inputs (add, relu)
        -- still has a history, whose zero derivative is then checked too
        out[#out + 1] = (grads[k] or nn.zeros_like(wrt[k])) + wrt[k] * 0
      end
      return out
    end)
  end
  return nn.gradcheck(first, inputs, opts)
end
