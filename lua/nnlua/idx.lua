--- nnlua.idx: read IDX files (the MNIST family's format), plain or gzipped.
--- Depends on nnlua (from_bytes) and, for .gz files, the gzip command.
local nn = require 'nnlua'
local read_text = require('nnlua.data').read_text
local files = require 'nnlua.files'

local M = {}

-- IDX type codes we read: unsigned bytes only (all of MNIST/Fashion-MNIST)
local UBYTE = 0x08

local function slurp(path)
  if path:match('%.gz$') then
    local probe, err = files.open(path)
    if not probe then return nil, err end
    probe:close()
    local p = io.popen("gzip -dc '" .. path:gsub("'", "'\\''") .. "'", 'r')
    local data = p:read('a')
    local ok, _, code = p:close()
    if not ok then return nil, ('%s: gzip failed (exit %s)'):format(path, tostring(code)) end
    return data
  end
  return read_text(path)
end

--- Reads an IDX file into a tensor (f32 by default, or dtype 'i64').
--- Returns nil and a message when the file is missing or malformed.
function M.read(path, dtype)
  local data, err = slurp(path)
  if not data then return nil, err end
  if #data < 4 then return nil, path .. ': too short for an IDX header' end
  local zero, kind, ndim = ('>I2BB'):unpack(data)
  if zero ~= 0 or kind ~= UBYTE or ndim < 1 or ndim > 4 then
    return nil, ('%s: not an unsigned-byte IDX file'):format(path)
  end
  if #data < 4 + 4 * ndim then return nil, path .. ': truncated header' end
  local shape, count = {}, 1
  for i = 1, ndim do
    shape[i] = ('>I4'):unpack(data, 1 + 4 + 4 * (i - 1))
    count = count * shape[i]
  end
  local offset = 4 + 4 * ndim
  if #data - offset ~= count then
    return nil, ('%s: header promises %d values, file has %d'):format(path, count, #data - offset)
  end
  return nn.from_bytes(data, offset, shape, dtype or 'f32')
end

return M
