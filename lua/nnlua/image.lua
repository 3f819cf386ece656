--- nn.image: PNG files to (C, H, W) f32 tensors in [0, 1] and back.
---
---   local img = nn.image.read('bird.png', { channels = 3, background = 1, size = 64 })
---   nn.image.write('out.png', img)
---
--- read decodes with libpng (every colour type, 8 and 16 bits; raw sample
--- values, no gamma correction). channels converts: 1 = luminance
--- 0.299 R + 0.587 G + 0.114 B (as PIL's 'L'), 3 = RGB, 4 = RGBA; alpha is
--- composited over `background` (a grey level or {r, g, b}) when dropped.
local nn = require 'nnlua'

local M = {}

-- calls a C reader or writer, raising its error in the name of `name`
-- (bindings name their own C function)
local function call(name, f, ...)
  local ok, a, b = pcall(f, ...)
  if not ok then
    error(name .. ': ' .. tostring(a):gsub("^bad argument #%d+ to '[^']*' %((.*)%)$", '%1'), 3)
  end
  return a, b
end
M._call = call

local check_read = nn.define_options('image.read', { 'channels', 'background', 'size', 'filter' })
local check_resize = nn.define_options('image.resize', { 'filter' })

-- background (a grey level or {r, g, b}; default white) -> r, g, b
local function background_of(bg, level)
  bg = bg == nil and 1 or bg
  if type(bg) == 'number' then return bg, bg, bg end
  if type(bg) == 'table' and #bg == 3 and type(bg[1]) == 'number' and type(bg[2]) == 'number' and
      type(bg[3]) == 'number' then
    return bg[1], bg[2], bg[3]
  end
  error('image.read: background must be a grey level or {r, g, b}, got ' .. tostring(bg), level + 1)
end

-- img (C, H, W) with C in 1..4 as the file had it -> `channels` channels
local function convert(img, channels, bg, level)
  local c = img:size(1)
  local has_alpha = c == 2 or c == 4
  if channels == nil or channels == c then return img end
  if channels ~= 1 and channels ~= 3 and channels ~= 4 then
    error('image.read: channels must be 1, 3 or 4, got ' .. tostring(channels), level + 1)
  end
  local colour = has_alpha and img:narrow(1, 1, c - 1) or img
  local alpha = has_alpha and img:narrow(1, c, 1) or nil
  if colour:size(1) == 1 then colour = colour:expand(3, -1, -1) end
  if channels == 4 then
    return nn.cat({ colour, alpha or nn.ones(1, img:size(2), img:size(3)) }, 1)
  end
  if alpha then colour = colour * alpha + nn.tensor({ background_of(bg, level + 1) }):view(3, 1, 1) * (1 - alpha) end
  return (colour * nn.tensor({ 0.299, 0.587, 0.114 }):view(3, 1, 1)):sum(1, true)
end

local function size_of(size, level)
  if math.type(size) == 'integer' and size > 0 then return { size, size } end
  if type(size) == 'table' and #size == 2 and math.type(size[1]) == 'integer' and
      math.type(size[2]) == 'integer' and size[1] > 0 and size[2] > 0 then
    return size
  end
  error('image.resize: size must be a positive integer or {h, w}, got ' .. tostring(size), level + 1)
end

local function resize(img, size, filter, level)
  size = size_of(size, level + 1)
  filter = filter or 'area'
  local batched = img.ndim == 4
  if img.ndim ~= 3 and not batched then
    error('image.resize: expected (C, H, W) or (N, C, H, W), got ' .. table.concat(img.shape, 'x'), level + 1)
  end
  local x = batched and img or img:unsqueeze(1)
  if filter == 'area' then x = nn.adaptive_avg_pool2d(x, size)
  elseif filter == 'bilinear' or filter == 'nearest' then
    x = nn.interpolate(x, { size = size, mode = filter })
  else
    error("image.resize: filter must be 'area', 'bilinear' or 'nearest', got " .. tostring(filter), level + 1)
  end
  return batched and x or x:squeeze(1)
end

--- resize(img, size[, {filter = 'area' | 'bilinear' | 'nearest'}]): img (C,
--- H, W) or (N, C, H, W) to size (n or {h, w}); area averages the source
--- pixels each output pixel covers (PyTorch's mode 'area'), bilinear is
--- interpolate's (align_corners false, no antialiasing)
function M.resize(img, size, o)
  o = check_resize(o)
  return resize(img, size, o and o.filter, 2)
end

--- read(path[, {channels, background = 1, size, filter = 'area'}]) -> (C, H, W), bit depth
function M.read(path, o)
  o = check_read(o)
  if type(path) ~= 'string' then error('image.read: path must be a string', 2) end
  local img, depth
  if o and o.channels == 3 then -- composited in C while decoding: no 4-channel copy of a large picture
    img, depth = call('image.read', nn._read_png, path, background_of(o.background, 2))
  else
    img, depth = call('image.read', nn._read_png, path)
  end
  if o then
    img = convert(img, o.channels, o.background, 2)
    if o.size then img = resize(img, o.size, o.filter, 2) end
  end
  return img, depth
end

--- write(path, img): an 8-bit PNG of (C, H, W) in [0, 1] (clamped), C = 1
--- grey, 2 grey + alpha, 3 RGB, 4 RGBA; written atomically
function M.write(path, img)
  if type(path) ~= 'string' then error('image.write: path must be a string', 2) end
  call('image.write', nn._write_png, path, img)
end

return M
