--- nnlua.gradcheck: compare autograd's gradients with central finite
--- differences.
---
---   ok, msg = nn.gradcheck(fn, inputs[, opts])
---
--- fn(...) receives the entries of `inputs` and returns a tensor (or a list
--- of tensors). Every input tensor with requires_grad is checked: the output
--- is projected on a fixed random tensor v, f = sum(out * v), so one
--- backward gives the whole gradient; each element of each input is then
--- nudged by +-eps and (f+ - f-) / (2 eps) compared with it. Sums are taken
--- in double precision in Lua so f32 rounding does not swamp the difference.
---
--- opts: eps (1e-3), atol (1e-3), rtol (1e-2): an element passes when
--- |analytic - numeric| <= atol + rtol * |numeric|. These suit f32 and
--- smooth functions; at a kink (relu at 0, abs at 0) pick inputs away from
--- it. Returns true, or false and a message naming the worst element.
local nn = require 'nnlua'

local function flat(t, out)
  out = out or {}
  if type(t) == 'table' then
    for _, v in ipairs(t) do flat(v, out) end
  else
    out[#out + 1] = t
  end
  return out
end

local function as_list(out)
  if nn.is_tensor(out) then return { out } end
  assert(type(out) == 'table', 'gradcheck: fn must return a tensor or a list of tensors')
  return out
end

-- the multi-index (a table) of element k (1-based, row-major) of shape
local function index_of(shape, k)
  local idx, rem = {}, k - 1
  for d = #shape, 1, -1 do
    idx[d] = rem % shape[d] + 1
    rem = rem // shape[d]
  end
  return idx
end

local function projection(outs, vs)
  local s = 0
  for i, o in ipairs(outs) do
    local a, b = flat(o:totable()), vs[i]
    for k = 1, #a do s = s + a[k] * b[k] end
  end
  return s
end

local check_options = nn.define_options('gradcheck', { 'eps', 'atol', 'rtol' })

return function(fn, inputs, opts)
  opts = check_options(opts)
  local eps, atol, rtol = opts.eps or 1e-3, opts.atol or 1e-3, opts.rtol or 1e-2
  assert(type(fn) == 'function', 'gradcheck: fn must be a function')
  assert(type(inputs) == 'table', 'gradcheck: inputs must be a list')
  local n = select('#', table.unpack(inputs))
  n = math.max(n, #inputs)
  local function call() return as_list(fn(table.unpack(inputs, 1, n))) end

  -- analytic: one backward of sum(out * v)
  for i = 1, n do
    local x = inputs[i]
    if nn.is_tensor(x) and x.requires_grad then x.grad = nil end
  end
  local outs = call()
  local vs, loss = {}, nil
  for i, o in ipairs(outs) do
    local v = nn.randn_like(o)
    vs[i] = flat(v:totable())
    local term = (o * v):sum()
    loss = loss and loss + term or term
  end
  if not loss or not loss.requires_grad then
    return false, 'gradcheck: the output does not depend on any input that requires grad'
  end
  loss:backward()

  local worst, where = -1, nil
  for i = 1, n do
    local x = inputs[i]
    if nn.is_tensor(x) and x.requires_grad then
      local analytic = x.grad and flat(x.grad:totable()) or {}
      local shape = x:size()
      for k = 1, x:numel() do
        local idx = index_of(shape, k)
        local key = #shape > 0 and idx or nil
        local numeric = nn.no_grad(function()
          local orig = key and x[key] or x:item()
          local function set(v) if key then x[key] = v else x:fill_(v) end end
          set(orig + eps)
          local fp = projection(call(), vs)
          set(orig - eps)
          local fm = projection(call(), vs)
          set(orig)
          return (fp - fm) / (2 * eps)
        end)
        local a = analytic[k] or 0
        local excess = math.abs(a - numeric) - (atol + rtol * math.abs(numeric))
        if excess > worst then
          worst = excess
          where = ('input %d element {%s}: analytic %.6g, numeric %.6g'):format(
            i, table.concat(idx, ', '), a, numeric)
        end
      end
    end
  end
  if worst > 0 then
    return false, ('gradcheck failed (eps %g, atol %g, rtol %g): %s'):format(eps, atol, rtol, where)
  end
  return true
end
