-- nn.dist: the one-process world (no mpirun) here, then real 2- and 4-rank
-- jobs under mpirun (tests/dist/*.lua): DistributedDataParallel matches a
-- one-rank run on the whole batch at every step (dense, row-sparse and
-- mixed models, with and without overlap) and leaves identical
-- parameters on every rank; the sampler
-- covers the data once per epoch; a rank that raises, dies, hangs or
-- built another model stops the job with a message; a checkpoint resumes
-- exactly. The mpirun jobs run
-- in the nnlua suites (skipped with the reason when Open MPI is missing);
-- the stock lua5.4 suite runs one job through require "nnlua".
local nn = require 'nnlua'
local support = require 'support'
local exe, run = support.exe, support.run

local has_mpi = select(2, nn.dist.backend())
local missing = not os.execute('command -v mpirun >/dev/null 2>&1') and 'mpirun (openmpi-bin)'
  or not has_mpi and 'MPI in this build'
-- the nnlua runner puts nn in the globals; stock lua5.4 does not
local in_nnlua = rawget(_G, 'nn') ~= nil
local mpi_spec = (missing or not in_nnlua) and pending or it
local stock_spec = (missing or in_nnlua or (os.getenv('ASAN') or '') ~= '') and pending or it

-- leaks inside Open MPI are not ours: LSan would fail every ASan job
local MPIRUN = 'ASAN_OPTIONS=detect_leaks=0 OMPI_MCA_rmaps_base_oversubscribe=1 '
  .. 'timeout 120 mpirun --allow-run-as-root --oversubscribe -np %d %s'

local function mpirun(np, args) return run(MPIRUN:format(np, exe .. ' ' .. args)) end

local function losses(out)
  local l = {}
  for v in out:gmatch('step %d+ loss ([%d.e+-]+)') do l[#l + 1] = tonumber(v) end
  return l
end

describe('nn.dist in one process', function()
  it('is a world of one without mpirun', function()
    local rank, world = nn.dist.init()
    assert.equal(0, rank)
    assert.equal(1, world)
    assert.is_true(nn.dist.is_main())
    local t = nn.tensor({ 1, 2, 3 })
    assert.equal(t, nn.dist.all_reduce(t, 'avg'))
    assert.same({ 1, 2, 3 }, t:totable())
    assert.same({ { 1, 2, 3 } }, nn.dist.all_gather(t):totable())
    assert.same({ 1, 2, 3 }, nn.dist.reduce_scatter(t, 'max'):totable())
    assert.same({ 1, 2, 3 }, nn.dist.broadcast(t, 0):totable())
    nn.dist.barrier()
  end)

  it('rejects bad arguments by name', function()
    local t = nn.tensor({ 1, 2 })
    assert.has_error(function() nn.dist.all_reduce(t, 'mean') end,
      "bad argument #2 to 'all_reduce' (invalid option 'mean')")
    assert.error_matches(function() nn.dist.broadcast(t, 1) end, 'root 1 is not a rank')
    assert.error_matches(function() nn.dist.all_reduce(nn.tensor({ 1, 2 }, 'i64'), 'avg') end,
      "'avg' needs an f32 tensor, got i64")
    assert.error_matches(function() nn.dist.all_reduce(nn.ones(3, 4):t()) end, 'contiguous')
    assert.error_matches(function() nn.dist.all_reduce(nn.ones(2):expand(3, 2)) end, 'contiguous')
    assert.error_matches(function() nn.dist.all_reduce(nn.ones(2, 'bf16')) end, 'f32 or i64, got bf16')
    assert.error_matches(function() nn.dist.reduce_scatter(nn.tensor(3)) end, 'first dim')
    assert.error_matches(function() nn.dist.init{ log = 'some' } end, "log must be 'rank0' or 'all'")
    assert.error_matches(function() nn.dist.init{ timout = 1 } end, "unknown option 'timout'")
    local closed = nn.ones(2)
    closed:close()
    assert.error_matches(function() nn.dist.all_reduce(closed) end, 'closed')
    assert.error_matches(function() nn.dist.DistributedDataParallel(nn.Linear(2, 2), { bucket_mb = 0 }) end,
      'bucket_mb must be a positive number')
    assert.error_matches(function() nn.dist.DistributedDataParallel({}) end, 'expected a module')
  end)

  it('DistributedDataParallel is the model in a world of one', function()
    nn.manual_seed(3)
    local m = nn.Linear(4, 3)
    local net = nn.dist.DistributedDataParallel(m)
    local x = nn.randn(5, 4)
    local y = net(x)
    assert.same(m(x):totable(), y:totable())
    y:sum():backward()
    local g = m.weight.grad:clone()
    -- no_sync: the same gradients accumulate, nothing else happens
    net:no_sync(function() net(x):sum():backward() end)
    assert.near(0, (m.weight.grad - g * 2):abs():max():item(), 1e-6)
    assert.same(m:state_dict().weight:totable(), net:state_dict().weight:totable())
    assert.equal(2, #net:parameters())
  end)

  it('iall_reduce requests finish, hold their tensor, and refuse after closing', function()
    local t = nn.tensor({ 1, 2 })
    local req = nn.dist.iall_reduce(t, 'avg')
    t:close() -- the request holds the engine's tensor
    assert.is_true(req:test())
    req:wait()
    do local r <close> = req end
    assert.error_matches(function() req:wait() end, 'already finished and closed')
    assert.error_matches(function() nn.dist.iall_reduce(nn.ones(2, 3):t(), 'sum') end, 'contiguous')
    collectgarbage()
  end)

  it('overlap mode leaves the gradients of one process as they are', function()
    nn.manual_seed(4)
    local m = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2))
    local net = nn.dist.DistributedDataParallel(m, { overlap = true, bucket_mb = 0.0001 })
    local x = nn.randn(3, 4)
    net(x):pow(2):sum():backward()
    local g1 = m:parameters()[1].grad:clone()
    net:no_sync(function() net(x):pow(2):sum():backward() end)
    net(x):pow(2):sum():backward() -- the synced backward adds to what no_sync left
    assert.near(0, (m:parameters()[1].grad - g1 * 3):abs():max():item(), 1e-5)
  end)

  it('runs queued callbacks once after the next backward, not after autograd.grad', function()
    local calls = 0
    local x = nn.randn(3):requires_grad_()
    nn._queue_callback(function() calls = calls + 1 end)
    nn.autograd.grad({ (x * 2):sum() }, { x })
    assert.equal(0, calls)
    ;(x * 3):sum():backward()
    assert.equal(1, calls)
    ;(x * 3):sum():backward()
    assert.equal(1, calls)
  end)

  it('DistributedSampler deals every sample once across ranks, padded or cut', function()
    for _, case in ipairs({ { 12, 3, false }, { 13, 4, false }, { 13, 4, true }, { 2, 4, false } }) do
      local n, world, drop = case[1], case[2], case[3]
      local count, total, per = {}, 0, nil
      for r = 0, world - 1 do
        local s = nn.dist.DistributedSampler(n, { rank = r, world_size = world, seed = 5, drop_last = drop })
        s:set_epoch(2)
        local ids = s:indices():totable()
        per = per or #ids
        assert.equal(per, #ids)
        assert.equal(s:len(), #ids)
        for _, i in ipairs(ids) do count[i] = (count[i] or 0) + 1; total = total + 1 end
      end
      local expect = drop and (n // world) * world or ((n + world - 1) // world) * world
      assert.equal(expect, total)
      local distinct = 0
      for i, c in pairs(count) do
        assert(i >= 1 and i <= n)
        distinct = distinct + 1
        assert(c <= (n < world and world or 2))
      end
      if not drop then assert.equal(n, distinct) end
    end
    local a = nn.dist.DistributedSampler(10, { seed = 1 })
    local first = a:indices():totable()
    a:set_epoch(1)
    assert.are_not.same(first, a:indices():totable())
    assert.same(first, nn.dist.DistributedSampler(10, { seed = 1 }):indices():totable())
    assert.same({ 1, 2, 3 }, nn.dist.DistributedSampler(3, { shuffle = false }):indices():totable())
    assert.error_matches(function() nn.dist.DistributedSampler(4, { rank = 2, world_size = 2 }) end,
      'rank 2 of world_size 2')
    assert.error_matches(function() nn.dist.DistributedSampler(1, { world_size = 2, rank = 0, drop_last = true }) end,
      'cannot be shared')
    assert.error_matches(function()
      nn.data.DataLoader(nn.data.TensorDataset(nn.ones(3)), { sampler = a, shuffle = true })
    end, 'replaces shuffle')
  end)
end)

-- runs tests/dist/match.lua on 1 rank and on np ranks (env before the
-- second): the losses of every step agree, and the np ranks end with the
-- same parameters; returns both outputs
local function same_as_one_rank(np, model, steps, env)
  local args = ('tests/dist/match.lua %s %d 16'):format(model, steps)
  local one, c1 = mpirun(1, args)
  assert.equal(0, c1, one)
  local many, c2 = run((env or '') .. MPIRUN:format(np, exe .. ' ' .. args))
  assert.equal(0, c2, many)
  local a, b = losses(one), losses(many)
  assert.equal(steps, #a, one)
  assert.equal(steps, #b, many)
  for i = 1, steps do assert.near(a[i], b[i], 1e-5 * math.max(1, math.abs(a[i]))) end
  assert.truthy(many:find('identical true', 1, true), many)
  return one, many
end

describe('nn.dist under mpirun' .. (missing and (' (skipped: no ' .. missing .. ')') or ''), function()
  for _, model in ipairs({ 'mlp', 'kge', 'emb' }) do
    mpi_spec(('2 ranks x batch 8 match 1 rank x batch 16 at every step (%s)'):format(model), function()
      local one, two = same_as_one_rank(2, model, 6)
      -- rank 1 started from other weights: DDP gave it rank 0's
      local c_one, c_two = one:match('checksum ([%d.-]+)'), two:match('checksum ([%d.-]+)')
      assert.near(tonumber(c_one), tonumber(c_two), 1e-3)
    end)
  end

  mpi_spec('with overlap (all-reduce started by gradient hooks) 2 ranks still match 1 rank', function()
    same_as_one_rank(2, 'mlp', 5, 'NNLUA_TEST_OVERLAP=1 ')
    same_as_one_rank(2, 'emb', 4, 'NNLUA_TEST_OVERLAP=1 ') -- dense buckets and sparse rows
  end)

  mpi_spec('4 ranks match 1 rank when the sparse rows travel as rows and as a whole table', function()
    same_as_one_rank(4, 'kge', 4)
    same_as_one_rank(4, 'kge_small', 4)
  end)

  mpi_spec('a checkpoint saved under mpirun resumes to the same steps (KGE: sparse Adam state)', function()
    local file = support.tempdir() .. '/ckpt.safetensors'
    local whole, c0 = mpirun(2, 'tests/dist/match.lua kge 6 16')
    assert.equal(0, c0, whole)
    local first, c1 = mpirun(2, 'tests/dist/match.lua kge 6 16 save ' .. file)
    assert.equal(0, c1, first)
    assert.truthy(first:find('saved ' .. file .. ' on rank 0: true', 1, true), first)
    local rest, c2 = mpirun(2, 'tests/dist/match.lua kge 6 16 resume ' .. file)
    assert.equal(0, c2, rest)
    local a, b, c = losses(whole), losses(first), losses(rest)
    assert.equal(3, #b)
    assert.equal(3, #c)
    for i = 1, 3 do
      assert.equal(a[i], b[i])
      assert.equal(a[i + 3], c[i])
    end
    assert.equal(whole:match('checksum (%S+)'), rest:match('checksum (%S+)'))
  end)

  mpi_spec('the sampler covers the data once per epoch across 2 ranks', function()
    local out, code = mpirun(2, 'tests/dist/sampler.lua 10')
    assert.equal(0, code, out)
    assert.truthy(out:find('epoch 1 distinct 10 total 10 per_rank 5', 1, true), out)
    assert.truthy(out:find('epoch 2 distinct 10 total 10 per_rank 5', 1, true), out)
    assert.truthy(out:find('epochs differ true', 1, true), out)
    out, code = mpirun(2, 'tests/dist/sampler.lua 11')
    assert.equal(0, code, out)
    assert.truthy(out:find('epoch 1 distinct 11 total 12 per_rank 6', 1, true), out)
  end)

  local failures = {
    { 'raise', '%(rank 1 of 2%): tests/dist/failure.lua:%d+: rank 1 gives up at step 5' },
    { 'kill', 'exited on signal 9' },
    { 'hang', 'nn.dist: rank 0 of 2 waited %d+ s in [a-z_]+ for the other ranks %(timeout 3 s%)' },
    { 'shape', "the model on rank 1 differs from rank 0's at 0.weight %(rank 1 has f32 16x9 there%)" },
  }
  for _, f in ipairs(failures) do
    mpi_spec(('a rank that %s mid-run stops the job with a message within 60 s'):format(
      f[1] == 'shape' and 'built another model' or f[1] .. 's'), function()
      local t0 = os.time()
      local out, code = mpirun(2, 'tests/dist/failure.lua ' .. f[1])
      assert.is_true(os.time() - t0 <= 60)
      assert.are_not.equal(0, code)
      assert.truthy(out:find(f[2]), out)
      assert.is_nil(out:find('rank 0 step 1000', 1, true), out)
    end)
  end

  -- docs/distributed.md's one-machine commands, exactly (nnlua from this tree)
  local block = support.read('docs/distributed.md'):match('## On one machine\n.-```sh\n(.-)```')
  local doc_spec = ((os.getenv('ASAN') or '') ~= '') and pending or mpi_spec
  for line in (block or ''):gmatch('[^\n]+') do
    local needs = line:match('%.%./shared/data/[%w_]+')
    local have = not needs or io.open(needs .. '/train.txt')
    local spec = have and doc_spec or pending
    spec('docs/distributed.md: ' .. line:match('nnlua (%S+)') .. (have and '' or ' (no ' .. needs .. ')'), function()
      local cmd = line:gsub(' nnlua ', ' ' .. exe .. ' ', 1):gsub('^mpirun', 'ASAN_OPTIONS=detect_leaks=0 timeout 300 mpirun')
      local out, code = run(cmd)
      assert.equal(0, code, out)
      assert.is_nil(out:find('rank 1', 1, true), out) -- rank 0 alone prints
    end)
  end
  it('finds the commands in docs/distributed.md', function() assert.truthy(block and #block > 0) end)

  stock_spec('works from stock lua5.4 through require "nnlua"', function()
    local out, code = run(MPIRUN:format(2, ('lua5.4 -e "package.cpath=\'./?.so;\'..package.cpath;'
      .. 'package.path=\'lua/?.lua;\'..package.path" tests/dist/match.lua mlp 3 8')))
    assert.equal(0, code, out)
    assert.equal(3, #losses(out), out)
    assert.truthy(out:find('identical true', 1, true), out)
  end)
end)
