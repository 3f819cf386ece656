--- nnlua.autograd: differentiable functions written in Lua, the gradients
--- of chosen inputs, module backward hooks and activation checkpointing.
---
---   local Clamp = nn.autograd.Function('StraightThroughClamp')
---   function Clamp.forward(ctx, x, lo, hi)
---     ctx:save_for_backward(x)
---     return x:clamp(lo, hi)
---   end
---   function Clamp.backward(ctx, g) return g end -- one value per argument
---   local y = Clamp(x, -1, 1)                    -- or Clamp.apply(x, -1, 1)
---
--- forward runs with grad mode off; its tensor results get one node whose
--- backward calls backward(ctx, grad per result) in Lua. That backward
--- returns one value per forward argument (nil for non-tensors and for
--- inputs with no gradient). Under create_graph it runs with grad mode on,
--- so a backward written with tensor ops can itself be differentiated.
local nn = require 'nnlua'
local M = {}

-- ---- the context ------------------------------------------------------------

local Ctx = {}
local ctx_methods = {}

--- ctx:save_for_backward(...): tensors backward reads as ctx.saved_tensors;
--- changing one in place before backward is then an error, as for built-in
--- ops. Inputs are kept as they are (with their history, for
--- create_graph), anything else detached (no output -> node -> output cycle).
function ctx_methods:save_for_backward(...)
  local saved = { n = select('#', ...) }
  for i = 1, saved.n do
    local t = select(i, ...)
    if t ~= nil then
      if not nn.is_tensor(t) then
        error(('save_for_backward: argument %d is a %s (tensors or nil expected)'):format(
          i, type(t)), 2)
      end
      saved[i] = { rawget(self, '_inputs')[t] and t or t:detach(), t:_version() }
    end
  end
  rawset(self, '_saved', saved)
end

--- ctx:mark_non_differentiable(...): results that get no history (indices).
function ctx_methods:mark_non_differentiable(...)
  local set = rawget(self, '_non_diff')
  for i = 1, select('#', ...) do set[select(i, ...)] = true end
end

--- ctx:set_materialize_grads(false): backward gets nil, not zeros, for
--- results no gradient reached.
function ctx_methods:set_materialize_grads(on) rawset(self, 'materialize_grads', on and true or false) end

local function saved_tensors(ctx)
  local saved, out = rawget(ctx, '_saved'), {}
  if not saved then return out end
  for i = 1, saved.n do
    local s = saved[i]
    if s then
      local now = s[1]:_version()
      if now ~= s[2] then
        error(('a tensor saved by %s for the backward pass was modified in place '
          .. '(version %d, now %d): use an out-of-place op, or clone() before modifying'):format(
          rawget(ctx, '_name'), s[2], now), 3)
      end
      out[i] = s[1]
    end
  end
  return out
end

Ctx.__index = function(ctx, key)
  if key == 'saved_tensors' then return saved_tensors(ctx) end
  return ctx_methods[key]
end
Ctx.__name = 'nnlua.FunctionCtx'

-- ---- Function ------------------------------------------------------------------

local Function = {}
Function.__index = Function
Function.__name = 'nnlua.Function'

local function shape_of(t)
  local s = t:size()
  return #s == 0 and 'scalar' or table.concat(s, 'x')
end

local function check_callable(cls, name)
  local f = rawget(cls, name)
  if type(f) ~= 'function' and not (getmetatable(f) or {}).__call then
    error(('%s.%s is not defined'):format(cls.name, name), 3)
  end
  return f
end

-- the history of one call: backward(grad per tensor result) -> one
-- gradient per tensor argument
local function backward_closure(cls, ctx, args, tensor_pos, result_pos, shapes)
  return function(...)
    local grads = table.pack(...)
    local full = {}
    for k, p in ipairs(result_pos) do
      local g = grads[k]
      if g == nil and ctx.materialize_grads then g = nn.zeros(shapes[k]) end
      full[p] = g
    end
    local back = table.pack(check_callable(cls, 'backward')(ctx, table.unpack(full, 1, shapes.n)))
    if back.n > args.n then
      error(('%s.backward returned %d values for %d arguments'):format(cls.name, back.n, args.n), 0)
    end
    -- (the engine drops this closure, and ctx with it, when a backward
    -- without retain_graph has run it; another backward then refuses)
    local out = {}
    for j, p in ipairs(tensor_pos) do
      local g, x = back[p], args[p]
      if g ~= nil then
        if not nn.is_tensor(g) then
          error(('%s.backward returned a %s for argument %d (a tensor or nil expected)'):format(
            cls.name, type(g), p), 0)
        end
        if not x.requires_grad then
          g = nil
        elseif shape_of(g) ~= shape_of(x) then
          error(('%s.backward returned a gradient of shape %s for argument %d of shape %s'):format(
            cls.name, shape_of(g), p, shape_of(x)), 0)
        end
      end
      out[j] = g
    end
    return table.unpack(out, 1, #tensor_pos)
  end
end

--- Fn.apply(...) (or Fn(...)): runs forward and records its backward.
function Function.apply(cls, ...)
  local args = table.pack(...)
  local grad_on = nn.is_grad_enabled()
  local tensors, tensor_pos, needs, inputs, any = {}, {}, {}, {}, false
  for i = 1, args.n do
    local a = args[i]
    needs[i] = false
    if nn.is_tensor(a) then
      tensors[#tensors + 1], tensor_pos[#tensor_pos + 1] = a, i
      inputs[a] = true
      needs[i] = grad_on and a.requires_grad
      any = any or needs[i]
    end
  end
  local ctx = setmetatable({ needs_input_grad = needs, materialize_grads = true,
    _inputs = inputs, _name = cls.name, _non_diff = {} }, Ctx)
  local outs = table.pack(nn.no_grad(check_callable(cls, 'forward'), ctx, ...))
  if not any then return table.unpack(outs, 1, outs.n) end
  local diff, result_pos, shapes = {}, {}, { n = outs.n }
  for k = 1, outs.n do
    local o = outs[k]
    if nn.is_tensor(o) and o.dtype == 'f32' and not rawget(ctx, '_non_diff')[o] then
      -- a result that is an input (or has history) gets a fresh alias
      diff[#diff + 1] = o.requires_grad and o:detach() or o
      result_pos[#result_pos + 1] = k
      shapes[#result_pos] = o:size()
    end
  end
  if #diff == 0 then return table.unpack(outs, 1, outs.n) end
  local with = nn._record_function(cls.name,
    backward_closure(cls, ctx, args, tensor_pos, result_pos, shapes), tensors, diff)
  for k, p in ipairs(result_pos) do outs[p] = with[k] end
  return table.unpack(outs, 1, outs.n)
end

Function.__call = Function.apply

--- nn.autograd.Function(name): a new function class; define
--- forward(ctx, ...) and backward(ctx, grad...) on it.
function M.Function(name)
  if type(name) ~= 'string' or name == '' then
    error('Function: expected a name (a string), got ' .. type(name), 2)
  end
  local cls = setmetatable({ name = name }, Function)
  cls.apply = function(...) return Function.apply(cls, ...) end
  return cls
end

-- ---- grad ---------------------------------------------------------------------

local grad_options = nn.define_options('autograd.grad',
  { 'grad_outputs', 'retain_graph', 'create_graph', 'allow_unused' })

local function as_list(v, what)
  if nn.is_tensor(v) then return { v } end
  if type(v) ~= 'table' then
    error(('grad: %s must be a tensor or a list of tensors, got %s'):format(what, type(v)), 3)
  end
  return v
end

--- nn.autograd.grad(outputs, inputs[, opts]) -> one gradient per input:
--- d(sum of outputs weighted by grad_outputs)/d input, leaving every .grad
--- as it was. opts: grad_outputs (a tensor or list; default 1 for
--- one-element outputs), retain_graph (default: create_graph),
--- create_graph (record the backward, for second derivatives),
--- allow_unused (nil for an input the outputs do not depend on; else an
--- error).
function M.grad(outputs, inputs, opts)
  opts = grad_options(opts)
  local outs, ins = as_list(outputs, 'outputs'), as_list(inputs, 'inputs')
  local gouts = opts.grad_outputs
  if gouts ~= nil then gouts = as_list(gouts, 'grad_outputs') end
  local create = opts.create_graph and true or false
  local retain = opts.retain_graph
  if retain == nil then retain = create end
  local ok, res = pcall(nn._grad, outs, ins, gouts, retain, create)
  if not ok then error((tostring(res):gsub('^_grad: ', 'grad: ')), 2) end
  for j = 1, #ins do
    if res[j] == nil and not opts.allow_unused then
      error(('grad: input %d was not used to compute the outputs (pass allow_unused = true)'):format(j), 2)
    end
  end
  return table.unpack(res, 1, #ins)
end

-- ---- module backward hooks -------------------------------------------------------
-- As PyTorch's: the tensor arguments pass through an identity function
-- before forward and the tensor results through another after. The
-- second's backward sees the gradients of the results (pre-hooks may
-- replace them); the first's those of the arguments, where the hooks
-- fn(module, grad_input, grad_output) run and may replace grad_input.

local function call_list(list, ...)
  local replaced
  for _, e in ipairs({ table.unpack(list) }) do -- a copy: a hook may remove itself
    local r = e.fn(...)
    if r ~= nil then replaced = r end
  end
  return replaced
end

local function as_grads(r, n, who)
  if nn.is_tensor(r) then r = { r } end
  if type(r) ~= 'table' then error(who .. ': a hook must return a tensor, a list or nil', 0) end
  r.n = n
  return r
end

-- both identities: the hook state rides in ctx, the tensors pass through
local function pass_through(ctx, st, ...)
  ctx.st = st
  return ...
end

local HookOutputs = M.Function('BackwardHookFunction')
HookOutputs.forward = pass_through
function HookOutputs.backward(ctx, ...)
  local st = ctx.st
  local go = table.pack(...)
  for _, list in ipairs(st.pre) do
    local r = call_list(list, st.module, go)
    if r ~= nil then go = as_grads(r, go.n, 'full backward pre-hook') end
  end
  st.grad_output = go
  if not st.hooked_inputs then -- no argument needs a gradient: grad_input is empty
    for _, list in ipairs(st.post) do call_list(list, st.module, { n = 0 }, go) end
  end
  return nil, table.unpack(go, 1, go.n)
end

local HookInputs = M.Function('BackwardHookFunction')
HookInputs.forward = pass_through
function HookInputs.backward(ctx, ...)
  local st = ctx.st
  local gi = table.pack(...)
  for _, list in ipairs(st.post) do
    local r = call_list(list, st.module, gi, st.grad_output or { n = 0 })
    if r ~= nil then gi = as_grads(r, gi.n, 'full backward hook') end
  end
  return nil, table.unpack(gi, 1, gi.n)
end

-- the tensors of list (positions and values), those requiring grad
local function grad_tensors(list)
  local pos, vals = {}, {}
  for i = 1, list.n do
    local v = list[i]
    if nn.is_tensor(v) and v.requires_grad then pos[#pos + 1], vals[#vals + 1] = i, v end
  end
  return pos, vals
end

local function wrap(fn, st, list)
  local pos, vals = grad_tensors(list)
  if #pos == 0 then return false end
  local wrapped = table.pack(fn(st, table.unpack(vals)))
  for k, p in ipairs(pos) do list[p] = wrapped[k] end
  return true
end

--- Runs call(args) for module m with its backward hooks (lists of
--- {fn = ...} entries): pre (fn(m, grad_output)) and post (fn(m,
--- grad_input, grad_output)), each a list of lists. Returns the packed results.
function M.call_with_backward_hooks(m, pre, post, args, call)
  if not nn.is_grad_enabled() then return table.pack(call(table.unpack(args, 1, args.n))) end
  local st = { module = m, pre = pre, post = post }
  args = table.pack(table.unpack(args, 1, args.n))
  st.hooked_inputs = wrap(HookInputs.apply, st, args)
  local outs = table.pack(call(table.unpack(args, 1, args.n)))
  wrap(HookOutputs.apply, st, outs)
  return outs
end

-- ---- activation checkpointing -------------------------------------------------------

local Checkpoint = M.Function('CheckpointFunction')

function Checkpoint.forward(ctx, fn, ...)
  rawset(ctx, '_fn', fn)
  rawset(ctx, '_rng', nn.rng_state())
  local args = table.pack(...)
  rawset(ctx, '_args', args)
  local tensors = {}
  for i = 1, args.n do tensors[i] = nn.is_tensor(args[i]) and args[i] or nil end
  ctx:save_for_backward(table.unpack(tensors, 1, args.n))
  return fn(...)
end

function Checkpoint.backward(ctx, ...)
  local args, saved = rawget(ctx, '_args'), ctx.saved_tensors
  local detached = {}
  for i = 1, args.n do
    local a = args[i]
    if nn.is_tensor(a) then
      a = saved[i]:detach()
      if args[i].requires_grad then a:requires_grad_() end
    end
    detached[i] = a
  end
  local now = nn.rng_state()
  nn.rng_state(rawget(ctx, '_rng')) -- the same dropout masks as the forward
  local fn = rawget(ctx, '_fn')
  local outs = table.pack(nn.enable_grad(function(...) return fn(...) end,
    table.unpack(detached, 1, args.n)))
  nn.rng_state(now)
  local roots, grads = {}, {}
  for k = 1, outs.n do
    local o, g = outs[k], select(k, ...)
    if nn.is_tensor(o) and o.requires_grad and g ~= nil then
      roots[#roots + 1], grads[#grads + 1] = o, g
    end
  end
  local inputs, where = {}, {}
  for i = 1, args.n do
    if nn.is_tensor(detached[i]) and detached[i].requires_grad then
      inputs[#inputs + 1], where[#inputs + 1] = detached[i], i
    end
  end
  -- one backward: the parameters inside fn accumulate into .grad, the
  -- detached arguments give the gradients of the arguments
  if #roots == 1 then
    roots[1]:backward(grads[1])
  elseif #roots > 1 then
    local sum = (roots[1] * grads[1]):sum()
    for k = 2, #roots do sum = sum + (roots[k] * grads[k]):sum() end
    sum:backward()
  end
  local back = { n = args.n + 1 }
  for k, i in ipairs(where) do back[i + 1] = inputs[k].grad end
  return table.unpack(back, 1, back.n)
end

--- nn.utils.checkpoint(fn, ...): fn(...) without keeping its
--- intermediate results; backward runs fn again (with the random state of
--- the first run, so dropout draws the same masks) to get them. Trades
--- compute for memory; results and gradients are those of fn(...).
function M.checkpoint(fn, ...)
  if type(fn) ~= 'function' and not (getmetatable(fn) or {}).__call then
    error('checkpoint: expected a function, got ' .. type(fn), 2)
  end
  return Checkpoint.apply(fn, ...)
end

return M
