--- Shared spec helpers: assert.tensor_near and friends, registered once.
local nn = require 'nnlua'
local say = require 'say'
local assert = require 'luassert'

local function flatten(x, out)
  out = out or {}
  if type(x) == 'table' then
    for _, v in ipairs(x) do flatten(v, out) end
  else
    out[#out + 1] = x
  end
  return out
end

local function shape_of(x)
  if nn.is_tensor(x) then return table.concat(x:size(), 'x') end
  local s, t = {}, x
  while type(t) == 'table' do s[#s + 1] = #t; t = t[1] end
  return table.concat(s, 'x')
end

-- tensor_near(expected, actual[, rtol[, atol]]): expected may be a nested
-- table or a tensor; shapes must agree and every element must satisfy
-- |a - e| <= atol + rtol * |e| (NaN matches NaN).
local function tensor_near(state, args)
  local expected, actual = args[1], args[2]
  local rtol, atol = args[3] or 1e-5, args[4] or 1e-6
  if not nn.is_tensor(actual) then
    state.failure_message = 'actual value is not a tensor: ' .. tostring(actual)
    return false
  end
  local es, as = shape_of(expected), shape_of(actual)
  if es ~= as then
    state.failure_message = ('shape mismatch: expected %s, got %s'):format(es, as)
    return false
  end
  local e = flatten(nn.is_tensor(expected) and expected:totable() or expected)
  local a = flatten(actual:totable())
  local bad, worst, worst_i = {}, 0, nil
  for i = 1, #e do
    local d = math.abs(a[i] - e[i])
    local same_nan = a[i] ~= a[i] and e[i] ~= e[i]
    if not same_nan and not (d <= atol + rtol * math.abs(e[i])) then
      if #bad < 5 then bad[#bad + 1] = ('[%d] expected %.7g got %.7g'):format(i, e[i], a[i]) end
      if not (d <= worst) then worst, worst_i = d, i end
    end
  end
  if #bad > 0 then
    state.failure_message = ('tensors differ (shape %s, rtol %g, atol %g); largest difference %g at [%s]:\n  %s')
      :format(es, rtol, atol, worst, tostring(worst_i), table.concat(bad, '\n  '))
    return false
  end
  return true
end

say:set('assertion.tensor_near.positive', 'tensors differ')
assert:register('assertion', 'tensor_near', tensor_near, 'assertion.tensor_near.positive')

-- error_matches(fn, pattern): fn raises an error whose message contains
-- the plain string `pattern`.
local function error_contains(state, args)
  local ok, err = pcall(args[1])
  if ok then
    state.failure_message = 'expected an error containing "' .. args[2] .. '"'
    return false
  end
  if not tostring(err):find(args[2], 1, true) then
    state.failure_message = ('error "%s" does not contain "%s"'):format(tostring(err), args[2])
    return false
  end
  return true
end
say:set('assertion.error_contains.positive', 'wrong error')
assert:register('assertion', 'error_contains', error_contains, 'assertion.error_contains.positive')
