--- nnlua.progress: a progress bar for any loop, and metrics logs.
---
---   for i, batch, bar in nn.progress(loader, { desc = 'train' }) do
---     ... bar.loss = loss:item() ...
---   end
---   for step, _, bar in nn.progress(1000) do ... end
---
--- On a terminal one line is redrawn (at most 10 times a second) with
--- step/total, rate, ETA and the metrics set on `bar`; otherwise a plain
--- line is printed every `every` steps (default: a tenth of the total, or
--- 100) so logs stay readable. Anything with an `ipairs`-style iterator or
--- a length works: a number, a list, or an object with :iter() / __len
--- (an iterator that yields several values, like DataLoader's, gives them
--- to the loop as one list).
local nn = require 'nnlua'

local M = {}

local function clock(s)
  s = math.max(0, math.floor(s + 0.5))
  if s >= 3600 then return ('%d:%02d:%02d'):format(s // 3600, s % 3600 // 60, s % 60) end
  return ('%d:%02d'):format(s // 60, s % 60)
end

--- number(v) -> short plain text: 21.1k, 3.2M, 0.4312, 1e-05
function M.number(v)
  if math.type(v) == 'integer' and math.abs(v) < 1e4 then return tostring(v) end
  local a = math.abs(v)
  if a ~= a or a == math.huge then return tostring(v) end
  for _, u in ipairs({ { 1e12, 'T' }, { 1e9, 'G' }, { 1e6, 'M' }, { 1e4, 'k' } }) do
    if a >= u[1] then
      local x = v / (u[1] == 1e4 and 1e3 or u[1])
      return ('%.1f%s'):format(x, u[1] == 1e4 and 'k' or u[2])
    end
  end
  return ('%.4g'):format(v)
end

-- the metrics as "name value" fields, sorted by name
local function metric_fields(bar)
  local keys = {}
  for k in pairs(bar.metrics) do keys[#keys + 1] = k end
  table.sort(keys)
  local fields = {}
  for _, k in ipairs(keys) do
    local v = bar.metrics[k]
    fields[#fields + 1] = k .. ' ' .. (type(v) == 'number' and M.number(v) or tostring(v))
  end
  return fields
end

local Bar = {}
Bar.__index = function(b, k) return rawget(Bar, k) or rawget(b, 'metrics')[k] end
Bar.__newindex = function(b, k, v) rawget(b, 'metrics')[k] = v end

-- the bar being redrawn on the terminal, and print as it was before it
local active, plain_print

-- one terminal line no wider than `width`: fields are dropped from the end
-- (metrics last to first, then the bar, ETA and elapsed time) until it fits
local function fit(head, bar, rest, width)
  local function join(with_bar, n)
    local parts = { head .. (with_bar and bar or '') }
    for i = 1, n do parts[#parts + 1] = rest[i] end
    return table.concat(parts, '  ')
  end
  for n = #rest, 0, -1 do
    local line = join(true, n)
    if #line < width then return line end
    if n <= 3 then -- keep the rate and times before the bar
      line = join(false, n)
      if #line < width then return line end
    end
  end
  return head:sub(1, math.max(1, width - 1))
end

-- under nn.dist, ranks other than 0 draw and log nothing
local function quiet()
  local dist = package.loaded['nnlua.dist']
  return dist and dist.quiet()
end

local function render(b, done)
  if quiet() then return end
  local now = nn.clock()
  local elapsed = now - b.t0
  local rate = b.n / math.max(elapsed, 1e-9)
  local total = b.total
  local head = total and ('%s%d/%d'):format(b.desc, b.n, total) or ('%s%d'):format(b.desc, b.n)
  local rest = { rate >= 1 and (M.number(rate) .. ' it/s') or (('%.2f s/it'):format(1 / math.max(rate, 1e-9))),
                 clock(elapsed) }
  if total and rate > 0 and not done then rest[#rest + 1] = 'ETA ' .. clock((total - b.n) / rate) end
  for _, f in ipairs(metric_fields(b)) do rest[#rest + 1] = f end
  if b.tty then
    local bar = ''
    if total and total > 0 then
      local w = 24
      local fill = math.min(w, math.floor(w * b.n / total))
      bar = ' [' .. ('='):rep(fill) .. (fill < w and '>' or '') .. (' '):rep(w - fill - 1) .. ']'
    end
    local width = b.width or nn.terminal_width(1) or tonumber(os.getenv('COLUMNS')) or 80
    io.stdout:write('\r', fit(head, bar, rest, width), '\027[K', done and '\n' or '')
  else
    io.stdout:write(head, '  ', table.concat(rest, '  '), '\n')
  end
  io.stdout:flush()
  b.last = now
end

-- While a bar is on the terminal, print clears its line first and redraws
-- it after, so other output lands on its own lines above the bar.
local function bar_print(...)
  if active then io.stdout:write('\r\027[K') end
  plain_print(...)
  if active then render(active, false) end
end

local function activate(b)
  if active == b or quiet() then return end
  active = b
  if _G.print ~= bar_print then plain_print, _G.print = _G.print, bar_print end
end

local function deactivate(b)
  if active ~= b then return end
  active = nil
  if _G.print == bar_print then _G.print = plain_print end
end

local OPTIONS_PROGRESS = nn.define_options('progress', { 'total', 'desc', 'every', 'tty', 'width' })
--- nn.progress(what[, {total =, desc =, every =, tty =, width =}]): width
--- is the terminal's (asked each redraw) unless given
function M.progress(what, o)
  o = OPTIONS_PROGRESS(o)
  local total, next_item
  if type(what) == 'number' then
    total = what
    local i = 0
    next_item = function() i = i + 1; if i <= what then return i end end
  elseif type(what) == 'table' and what.iter then
    total = o.total or (getmetatable(what) and getmetatable(what).__len and #what)
    next_item = what:iter()
  elseif type(what) == 'table' then
    total = #what
    local i = 0
    next_item = function() i = i + 1; return what[i] end
  else
    error('progress: expected a number, a list or an object with iter()', 2)
  end
  total = o.total or total
  local b = setmetatable({ metrics = {} }, Bar)
  rawset(b, 'n', 0)
  rawset(b, 'total', total)
  rawset(b, 'desc', o.desc and o.desc .. ' ' or '')
  rawset(b, 't0', nn.clock())
  rawset(b, 'last', 0)
  local tty = o.tty
  if tty == nil then tty = nn.isatty(1) end
  rawset(b, 'tty', tty)
  rawset(b, 'every', o.every or (total and math.max(1, total // 10)) or 100)
  rawset(b, 'width', o.width)
  local finished = false
  local function step()
    if finished then return nil end
    if b.n > 0 then -- report the step that just ended
      if b.tty then
        if nn.clock() - b.last > 0.1 then
          activate(b)
          render(b, false)
        end
      elseif b.n % b.every == 0 then
        render(b, false)
      end
    end
    local values = table.pack(next_item())
    local item = values.n > 1 and values or values[1] -- several values: a list
    if values[1] == nil then
      finished = true
      deactivate(b)
      if b.n > 0 and (b.tty or b.n % b.every ~= 0) then render(b, true) end
      return nil
    end
    rawset(b, 'n', b.n + 1)
    return b.n, item, b
  end
  -- the fourth value closes when the loop is left by break or an error
  local closer = setmetatable({}, { __close = function()
    if not finished and active == b then
      finished = true
      deactivate(b)
      io.stdout:write('\n')
    end
  end })
  return step, nil, nil, closer
end

-- ---- metrics logs ------------------------------------------------------------

local Log = {}
Log.__index = Log

local OPTIONS_PROGRESS_LOG = nn.define_options('progress.log', { 'append', 'format' })
--- nn.progress.log(path[, {format = 'jsonl' | 'csv'}]) -> a writer whose
--- :write{step = 10, loss = 1.2} appends one record (flushed at once);
--- CSV takes its columns from the first record.
function M.log(path, o)
  o = OPTIONS_PROGRESS_LOG(o)
  local format = (o and o.format) or (path:match('%.csv$') and 'csv' or 'jsonl')
  if quiet() then
    local nowhere = { write = function() end, flush = function() end, close = function() end }
    return setmetatable({ f = nowhere, format = format }, Log)
  end
  local f, err = io.open(path, (o and o.append) and 'a' or 'w')
  if not f then return nil, err end
  return setmetatable({ f = f, format = format }, Log)
end

local function json_value(v)
  if type(v) == 'number' then
    if v ~= v or v == math.huge or v == -math.huge then return 'null' end
    return math.type(v) == 'integer' and tostring(v) or ('%.17g'):format(v)
  end
  return ('%q'):format(tostring(v)):gsub('\\\n', '\\n')
end

function Log:write(rec)
  local keys = {}
  for k in pairs(rec) do keys[#keys + 1] = k end
  table.sort(keys)
  if self.format == 'csv' then
    if not self.columns then
      self.columns = keys
      self.f:write(table.concat(keys, ','), '\n')
    end
    local row = {}
    for i, k in ipairs(self.columns) do row[i] = rec[k] ~= nil and tostring(rec[k]) or '' end
    self.f:write(table.concat(row, ','), '\n')
  else
    local parts = {}
    for _, k in ipairs(keys) do parts[#parts + 1] = ('"%s":%s'):format(k, json_value(rec[k])) end
    self.f:write('{', table.concat(parts, ','), '}\n')
  end
  self.f:flush()
end

function Log:close() self.f:close() end

-- nn.progress(...) is nn.progress.progress(...)
return setmetatable(M, { __call = function(_, ...) return M.progress(...) end })
