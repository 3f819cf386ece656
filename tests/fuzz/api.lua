--- tests/fuzz/api.lua: calls the whole public API with hostile arguments.
---
---   build-asan/nnlua tests/fuzz/api.lua [CALLS [SEED [LOG]]]
---
--- The callables are found from the library itself, so new functions are
--- covered without edits: every function of the nn table (tensor methods
--- too: it doubles as their method table), every name the Lua half
--- provides (nn._lazy) and the functions and classes inside those modules,
--- and the methods of whatever the calls return (layers, modules,
--- optimizers, tokenizers, prefetchers...), found through their metatables.
---
--- Arguments: tensors of random shapes (empty and zero-size included) and
--- dtypes, non-contiguous and expanded views, closed tensors, nil, booleans,
--- NaN, infinities, 0, negatives, 2^31, 2^53, 2^63, strings, option tables
--- whose __index closes an argument, tables with a lying __len, functions,
--- and finalisers that close arguments while a call allocates. Every call
--- runs in pcall: errors are expected, a crash, a sanitizer report or a hang
--- is a bug. Before each call its description goes to LOG (unbuffered), so
--- the last line names the call that crashed. Ends with "N calls ..., no crash".
local nn = require 'nnlua'

local ncalls, seed, log_path = tonumber(arg[1]) or 20000, tonumber(arg[2]) or 1, arg[3]
math.randomseed(seed)
local rand = math.random

-- Not called, with the reason: they run for as long as their arguments say
-- (timers), or change the process for every later call (threads: 1024 of
-- them per parallel loop would only make the run slow).
local SKIP = {
  ['nn.sgemm_time'] = 'a benchmark timer: runs reps x inner sgemm calls',
  ['nn.set_num_threads'] = 'process-wide; up to 1024 threads per loop',
  ['nn.set_memory_limit'] = 'the run keeps its own (below)',
}
-- 2^31-element tensors and default-sized Transformers are legitimate but
-- slow: cap tensor memory instead
nn.set_memory_limit(32 << 20)

-- ---- the callables ------------------------------------------------------------

local callables = {} -- { name =, fn = }
local seen = {}

local function add(name, fn)
  if seen[fn] or SKIP[name] then return end
  seen[fn] = true
  callables[#callables + 1] = { name = name, fn = fn }
end

local function is_class(t)
  local mt = getmetatable(t)
  return type(t) == 'table' and mt and mt.__call ~= nil
end

-- functions of a table (a module or a class), one level down
local function add_table(prefix, t)
  if is_class(t) then add(prefix, t) end
  local keys = {}
  for k in pairs(t) do if type(k) == 'string' then keys[#keys + 1] = k end end
  table.sort(keys)
  for _, k in ipairs(keys) do
    local v = rawget(t, k)
    if type(v) == 'function' and k:sub(1, 2) ~= '__' then add(prefix .. '.' .. k, v)
    elseif is_class(v) then add(prefix .. '.' .. k, v) end
  end
end

add_table('nn', nn)
for _, name in ipairs(nn._lazy) do
  local v = nn[name]
  if type(v) == 'function' then add('nn.' .. name, v)
  elseif type(v) == 'table' then add_table('nn.' .. name, v) end
end
local static_count = #callables

-- methods of an object, through its metatable (a table __index, a C
-- __index closure's method table, or a class chain)
local method_cache = setmetatable({}, { __mode = 'k' })
local function methods_of(v)
  local mt = getmetatable(v)
  if type(mt) ~= 'table' then return nil end
  if method_cache[mt] then return method_cache[mt] end
  local list, names = {}, {}
  local function collect(t, depth)
    if type(t) ~= 'table' or depth > 6 then return end
    for k, f in pairs(t) do
      if type(k) == 'string' and type(f) == 'function' and not names[k] and k:sub(1, 2) ~= '__' then
        names[k] = true
        list[#list + 1] = { name = k, fn = f }
      end
    end
    local m = getmetatable(t)
    if m and type(m.__index) == 'table' then collect(m.__index, depth + 1) end
  end
  local idx = rawget(mt, '__index')
  if type(idx) == 'function' then -- C layers keep their methods in an upvalue
    local _, up = debug.getupvalue(idx, 1)
    collect(up, 0)
  else
    collect(idx, 0)
  end
  table.sort(list, function(a, b) return a.name < b.name end)
  method_cache[mt] = list
  return list
end

-- ---- arguments -------------------------------------------------------------------

local SPECIAL = { 0, 1, 2, 3, -1, -2, 2 ^ 31, -2 ^ 31, 2 ^ 53, math.maxinteger, math.mininteger,
                  0 / 0, 1 / 0, -1 / 0, 0.5, -0.5, 1e-30, 1e30, 2 ^ 63 }
local STRINGS = { 'f32', 'i64', 'bf16', 'f16', 'mean', 'sum', 'none', 'x', '', 'transe', 'rotate', 'complex',
                  'distmult', 'nearest', 'tanh', 'relu', 'cnn', '%s%d', ('a'):rep(300) }

local pool = {}       -- values returned by earlier calls, reused as arguments
local POOL = 64
local current = {}    -- the arguments of the running call (for the closers)

local function rshape()
  local nd, shape = rand(0, 4), {}
  for i = 1, nd do shape[i] = rand() < 0.15 and 0 or rand(1, 4) end
  return shape
end

local function rtensor()
  local shape = rshape()
  local r = rand()
  local t
  if r < 0.6 then t = nn.randn(shape)
  elseif r < 0.85 then t = nn.randint(-3, 6, shape)
  elseif r < 0.93 then t = nn.ones(shape, rand() < 0.5 and 'i64' or 'f32')
  else t = nn.randn(shape):to(rand() < 0.5 and 'bf16' or 'f16') end
  r = rand()
  if r < 0.12 and t.ndim >= 2 then t = t:transpose(1, t.ndim)
  elseif r < 0.2 and t.ndim >= 1 and t:size(1) > 1 then t = t:narrow(1, 2, t:size(1) - 1)
  elseif r < 0.26 and t.ndim >= 1 and t:size(1) == 1 then
    local s = t:size(); s[1] = rand(2, 3); t = t:expand(s)
  end
  if rand() < 0.15 and t.dtype == 'f32' then t = t:detach():requires_grad_() end
  if rand() < 0.04 then t:close() end
  return t
end

-- a tensor among the call's arguments, to close from a metamethod
local function close_an_argument()
  for _ = 1, 4 do
    local v = current[rand(math.max(1, #current))]
    if nn.is_tensor(v) then return v:close() end
  end
end

local rarg -- forward

-- an options table: plain, or one whose every read closes an argument
local function roptions()
  local keys = { 'dim', 'bias', 'mask', 'causal', 'dropout', 'weight', 'reduction', 'lr', 'eps',
                 'stride', 'padding', 'groups', 'model', 'heads', 'p', 'training', 'grad',
                 'retain_graph', 'ignore_index', 'momentum', 'batch_size', 'shuffle', 'k' }
  local t = {}
  for _ = 1, rand(0, 3) do t[keys[rand(#keys)]] = rarg(1) end
  if rand() < 0.3 then
    setmetatable(t, { __index = function(_, k)
      close_an_argument()
      if rand() < 0.3 then collectgarbage() end
      return rand() < 0.5 and rarg(1) or nil
    end })
  end
  return t
end

-- a list: of tensors, of numbers, or with a lying __len
local function rlist(depth)
  local t = {}
  for i = 1, rand(0, 4) do t[i] = rand() < 0.6 and rtensor() or rarg(depth + 1) end
  if rand() < 0.2 then
    local lens = { -1, 0, 2 ^ 31, 2 ^ 32 + 2, 5000, 3 }
    setmetatable(t, { __len = function() return lens[rand(#lens)] end,
                      __index = function() close_an_argument(); return rand() < 0.5 and rtensor() or nil end })
  end
  return t
end

local function rfunction()
  local r = rand()
  if r < 0.3 then return function() return rtensor() end end
  if r < 0.5 then return function() close_an_argument() end end
  if r < 0.6 then return error end
  return function(...) return ... end
end

function rarg(depth)
  depth = depth or 0
  local r = rand()
  if r < 0.38 then return rtensor() end
  if r < 0.52 then return rand(-2, 5) end
  if r < 0.6 then return SPECIAL[rand(#SPECIAL)] end
  if r < 0.66 then return STRINGS[rand(#STRINGS)] end
  if r < 0.74 and depth < 2 then return roptions() end
  if r < 0.8 and depth < 2 then return rlist(depth) end
  if r < 0.84 then return rand() < 0.5 end
  if r < 0.87 then return rfunction() end
  if r < 0.95 and #pool > 0 then return pool[rand(#pool)] end
  return nil
end

-- finalisers that close arguments when the next collection runs mid-call
local function plant_closers()
  for _ = 1, rand(0, 2) do
    setmetatable({}, { __gc = function() close_an_argument() end })
  end
end

local function describe_arg(v)
  if nn.is_tensor(v) then
    local ok, d = pcall(function() return v.dtype .. '(' .. table.concat(v.shape, 'x') .. ')' end)
    return ok and d or 'closed tensor'
  end
  if type(v) == 'number' then return ('%.17g'):format(v) end
  if type(v) == 'string' then return ('%q'):format(#v > 20 and v:sub(1, 20) .. '...' or v) end
  return type(v)
end

-- ---- the run ------------------------------------------------------------------------

local log = log_path and assert(io.open(log_path, 'w'))
if log then log:setvbuf('no') end

-- a Lua-side loop over a huge count is not a bug: a budget ends the call
local BUDGET = 2000000
local function budget_hook() error('fuzz: instruction budget', 2) end

local errors, calls, method_calls = 0, 0, 0
local function call(name, fn, args, n)
  calls = calls + 1
  current = args
  if log then
    local parts = {}
    for i = 1, n do parts[i] = describe_arg(args[i]) end
    log:write(calls, ' ', name, '(', table.concat(parts, ', '), ')\n')
  end
  plant_closers()
  debug.sethook(budget_hook, '', BUDGET)
  local t0 = PROFILE and os.clock()
  local ok, res = pcall(fn, table.unpack(args, 1, n))
  debug.sethook()
  if PROFILE then PROFILE[name] = (PROFILE[name] or 0) + os.clock() - t0 end
  if not ok then
    errors = errors + 1
    return
  end
  if res ~= nil and type(res) ~= 'string' and type(res) ~= 'number' and type(res) ~= 'boolean' then
    if #pool < POOL then pool[#pool + 1] = res else pool[rand(POOL)] = res end
  end
  return res
end

collectgarbage('generational')
local gc_modes = { 'generational', 'incremental' }
local i = 0
while calls < ncalls do -- calls, not draws: a draw of an object without methods calls nothing
  i = i + 1
  local r = rand()
  if r < 0.3 and #pool > 0 then -- a method of something an earlier call returned
    local obj = pool[rand(#pool)]
    local ms = methods_of(obj)
    if ms and #ms > 0 then
      local m = ms[rand(#ms)]
      local args, n = { obj }, rand(1, 4)
      for k = 2, n do args[k] = rarg() end
      method_calls = method_calls + 1
      call(':' .. m.name, m.fn, args, n)
    end
  else
    local c = callables[rand(#callables)]
    local args, n = {}, rand(0, 5)
    for k = 1, n do args[k] = rarg() end
    if n > 0 and rand() < 0.5 then args[1] = rtensor() end -- as a tensor method
    call(c.name, c.fn, args, n)
  end
  if i % 1000 == 0 then
    collectgarbage(gc_modes[rand(2)])
    if rand() < 0.2 then collectgarbage('generational', 1, 100) end -- finalisers run often
  end
  if i % 5000 == 0 then
    nn.set_grad_enabled(true)
    nn.detect_anomaly(false)
  end
end
collectgarbage('incremental')
pool, current = {}, {}
collectgarbage()
collectgarbage()
if log then log:close() end
if PROFILE then
  local names = {}
  for k in pairs(PROFILE) do names[#names + 1] = k end
  table.sort(names, function(a, b) return PROFILE[a] > PROFILE[b] end)
  for i = 1, math.min(15, #names) do io.stderr:write(('%8.3f s %s\n'):format(PROFILE[names[i]], names[i])) end
end
io.stderr:write(('%d calls (%d of methods) over %d functions and classes, %d raised errors, no crash\n')
  :format(calls, method_calls, static_count, errors))
