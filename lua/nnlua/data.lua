--- nnlua.data: datasets, a DataLoader, and readers for common files.
---
---   local ds = nn.data.TensorDataset(images, labels)     -- rows are samples
---   local loader = nn.data.DataLoader(ds, { batch_size = 128, shuffle = true })
---   for x, y in loader:iter() do ... end                  -- #loader batches
---
--- A dataset is any object with :len() and :get(i) (1-based) returning a
--- sample (a tensor, a number, or a list of them). TensorDatasets are
--- batched in C with one index_select per tensor; other datasets go through
--- `collate` (default: stack tensors, gather numbers into a tensor).
--- Shuffling draws from the engine's seeded generator, so it is
--- reproducible and resumes with the generator's state. TensorDataset
--- batches are assembled ahead by a background thread in C (prefetch =
--- 2 batches by default; 0 builds each on demand, in C, with the same
--- work and the same results), optionally with image
--- augmentation (augment = {flip = true, shift = 2}: random horizontal
--- flips and shifts of the (N, C, H, W) tensor, seeded like everything else).
local nn = require 'nnlua'
local class = require 'nnlua.class'
local files = require 'nnlua.files'

local M = {}

-- ---- datasets -------------------------------------------------------------

local TensorDataset = class()
M.TensorDataset = TensorDataset

function TensorDataset:_init(...)
  self.tensors = {}
  for i, t in ipairs({ ... }) do self.tensors[i] = t:contiguous() end
  assert(#self.tensors > 0, 'TensorDataset needs at least one tensor')
  local n = self.tensors[1]:size(1)
  for i, t in ipairs(self.tensors) do
    if t:size(1) ~= n then
      error(('TensorDataset: tensor %d has %d rows, tensor 1 has %d'):format(i, t:size(1), n), 2)
    end
  end
  self.n = n
end
function TensorDataset:len() return self.n end
function TensorDataset:get(i)
  local out = {}
  for k, t in ipairs(self.tensors) do out[k] = t[i] end
  return out
end
function TensorDataset:batch(ids) -- the fast path: one gather per tensor
  local out = {}
  for k, t in ipairs(self.tensors) do out[k] = t:index_select(1, ids) end
  return out
end

--- The default collate: a list of samples -> a list of batched tensors.
function M.collate(samples)
  local first = samples[1]
  if nn.is_tensor(first) or type(first) == 'number' then
    first = nil
    local wrapped = {}
    for i, s in ipairs(samples) do wrapped[i] = { s } end
    samples = wrapped
  end
  local out = {}
  for k = 1, #samples[1] do
    local column = {}
    for i, s in ipairs(samples) do column[i] = s[k] end
    if nn.is_tensor(column[1]) then out[k] = nn.stack(column)
    elseif math.type(column[1]) == 'integer' then out[k] = nn.tensor(column, 'i64')
    elseif type(column[1]) == 'number' then out[k] = nn.tensor(column)
    else out[k] = column end
  end
  return out
end

-- ---- the loader ---------------------------------------------------------------

local DataLoader = class()
M.DataLoader = DataLoader

local OPTIONS_DATA_DATALOADER = nn.define_options('data.DataLoader', { 'batch_size', 'shuffle', 'drop_last', 'collate', 'augment', 'prefetch', 'sampler' })
--- DataLoader(dataset[, {batch_size = 1, shuffle = false, drop_last = false,
--- collate = nn.data.collate, prefetch = 2, augment =, sampler =}]): a
--- sampler (e.g. nn.dist.DistributedSampler) has :len() and :indices()
--- (the 1-based sample ids of one pass, in order) and replaces shuffle
function DataLoader:_init(dataset, o)
  o = OPTIONS_DATA_DATALOADER(o)
  self.dataset, self.batch_size = dataset, o.batch_size or 1
  self.sampler = o.sampler
  if self.sampler and (o.shuffle or type(self.sampler) ~= 'table'
      or not self.sampler.indices or not self.sampler.len) then
    error('DataLoader: sampler must have :len() and :indices(), and replaces shuffle', 2)
  end
  self.shuffle, self.drop_last, self.collate = o.shuffle or false, o.drop_last or false, o.collate
  self.prefetch = o.prefetch == nil and 2 or o.prefetch
  self.augment = o.augment
  assert(self.batch_size >= 1, 'DataLoader: batch_size must be >= 1')
  if self.augment and not (dataset.tensors and not self.collate) then
    error('DataLoader: augment needs a TensorDataset and no collate', 2)
  end
end

function DataLoader:__len()
  local n = self.sampler and self.sampler:len() or self.dataset:len()
  return self.drop_last and n // self.batch_size or (n + self.batch_size - 1) // self.batch_size
end

--- An iterator over batches; each batch is returned unpacked (x, y, ...).
function DataLoader:iter()
  local n, order
  if self.sampler then
    order = self.sampler:indices()
    n = order:numel()
  else
    n = self.dataset:len()
    order = self.shuffle and select(2, nn.rand(n):sort()) or nn.arange(1, n + 1)
  end
  if self.dataset.tensors and not self.collate then
    local augment = self.augment
    if augment then augment = { source = augment.source or 1, flip = augment.flip, shift = augment.shift } end
    local p = nn.prefetch(self.dataset.tensors, order, self.batch_size,
      { drop_last = self.drop_last, depth = self.prefetch, augment = augment })
    return function() return p:next() end
  end
  local batches, b = #self, 0
  return function()
    b = b + 1
    if b > batches then return nil end
    local start = (b - 1) * self.batch_size + 1
    local ids = order:narrow(1, start, math.min(self.batch_size, n - start + 1))
    local out
    if self.dataset.batch and not self.collate then
      out = self.dataset:batch(ids)
    else
      local samples = {}
      for k, i in ipairs(ids:totable()) do samples[k] = self.dataset:get(i) end
      out = (self.collate or M.collate)(samples)
    end
    return table.unpack(out)
  end
end

-- ---- readers ---------------------------------------------------------------------

--- read_text(path) -> the file's contents, or nil and a message
function M.read_text(path)
  local f, err = files.open(path)
  if not f then return nil, err end
  local s = f:read('a')
  f:close()
  return s
end

local OPTIONS_DATA_READ_TABLE = nn.define_options('data.read_table', { 'header', 'sep' })
--- read_table(path[, {sep = '\t', header = false}]) -> rows (lists of
--- strings) and, with header, the column names. TSV and simple CSV (no
--- quoted separators).
function M.read_table(path, o)
  o = OPTIONS_DATA_READ_TABLE(o)
  local sep = o.sep or (path:match('%.csv$') and ',' or '\t')
  local f, err = files.open(path)
  if not f then return nil, err end
  local rows, names = {}, nil
  for line in f:lines() do
    line = line:gsub('\r$', '')
    if line ~= '' then
      local row = {}
      for field in (line .. sep):gmatch('(.-)' .. sep:gsub('%p', '%%%0')) do row[#row + 1] = field end
      if o.header and not names then names = row else rows[#rows + 1] = row end
    end
  end
  f:close()
  return rows, names
end

--- read_jsonl(path) -> a list of decoded records (lua-cjson)
function M.read_jsonl(path)
  local cjson = require 'cjson'
  local f, err = files.open(path)
  if not f then return nil, err end
  local out, n = {}, 0
  for line in f:lines() do
    n = n + 1
    if line:match('%S') then
      local ok, rec = pcall(cjson.decode, line)
      if not ok then
        f:close()
        return nil, ('%s:%d: %s'):format(path, n, rec)
      end
      out[#out + 1] = rec
    end
  end
  f:close()
  return out
end

M.read_idx = function(...) return require('nnlua.idx').read(...) end

--- map(path, offset, shape...[, dtype]): a tensor over a file region,
--- loaded page by page as it is touched (files larger than memory);
--- see nn.map_file
M.map = function(...) return nn.map_file(...) end

return M
