-- mpirun -np 2 nnlua tests/dist/failure.lua HOW
-- Rank 1 fails in the middle of training while rank 0 goes on, and the
-- job must stop: HOW is 'raise' (a Lua error), 'kill' (SIGKILL), 'hang'
-- (rank 1 stops answering; rank 0's watchdog, timeout 3 s, ends it) or
-- 'shape' (rank 1 built a different model: an error at the start).
local nn = require 'nnlua'
local how = arg[1]
local rank = nn.dist.init{ timeout = how == 'hang' and 3 or 60 }
local width = (how == 'shape' and rank == 1) and 9 or 8
local model = nn.Sequential(nn.Linear(width, 16), nn.ReLU(), nn.Linear(16, 2))
local net = nn.dist.DistributedDataParallel(model)
local opt = nn.optim.SGD(model:parameters(), { lr = 0.1 })
for step = 1, 1000 do
  if rank == 1 and step == 5 then
    if how == 'raise' then error('rank 1 gives up at step 5') end
    if how == 'kill' then
      local pid = io.open('/proc/self/stat'):read('n')
      os.execute('kill -9 ' .. pid)
    end
    if how == 'hang' then while true do end end
  end
  local loss = net(nn.randn(4, width)):pow(2):mean()
  opt:zero_grad()
  loss:backward()
  opt:step()
  nn.dist.barrier()
  if step % 100 == 0 then io.stderr:write(('rank %d step %d\n'):format(rank, step)) end
end
