--- nnlua.checkpoint: a whole training state in one safetensors file, so a
--- resumed run continues bit-identically: the model's parameters, the
--- optimizer's state tensors, and (in the metadata, as JSON) the step, the
--- optimizer's and scheduler's settings and counters, the random
--- generator's (seed, offset), and any extra values of the caller's.
---
---   nn.checkpoint.save(path, { model = m, optimizer = opt, scheduler = s,
---                              step = it, extra = { best = 1.7 } })
---   local info = nn.checkpoint.load(path, { model = m, optimizer = opt,
---                                           scheduler = s })  -- info.step
local nn = require 'nnlua'
local cjson = require 'cjson'

local M = {}

-- cjson prints at most 14 digits; floats travel as strings of 17 so every
-- double comes back bit for bit ("=" marks them), integers as they are
local function pack(v)
  if type(v) == 'number' and math.type(v) == 'float' then return ('=%.17g'):format(v) end
  if type(v) == 'string' and v:sub(1, 1) == '=' then return '=' .. v end
  if type(v) ~= 'table' then return v end
  local out = {}
  for k, x in pairs(v) do out[k] = pack(x) end
  return out
end

local function unpack_values(v)
  if type(v) == 'string' and v:sub(1, 1) == '=' then
    local rest = v:sub(2)
    if rest:sub(1, 1) == '=' then return rest end
    return tonumber(rest) + 0.0
  end
  if type(v) ~= 'table' then return v end
  local out = {}
  for k, x in pairs(v) do out[k] = unpack_values(x) end
  return out
end

local check_save = nn.define_options('checkpoint.save',
  { 'model', 'optimizer', 'scheduler', 'step', 'extra', 'all_ranks' })
local check_load = nn.define_options('checkpoint.load', { 'model', 'optimizer', 'scheduler' })

--- Writes the state atomically; returns true, or nil and a message.
--- Under nn.dist only rank 0 writes (the others return true) unless
--- all_ranks = true.
function M.save(path, s)
  check_save(s)
  local dist = package.loaded['nnlua.dist']
  if dist and dist.quiet() and not s.all_ranks then return true end
  local tensors, meta = {}, { step = s.step, extra = s.extra, rng = nil }
  for name, t in pairs(s.model:state_dict()) do tensors['model.' .. name] = t end
  if s.optimizer then
    local sd = s.optimizer:state_dict()
    local scalars = {}
    for i, st in pairs(sd.state) do
      scalars[tostring(i)] = {}
      for k, v in pairs(st) do
        if nn.is_tensor(v) then tensors[('optimizer.%d.%s'):format(i, k)] = v
        else scalars[tostring(i)][k] = v end
      end
    end
    meta.optimizer = { scalars = scalars, param_groups = sd.param_groups }
  end
  if s.scheduler then meta.scheduler = s.scheduler:state_dict() end
  local seed, offset = table.unpack(nn.rng_state())
  meta.rng = { tostring(seed), tostring(offset) }
  return nn.save(path, tensors, { ['nnlua.checkpoint'] = cjson.encode(pack(meta)) })
end

--- Restores what it is given from path; returns {step =, extra =}, or nil
--- and a message when the file cannot be read.
function M.load(path, s)
  check_load(s)
  local tensors, meta = nn.load(path)
  if not tensors then return nil, meta end
  local info = meta['nnlua.checkpoint'] and unpack_values(cjson.decode(meta['nnlua.checkpoint']))
  if not info then return nil, path .. ': not an nnlua training checkpoint' end
  local sd = {}
  for name, t in pairs(tensors) do
    local n = name:match('^model%.(.*)$')
    if n then sd[n] = t end
  end
  -- everything is checked before anything is restored
  local problems = s.model:check_state_dict(sd)
  if #problems > 0 then error('checkpoint.load: ' .. table.concat(problems, '; '), 2) end
  local osd
  if s.optimizer and info.optimizer then
    local state = {}
    for i, scalars in pairs(info.optimizer.scalars) do state[tonumber(i)] = scalars end
    for name, t in pairs(tensors) do
      local i, k = name:match('^optimizer%.(%d+)%.(.*)$')
      if i then
        state[tonumber(i)] = state[tonumber(i)] or {}
        state[tonumber(i)][k] = t
      end
    end
    osd = { state = state, param_groups = info.optimizer.param_groups }
    s.optimizer:check_state_dict(osd)
  end
  s.model:load_state_dict(sd)
  if osd then s.optimizer:load_state_dict(osd) end
  if s.scheduler and info.scheduler then s.scheduler:load_state_dict(info.scheduler) end
  nn.rng_state({ math.tointeger(tonumber(info.rng[1])), math.tointeger(tonumber(info.rng[2])) })
  return { step = info.step, extra = info.extra }
end

--- info(path) -> {step =, extra =} of a checkpoint without loading it into
--- anything (e.g. the hyperparameters needed to build the model first),
--- or nil and a message
function M.info(path)
  local _, meta = nn.load(path)
  if not _ then return nil, meta end
  local info = meta['nnlua.checkpoint'] and unpack_values(cjson.decode(meta['nnlua.checkpoint']))
  if not info then return nil, path .. ': not an nnlua training checkpoint' end
  return { step = info.step, extra = info.extra }
end

return M
