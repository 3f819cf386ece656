--- Helpers for specs that run programs and write files.
local M = {}

--- The nnlua executable under test (tests/run.sh sets NNLUA_EXE).
M.exe = os.getenv('NNLUA_EXE') or './nnlua'

--- Writes text to a new temporary file and returns its name.
function M.tempfile(text, suffix)
  local base = os.tmpname() -- creates the file: with a suffix it is not the one kept
  local name = base .. (suffix or '')
  if suffix then os.remove(base) end
  local f = assert(io.open(name, 'wb'))
  f:write(text)
  f:close()
  return name
end

--- Makes a new empty directory and returns its name (remove it with
--- os.execute('rm -rf ' .. dir)).
function M.tempdir()
  local dir = os.tmpname()
  os.remove(dir)
  assert(os.execute('mkdir -p ' .. dir))
  return dir
end

--- Writes text to path (raises if it cannot).
function M.write(path, text)
  local f = assert(io.open(path, 'wb'))
  f:write(text)
  f:close()
end

--- The contents of a file (raises if it cannot be read).
function M.read(path)
  local f = assert(io.open(path))
  local s = f:read('a')
  f:close()
  return s
end

--- The compiler flags that find the engine's headers, and what a program
--- linked with libnnengine.a needs besides (libpng, libvorbisfile; MPI and oneDNN when
--- the build has them).
M.engine_cflags = '-Iengine -Iengine/core -Iengine/ops -Iengine/nn -Iengine/io -Iengine/dist'
function M.engine_libs()
  local libs = '-fopenmp -lm -ldl -lpthread -lpng16 -lvorbisfile'
  if select(2, require('nnlua').dist.backend()) then
    local p = io.popen('pkg-config --libs ompi-c 2>/dev/null')
    libs = libs .. ' ' .. p:read('a'):gsub('%s+$', '')
    p:close()
  end
  if require('nnlua').config().conv == 'onednn' then libs = libs .. ' -ldnnl' end
  return libs
end

--- The decoded tests/ref/NAME.json (a fixture made by tests/ref/gen_*.py).
function M.reference(name)
  local f = assert(io.open('tests/ref/' .. name .. '.json'))
  local ref = require('cjson').decode(f:read('a'))
  f:close()
  return ref
end

--- Asserts that tensor got matches the nested list expected to tol
--- relative to max(1, the largest |expected|).
function M.near(expected, got, what, tol)
  local nn = require 'nnlua'
  local e = nn.tensor(expected)
  local want, have = table.concat(e:size(), 'x'), table.concat(got:size(), 'x')
  assert(want == have, ('%s: shape %s, expected %s'):format(what, have, want))
  local err = (got:detach() - e):abs():max():item()
  local scale = math.max(1, e:abs():max():item())
  assert(err <= (tol or 1e-5) * scale, ('%s: max error %.3g (scale %.3g)'):format(what, err, scale))
end

--- Runs a shell command with `input` on stdin; returns its output
--- (stdout and stderr) and exit code.
function M.run(cmd, input)
  local tmp = M.tempfile(input or '')
  local p = io.popen(('%s < %s 2>&1; echo "exit=$?"'):format(cmd, tmp))
  local out = p:read('a')
  p:close()
  os.remove(tmp)
  local code = tonumber(out:match('exit=(%d+)%s*$'))
  return (out:gsub('exit=%d+%s*$', '')), code
end

return M
