--- nnlua.module: Module, the base of user models, and the containers
--- Sequential, ModuleList and ModuleDict; summary(model[, input]).
---
---   local MLP = nn.Module:extend()
---   function MLP:_init(d) self.fc1 = nn.Linear(d, 64); self.fc2 = nn.Linear(64, 10) end
---   function MLP:forward(x) return self.fc2(self.fc1(x):relu()) end
---   local m = MLP(784)
---
--- Submodules (Lua modules or built-in C layers) and parameters assigned as
--- fields are registered in assignment order; their dotted names
--- (`fc1.weight`) follow PyTorch's state_dict convention, containers name
--- their entries 0, 1, 2, ... as PyTorch does (Lua indexes them from 1).
local nn = require 'nnlua'
local class = require 'nnlua.class'

local M = {}

-- v.key, or nil for values that cannot be indexed
local function field(v, key)
  local t = type(v)
  if t == 'table' then return v[key] end
  if t ~= 'userdata' then return nil end
  local ok, r = pcall(function() return v[key] end)
  return ok and r or nil
end

--- Whether v is a module: a Lua Module or a built-in layer (both answer
--- the same protocol).
local function is_module(v) return field(v, '_is_module') == true end
M.is_module = is_module
local function is_param(v) return nn.is_tensor(v) and v.requires_grad and v:is_leaf() end

-- ---- forward hooks ---------------------------------------------------------
-- Per module (Lua Module or built-in layer) and global, in registration
-- order: pre-hooks fn(module, args) may return new args (a list, or one
-- value); hooks fn(module, args, output) may return a new output. Global
-- hooks run before the module's own, as in PyTorch.
-- One hook state per lua_State, kept in the core table: this file may be
-- loaded more than once (busted's insulation unloads it) while built-in
-- layers keep the methods of the first load.
local state = rawget(nn, '_hook_state')
if not state then
  state = { hooks_of = setmetatable({}, { __mode = 'k' }), -- module -> hook lists
            global = { pre = {}, post = {}, bwd_pre = {}, bwd = {} } }
  rawset(nn, '_hook_state', state)
end
local hooks_of, global = state.hooks_of, state.global
local function new_lists() return { pre = {}, post = {}, bwd_pre = {}, bwd = {} } end
local function count(l) return #l.pre + #l.post + #l.bwd_pre + #l.bwd end
local NO_HOOKS = new_lists() -- a module without its own (never written to)

-- the module's call, through its backward hooks when it has any
local function call_forward(m, own, args)
  local bwd_pre, bwd = {}, {}
  for _, lists in ipairs({ global, own }) do
    if #lists.bwd_pre > 0 then bwd_pre[#bwd_pre + 1] = lists.bwd_pre end
    if #lists.bwd > 0 then bwd[#bwd + 1] = lists.bwd end
  end
  local function call(...) return m:forward(...) end
  if #bwd_pre + #bwd == 0 then return table.pack(call(table.unpack(args, 1, args.n))) end
  return require('nnlua.autograd').call_with_backward_hooks(m, bwd_pre, bwd, args, call)
end

local function run_hooks(m, ...)
  local own = hooks_of[m] or NO_HOOKS
  local args = table.pack(...)
  for _, lists in ipairs({ global, own }) do
    for _, e in ipairs({ table.unpack(lists.pre) }) do -- a copy: a hook may remove itself
      local r = e.fn(m, args)
      if r ~= nil then
        args = (type(r) == 'table' and not nn.is_tensor(r)) and r or { r }
        args.n = args.n or #args
      end
    end
  end
  local outs = call_forward(m, own, args)
  for _, lists in ipairs({ global, own }) do
    for _, e in ipairs({ table.unpack(lists.post) }) do
      local r = e.fn(m, args, outs[1])
      if r ~= nil then outs = { r, n = 1 } end
    end
  end
  return table.unpack(outs, 1, outs.n)
end

local function global_active() return count(global) > 0 end
nn._set_hook_runner(run_hooks, global_active())

local Handle = {}
Handle.__index = Handle
Handle.__name = 'nnlua.HookHandle'

--- handle:remove() unregisters the hook (again: nothing); a <close>
--- handle removes it when its scope ends. Collecting a handle keeps it.
function Handle:remove()
  local list = self.list
  for i, e in ipairs(list) do
    if e == self.entry then
      table.remove(list, i)
      break
    end
  end
  local m = self.owner[1]
  if m then
    local h = hooks_of[m]
    if h and count(h) == 0 then
      hooks_of[m] = nil
      m:_set_hooked(false)
    end
  else
    nn._set_hook_runner(run_hooks, global_active())
  end
end
Handle.__close = Handle.remove

local hook_names = { pre = 'register_forward_pre_hook', post = 'register_forward_hook',
  bwd_pre = 'register_full_backward_pre_hook', bwd = 'register_full_backward_hook' }

local function add_hook(m, kind, fn)
  if type(fn) ~= 'function' and not (getmetatable(fn) or {}).__call then
    error(('%s: expected a function, got %s'):format(hook_names[kind], type(fn)), 3)
  end
  local lists = global
  if m then
    lists = hooks_of[m] or new_lists()
    hooks_of[m] = lists
    m:_set_hooked(true)
  end
  local entry = { fn = fn }
  table.insert(lists[kind], entry)
  if not m then nn._set_hook_runner(run_hooks, true) end
  -- the handle does not keep its module alive
  return setmetatable({ list = lists[kind], entry = entry,
    owner = setmetatable({ m }, { __mode = 'v' }) }, Handle)
end
local Module = class()
Module._is_module = true
Module.training = true
M.Module = Module

--- A subclass of Module (or of any module class): Module:extend().
function Module:extend() return class(self) end

function Module:_init() end

-- remembers where a child, parameter or buffer lives, in order
local function register(self, name, key, kind)
  local order = rawget(self, '_order')
  if not order then
    order = {}
    rawset(self, '_order', order)
    rawset(self, '_index', {})
  end
  local index = rawget(self, '_index')
  if not index[name] then
    order[#order + 1] = name
  end
  index[name] = { key = key, kind = kind }
end

function Module:__newindex(k, v)
  if type(k) == 'string' and k:sub(1, 1) ~= '_' then
    if is_module(v) then register(self, k, k, 'module')
    elseif is_param(v) then register(self, k, k, 'param') end
  end
  rawset(self, k, v)
end

local function call(self, ...)
  if hooks_of[self] or count(global) > 0 then return run_hooks(self, ...) end
  return self:forward(...)
end

function Module:__call(...)
  if nn._profiling then return nn._profile_call(self:_typename(), call, self, ...) end -- nnlua.profile
  return call(self, ...)
end

--- m:register_forward_pre_hook(fn): fn(m, args) before each call (args: a
--- list with n); returning a list (or one value) replaces the arguments.
--- Returns a handle with :remove().
function Module:register_forward_pre_hook(fn) return add_hook(self, 'pre', fn) end

--- m:register_forward_hook(fn): fn(m, args, output) after each call;
--- returning a value replaces the output. Returns a handle with :remove().
function Module:register_forward_hook(fn) return add_hook(self, 'post', fn) end

--- m:register_full_backward_hook(fn): fn(m, grad_input, grad_output) once
--- the gradients of the call's tensor arguments are known (both lists with
--- n, one entry per tensor that requires grad); returning a list (or one
--- tensor) replaces grad_input. Returns a handle with :remove().
function Module:register_full_backward_hook(fn) return add_hook(self, 'bwd', fn) end

--- m:register_full_backward_pre_hook(fn): fn(m, grad_output) when the
--- gradients of the call's results are known; returning a list (or one
--- tensor) replaces them. Returns a handle with :remove().
function Module:register_full_backward_pre_hook(fn) return add_hook(self, 'bwd_pre', fn) end

--- Hooks on every module and built-in layer (run before their own).
function M.register_module_forward_pre_hook(fn) return add_hook(nil, 'pre', fn) end
function M.register_module_forward_hook(fn) return add_hook(nil, 'post', fn) end
function M.register_module_full_backward_hook(fn) return add_hook(nil, 'bwd', fn) end
function M.register_module_full_backward_pre_hook(fn) return add_hook(nil, 'bwd_pre', fn) end

function Module:forward()
  error('forward is not defined for this module', 2)
end

--- A tensor saved with the module's state but not trained (running stats).
function Module:register_buffer(name, t)
  register(self, name, name, 'buffer')
  rawset(self, name, t)
end

-- The primitives of the module protocol, which built-in layers answer in C:
-- the entries {name, value, kind ('param', 'buffer' or 'module')} in order,
-- setting the training flag, and the kind's name.
function Module:_entries()
  local out = {}
  for _, name in ipairs(rawget(self, '_order') or {}) do
    local e = rawget(self, '_index')[name]
    local v = rawget(self, e.key)
    if v ~= nil then out[#out + 1] = { name, v, e.kind } end
  end
  return out
end

function Module:_set_training(mode) rawset(self, 'training', mode) end

function Module:_typename() return rawget(getmetatable(self), '_name') or 'Module' end

function Module:_set_hooked() end -- Lua Modules look their hooks up when called

local function entries(m) return m:_entries() end

-- fn(name, value, kind) for every parameter and buffer below self; a child
-- that is also an enclosing module (child.parent = parent) is an error, not
-- an endless walk (a module shared by two parents is fine)
local function walk(self, prefix, fn, enclosing)
  enclosing = enclosing or {}
  enclosing[self] = true
  for _, e in ipairs(entries(self)) do
    local name, v, kind = e[1], e[2], e[3]
    local full = prefix == '' and name or prefix .. '.' .. name
    if kind == 'module' then
      if enclosing[v] then
        error(('module cycle: %s refers back to a module that contains it'):format(full), 0)
      else
        walk(v, full, fn, enclosing)
      end
    else
      fn(full, v, kind)
    end
  end
  enclosing[self] = nil
end

local function iterate(list)
  local i = 0
  return function()
    i = i + 1
    if list[i] then return list[i][1], list[i][2] end
  end
end

--- for name, p in m:named_parameters() do ... end
--- A tensor shared by two modules (tied weights) is listed once, under the
--- first name, as PyTorch does.
function Module:named_parameters(prefix)
  local list, seen = {}, {}
  walk(self, prefix or '', function(n, p, kind)
    if kind == 'param' and not seen[p] then
      seen[p] = true
      list[#list + 1] = { n, p }
    end
  end)
  return iterate(list)
end

--- The parameters as a list, in registration order (for optimizers).
function Module:parameters()
  local list = {}
  for _, p in self:named_parameters() do list[#list + 1] = p end
  return list
end

function Module:named_buffers(prefix)
  local list = {}
  walk(self, prefix or '', function(n, b, kind)
    if kind == 'buffer' then list[#list + 1] = { n, b } end
  end)
  return iterate(list)
end

--- for name, child in m:named_children() do ... end
function Module:named_children()
  local list = {}
  for _, e in ipairs(entries(self)) do
    if e[3] == 'module' then list[#list + 1] = { e[1], e[2] } end
  end
  return iterate(list)
end

function Module:children()
  local list = {}
  for _, c in self:named_children() do list[#list + 1] = c end
  return list
end

--- Calls fn on every submodule, children before parents, then on self.
function Module:apply(fn)
  for _, c in self:named_children() do c:apply(fn) end
  fn(self)
  return self
end

--- for name, m in model:named_modules() do ... end: self (named prefix or
--- '') then every submodule below it, each once, parents first.
function Module:named_modules(prefix)
  local list, seen = {}, {}
  local function visit(m, name)
    if seen[m] then return end
    seen[m] = true
    list[#list + 1] = { name, m }
    for n, c in m:named_children() do visit(c, name == '' and n or name .. '.' .. n) end
  end
  visit(self, prefix or '')
  return iterate(list)
end

function Module:modules()
  local list = {}
  for _, m in self:named_modules() do list[#list + 1] = m end
  return list
end

function Module:buffers()
  local list = {}
  for _, b in self:named_buffers() do list[#list + 1] = b end
  return list
end

function Module:train(mode)
  if mode == nil then mode = true end
  self:_set_training(mode and true or false)
  for _, c in self:named_children() do c:train(mode) end
  return self
end

function Module:eval() return self:train(false) end

function Module:zero_grad()
  for _, p in self:named_parameters() do p.grad = nil end
end

function Module:num_parameters()
  local n = 0
  for _, p in self:named_parameters() do n = n + p:numel() end
  return n
end

--- name -> tensor for every parameter and buffer (shared, not copied).
function Module:state_dict()
  local sd = {}
  walk(self, '', function(n, t) sd[n] = t end)
  return sd
end

local function shape_str(t) return table.concat(t:size(), 'x') end

--- The problems that would stop load_state_dict(sd, strict) (a sorted
--- list of messages, empty when it would succeed); changes nothing.
function Module:check_state_dict(sd, strict)
  if strict == nil then strict = true end
  local own, problems = self:state_dict(), {}
  for name, t in pairs(own) do
    local src = sd[name]
    if src == nil then
      if strict then problems[#problems + 1] = 'missing key ' .. name end
    elseif not nn.is_tensor(src) then
      problems[#problems + 1] = ('%s is a %s, not a tensor'):format(name, type(src))
    elseif src.dtype ~= t.dtype and (src.dtype == 'i64' or t.dtype == 'i64') then
      problems[#problems + 1] = ('dtype mismatch for %s: the checkpoint has %s, the model %s')
        :format(name, src.dtype, t.dtype)
    elseif shape_str(src) ~= shape_str(t) then
      problems[#problems + 1] = ('size mismatch for %s: the checkpoint has %s, the model %s')
        :format(name, shape_str(src), shape_str(t))
    end
  end
  if strict then
    for name in pairs(sd) do
      if own[name] == nil then problems[#problems + 1] = 'unexpected key ' .. name end
    end
  end
  table.sort(problems)
  return problems
end

--- Copies a state dict into the module. strict (default true): every name
--- must be present on both sides. Floating dtypes convert (a bf16 file
--- loads into an f32 model); shapes, and integer against floating, must
--- agree. On any problem nothing is copied.
function Module:load_state_dict(sd, strict)
  local problems = self:check_state_dict(sd, strict)
  if #problems > 0 then error('load_state_dict: ' .. table.concat(problems, '; '), 2) end
  local own = self:state_dict()
  nn.no_grad(function()
    for name, t in pairs(own) do
      if sd[name] ~= nil then t:copy_(sd[name]) end
    end
  end)
  return self
end

--- m:to(dtype): every floating parameter and buffer converted to dtype
--- ('f32', 'bf16' or 'f16'), tied tensors staying tied; returns m. 16-bit
--- parameters do not require grad: train in f32 (nn.autocast computes in
--- bf16), and convert to store or serve the model.
function Module:to(dtype)
  local probe = nn.zeros(1):to(dtype).dtype -- checks the name, gives the canonical one
  local done = {}
  for _, mod in ipairs(self:modules()) do
    for _, e in ipairs(mod:_entries()) do
      local name, v, kind = e[1], e[2], e[3]
      if kind ~= 'module' and v.dtype ~= 'i64' and v.dtype ~= probe then
        local t = done[v]
        if not t then
          t = nn.no_grad(function() return v:detach():to(probe) end)
          if kind == 'param' and probe == 'f32' then t:requires_grad_() end
          done[v] = t
        end
        mod[name] = t
      end
    end
  end
  return self
end

--- Saves the state dict to a safetensors file (written atomically), with
--- optional string metadata. Returns true, or nil and a message.
function Module:save(path, metadata)
  return nn.save(path, self:state_dict(), metadata)
end

--- Loads a safetensors file saved from this model (or a PyTorch state dict
--- exported to safetensors). Returns the file's metadata, or nil and a
--- message when the file cannot be read; mismatched names or shapes raise.
function Module:load(path, strict)
  local sd, meta = nn.load(path)
  if not sd then return nil, meta end
  self:load_state_dict(sd, strict)
  return meta
end

local function indent(s) return (s:gsub('\n', '\n  ')) end

function Module:__tostring()
  local name = rawget(getmetatable(self), '_name') or 'Module'
  local lines = {}
  for n, c in self:named_children() do
    lines[#lines + 1] = ('  (%s): %s'):format(n, indent(tostring(c)))
  end
  if #lines == 0 then return name .. '()' end
  return name .. '(\n' .. table.concat(lines, '\n') .. '\n)'
end

-- ---- containers ----------------------------------------------------------

local ModuleList = class(Module)
ModuleList._name = 'ModuleList'
M.ModuleList = ModuleList

function ModuleList:_init(list)
  rawset(self, '_n', 0)
  for _, m in ipairs(list or {}) do self:append(m) end
end

--- Adds a module at the end; it is named by its 0-based position.
function ModuleList:append(m)
  if not is_module(m) then error('ModuleList: entries must be modules', 2) end
  local n = rawget(self, '_n') + 1
  rawset(self, '_n', n)
  register(self, tostring(n - 1), n, 'module')
  rawset(self, n, m)
  return self
end

function ModuleList:__len() return rawget(self, '_n') end

function ModuleList:ipairs()
  local i = 0
  return function()
    i = i + 1
    if i <= rawget(self, '_n') then return i, rawget(self, i) end
  end
end

local Sequential = class(ModuleList)
Sequential._name = 'Sequential'
M.Sequential = Sequential

--- Sequential(m1, m2, ...) or Sequential{m1, m2, ...}
function Sequential:_init(...)
  local first = ...
  local list = (type(first) == 'table' and not is_module(first)) and first or { ... }
  ModuleList._init(self, list)
end

function Sequential:forward(x)
  for i = 1, rawget(self, '_n') do x = rawget(self, i)(x) end
  return x
end

local ModuleDict = class(Module)
ModuleDict._name = 'ModuleDict'
M.ModuleDict = ModuleDict

--- ModuleDict{name = module, ...} (sorted by name) plus :add(name, m)
function ModuleDict:_init(t)
  local names = {}
  for k in pairs(t or {}) do names[#names + 1] = k end
  table.sort(names)
  for _, k in ipairs(names) do self:add(k, t[k]) end
end

function ModuleDict:add(name, m)
  if not is_module(m) then error('ModuleDict: entries must be modules', 2) end
  self[name] = m
  return self
end

-- ---- summary ----

----------------------------------------------------------

--- Prints one row per submodule: name, kind, output shape (when an input
--- is given, by running the model once under no_grad) and parameters.
--- Returns the text; quiet = true only returns it.
function M.summary(model, input, quiet)
  local rows, shapes = {}, {}
  local function visit(m, prefix, depth)
    for name, c in m:named_children() do
      local full = prefix == '' and name or prefix .. '.' .. name
      rows[#rows + 1] = { full, c:_typename(), c:num_parameters(), depth, c }
      visit(c, full, depth + 1)
    end
  end
  visit(model, '', 0)
  if input then -- record each module's output shape during one call
    local handle = M.register_module_forward_hook(function(m, _, out)
      if nn.is_tensor(out) then shapes[m] = table.concat(out:size(), 'x') end
    end)
    local ok, err = pcall(nn.no_grad, function() return model(input) end)
    handle:remove()
    if not ok then error(err, 2) end
  end
  local out = { ('%-32s %-12s %-16s %12s'):format('layer', 'kind', 'output', 'parameters') }
  for _, r in ipairs(rows) do
    out[#out + 1] = ('%-32s %-12s %-16s %12d'):format(('  '):rep(r[4]) .. r[1], r[2],
      shapes[r[5]] or '-', r[3])
  end
  out[#out + 1] = ('total parameters: %d'):format(model:num_parameters())
  local text = table.concat(out, '\n')
  if not quiet then print(text) end
  return text
end

--- The methods built-in layers share with Module (the package root
--- installs them into their method table).
M.protocol = {}
for _, name in ipairs { 'named_parameters', 'parameters', 'named_buffers', 'buffers',
  'named_children', 'children', 'named_modules', 'modules', 'apply', 'train', 'eval',
  'zero_grad', 'num_parameters', 'state_dict', 'check_state_dict', 'load_state_dict',
  'save', 'load', 'register_forward_pre_hook', 'register_forward_hook',
  'register_full_backward_hook', 'register_full_backward_pre_hook', 'to' } do
  M.protocol[name] = Module[name]
end

return M
