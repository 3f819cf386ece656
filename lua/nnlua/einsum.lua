--- nn.einsum(equation, a[, b]): Einstein summation for one or two operands,
--- mapped onto the engine's ops so it is differentiable: labels only one
--- operand has (and the output lacks) are summed first; then the labels
--- both operands share are batch dims (kept) or contracted (summed), and
--- the product is one batched matmul (B, M, K) x (B, K, N) of the permuted,
--- reshaped operands. "ij,jk->ik", "bhqd,bhkd->bhqk", "bi,bi->b", "ij->ji",
--- "...ij,...jk->...ik"; without "->" the output is the labels used once,
--- sorted (numpy's rule). A label repeated in one operand (a diagonal) is
--- not supported.
local nn = require 'nnlua'

local M = {}

-- labels of one operand's subscripts, "..." expanded to its extra dims
local function labels(sub, t, which)
  local pre, post = sub:match('^(.-)%.%.%.(.*)$')
  local function letters(s)
    local out = {}
    for c in s:gmatch('.') do
      if not c:match('%a') then error(("einsum: bad label '%s' in operand %d"):format(c, which), 4) end
      out[#out + 1] = c
    end
    return out
  end
  local out
  if pre then
    local a, b = letters(pre), letters(post)
    local extra = t:dim() - #a - #b
    if extra < 0 then
      error(('einsum: operand %d has %d dims, fewer than its %d labels'):format(which, t:dim(), #a + #b), 3)
    end
    out = a
    for i = 1, extra do out[#out + 1] = '.' .. (extra - i + 1) end -- aligned from the right
    for _, c in ipairs(b) do out[#out + 1] = c end
  else
    out = letters(sub)
  end
  if #out ~= t:dim() then
    error(('einsum: operand %d has %d dims but "%s" names %d'):format(which, t:dim(), sub, #out), 3)
  end
  local seen = {}
  for _, l in ipairs(out) do
    if seen[l] then error(("einsum: label '%s' repeats in operand %d (diagonals are not supported)"):format(l, which), 3) end
    seen[l] = true
  end
  return out
end

local function index_of(list)
  local at = {}
  for i, l in ipairs(list) do at[l] = i end
  return at
end

-- t summed over its labels not in keep (a set), and its remaining labels
local function sum_out(t, ls, keep)
  local dims, rest = {}, {}
  for i, l in ipairs(ls) do
    if keep[l] then rest[#rest + 1] = l else dims[#dims + 1] = i end
  end
  if #dims > 0 then t = t:sum(dims) end
  return t, rest
end

-- t permuted so its labels come in `order`
local function arrange(t, ls, order)
  local at, perm, same = index_of(ls), {}, true
  for i, l in ipairs(order) do
    perm[i] = at[l]
    same = same and perm[i] == i
  end
  if same or #perm < 2 then return t end
  return t:permute(perm)
end

local function product(list, sizes)
  local n = 1
  for _, l in ipairs(list) do n = n * sizes[l] end
  return n
end

function M.einsum(eq, a, b, extra)
  if type(eq) ~= 'string' then error('einsum: the equation must be a string', 2) end
  if extra ~= nil then error('einsum: one or two operands', 2) end
  eq = eq:gsub('%s', '')
  local lhs, rhs = eq:match('^(.-)%->(.*)$')
  lhs = lhs or eq
  local subs = {}
  for s in (lhs .. ','):gmatch('([^,]*),') do subs[#subs + 1] = s end
  local ops = { a, b }
  if #subs ~= (b and 2 or 1) then
    error(('einsum: "%s" has %d operands, %d given'):format(eq, #subs, b and 2 or 1), 2)
  end
  local ls, sizes, count = {}, {}, {}
  for k, s in ipairs(subs) do
    if not nn.is_tensor(ops[k]) then error(('einsum: operand %d is not a tensor'):format(k), 2) end
    ls[k] = labels(s, ops[k], k)
    for i, l in ipairs(ls[k]) do
      local n = ops[k]:size(i)
      if sizes[l] and sizes[l] ~= n then
        error(("einsum: label '%s' is %d in one operand and %d in the other"):format(l, sizes[l], n), 2)
      end
      sizes[l], count[l] = n, (count[l] or 0) + 1
    end
  end
  local out
  if rhs then
    local dots = rhs:find('...', 1, true)
    local ell = {}
    for _, l in ipairs(ls[1]) do if l:sub(1, 1) == '.' then ell[#ell + 1] = l end end
    if ls[2] and #ell == 0 then for _, l in ipairs(ls[2]) do if l:sub(1, 1) == '.' then ell[#ell + 1] = l end end end
    out = {}
    local pre, post = rhs, ''
    if dots then pre, post = rhs:sub(1, dots - 1), rhs:sub(dots + 3) end
    for c in pre:gmatch('.') do out[#out + 1] = c end
    if dots then for _, l in ipairs(ell) do out[#out + 1] = l end end
    for c in post:gmatch('.') do out[#out + 1] = c end
    for _, l in ipairs(out) do
      if not sizes[l] then error(("einsum: output label '%s' is in no operand"):format(l), 2) end
    end
  else -- numpy's implicit output: ellipsis dims, then labels used once, sorted
    out = {}
    local once = {}
    for l, c in pairs(count) do
      if l:sub(1, 1) == '.' then out[#out + 1] = l elseif c == 1 then once[#once + 1] = l end
    end
    table.sort(out, function(x, y) return x > y end)
    table.sort(once)
    for _, l in ipairs(once) do out[#out + 1] = l end
  end
  local in_out = index_of(out)
  if not b then
    local t, rest = sum_out(a, ls[1], in_out)
    return arrange(t, rest, out)
  end
  -- sum what only one operand has, then sort labels into batch, free, contracted
  local in_a, in_b = index_of(ls[1]), index_of(ls[2])
  local keep_a, keep_b = {}, {}
  for l in pairs(in_a) do keep_a[l] = in_out[l] or in_b[l] end
  for l in pairs(in_b) do keep_b[l] = in_out[l] or in_a[l] end
  local ta, la = sum_out(a, ls[1], keep_a)
  local tb, lb = sum_out(b, ls[2], keep_b)
  local batch, afree, bfree, contract = {}, {}, {}, {}
  local shared = index_of(lb)
  for _, l in ipairs(la) do
    if shared[l] then
      if in_out[l] then batch[#batch + 1] = l else contract[#contract + 1] = l end
    else
      afree[#afree + 1] = l
    end
  end
  local ina = index_of(la)
  for _, l in ipairs(lb) do if not ina[l] then bfree[#bfree + 1] = l end end
  local function concat(...)
    local r = {}
    for _, part in ipairs({ ... }) do for _, l in ipairs(part) do r[#r + 1] = l end end
    return r
  end
  local nb, m, k, n = product(batch, sizes), product(afree, sizes), product(contract, sizes), product(bfree, sizes)
  local A = arrange(ta, la, concat(batch, afree, contract)):reshape(nb, m, k)
  local B = arrange(tb, lb, concat(batch, contract, bfree)):reshape(nb, k, n)
  local shape = {}
  for _, l in ipairs(concat(batch, afree, bfree)) do shape[#shape + 1] = sizes[l] end
  local y = A:matmul(B)
  y = #shape > 0 and y:reshape(shape) or y:reshape({})
  return arrange(y, concat(batch, afree, bfree), out)
end

return M
