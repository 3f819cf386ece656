--- nnlua.dist: data-parallel training over MPI.
---
---   mpirun -np 2 nnlua train.lua          -- (as root: --allow-run-as-root)
---
---   local rank, world = nn.dist.init()    -- 0, 1 when not under mpirun
---   local net = nn.dist.DistributedDataParallel(model)  -- same start on all
---   local loader = nn.data.DataLoader(ds, { batch_size = 64,
---     sampler = nn.dist.DistributedSampler(ds, { seed = 1 }) })
---   for x, y in loader:iter() do
---     local loss = nn.cross_entropy(net(x), y)
---     opt:zero_grad(); loss:backward()    -- gradients averaged over ranks
---     opt:step()
---   end
---
--- Collectives (engine/dist, bindings/ldist.c) are MPI's, blocking, on
--- contiguous tensors of the same shape on every rank; ranks count from 0.
--- Without MPI, or without mpirun, the world is this process alone and
--- every call works. After init, only rank 0 prints, draws progress bars,
--- writes metric logs and checkpoints, unless init{log = 'all'}; ranks on
--- one machine split its cores between them (unless OMP_NUM_THREADS is set).
local nn = require 'nnlua'
local Module = require('nnlua.module').Module
local C = nn._dist

local M = {}

local quiet = false

local OPTIONS_INIT = nn.define_options('dist.init', { 'timeout', 'log' })
--- init([{timeout = 1800, log = 'rank0' | 'all'}]) -> rank, world_size.
--- Joins the job mpirun started (later calls return the same). A
--- collective that waits longer than timeout seconds for the other ranks
--- ends the process with a message (0: wait for ever); a rank that raises
--- an error and exits stops the whole job.
function M.init(o)
  o = OPTIONS_INIT(o)
  local log = o.log or 'rank0'
  if log ~= 'rank0' and log ~= 'all' then
    error(("dist.init: log must be 'rank0' or 'all', got '%s'"):format(tostring(log)), 2)
  end
  if not C.is_initialized() then
    local rank, world = C.init(o.timeout or 1800)
    -- ranks sharing this machine share its cores (unless told otherwise)
    local here = tonumber(os.getenv('OMPI_COMM_WORLD_LOCAL_SIZE') or '')
    if here and here > 1 and not os.getenv('OMP_NUM_THREADS') then
      nn.set_num_threads(math.max(1, nn.get_num_threads() // here))
    end
    if world > 1 and rank ~= 0 and log == 'rank0' then
      quiet = true
      _G.print = function() end
    end
  end
  return C.rank(), C.world_size()
end

local function ready()
  if not C.is_initialized() then M.init() end
end

--- rank() -> this process's rank (0 before init)
function M.rank() return C.rank() end
--- world_size() -> the number of ranks (1 before init)
function M.world_size() return C.world_size() end
--- is_main() -> true on rank 0, the one that logs and saves
function M.is_main() return C.rank() == 0 end
--- quiet() -> true where printing, progress bars and saving are off
function M.quiet() return quiet end
--- backend() -> the MPI library ("Open MPI v4.1.4") or "none", and
--- whether this build has MPI
function M.backend() return C.backend() end

--- barrier(): returns when every rank has called it
function M.barrier() ready(); C.barrier() end
--- all_reduce(t[, op = 'sum' | 'avg' | 'max' | 'min']) -> t, in place
function M.all_reduce(t, op) ready(); return C.all_reduce(t, op) end
--- iall_reduce(t[, op = 'sum']) -> a request: t is reduced in place once
--- request:wait() returns; request:test() says whether it is done (MPI
--- moves it along inside MPI calls). Every rank starts its requests in
--- the same order.
function M.iall_reduce(t, op) ready(); return C.iall_reduce(t, op) end
--- broadcast(t[, root = 0]) -> t, holding root's values
function M.broadcast(t, root) ready(); return C.broadcast(t, root) end
--- all_gather(t) -> a (world_size, ...) tensor of every rank's t
function M.all_gather(t) ready(); return C.all_gather(t) end
--- reduce_scatter(t[, op = 'sum']) -> this rank's part (t's first dim
--- split in world_size parts) of the reduction
function M.reduce_scatter(t, op) ready(); return C.reduce_scatter(t, op) end

-- ---- the model's signature: the same on every rank or an error -------------

local function fnv1a(s) -- 64-bit FNV-1a (wrapping integer arithmetic)
  local h = -3750763034362895579 -- 14695981039346656037 as a signed integer
  for i = 1, #s do h = (h ~ s:byte(i)) * 1099511628211 end
  return h
end

-- the state dict's names, sorted (the same order on every rank)
local function sorted_state(model)
  local sd = model:state_dict()
  local names = {}
  for k in pairs(sd) do names[#names + 1] = k end
  table.sort(names)
  return sd, names
end

local function check_same_model(model)
  local sd, names = sorted_state(model)
  local values, at = { #names }, { [1] = '(the number of tensors)' }
  for _, name in ipairs(names) do
    local t = sd[name]
    for _, v in ipairs({ fnv1a(name), fnv1a(t.dtype), t:dim(), table.unpack(t:size()) }) do
      values[#values + 1] = v
      at[#values] = name
    end
  end
  local same, rank, pos = C.check_same(values)
  if same then return end
  if not pos then
    error(('DistributedDataParallel: the model on rank %d differs from rank 0\'s in its '
      .. 'number of tensors (rank %d has %d)'):format(rank, C.rank(), #names), 4)
  end
  local name = at[pos]
  local t = sd[name]
  error(('DistributedDataParallel: the model on rank %d differs from rank 0\'s at %s '
    .. '(rank %d has %s %s there)'):format(rank, name, C.rank(),
    t.dtype, table.concat(t:size(), 'x')), 4)
end

-- ---- DistributedDataParallel ----------------------------------------------------

local DDP = Module:extend()
DDP._name = 'DistributedDataParallel'
M.DistributedDataParallel = DDP

local OPTIONS_DDP = nn.define_options('dist.DistributedDataParallel', { 'bucket_mb', 'overlap' })
--- DistributedDataParallel(model[, {bucket_mb = 4, overlap = false}]):
--- calls model; at the start checks that every rank built the same model
--- (names, dtypes, shapes) and gives all ranks rank 0's parameters and
--- buffers; after each backward of an output it made, averages the
--- gradients over the ranks: dense ones packed into buckets of bucket_mb,
--- row-sparse ones (embeddings, KGE) as their touched rows. overlap
--- starts each bucket's all-reduce (non-blocking) during the backward, as
--- soon as its gradients are known; every rank must then use every
--- parameter in every step. state_dict and load_state_dict are the
--- model's own (no "module." prefix).
function DDP:_init(model, o)
  o = OPTIONS_DDP(o)
  if not nn.is_module(model) then
    error('DistributedDataParallel: expected a module, got a ' .. type(model), 3)
  end
  local mb = o.bucket_mb or 4
  if type(mb) ~= 'number' or not (mb > 0) then
    error('DistributedDataParallel: bucket_mb must be a positive number', 3)
  end
  ready()
  self.module = model
  rawset(self, '_params', model:parameters())
  rawset(self, '_bucket', math.max(1, math.floor(mb * 1048576 / 4)))
  rawset(self, '_sync', true)
  check_same_model(model)
  local sd, names = sorted_state(model)
  for _, name in ipairs(names) do C.broadcast(sd[name], 0) end
  if o.overlap then self:_make_buckets() end
end

-- ---- overlap: buckets filled by gradient hooks ----------------------------------

-- Dense parameters in reverse order (the backward reaches the last layers
-- first), in buckets of flat tensors with a view per parameter.
function DDP:_make_buckets()
  local buckets, sparse, where, cur = {}, {}, {}, nil
  local params = self._params
  for i = #params, 1, -1 do
    local p = params[i]
    if nn.sparse_grad_count(p) then
      table.insert(sparse, 1, p)
    else
      local n = p:numel()
      if not cur or (cur.size + n > self._bucket and cur.size > 0) then
        cur = { params = {}, offsets = {}, size = 0, filled = 0, fired = {} }
        buckets[#buckets + 1] = cur
      end
      cur.params[#cur.params + 1] = p
      cur.offsets[#cur.params] = cur.size
      cur.size = cur.size + n
      where[#where + 1] = { #buckets, #cur.params }
    end
  end
  for _, b in ipairs(buckets) do
    b.flat = nn.zeros(b.size)
    b.views = {}
    for k, p in ipairs(b.params) do
      b.views[k] = b.flat:narrow(1, b.offsets[k] + 1, p:numel()):view(p:size())
    end
  end
  rawset(self, '_buckets', buckets)
  rawset(self, '_sparse', sparse)
  -- the hooks hold the wrapper weakly (the registry keeps hooks alive, so
  -- a strong reference would keep every dropped model too)
  local weak = setmetatable({ self }, { __mode = 'v' })
  for _, at in ipairs(where) do
    local bi, k = at[1], at[2]
    buckets[bi].params[k]:register_hook(function(g)
      local ddp = weak[1]
      if ddp then ddp:_ready(bi, k, g) end
    end)
  end
end

local function queue_finish(self)
  if rawget(self, '_queued') then return end
  rawset(self, '_queued', true)
  nn._queue_callback(function()
    rawset(self, '_queued', false)
    self:sync_grads()
  end)
end

-- a parameter's gradient g of this backward is known: into its bucket
-- (with what .grad already holds); a full bucket starts its all-reduce
function DDP:_ready(bi, k, g)
  if not self._sync then return end
  local b = self._buckets[bi]
  local p = b.params[k]
  nn.no_grad(function()
    local v = b.views[k]
    v:copy_(g)
    if p.grad then v:add_(p.grad) end
  end)
  b.fired[k] = true
  b.filled = b.filled + 1
  if b.filled == #b.params then b.request = C.iall_reduce(b.flat, 'avg') end
  for _, other in ipairs(self._buckets) do -- MPI moves requests along inside its calls
    if other.request then other.request:test() end
  end
  queue_finish(self)
end

-- the end of an overlapped backward: buckets not started yet (a parameter
-- without a gradient this time) start now, in order; then every bucket's
-- result goes back into .grad
function DDP:_finish_buckets()
  for _, b in ipairs(self._buckets) do
    if not b.request then
      for k, p in ipairs(b.params) do
        if not b.fired[k] then
          if p.grad then b.views[k]:copy_(p.grad) else b.views[k]:zero_() end
        end
      end
      b.request = C.iall_reduce(b.flat, 'avg')
    end
  end
  for _, b in ipairs(self._buckets) do
    b.request:wait()
    b.request = nil
    b.filled, b.fired = 0, {}
    for k, p in ipairs(b.params) do
      if p.grad then p.grad:copy_(b.views[k]) else p.grad = b.views[k]:clone() end
    end
  end
  if #self._sparse > 0 then C.all_reduce_grads(self._sparse, self._bucket) end
end

function DDP:forward(...)
  if self._sync and nn.is_grad_enabled() then queue_finish(self) end
  return self.module(...)
end

--- ddp:sync_grads(): averages the gradients now (what the end of each
--- backward does)
function DDP:sync_grads()
  if self._buckets then return self:_finish_buckets() end
  C.all_reduce_grads(self._params, self._bucket)
end

--- ddp:no_sync([fn]): gradients accumulate locally (no communication)
--- while fn runs, or until the returned value is closed; the next
--- synchronised backward averages the sums
function DDP:no_sync(fn)
  local prev = self._sync
  rawset(self, '_sync', false)
  local restore = setmetatable({}, { __close = function() rawset(self, '_sync', prev) end })
  if fn == nil then return restore end
  local ok, err = pcall(fn)
  rawset(self, '_sync', prev)
  if not ok then error(err, 0) end
end

function DDP:state_dict() return self.module:state_dict() end
function DDP:load_state_dict(sd, strict) return self.module:load_state_dict(sd, strict) end

-- ---- DistributedSampler ------------------------------------------------------------

local Sampler = {}
Sampler.__index = Sampler
M.DistributedSampler = setmetatable({}, { __call = function(_, ...) return Sampler.new(...) end })

local OPTIONS_SAMPLER = nn.define_options('dist.DistributedSampler',
  { 'shuffle', 'seed', 'drop_last', 'rank', 'world_size' })
--- DistributedSampler(dataset or n[, {shuffle = true, seed = 0,
--- drop_last = false, rank =, world_size =}]): this rank's share of the
--- samples, for DataLoader's sampler option. Each epoch (set_epoch) is a
--- permutation drawn from seed + epoch, the same on every rank, dealt out
--- rank by rank; without drop_last the tail is padded with samples from
--- the start so every rank has ceil(n / world_size), else the tail is cut.
function Sampler.new(data, o)
  o = OPTIONS_SAMPLER(o)
  local n = type(data) == 'number' and data or (type(data) == 'table' and data.len and data:len())
  if math.type(n) ~= 'integer' or n < 0 then
    error('DistributedSampler: expected a dataset or a sample count', 3)
  end
  ready()
  local world, rank = o.world_size or C.world_size(), o.rank or C.rank()
  if math.type(world) ~= 'integer' or world < 1 or math.type(rank) ~= 'integer'
      or rank < 0 or rank >= world then
    error(('DistributedSampler: rank %s of world_size %s'):format(tostring(rank), tostring(world)), 3)
  end
  local per = o.drop_last and n // world or (n + world - 1) // world
  if per == 0 and n > 0 then
    error(('DistributedSampler: %d samples cannot be shared by %d ranks with drop_last'):format(
      n, world), 3)
  end
  return setmetatable({ n = n, world = world, rank = rank, per = per, epoch = 0,
    shuffle = o.shuffle ~= false, seed = o.seed or 0, drop_last = o.drop_last or false }, Sampler)
end

--- sampler:set_epoch(e): the permutation of epoch e (call once per epoch)
function Sampler:set_epoch(e)
  if math.type(e) ~= 'integer' then error('set_epoch: expected an integer epoch', 2) end
  self.epoch = e
end

--- sampler:len() -> the samples this rank gets per epoch
function Sampler:len() return self.per end

--- sampler:indices() -> this rank's samples of the epoch (1-based i64)
function Sampler:indices()
  local order
  if self.shuffle then
    local saved = nn.rng_state()
    nn.manual_seed(self.seed + self.epoch)
    order = select(2, nn.rand(self.n):sort())
    nn.rng_state(saved)
  else
    order = nn.arange(1, self.n + 1)
  end
  local total = self.per * self.world
  if total > self.n then -- padded with the start of the permutation
    local pad = {}
    local extra = total - self.n
    while extra > 0 do
      local k = math.min(extra, self.n)
      pad[#pad + 1] = order:narrow(1, 1, k)
      extra = extra - k
    end
    order = nn.cat({ order, table.unpack(pad) })
  end
  -- rank r takes r+1, r+1+world, ... of the first total
  return order:narrow(1, 1, total):view(self.per, self.world):select(2, self.rank + 1):contiguous()
end

return M
