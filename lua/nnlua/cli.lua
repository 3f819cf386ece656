--- nnlua.cli: `--name value` options for example and training scripts.
---
---   local opt = nn.cli.parse(arg, { iters = 1000, lr = 1e-3, data = '' })
---
--- Every option must be one of the defaults; its value takes the default's
--- type (numbers are checked). A boolean option is a flag: `--name` alone
--- sets it, `--name true|false` says which. --help, or anything unknown,
--- raises a usage error: an object whose tostring is the message and usage
--- line and whose `exit_code` is 0 for --help, 2 otherwise. The library never
--- exits the process: the nnlua runner shows such an error without a
--- traceback and exits with its code; under pcall it is an ordinary error.
local M = {}

local UsageError = {}
UsageError.__index = UsageError
UsageError.__tostring = function(e) return e.message end

--- Raises a usage error (see above); `message` may be nil for --help.
local function fail(defaults, code, message)
  local text = message and (message .. '\n' .. M.usage(defaults)) or M.usage(defaults)
  error(setmetatable({ message = text, exit_code = code }, UsageError), 0)
end

--- The usage line: every option with its default.
function M.usage(defaults)
  local keys = {}
  for k in pairs(defaults) do keys[#keys + 1] = k end
  table.sort(keys)
  local parts = {}
  for _, k in ipairs(keys) do
    local v = defaults[k]
    parts[#parts + 1] = type(v) == 'boolean' and ('[--%s]'):format(k) or ('[--%s %s]'):format(k, tostring(v))
  end
  return 'usage: ' .. (arg and arg[0] or 'script') .. ' ' .. table.concat(parts, ' ')
end

function M.parse(args, defaults)
  local opt = {}
  for k, v in pairs(defaults) do opt[k] = v end
  local i = 1
  while i <= #args do
    if args[i] == '--help' or args[i] == '-h' then fail(defaults, 0) end
    local key = args[i]:match('^%-%-([%w_]+)$')
    local value = args[i + 1]
    if key and type(defaults[key]) == 'boolean' then
      if value == 'true' or value == 'false' then
        opt[key], i = value == 'true', i + 2
      else
        opt[key], i = true, i + 1
      end
      goto continue
    end
    if not key then fail(defaults, 2, ('unexpected argument %q'):format(args[i])) end
    if defaults[key] == nil then fail(defaults, 2, ('unknown option --%s'):format(key)) end
    if value == nil then fail(defaults, 2, ('--%s needs a value'):format(key)) end
    if type(defaults[key]) == 'number' then
      local n = tonumber(value)
      if not n then fail(defaults, 2, ('--%s expects a number, got %q'):format(key, value)) end
      opt[key] = n
    else
      opt[key] = value
    end
    i = i + 2
    ::continue::
  end
  return opt
end

return M
