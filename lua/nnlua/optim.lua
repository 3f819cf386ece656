--- nnlua.optim: optimizers (SGD, Adam, AdamW, RMSprop, Adagrad) with
--- parameter groups, gradient clipping, and learning-rate schedulers.
--- The update of each parameter is one C kernel (engine/optim.c) following
--- PyTorch 1.13's formulas; this file keeps state and hyperparameters.
---
---   local opt = nn.optim.AdamW(model:parameters(), { lr = 1e-3, weight_decay = 0.1 })
---   opt:zero_grad(); loss:backward(); opt:step()
---   -- groups: nn.optim.SGD({ { params = a, lr = 0.1 }, { params = b } }, { lr = 0.01 })
local nn = require 'nnlua'
local class = require 'nnlua.class'

local M = {}

local Optimizer = class()
M.Optimizer = Optimizer

-- settings as "k=v" sorted by name; tables of numbers as {a, b}
local function settings(t, skip)
  local keys, parts = {}, {}
  for k, v in pairs(t) do
    if type(k) == 'string' and not skip[k] and k:sub(1, 1) ~= '_' and type(v) ~= 'function' then keys[#keys + 1] = k end
  end
  table.sort(keys)
  for _, k in ipairs(keys) do
    local v = t[k]
    if type(v) == 'table' and not getmetatable(v) then
      local items = {}
      for i, x in ipairs(v) do items[i] = ('%.6g'):format(x) end
      v = '{' .. table.concat(items, ', ') .. '}'
    elseif type(v) == 'number' then v = ('%.6g'):format(v)
    elseif type(v) == 'table' then v = nil end
    if v ~= nil then parts[#parts + 1] = k .. '=' .. tostring(v) end
  end
  return table.concat(parts, ', ')
end

--- tostring(optimizer): its class and, per group, the parameters and settings
function Optimizer:__tostring()
  local lines = { ('%s (%d parameter group%s)'):format(self._name or 'Optimizer', #self.param_groups,
    #self.param_groups == 1 and '' or 's') }
  for i, g in ipairs(self.param_groups) do
    local n = 0
    for _, p in ipairs(g.params) do n = n + p:numel() end
    lines[#lines + 1] = ('  group %d: %d tensors, %d values; %s'):format(i, #g.params, n,
      settings(g, { params = true }))
  end
  return table.concat(lines, '\n')
end

local function is_group_list(params)
  return type(params) == 'table' and type(params[1]) == 'table' and not nn.is_tensor(params[1])
end

-- the options checker of an optimizer class named name with these defaults
local function options(name, known)
  local keys = {}
  for k in pairs(known) do keys[#keys + 1] = k end
  table.sort(keys)
  return nn.define_options('optim.' .. name, keys)
end

function Optimizer:_init(params, defaults, known, check)
  if type(params) ~= 'table' or #params == 0 then
    error('optimizer: expected a non-empty list of parameters or of groups', 3)
  end
  check(defaults)
  self.defaults = {}
  for k, v in pairs(known) do self.defaults[k] = v end
  for k, v in pairs(defaults) do self.defaults[k] = v end
  self.param_groups, self.state = {}, {}
  for _, g in ipairs(is_group_list(params) and params or { { params = params } }) do
    local group = { params = {} }
    for k, v in pairs(self.defaults) do group[k] = v end
    local own = {}
    for k, v in pairs(g) do
      if k ~= 'params' then own[k] = v end
    end
    for k, v in pairs(check(own)) do group[k] = v end
    for i, p in ipairs(g.params) do
      if not nn.is_tensor(p) or not p.requires_grad then
        error(('optimizer: parameter %d is not a tensor that requires grad'):format(i), 3)
      end
      group.params[#group.params + 1] = p
    end
    self.param_groups[#self.param_groups + 1] = group
  end
end

function Optimizer:zero_grad()
  for _, g in ipairs(self.param_groups) do
    for _, p in ipairs(g.params) do p.grad = nil end
  end
end

--- Runs update(p, grad, state, group) for each parameter with a gradient;
--- grad is nil for a parameter with a row-sparse gradient (optimizers
--- that support it, Adam and Adagrad, then update the rows used only).
function Optimizer:step()
  for _, g in ipairs(self.param_groups) do
    for _, p in ipairs(g.params) do
      local rows = nn.sparse_grad_count(p)
      local grad = not rows and p.grad or nil
      if rows and not self.sparse then
        error('optimizer: this optimizer cannot take row-sparse gradients (use Adam or Adagrad)', 2)
      end
      if grad or (rows and rows > 0) then
        local st = self.state[p]
        if not st then
          st = { step = 0 }
          self.state[p] = st
        end
        st.step = st.step + 1
        self:update(p, grad, st, g)
      end
    end
  end
end

--- {state = {[i] = per-parameter state}, param_groups = {...}} with
--- parameters numbered in group order: enough to resume exactly.
function Optimizer:state_dict()
  local state, groups, i = {}, {}, 0
  for _, g in ipairs(self.param_groups) do
    local saved = { params = {} }
    for k, v in pairs(g) do if k ~= 'params' then saved[k] = v end end
    for _, p in ipairs(g.params) do
      i = i + 1
      saved.params[#saved.params + 1] = i
      if self.state[p] then
        local s = {}
        for k, v in pairs(self.state[p]) do s[k] = nn.is_tensor(v) and v:clone() or v end
        state[i] = s
      end
    end
    groups[#groups + 1] = saved
  end
  return { state = state, param_groups = groups }
end

--- Raises unless load_state_dict(sd) would succeed; changes nothing.
function Optimizer:check_state_dict(sd)
  if type(sd) ~= 'table' or type(sd.param_groups) ~= 'table' or type(sd.state) ~= 'table' then
    error('load_state_dict: expected {state =, param_groups =}', 3)
  end
  if #sd.param_groups ~= #self.param_groups then
    error('load_state_dict: the saved optimizer has a different number of groups', 3)
  end
  local i = 0
  for gi, g in ipairs(self.param_groups) do
    local saved = sd.param_groups[gi]
    if type(saved) ~= 'table' or type(saved.params) ~= 'table' or #saved.params ~= #g.params then
      error(('load_state_dict: group %d has %d parameters, the saved one %s')
        :format(gi, #g.params, type(saved) == 'table' and type(saved.params) == 'table'
          and #saved.params or 'none'), 3)
    end
    for _, p in ipairs(g.params) do
      i = i + 1
      for k, v in pairs(sd.state[i] or {}) do -- state tensors are per element of p
        if nn.is_tensor(v) and v:numel() > 1 and table.concat(v:size(), 'x') ~= table.concat(p:size(), 'x') then
          error(('load_state_dict: state %s of parameter %d is %s, the parameter %s')
            :format(k, i, table.concat(v:size(), 'x'), table.concat(p:size(), 'x')), 3)
        end
      end
    end
  end
end

--- Restores a state_dict(); on any mismatch raises and changes nothing.
function Optimizer:load_state_dict(sd)
  self:check_state_dict(sd)
  local i = 0
  for gi, g in ipairs(self.param_groups) do
    for k, v in pairs(sd.param_groups[gi]) do if k ~= 'params' then g[k] = v end end
    for _, p in ipairs(g.params) do
      i = i + 1
      local s = sd.state[i]
      if s then
        local copy = {}
        for k, v in pairs(s) do copy[k] = nn.is_tensor(v) and v:clone() or v end
        self.state[p] = copy
      else
        self.state[p] = nil
      end
    end
  end
end

-- ---- the optimizers ---------------------------------------------------------

local SGD = class(Optimizer)
M.SGD = SGD
local sgd_options = { lr = 1e-3, momentum = 0, dampening = 0, weight_decay = 0, nesterov = false,
  maximize = false }
local check_sgd = options('SGD', sgd_options)
function SGD:_init(params, opts)
  Optimizer._init(self, params, opts or {}, sgd_options, check_sgd)
end
function SGD:update(p, grad, st, g)
  local first = false
  if g.momentum ~= 0 and not st.momentum_buffer then
    st.momentum_buffer = nn.zeros_like(p)
    first = true
  end
  nn.sgd_step(p, grad, g.momentum ~= 0 and st.momentum_buffer or nil, {
    lr = g.lr, momentum = g.momentum, dampening = g.dampening,
    weight_decay = g.weight_decay, nesterov = g.nesterov, maximize = g.maximize,
    first_step = first })
end

local Adam = class(Optimizer)
M.Adam = Adam
Adam.sparse = true
local adam_options = { lr = 1e-3, betas = { 0.9, 0.999 }, eps = 1e-8, weight_decay = 0,
  amsgrad = false, maximize = false }
local check_adam, check_adamw = options('Adam', adam_options), options('AdamW', adam_options)
function Adam:_init(params, opts)
  Optimizer._init(self, params, opts or {}, adam_options, check_adam)
end
function Adam:update(p, grad, st, g)
  if not st.exp_avg then
    st.exp_avg, st.exp_avg_sq = nn.zeros_like(p), nn.zeros_like(p)
    if g.amsgrad then st.max_exp_avg_sq = nn.zeros_like(p) end
  end
  nn.adam_step(p, grad, st.exp_avg, st.exp_avg_sq, st.max_exp_avg_sq, {
    lr = g.lr, beta1 = g.betas[1], beta2 = g.betas[2], eps = g.eps,
    weight_decay = g.weight_decay, step = st.step, decoupled = self.decoupled,
    maximize = g.maximize })
end

local AdamW = class(Adam)
M.AdamW = AdamW
AdamW.decoupled = true
function AdamW:_init(params, opts)
  local o = {}
  for k, v in pairs(check_adamw(opts)) do o[k] = v end
  if o.weight_decay == nil then o.weight_decay = 1e-2 end -- PyTorch's default
  Optimizer._init(self, params, o, adam_options, check_adamw)
end

local RMSprop = class(Optimizer)
M.RMSprop = RMSprop
local rmsprop_options = { lr = 1e-2, alpha = 0.99, eps = 1e-8, weight_decay = 0, momentum = 0,
  centered = false }
local check_rmsprop = options('RMSprop', rmsprop_options)
function RMSprop:_init(params, opts)
  Optimizer._init(self, params, opts or {}, rmsprop_options, check_rmsprop)
end
function RMSprop:update(p, grad, st, g)
  if not st.square_avg then
    st.square_avg = nn.zeros_like(p)
    if g.momentum > 0 then st.momentum_buffer = nn.zeros_like(p) end
    if g.centered then st.grad_avg = nn.zeros_like(p) end
  end
  nn.rmsprop_step(p, grad, st.square_avg, st.momentum_buffer, st.grad_avg, {
    lr = g.lr, alpha = g.alpha, eps = g.eps, weight_decay = g.weight_decay, momentum = g.momentum })
end

local Adagrad = class(Optimizer)
M.Adagrad = Adagrad
Adagrad.sparse = true
local adagrad_options = { lr = 1e-2, lr_decay = 0, weight_decay = 0, eps = 1e-10,
  initial_accumulator_value = 0 }
local check_adagrad = options('Adagrad', adagrad_options)
function Adagrad:_init(params, opts)
  Optimizer._init(self, params, opts or {}, adagrad_options, check_adagrad)
end
function Adagrad:update(p, grad, st, g)
  if not st.sum then st.sum = nn.full_like(p, g.initial_accumulator_value) end
  nn.adagrad_step(p, grad, st.sum, { lr = g.lr, lr_decay = g.lr_decay,
    weight_decay = g.weight_decay, eps = g.eps, step = st.step })
end

-- ---- a guard against non-finite steps --------------------------------------------

local OPTIONS_OPTIM_FINITE = nn.define_options('optim.finite', { 'action', 'step' })
--- finite(loss, params[, {action = 'skip' | 'stop', step =}]) -> true when
--- the loss and every gradient are finite. Otherwise, 'skip' (default)
--- zeroes the gradients, prints one line and returns false, so the caller
--- skips the optimizer step; 'stop' raises an error naming the step.
--- (nn.detect_anomaly(true) finds the op that made the first NaN.)
function M.finite(loss, params, o)
  o = OPTIONS_OPTIM_FINITE(o)
  local bad
  local l = nn.is_tensor(loss) and loss:sum():item() or loss
  if l ~= l or l == math.huge or l == -math.huge then
    bad = ('the loss is %s'):format(tostring(l))
  else -- one sum per gradient, one number read: NaN and Inf survive a sum
    local total
    for _, p in ipairs(params) do
      local g = p.grad
      if g then total = total and total + g:sum() or g:sum() end
    end
    local t = total and total:item() or 0
    if t ~= t or t == math.huge or t == -math.huge then
      for i, p in ipairs(params) do
        local g = p.grad and p.grad:sum():item()
        if g and (g ~= g or g == math.huge or g == -math.huge) then
          bad = ('the gradient of parameter %d is not finite'):format(i)
          break
        end
      end
      bad = bad or 'the gradients overflow'
    end
  end
  if not bad then return true end
  local where = o.step and ('step %d: '):format(o.step) or ''
  if o.action == 'stop' then
    error(where .. bad .. ' (nn.detect_anomaly(true) names the op that made it)', 2)
  end
  for _, p in ipairs(params) do p.grad = nil end
  print(where .. bad .. '; skipping this update')
  return false
end

-- ---- gradient clipping -------------------------------------------------------

--- Scales all gradients so their global norm is at most max_norm; returns
--- the norm before clipping.
function M.clip_grad_norm_(params, max_norm, norm_type)
  norm_type = norm_type or 2
  local grads = {}
  for _, p in ipairs(params) do if p.grad then grads[#grads + 1] = p.grad end end
  local total
  if norm_type == math.huge or norm_type == 'inf' then
    total = 0
    for _, g in ipairs(grads) do total = math.max(total, g:abs():max():item()) end
  else
    local s = 0
    for _, g in ipairs(grads) do s = s + g:norm(norm_type):item() ^ norm_type end
    total = s ^ (1 / norm_type)
  end
  local coef = max_norm / (total + 1e-6)
  if coef < 1 then
    nn.no_grad(function() for _, g in ipairs(grads) do g:mul_(coef) end end)
  end
  return total
end

--- Clamps every gradient element to [-clip, clip].
function M.clip_grad_value_(params, clip)
  nn.no_grad(function()
    for _, p in ipairs(params) do if p.grad then p.grad:clamp_(-clip, clip) end end
  end)
end

-- ---- schedulers: each sets group.lr on step() -----------------------------------

local Scheduler = class()
M.Scheduler = Scheduler
--- tostring(scheduler): its class, settings, step and current rates
function Scheduler:__tostring()
  local lrs = {}
  for i, g in ipairs(self.optimizer.param_groups) do lrs[i] = ('%.6g'):format(g.lr) end
  return ('%s(%s; step %d, lr %s)'):format(self._name or 'Scheduler',
    settings(self, { optimizer = true, last_step = true, base_lrs = true }), self.last_step or 0,
    table.concat(lrs, ', '))
end
function Scheduler:_init(opt)
  self.optimizer, self.last_step = opt, 0
  self.base_lrs = {}
  for i, g in ipairs(opt.param_groups) do self.base_lrs[i] = g.initial_lr or g.lr end
  self:apply()
end
function Scheduler:apply()
  for i, g in ipairs(self.optimizer.param_groups) do g.lr = self:lr_at(self.base_lrs[i], self.last_step) end
end
function Scheduler:step()
  self.last_step = self.last_step + 1
  self:apply()
end
function Scheduler:get_last_lr()
  local out = {}
  for i, g in ipairs(self.optimizer.param_groups) do out[i] = g.lr end
  return out
end
function Scheduler:state_dict() return { last_step = self.last_step, base_lrs = self.base_lrs } end
function Scheduler:load_state_dict(s)
  self.last_step, self.base_lrs = s.last_step, s.base_lrs
  self:apply()
end

--- StepLR(opt, {step_size =, gamma = 0.1}): lr * gamma^(step // step_size)
local StepLR = class(Scheduler)
M.StepLR = StepLR
local OPTIONS_OPTIM_STEPLR = nn.define_options('optim.StepLR', { 'step_size', 'gamma' })
function StepLR:_init(opt, o)
  o = OPTIONS_OPTIM_STEPLR(o)
  self.step_size, self.gamma = assert(o.step_size, 'StepLR needs step_size'), o.gamma or 0.1
  Scheduler._init(self, opt)
end
function StepLR:lr_at(base, t) return base * self.gamma ^ (t // self.step_size) end

--- CosineLR(opt, {total =, warmup = 0, min_lr = 0}): linear warmup from 0,
--- then a cosine from lr down to min_lr at `total` steps (nanoGPT's).
local CosineLR = class(Scheduler)
M.CosineLR = CosineLR
local OPTIONS_OPTIM_COSINELR = nn.define_options('optim.CosineLR', { 'total', 'warmup', 'min_lr' })
function CosineLR:_init(opt, o)
  o = OPTIONS_OPTIM_COSINELR(o)
  self.total, self.warmup, self.min_lr = assert(o.total, 'CosineLR needs total'), o.warmup or 0, o.min_lr or 0
  Scheduler._init(self, opt)
end
function CosineLR:lr_at(base, t)
  if t < self.warmup then return base * (t + 1) / self.warmup end
  if t >= self.total then return self.min_lr end
  local r = (t - self.warmup) / math.max(1, self.total - self.warmup)
  return self.min_lr + 0.5 * (1 + math.cos(math.pi * r)) * (base - self.min_lr)
end

--- LinearLR(opt, {total =, warmup = 0, end_factor = 0}): linear warmup, then
--- linear decay to lr * end_factor at `total`.
local LinearLR = class(Scheduler)
M.LinearLR = LinearLR
local OPTIONS_OPTIM_LINEARLR = nn.define_options('optim.LinearLR', { 'total', 'warmup', 'end_factor' })
function LinearLR:_init(opt, o)
  o = OPTIONS_OPTIM_LINEARLR(o)
  self.total, self.warmup, self.end_factor = assert(o.total, 'LinearLR needs total'), o.warmup or 0, o.end_factor or 0
  Scheduler._init(self, opt)
end
function LinearLR:lr_at(base, t)
  if t < self.warmup then return base * (t + 1) / self.warmup end
  local r = math.min(1, (t - self.warmup) / math.max(1, self.total - self.warmup))
  return base * (1 - r * (1 - self.end_factor))
end

--- OneCycleLR(opt, {max_lr =, total =, pct_start = 0.3, div_factor = 25,
--- final_div_factor = 1e4}): cosine up from max_lr/div to max_lr, then down.
local OneCycleLR = class(Scheduler)
M.OneCycleLR = OneCycleLR
local OPTIONS_OPTIM_ONECYCLELR = nn.define_options('optim.OneCycleLR', { 'max_lr', 'total', 'pct_start', 'div_factor', 'final_div_factor' })
function OneCycleLR:_init(opt, o)
  o = OPTIONS_OPTIM_ONECYCLELR(o)
  self.max_lr, self.total = assert(o.max_lr, 'OneCycleLR needs max_lr'), assert(o.total, 'OneCycleLR needs total')
  self.pct, self.div, self.final_div = o.pct_start or 0.3, o.div_factor or 25, o.final_div_factor or 1e4
  Scheduler._init(self, opt)
end
local function cos_anneal(a, b, r) return b + (a - b) / 2 * (1 + math.cos(math.pi * r)) end
function OneCycleLR:lr_at(_, t)
  local initial = self.max_lr / self.div
  local final = initial / self.final_div
  local up = self.pct * self.total - 1
  if t <= up then return cos_anneal(initial, self.max_lr, t / up) end
  return cos_anneal(self.max_lr, final, math.min(1, (t - up) / (self.total - 1 - up)))
end

--- ReduceLROnPlateau(opt, {mode = 'min', factor = 0.1, patience = 10,
--- threshold = 1e-4, cooldown = 0, min_lr = 0}); call step(metric).
local ReduceLROnPlateau = class()
M.ReduceLROnPlateau = ReduceLROnPlateau
function ReduceLROnPlateau:__tostring()
  return ('ReduceLROnPlateau(%s)'):format(settings(self, { optimizer = true, bad = true, cool = true }))
end
local OPTIONS_OPTIM_REDUCELRONPLATEAU = nn.define_options('optim.ReduceLROnPlateau', { 'mode', 'factor', 'patience', 'threshold', 'cooldown', 'min_lr' })
function ReduceLROnPlateau:_init(opt, o)
  o = OPTIONS_OPTIM_REDUCELRONPLATEAU(o)
  self.optimizer, self.mode = opt, o.mode or 'min'
  self.factor, self.patience = o.factor or 0.1, o.patience or 10
  self.threshold, self.cooldown, self.min_lr = o.threshold or 1e-4, o.cooldown or 0, o.min_lr or 0
  self.best, self.bad, self.cool = nil, 0, 0
end
function ReduceLROnPlateau:step(metric)
  local better
  if self.best == nil then better = true
  elseif self.mode == 'min' then better = metric < self.best * (1 - self.threshold)
  else better = metric > self.best * (1 + self.threshold) end
  if better then self.best, self.bad = metric, 0 else self.bad = self.bad + 1 end
  if self.cool > 0 then self.cool, self.bad = self.cool - 1, 0 end
  if self.bad > self.patience then
    for _, g in ipairs(self.optimizer.param_groups) do g.lr = math.max(g.lr * self.factor, self.min_lr) end
    self.cool, self.bad = self.cooldown, 0
  end
end
function ReduceLROnPlateau:state_dict()
  return { best = self.best, bad = self.bad, cool = self.cool }
end
function ReduceLROnPlateau:load_state_dict(s) self.best, self.bad, self.cool = s.best, s.bad, s.cool end

-- class names for printing
for name, v in pairs(M) do
  if type(v) == 'table' and rawget(v, '__index') == v then v._name = name end
end

return M
