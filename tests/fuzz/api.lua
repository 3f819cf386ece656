--- tests/fuzz/api.lua: calls every nn function with random arguments
--- (tensors of random shapes and dtypes, views, numbers, tables, strings,
--- nil) under pcall. Errors are expected; crashes and sanitizer reports are
--- bugs. Run under the ASan build: build-asan/nnlua tests/fuzz/api.lua [N [seed]]
local nn = require 'nnlua'
local n, seed = tonumber(arg[1]) or 20000, tonumber(arg[2]) or 1
math.randomseed(seed)

local skip = { set_num_threads = true, sgemm_time = true, map_file = true, save = true,
               load = true, prefetch = true, isatty = true, manual_seed = false }
local fns = {}
for k, v in pairs(nn) do
  if type(v) == 'function' and not skip[k] and not k:match('^_') then fns[#fns + 1] = k end
end
table.sort(fns)

local function rtensor()
  local nd = math.random(0, 4)
  local shape = {}
  for i = 1, nd do shape[i] = math.random(0, 4) end
  local t = math.random() < 0.8 and nn.randn(table.unpack(shape)) or nn.randint(-3, 5, table.unpack(shape))
  local r = math.random()
  if r < 0.15 and t.ndim >= 2 then t = t:transpose(1, t.ndim) end
  if r > 0.9 and t.ndim >= 1 and t:size(1) > 1 then t = t:narrow(1, 2, t:size(1) - 1) end
  if math.random() < 0.1 and t.dtype == 'f32' then t:requires_grad_() end
  return t
end

local function rarg()
  local r = math.random()
  if r < 0.45 then return rtensor() end
  if r < 0.7 then return math.random(-3, 5) end
  if r < 0.75 then return math.random() * 4 - 2 end
  if r < 0.85 then return { math.random(0, 3), math.random(-1, 3) } end
  if r < 0.9 then return ({ 'f32', 'i64', 'x', 'inf' })[math.random(4)] end
  if r < 0.95 then return { rtensor(), rtensor() } end
  return nil
end

local errors = 0
for i = 1, n do
  local name = fns[math.random(#fns)]
  local args = {}
  local argc = math.random(0, 5)
  for k = 1, argc do args[k] = rarg() end
  local ok, res = pcall(nn[name], table.unpack(args, 1, argc))
  if not ok then errors = errors + 1 end
  if ok and nn.is_layer(res) then -- a layer: call it on something random
    for _ = 1, 3 do
      if not pcall(res, rarg(), rarg()) then errors = errors + 1 end
    end
  end
  if i % 2000 == 0 then collectgarbage() end
end
print(('%d calls of %d functions, %d raised errors, no crash'):format(n, #fns, errors))
