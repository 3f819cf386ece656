--- Writing small text files (tokenizers, plots) without ever leaving a
--- half-written one behind: nn.write_file writes a temporary file unique to
--- the call in the same directory, fsyncs it and renames it over the old
--- file (engine/atomic.c), as checkpoints are saved.
local nn = require 'nnlua'

local M = {}

--- open(path): a file open for reading in binary mode, or nil and a
--- message naming the path ("x: No such file or directory", "x: Is a
--- directory"): every reader fails the same way on what the file system says.
function M.open(path)
  local f, err = io.open(path, 'rb')
  if not f then return nil, err end
  local ok, rerr = f:read(0) -- nil at the end of an empty file; an error for a directory
  if ok == nil and rerr then
    f:close()
    return nil, ('%s: %s'):format(path, rerr)
  end
  return f
end

--- write_atomic(path, text): true, or nil and a message (path untouched)
function M.write_atomic(path, text)
  return nn.write_file(path, text)
end

return M
