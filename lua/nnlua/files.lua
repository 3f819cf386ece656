--- Writing small text files (tokenizers, plots) without ever leaving a
--- half-written one behind: the text goes to a temporary file in the same
--- directory, which replaces the old file only once every write succeeded.
local M = {}

--- write_atomic(path, text): true, or nil and a message (path untouched)
function M.write_atomic(path, text)
  local tmp = path .. '.tmp'
  local f, err = io.open(tmp, 'w')
  if not f then return nil, err end
  local ok, werr = f:write(text)
  local closed, cerr = f:close()
  if not ok or not closed then
    os.remove(tmp)
    return nil, ('%s: %s'):format(path, werr or cerr)
  end
  local renamed, rerr = os.rename(tmp, path)
  if not renamed then
    os.remove(tmp)
    return nil, rerr
  end
  return true
end

return M
