--- nnlua.cli: `--name value` options for example and training scripts,
--- checked before the script does any work.
---
---   local opt = nn.cli.parse(arg, {
---     { 'iters', 1000, 'training iterations', integer = true, min = 1 },
---     { 'model', 'mlp', 'architecture', choices = { 'mlp', 'cnn' } },
---     { 'data', '', 'a text file (default: the fortunes package)', path = 'file' },
---     { 'out', 'gpt.safetensors', 'where the model is saved', path = 'out' },
---     { 'force', false, 'overwrite --out if it exists' },
---   })
---
--- Each entry is {name, default, help} and optional checks: `integer`,
--- `min`, `max`, `choices`, `each` (a comma-separated list of these), `path` ('file': readable, 'dir': a directory,
--- 'out': a file that can be written; '' means "none" for all three). The
--- value takes the default's type; a boolean option is a flag (`--name`, or
--- `--name true|false`). A plain table of defaults ({iters = 1000}) also
--- works, without help texts or checks.
---
--- A user error (unknown option, bad value, unreadable path, and whatever a
--- script reports with nn.cli.fail) is an error object whose tostring is
--- one line ("train.lua: --iters must be an integer >= 1, got -5") and whose
--- `exit_code` is 2; --help gives the usage with exit_code 0. The library
--- never exits the process: the nnlua runner shows such an error without a
--- traceback and exits with its code; under pcall it is an ordinary error.
local M = {}

local UsageError = {}
UsageError.__index = UsageError
UsageError.__tostring = function(e) return e.message end

local function script_name()
  return (arg and arg[0] or 'script'):match('[^/]*$')
end

--- fail(fmt, ...): raises a user error (exit status 2) saying
--- "<script>: <message>", shown without a traceback by the runner.
function M.fail(fmt, ...)
  local message = select('#', ...) > 0 and fmt:format(...) or fmt
  error(setmetatable({ message = script_name() .. ': ' .. message, exit_code = 2 }, UsageError), 0)
end

-- the spec as a list of entries, whichever form it was given in
local function entries(spec)
  if spec[1] ~= nil then return spec end
  local list = {}
  for k, v in pairs(spec) do list[#list + 1] = { k, v } end
  table.sort(list, function(a, b) return a[1] < b[1] end)
  return list
end

local function constraint(e)
  local parts = {}
  if e.integer then parts[#parts + 1] = 'an integer' end
  if e.min and e.max then parts[#parts + 1] = ('in [%s, %s]'):format(e.min, e.max)
  elseif e.min then parts[#parts + 1] = '>= ' .. e.min
  elseif e.max then parts[#parts + 1] = '<= ' .. e.max end
  return table.concat(parts, ' ')
end

--- The usage text: one line per option with its help, default and checks.
function M.usage(spec)
  local lines = { ('usage: %s [options]'):format(script_name()) }
  for _, e in ipairs(entries(spec)) do
    local name, default, help = e[1], e[2], e[3]
    local metavar = e.choices and table.concat(e.choices, '|')
      or e.each and (table.concat(e.each, ',', 1, math.min(2, #e.each)) .. ',...')
      or e.path and (e.path == 'dir' and 'DIR' or 'FILE')
      or type(default) == 'number' and (e.integer and 'N' or 'X') or 'TEXT'
    local flag = type(default) == 'boolean' and ('--' .. name) or ('--%s %s'):format(name, metavar)
    local notes = {}
    if type(default) == 'number' then notes[#notes + 1] = 'default ' .. tostring(default)
    elseif type(default) == 'string' and default ~= '' then
      notes[#notes + 1] = 'default ' .. ('%q'):format(default):gsub('\\\n', '\\n')
    end
    local c = constraint(e)
    if c ~= '' then notes[#notes + 1] = c end
    if e.each then notes[#notes + 1] = 'items: ' .. table.concat(e.each, ',') end
    local text = (help or '') .. (#notes > 0 and (' (' .. table.concat(notes, '; ') .. ')') or '')
    lines[#lines + 1] = ('  %-24s %s'):format(flag, text)
  end
  return table.concat(lines, '\n')
end

local function readable(path)
  local f, err = require('nnlua.files').open(path)
  if not f then return nil, err end
  f:close()
  return true
end

local function is_dir(path)
  local f = io.open(path, 'rb')
  if not f then return false end
  local _, _, code = f:read(0)
  f:close()
  return code == 21 -- EISDIR
end

-- a file can be made at `path`: its directory exists and takes a new file
local function writable(path)
  if is_dir(path) then return nil, path .. ' is a directory' end
  local dir = path:match('^(.*)/[^/]*$') or '.'
  if dir == '' then dir = '/' end
  if not is_dir(dir) then return nil, ('directory %s does not exist'):format(dir) end
  local probe = ('%s/.nnlua-write-test-%d'):format(dir, math.random(1 << 30))
  local f, err = io.open(probe, 'wb')
  if not f then return nil, ('cannot write in %s (%s)'):format(dir, err:match('[^:]*$'):gsub('^ ', '')) end
  f:close()
  os.remove(probe)
  return true
end

local function member(list, x)
  for _, c in ipairs(list) do if c == x then return true end end
  return false
end

local function check(e, v)
  local name = '--' .. e[1]
  local function bad(what) M.fail('%s must be %s, got %s', name, what, tostring(v)) end
  if e.choices and not member(e.choices, v) then bad('one of ' .. table.concat(e.choices, '|')) end
  if e.each then -- a comma-separated list of choices
    for item in v:gmatch('[^,]+') do
      if not member(e.each, item) then M.fail('%s: unknown item %q (items are %s)', name, item, table.concat(e.each, ',')) end
    end
  end
  if type(v) == 'number' then
    if v ~= v then bad('a number') end
    if e.integer and math.type(v) ~= 'integer' and v ~= math.floor(v) then bad(constraint(e)) end
    if (e.min and v < e.min) or (e.max and v > e.max) then bad(constraint(e)) end
    if e.integer then return math.tointeger(v) or v end
  end
  return v
end

-- the path checks, once every value is known to be well-formed (a bad
-- --layers is reported as such even when the default --data is missing)
local function check_path(e, v)
  local name = '--' .. e[1]
  if e.path and v ~= '' then
    local ok, err
    if e.path == 'file' then ok, err = readable(v)
    elseif e.path == 'dir' then ok, err = is_dir(v), v .. ' is not a directory'
    elseif e.path == 'out' then ok, err = writable(v)
    else error('nn.cli: unknown path kind ' .. tostring(e.path), 3) end
    if not ok then M.fail('%s: %s', name, err) end
  end
  return v
end

--- parse(args, spec) -> options table (see the top of the file)
function M.parse(args, spec)
  local list, by_name = entries(spec), {}
  for _, e in ipairs(list) do by_name[e[1]] = e end
  local opt = {}
  for _, e in ipairs(list) do opt[e[1]] = e[2] end
  local i = 1
  while i <= #args do
    if args[i] == '--help' or args[i] == '-h' then
      error(setmetatable({ message = M.usage(spec), exit_code = 0 }, UsageError), 0)
    end
    local key = args[i]:match('^%-%-([%w_]+)$')
    local value = args[i + 1]
    if not key then M.fail('unexpected argument %q (options are --name value; see --help)', args[i]) end
    local e = by_name[key]
    if not e then M.fail('unknown option --%s (see --help)', key) end
    if type(e[2]) == 'boolean' then
      if value == 'true' or value == 'false' then
        opt[key], i = value == 'true', i + 2
      else
        opt[key], i = true, i + 1
      end
    else
      if value == nil then M.fail('--%s needs a value', key) end
      if type(e[2]) == 'number' then
        local n = tonumber(value)
        if not n then M.fail('--%s must be a number, got %q', key, value) end
        opt[key] = n
      else
        opt[key] = value
      end
      i = i + 2
    end
  end
  for _, e in ipairs(list) do opt[e[1]] = check(e, opt[e[1]]) end
  for _, e in ipairs(list) do check_path(e, opt[e[1]]) end
  return opt
end

-- a list of problems "a; b; c; ..." cut to its first three
local function shorten(message)
  local parts = {}
  for p in (message .. '; '):gmatch('(.-); ') do parts[#parts + 1] = p end
  if #parts <= 4 then return message end
  return table.concat(parts, '; ', 1, 3) .. ('; and %d more'):format(#parts - 3)
end

--- try(what, fn, ...) -> fn's results. An error fn raises, or a nil first
--- result and a message (the library's way of failing), becomes a user
--- error "what: message": for loading what the user named (--resume FILE).
function M.try(what, fn, ...)
  local r = table.pack(pcall(fn, ...))
  if not r[1] then M.fail('%s: %s', what, shorten((tostring(r[2]):gsub('^[^:\n]*:%d+: ', '')))) end
  if r[2] == nil then M.fail('%s: %s', what, shorten(tostring(r[3]))) end
  return table.unpack(r, 2, r.n)
end

--- keep(path, force): refuses (a user error) to replace an existing file
--- unless force, so a run never overwrites a good model by accident.
function M.keep(path, force, flag)
  if force or path == '' then return end
  local f = io.open(path, 'rb')
  if f then
    f:close()
    M.fail('%s %s exists; pass --force to overwrite it', flag or '--out', path)
  end
end

return M
