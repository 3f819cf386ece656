-- The model script a host program loads (see host.c): it defines
-- train(x, y, steps) and predict(x) over tensors the host provides.
local nn = require 'nnlua'

nn.manual_seed(1)
local model = nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 1))
local opt = nn.optim.Adam(model:parameters(), { lr = 0.05 })

function train(x, y, steps)
  local loss
  for _ = 1, steps do
    loss = nn.F.binary_cross_entropy_with_logits(model(x), y)
    opt:zero_grad()
    loss:backward()
    opt:step()
  end
  return loss:item()
end

function predict(x)
  return nn.no_grad(function() return model(x):sigmoid():contiguous() end)
end
