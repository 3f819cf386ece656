-- lighttpd mod_magnet script: GET /complete?n=20&prompt=To%20be answers
-- the prompt continued by a GPT (gpt_server.lua), as text/plain.
-- lighttpd.conf (the whole set-up is in docs/embedding.md):
--   server.modules += ("mod_magnet")
--   magnet.attract-raw-url-to = ("/path/to/nnlua/examples/embed/lighttpd/magnet.lua")
-- The nnlua tree is found from this file's path; NNLUA_MODEL names the model.
local r = lighty.r
if not package.loaded.gpt_server then -- once per lighttpd process
  local here = debug.getinfo(1, 'S').source:match('^@?(.*/)') or './' -- lighttpd names the chunk by its path
  local root = here .. '../../../'
  package.path = table.concat({ here .. '?.lua', root .. 'examples/gpt/?.lua', root .. 'lua/?.lua',
    package.path }, ';')
  package.cpath = root .. '?.so;' .. package.cpath
end
local server = require 'gpt_server'

local query = r.req_attr['uri.query'] or ''
local args = {}
for k, v in query:gmatch('([^&=]+)=([^&]*)') do args[k] = lighty.c.urldec(v) end
r.resp_header['Content-Type'] = 'text/plain; charset=utf-8'
local text, err = server.complete(args.prompt or '', tonumber(args.n or '20'))
if not text then
  r.resp_body:set({ err, '\n' })
  return 400
end
r.resp_body:set({ text })
return 200
