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

local function metrics_text(bar)
  local keys = {}
  for k in pairs(bar.metrics) do keys[#keys + 1] = k end
  table.sort(keys)
  local parts = {}
  for _, k in ipairs(keys) do
    local v = bar.metrics[k]
    parts[#parts + 1] = type(v) == 'number' and ('%s %.4g'):format(k, v) or ('%s %s'):format(k, tostring(v))
  end
  return table.concat(parts, '  ')
end

local Bar = {}
Bar.__index = function(b, k) return rawget(Bar, k) or rawget(b, 'metrics')[k] end
Bar.__newindex = function(b, k, v) rawget(b, 'metrics')[k] = v end

local function render(b, done)
  local now = nn.clock()
  local elapsed = now - b.t0
  local rate = b.n / math.max(elapsed, 1e-9)
  local total = b.total
  local head = total and ('%s%d/%d'):format(b.desc, b.n, total) or ('%s%d'):format(b.desc, b.n)
  local eta = total and rate > 0 and ('  ETA %s'):format(clock((total - b.n) / rate)) or ''
  local m = metrics_text(b)
  local tail = ('  %.1f it/s  %s%s%s'):format(rate, clock(elapsed), done and '' or eta,
    m ~= '' and '  ' .. m or '')
  if b.tty then
    local width = 24
    local bar = ''
    if total and total > 0 then
      local fill = math.floor(width * b.n / total)
      bar = ' [' .. ('='):rep(fill) .. (fill < width and '>' or '') .. (' '):rep(width - fill - 1) .. ']'
    end
    io.stdout:write('\r', head, bar, tail, '\027[K', done and '\n' or '')
  else
    io.stdout:write(head, tail, '\n')
  end
  io.stdout:flush()
  b.last = now
end

local OPTIONS_PROGRESS = nn.define_options('progress', { 'total', 'desc', 'every', 'tty' })
--- nn.progress(what[, {total =, desc =, every =, tty =}])
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
  local finished = false
  return function()
    if finished then return nil end
    if b.n > 0 then -- report the step that just ended
      if b.tty then
        if nn.clock() - b.last > 0.1 then render(b, false) end
      elseif b.n % b.every == 0 then
        render(b, false)
      end
    end
    local values = table.pack(next_item())
    local item = values.n > 1 and values or values[1] -- several values: a list
    if values[1] == nil then
      finished = true
      if b.n > 0 and (b.tty or b.n % b.every ~= 0) then render(b, true) end
      return nil
    end
    rawset(b, 'n', b.n + 1)
    return b.n, item, b
  end
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
