--- nnlua.class: the one small class helper every Lua class here uses.
---
---   local Point = class()            -- or class(Parent)
---   function Point:_init(x, y) self.x, self.y = x, y end
---   local p = Point(1, 2)             -- calls _init
---   Child.super._init(self, ...)      -- reach the parent's methods
---
--- Metamethods (__call, __newindex, __tostring, __len) are inherited by
--- copying, since Lua looks them up without __index.
local METAMETHODS = { '__call', '__newindex', '__tostring', '__len', '__close' }

return function(parent)
  local cls = {}
  cls.__index = cls
  if parent then
    for _, k in ipairs(METAMETHODS) do cls[k] = rawget(parent, k) end
  end
  cls.super = parent
  return setmetatable(cls, {
    __index = parent,
    __call = function(c, ...)
      local obj = setmetatable({}, c)
      if obj._init then obj:_init(...) end
      return obj
    end,
  })
end
