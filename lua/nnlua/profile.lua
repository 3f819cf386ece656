--- nn.profile(fn[, {sort =, limit =}]): runs fn and reports where its time
--- went, per op (each C function a script calls: nn.matmul, x:add, a + b)
--- and per layer (built-in layers and nn.Module subclasses, by class name),
--- forward and backward apart: a backward row sums the backward nodes an op
--- (or the ops inside a layer) recorded. Columns: calls, total and self
--- time (self: without the scopes inside it), threads (process CPU time
--- over wall time: the cores that worked, OpenMP spinning included) and
--- the tensor memory allocated (self). `NNLUA_PROFILE=1` profiles a whole
--- script and prints the table to stderr at exit (`NNLUA_PROFILE=FILE.json`
--- writes the JSON there too). Off, nothing is wrapped: no cost.
local nn = require 'nnlua'
local cjson = require 'cjson'

local M = {}

local OPTIONS = nn.define_options('nn.profile', { 'sort', 'limit' })
local SORTS = { self = true, total = true, calls = true, bytes = true }

local Report = {}
Report.__index = Report
Report.__name = 'nnlua.ProfileReport'

local function sort_key(r, by)
  if by == 'bytes' then return r.self_bytes end
  return r[by]
end

local function check_view(o, what)
  o = OPTIONS(o)
  local by, limit = o.sort or 'self', o.limit or 30
  if not SORTS[by] then error(what .. ": sort must be 'self', 'total', 'calls' or 'bytes', got " .. tostring(by), 3) end
  if math.type(limit) ~= 'integer' or limit < 1 then error(what .. ': limit must be an integer >= 1', 3) end
  return by, limit
end

--- report:sorted([{sort = 'self', limit = 30}]) -> the rows, largest first
function Report:sorted(o)
  local by, limit = check_view(o, 'report:sorted')
  local rows = table.move(self.rows, 1, #self.rows, 1, {})
  table.sort(rows, function(a, b)
    local ka, kb = sort_key(a, by), sort_key(b, by)
    if ka ~= kb then return ka > kb end
    return a.name .. a.phase < b.name .. b.phase
  end)
  return table.move(rows, 1, math.min(limit, #rows), 1, {})
end

local function megabytes(b) return b / 2 ^ 20 end

--- report:table([{sort = 'self', limit = 30}]) -> the table as text
function Report:table(o)
  local rows = self:sorted(o)
  local scoped = 0
  for _, r in ipairs(self.rows) do scoped = scoped + r.outer end
  local lines = {
    ('profile: %.1f ms wall, %.1f ms of it outside every op and layer (Lua code); %d rows (%d shown)')
      :format(1e3 * self.wall, 1e3 * math.max(self.wall - scoped, 0), #self.rows, #rows),
    ('%-34s %-6s %-8s %8s %11s %11s %6s %10s %7s %10s'):format('name', 'kind', 'phase', 'calls', 'total ms',
      'self ms', 'self%', 'avg us', 'threads', 'self MB'),
  }
  for _, r in ipairs(rows) do
    lines[#lines + 1] = ('%-34s %-6s %-8s %8d %11.2f %11.2f %6.1f %10.1f %7.2f %10.1f'):format(
      r.name:sub(1, 34), r.kind, r.phase, r.calls, 1e3 * r.total, 1e3 * r.self,
      self.wall > 0 and 100 * r.self / self.wall or 0, 1e6 * r.total / math.max(r.calls, 1),
      r.threads, megabytes(r.self_bytes))
  end
  return table.concat(lines, '\n')
end
function Report:__tostring() return self:table(self.view) end

--- report:json() -> {"wall": seconds, "rows": [...]} as text, for tools
function Report:json()
  return cjson.encode({ wall = self.wall, rows = self:sorted({ limit = math.max(#self.rows, 1) }) })
end

local function tables()
  local list = { nn, getmetatable(nn.zeros(1)) }
  if type(nn.F) == 'table' then list[#list + 1] = nn.F end
  return list
end

local function report_of(rows, wall)
  for _, r in ipairs(rows) do r.threads = r.total > 0 and r.cpu / r.total or 0 end
  return setmetatable({ rows = rows, wall = wall }, Report)
end

-- the flag lives in the core table, which every load of the Lua half
-- shares (a second require of nnlua.module would not see a module field)
local function start()
  nn._profile_start(tables())
  rawset(nn, '_profiling', true)
end

local function stop()
  rawset(nn, '_profiling', false)
  return nn._profile_stop()
end

--- profile(fn[, {sort =, limit =}]) -> fn's results..., then the report
--- (print it, or report:table{sort =, limit =}, report:json())
function M.profile(fn, o)
  if type(fn) ~= 'function' and not (getmetatable(fn) or {}).__call then
    error('nn.profile: expected a function, got ' .. type(fn), 2)
  end
  check_view(o, 'nn.profile')
  start()
  local t0 = nn.clock()
  local res = table.pack(pcall(fn))
  local wall = nn.clock() - t0
  local rows = stop()
  if not res[1] then error(res[2], 0) end
  local report = report_of(rows, wall)
  report.view = o
  return report, table.unpack(res, 2, res.n)
end

--- a whole script (NNLUA_PROFILE set): profiles from here to lua_close
function M.from_environment(value)
  start()
  local t0 = nn.clock()
  -- a table's finaliser runs at lua_close (or when the state is collected)
  M._sentinel = setmetatable({}, { __gc = function()
    local report = report_of(stop(), nn.clock() - t0)
    io.stderr:write(report:table(), '\n')
    if value:match('%.json$') then
      local ok, err = require('nnlua.files').write_atomic(value, report:json() .. '\n')
      if not ok then io.stderr:write('NNLUA_PROFILE: ', tostring(err), '\n') end
    end
  end })
end

return setmetatable(M, { __call = function(_, ...) return M.profile(...) end })
