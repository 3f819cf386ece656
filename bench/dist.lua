--- bench/dist.lua: data-parallel costs on this machine, in one run.
---  - all-reduce of 1, 10 and 100 MB of f32 between 2 ranks (median ms and
---    MB/s; for a ring all-reduce on 2 ranks the bus bandwidth equals it);
---  - the GPT 6x384 training step (T 256, global batch 8, AdamW) on 1 rank
---    with 2 threads against 2 ranks with 1 thread each (batch 4 per rank),
---    with the time spent averaging gradients, in 4 MB buckets and with
---    one all-reduce per tensor, and with each bucket's non-blocking
---    all-reduce started during the backward (overlap = true).
--- It starts its own mpirun jobs; skipped with a message without Open MPI.
--- Usage: nnlua bench/dist.lua [--steps N]
package.path = arg[0]:gsub('[^/]*$', '') .. '?.lua;' .. arg[0]:gsub('[^/]*$', '') .. '../examples/gpt/?.lua;' .. package.path
local nn = require 'nnlua'
local bench = require 'common'

local steps, worker, batch, bucket, overlap = 6, nil, 8, 4, false
for i = 1, #arg do
  if arg[i] == '--overlap' then overlap = true end
  if arg[i] == '--steps' then steps = tonumber(arg[i + 1]) end
  if arg[i] == '--worker' then worker = arg[i + 1] end
  if arg[i] == '--batch' then batch = tonumber(arg[i + 1]) end
  if arg[i] == '--bucket_mb' then bucket = tonumber(arg[i + 1]) end
end

local function allreduce_worker()
  nn.dist.init()
  for _, mb in ipairs({ 1, 10, 100 }) do
    local t = nn.ones(mb * 1000000 // 4)
    local ts = {}
    for i = 1, mb == 100 and 7 or 22 do -- the first two warm up
      nn.dist.barrier()
      local t0 = nn.clock()
      nn.dist.all_reduce(t, 'sum')
      if i > 2 then ts[#ts + 1] = nn.clock() - t0 end
    end
    print(('allreduce_%dMB %.3f'):format(mb, bench.median(ts) * 1e3))
  end
end

local function gpt_worker()
  local _, world = nn.dist.init()
  local GPT = require 'model'
  nn.manual_seed(0)
  local m = GPT({ vocab_size = 65, block_size = 256, n_layer = 6, n_head = 6, n_embd = 384,
                  dropout = 0, bias = true })
  local net = nn.dist.DistributedDataParallel(m, { bucket_mb = bucket, overlap = overlap })
  local opt = nn.optim.AdamW(m:parameters(), { lr = 1e-3 })
  local x, y = nn.randint(1, 66, batch, 256), nn.randint(1, 66, batch, 256)
  local wait, sync = 0, 0
  if overlap then -- time what is left of the exchange when the backward is done
    local finish = net._finish_buckets
    rawset(net, '_finish_buckets', function(self)
      local t0 = nn.clock()
      finish(self)
      sync = sync + (nn.clock() - t0)
    end)
  end
  local ms = overlap and bench.time_steps(function() -- the exchange runs inside backward
    local _, loss = net(x, y)
    opt:zero_grad()
    loss:backward()
    nn.optim.clip_grad_norm_(m:parameters(), 1.0)
    opt:step()
  end, steps) or bench.time_steps(function()
    local _, loss = m(x, y) -- the model itself: the gradients are averaged below, timed
    opt:zero_grad()
    loss:backward()
    local t0 = nn.clock()
    nn.dist.barrier() -- waiting for the slower rank, apart from the exchange
    local t1 = nn.clock()
    net:sync_grads()
    wait, sync = wait + (t1 - t0), sync + (nn.clock() - t1)
    nn.optim.clip_grad_norm_(m:parameters(), 1.0)
    opt:step()
  end, steps)
  print(('gpt_ms %.1f'):format(ms))
  print(('sync_ms %.1f'):format(sync / (steps + 2) * 1e3))
  print(('wait_ms %.1f'):format(wait / (steps + 2) * 1e3))
  print(('threads %d world %d params %d'):format(nn.get_num_threads(), world, m:num_parameters()))
end

if worker == 'allreduce' then return allreduce_worker() end
if worker == 'gpt' then return gpt_worker() end

if not os.execute('command -v mpirun >/dev/null 2>&1') or not select(2, nn.dist.backend()) then
  print('bench/dist.lua: skipped (no mpirun or no MPI in this build)')
  return
end
local exe = arg[-1] or 'nnlua'
local function job(np, args)
  local cmd = ('%s %s bench/dist.lua --steps %d %s 2>&1'):format(
    np > 0 and ('mpirun --allow-run-as-root --oversubscribe -np %d'):format(np) or '', exe, steps, args)
  local p = io.popen(cmd)
  local out = p:read('a')
  p:close()
  local r = {}
  for k, v in out:gmatch('(%S+) ([%d.]+)') do r[k] = r[k] or tonumber(v) end
  if not next(r) then error('bench/dist.lua: ' .. cmd .. ' gave\n' .. out) end
  return r
end

print(('dist: %s; %d cores'):format(nn.dist.backend(), nn.get_num_threads()))
local ar = job(2, '--worker allreduce')
print(('%-40s %10s %10s'):format('all-reduce between 2 ranks', 'ms', 'MB/s'))
for _, mb in ipairs({ 1, 10, 100 }) do
  local ms = ar[('allreduce_%dMB'):format(mb)]
  print(('%-40s %10.2f %10.0f'):format(('  %d MB'):format(mb), ms, mb / (ms / 1e3)))
end

local one = job(0, '--worker gpt --batch 8')
local two = job(2, '--worker gpt --batch 4')
local tiny = job(2, '--worker gpt --batch 4 --bucket_mb 0.0001')
local overlapped = job(2, '--worker gpt --batch 4 --overlap')
print(('GPT 6x384 T256, global batch 8 (%.1fM parameters, %.0f MB of gradients)'):format(
  two.params / 1e6, two.params * 4 / 1e6))
-- reduce ms: the exchange after the backward (for overlap: what is left of
-- it then, waiting for the slower rank included); wait ms: for the slower
-- rank, before the exchange
print(('%-40s %10s %10s %10s %8s'):format('', 'step ms', 'reduce ms', 'wait ms', 'vs 1x2'))
print(('%-40s %10.1f %10s %10s %8s'):format('  1 rank x 2 threads, batch 8', one.gpt_ms, '-', '-', '1.00x'))
for _, r in ipairs({ { '  2 ranks x 1 thread, batch 4 each', two },
                     { '  the same, one all-reduce per tensor', tiny } }) do
  print(('%-40s %10.1f %10.1f %10.1f %7.2fx'):format(r[1], r[2].gpt_ms, r[2].sync_ms, r[2].wait_ms,
    one.gpt_ms / r[2].gpt_ms))
end
print(('%-40s %10.1f %10.1f %10s %7.2fx'):format('  buckets all-reduced during backward', overlapped.gpt_ms,
  overlapped.sync_ms, '(in it)', one.gpt_ms / overlapped.gpt_ms))
