-- A real Lua 5.4 host: lighttpd's mod_magnet runs examples/embed/lighttpd/
-- magnet.lua, which requires nnlua from this tree and serves a GPT saved by
-- examples/gpt/train.lua. Hundreds of requests, answers checked against
-- the same model run here, RSS flat, a clean shutdown. Skipped (with the
-- reason) when lighttpd, its Lua module or curl is not installed.
local support = require 'support'
local exe, run = support.exe, support.run

local function have(cmd) return os.execute(cmd .. ' >/dev/null 2>&1') end
local missing = not have('command -v lighttpd') and 'lighttpd'
  or not have('test -f /usr/lib/lighttpd/mod_magnet.so') and 'lighttpd-mod-magnet'
  or not have('command -v curl') and 'curl'
  or (os.getenv('ASAN') or '') ~= '' and 'an ASan build (lighttpd cannot load it)'
local spec = missing and pending or it

local function rss_kb(pid)
  local f = io.open('/proc/' .. pid .. '/status')
  if not f then return nil end
  local kb = tonumber(f:read('a'):match('VmRSS:%s*(%d+)'))
  f:close()
  return kb
end

local function get(port, prompt, n)
  local q = prompt:gsub('[^%w]', function(c) return ('%%%02X'):format(c:byte()) end)
  local p = io.popen(('curl -s -w "\\n%%{http_code}" "http://127.0.0.1:%d/complete?n=%d&prompt=%s"')
    :format(port, n, q))
  local out = p:read('a')
  p:close()
  local body, code = out:match('^(.*)\n(%d+)$')
  return body, tonumber(code)
end

describe('lighttpd mod_magnet host' .. (missing and (' (skipped: no ' .. missing .. ')') or ''), function()
  spec('serves a GPT from examples/gpt/train.lua: answers, flat RSS, clean shutdown', function()
    local dir = support.tempdir()
    local text = ('To be, or not to be, that is the question.\n'):rep(60)
    support.write(dir .. '/text.txt', text)
    local out, code = run(('%s examples/gpt/train.lua --data %s/text.txt --iters 60 --n_layer 1 --n_head 2 '
      .. '--n_embd 16 --block_size 16 --batch 8 --eval_iters 1 --sample_len 0 --out %s/gpt.safetensors')
      :format(exe, dir, dir))
    assert.equal(0, code, out)
    -- what the server must answer: the same completions computed here
    local prompts = { 'To be', 'or not', 'the question', 'T', 'that is' }
    local expect = {}
    package.path = 'examples/embed/lighttpd/?.lua;examples/gpt/?.lua;' .. package.path
    local server = require 'gpt_server'
    assert(server.load(dir .. '/gpt.safetensors'))
    for i, p in ipairs(prompts) do expect[i] = assert(server.complete(p, 12)) end

    local root = io.popen('pwd'):read('l')
    local port = 20000 + math.random(0, 20000)
    support.write(dir .. '/lighttpd.conf', table.concat({
      'server.modules = ("mod_magnet")', 'server.bind = "127.0.0.1"', 'server.port = ' .. port,
      ('server.document-root = "%s"'):format(dir), ('server.errorlog = "%s/error.log"'):format(dir),
      ('magnet.attract-raw-url-to = ("%s/examples/embed/lighttpd/magnet.lua")'):format(root), '' }, '\n'))
    local pid = io.popen(('NNLUA_MODEL=%s/gpt.safetensors lighttpd -D -f %s/lighttpd.conf '
      .. '>%s/stdout 2>&1 & echo $!'):format(dir, dir, dir)):read('l')
    local up = false
    for _ = 1, 50 do
      if select(2, get(port, 'T', 1)) == 200 then up = true break end
      os.execute('sleep 0.1')
    end
    assert.truthy(up, support.read(dir .. '/error.log') or 'no error log')

    local function round(n)
      for k = 1, n do
        local i = (k - 1) % #prompts + 1
        local body, status = get(port, prompts[i], 12)
        assert.equal(200, status, body)
        assert.equal(expect[i], body)
      end
    end
    round(100) -- warm: the model is loaded, the allocator has its pools
    local before = rss_kb(pid)
    round(300)
    local after = rss_kb(pid)
    assert.truthy(after - before < 2048, ('RSS grew from %d to %d kB'):format(before, after))
    local body, status = get(port, '~', 5)
    assert.equal(400, status)
    assert.truthy(body:find('not in the vocabulary', 1, true))

    os.execute('kill ' .. pid)
    local gone = false
    for _ = 1, 50 do
      if not rss_kb(pid) then gone = true break end
      os.execute('sleep 0.1')
    end
    assert.truthy(gone, 'lighttpd did not stop')
    local log = support.read(dir .. '/error.log')
    assert.truthy(log:find('server stopped', 1, true), log)
    assert.is_nil(log:find('lua:', 1, true), log) -- no script error on the way
    os.execute('rm -rf ' .. dir)
  end)
end)
