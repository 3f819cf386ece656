--- nnlua.repl: what the nnlua REPL (bindings/main.c) asks of Lua:
--- completions for the word before the cursor, and results shown readably.
---
---   complete('nn.Seq')  --> { 'nn.Sequential' }
---   complete('x:su')    --> { 'x:sub', 'x:sum', ... } (methods only)
---   show({1, 2, a = {b = 3}})  --> '{ 1, 2, a = { b = 3 } }'
local M = {}

local function is_identifier(k)
  return type(k) == 'string' and k:match('^[%a_][%w_]*$') ~= nil
end

-- the value a dotted path names, looked up as Lua would (lazy names load)
local function resolve(path)
  local v = _G
  for part in path:gmatch('[^.:]+') do
    if type(v) ~= 'table' and type(v) ~= 'userdata' and type(v) ~= 'string' then return nil end
    local ok, x = pcall(function() return v[part] end)
    if not ok then return nil end
    v = x
  end
  return v
end

-- every key reachable from v: its own fields, what a table __index
-- inherits (classes and their parents), the names a lazy table would load
local function keys_of(v, into, seen)
  seen = seen or {}
  if v == nil or seen[v] then return into end
  seen[v] = true
  if type(v) == 'table' then
    for k, x in pairs(v) do
      if is_identifier(k) and into[k] == nil then into[k] = x end
    end
    if type(rawget(v, '_lazy')) == 'table' then
      for _, k in ipairs(v._lazy) do if into[k] == nil then into[k] = false end end
    end
  end
  local mt = getmetatable(v)
  if type(mt) == 'table' then
    local index = rawget(mt, '__index')
    if type(index) == 'table' then
      keys_of(index, into, seen)
    elseif type(index) == 'function' and type(v) == 'userdata' then
      -- a C __index over a method table (tensors, layers): the table is its upvalue
      local _, up = debug.getupvalue(index, 1)
      if type(up) == 'table' then
        pcall(function() return up['\0'] end) -- a lazily filled method table fills in
        keys_of(up, into, seen)
      end
    end
  end
  -- a module's parameters, buffers and children (built-in layers keep them in C)
  if type(v) == 'userdata' and type(rawget(into, '_entries')) == 'function' then
    local ok, entries = pcall(v._entries, v)
    if ok then
      for _, e in ipairs(entries) do if is_identifier(e[1]) then into[e[1]] = e[2] end end
    end
  end
  return into
end

local function is_tensor(v)
  local nn = package.loaded.nnlua
  return nn and nn.is_tensor and nn.is_tensor(v)
end

--- complete(word) -> sorted list of completions of word ("a.b.pre" or
--- "a:pre" or "pre"); after ':' only methods. Names starting with '_' are
--- offered only when the prefix starts with '_'.
function M.complete(word)
  local head, sep, prefix = word:match('^(.-)([.:])([%w_]*)$')
  local scope
  if head then
    if not head:match('^[%a_][%w_.]*$') then return {} end
    scope = resolve(head)
    if scope == nil then return {} end
  else
    head, sep, prefix, scope = '', '', word, _G
  end
  local candidates = keys_of(scope, {})
  local nn = package.loaded.nnlua
  local out = {}
  for k, v in pairs(candidates) do
    local ok = k:sub(1, #prefix) == prefix and (k:sub(1, 1) ~= '_' or prefix:sub(1, 1) == '_')
    if ok and sep == ':' then
      ok = type(v) == 'function' and k:sub(1, 2) ~= '__'
      if ok and is_tensor(scope) then -- the tensor method table is the module table
        ok = not (nn._functions and nn._functions[k]) and not k:match('^%u')
      end
    end
    if ok then out[#out + 1] = head .. sep .. k end
  end
  table.sort(out)
  return out
end

local function quote(s)
  return ('%q'):format(s):gsub('\\\n', '\\n')
end

-- a table shown to depth `depth`, at most `limit` entries per level
local function show_table(t, depth, limit, seen)
  if seen[t] then return '<cycle>' end
  if rawget(t, '__index') == t then -- a class (nnlua.class)
    return ('<class %s>'):format(tostring(rawget(t, '_name') or '?'))
  end
  local mt = getmetatable(t)
  if mt and rawget(mt, '__tostring') then return tostring(t) end
  if depth <= 0 then return '{...}' end
  seen[t] = true
  local parts, n = {}, #t
  local function value(v)
    if type(v) == 'table' then return show_table(v, depth - 1, limit, seen) end
    if type(v) == 'string' then return quote(v) end
    return (tostring(v):gsub('\n', ' '))
  end
  for i = 1, math.min(n, limit) do parts[#parts + 1] = value(t[i]) end
  local keys = {}
  for k in pairs(t) do
    if not (math.type(k) == 'integer' and k >= 1 and k <= n) then keys[#keys + 1] = k end
  end
  table.sort(keys, function(a, b)
    if type(a) == type(b) and (type(a) == 'string' or type(a) == 'number') then return a < b end
    return type(a) < type(b)
  end)
  local shown = #parts
  for _, k in ipairs(keys) do
    if shown >= limit then break end
    local key = is_identifier(k) and k or ('[' .. (type(k) == 'string' and quote(k) or tostring(k)) .. ']')
    parts[#parts + 1] = key .. ' = ' .. value(t[k])
    shown = shown + 1
  end
  local total = n + #keys
  seen[t] = nil
  if total > shown then parts[#parts + 1] = ('... (%d more)'):format(total - shown) end
  if #parts == 0 then return '{}' end
  return '{ ' .. table.concat(parts, ', ') .. ' }'
end

--- show(v) -> text of v for the REPL: tables to depth 2, 20 entries a
--- level (anything with __tostring as itself), strings quoted
function M.show(v)
  if type(v) == 'table' then return show_table(v, 2, 20, {}) end
  if type(v) == 'string' then return quote(v) end
  return tostring(v)
end

return M
