--- nnlua.cli: `--name value` options for example and training scripts.
---
---   local opt = nn.cli.parse(arg, { iters = 1000, lr = 1e-3, data = '' })
---
--- Every option must be one of the defaults; its value takes the default's
--- type (numbers are checked). A boolean option is a flag: `--name` alone
--- sets it, `--name true|false` says which. --help, or anything unknown, prints a usage
--- line listing the options and exits (0 for --help, 2 otherwise).
local M = {}

local function usage(defaults)
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
    if args[i] == '--help' or args[i] == '-h' then
      print(usage(defaults))
      os.exit(0)
    end
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
    if not key or defaults[key] == nil or value == nil then
      io.stderr:write(usage(defaults), '\n')
      os.exit(2)
    end
    if type(defaults[key]) == 'number' then
      local n = tonumber(value)
      if not n then
        io.stderr:write(('--%s expects a number, got %q\n'):format(key, value))
        os.exit(2)
      end
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
