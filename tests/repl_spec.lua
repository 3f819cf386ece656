-- The REPL driven through a pseudo-terminal (tmux): editing, multi-line
-- input, completion, Ctrl-C at the prompt and in a running loop, and the
-- history written as it goes. Skipped (with the reason) without tmux.
local nn = require 'nnlua'
local support = require 'support'

local have_tmux = os.execute('command -v tmux >/dev/null 2>&1')
local spec = have_tmux and it or pending

local function sh(cmd)
  local p = io.popen(cmd .. ' 2>&1')
  local out = p:read('a')
  p:close()
  return out
end

describe('the REPL in a terminal' .. (have_tmux and '' or ' (skipped: no tmux)'), function()
  spec('edits, completes, survives Ctrl-C and keeps the history of every line', function()
    local home = support.tempdir()
    local sock = 'nnlua-test-' .. math.random(1 << 30)
    local tmux = ('tmux -L %s '):format(sock)
    local exe = support.exe:sub(1, 1) == '/' and support.exe or (io.popen('pwd'):read('l') .. '/' .. support.exe)
    sh(('%s new-session -d -s t -x 120 -y 40 "HOME=%s %s"'):format(tmux, home, exe))
    local function screen() return sh(tmux .. 'capture-pane -t t -p') end
    local function wait_for(pattern)
      for _ = 1, 200 do -- 10 s: a loaded machine (CI beside a training run) is slow to start
        local s = screen()
        if s:find(pattern) then return s end
        os.execute('sleep 0.05')
      end
      error(('no %q on the screen:\n%s'):format(pattern, screen()))
    end
    local function typed(text) sh(('%s send-keys -t t -l %q'):format(tmux, text)) end
    local function key(name) sh(('%s send-keys -t t %s'):format(tmux, name)) end
    local ok, err = pcall(function()
      wait_for('Lua 5%.4[^\n]*\n>')
      typed('x = 1 +') key('C-c') -- a half-typed line is dropped
      typed('print(40 + 2)') key('Enter')
      wait_for('\n42\n')
      key('C-c') -- on an empty line: how to exit
      wait_for('To exit, press Ctrl%-D')
      typed('for i = 1, 2 do') key('Enter') typed('print("i=" .. i)') key('Enter') typed('end') key('Enter')
      wait_for('i=2\n')
      typed('t = nn.zeros(2)') key('Enter')
      typed('nn.Seq') key('Tab') -- a lazily loaded name
      wait_for('nn%.Sequential')
      key('C-u')
      typed('t:masked_f') key('Tab') key('Tab') -- methods of a tensor only
      wait_for('t:masked_fill_')
      key('C-u')
      typed('{1, 2, a = {b = 3}}') key('Enter')
      wait_for('{ 1, 2, a = { b = 3 } }')
      typed('nn.optim.SGD({nn.zeros(1):requires_grad_()}, {lr = 0.5})') key('Enter')
      wait_for('SGD %(1 parameter group%)')
      typed('while true do end') key('Enter')
      os.execute('sleep 0.3')
      key('C-c') -- interrupts the loop, the REPL goes on
      wait_for('interrupted!')
      typed('for i = 1, 3 do') key('Enter') key('C-c') -- drops the unfinished statement
      typed('print("still " .. "here")') key('Enter')
      wait_for('still here')
      -- the history is on disk before the REPL exits
      local hist = support.read(home .. '/.nnlua_history')
      assert.truthy(hist:find('print(40', 1, true), hist)
      assert.truthy(hist:find('still', 1, true), hist)
      assert.is_nil(hist:find('x = 1', 1, true), hist) -- the interrupted line is not kept
      local _, n = hist:gsub('print%(40', '')
      assert.equal(1, n, hist)
      key('C-d')
      for _ = 1, 50 do
        if not sh(tmux .. 'has-session -t t'):find('^$') then break end
        os.execute('sleep 0.05')
      end
    end)
    sh(tmux .. 'kill-server')
    os.execute('rm -rf ' .. home)
    assert(ok, err)
  end)
end)

describe('nnlua.repl', function()
  local repl = require 'nnlua.repl'
  local function has(list, x) for _, v in ipairs(list) do if v == x then return true end end return false end

  it('completes lazy names, tensor methods only, and inherited Module methods', function()
    local had = rawget(_G, 'nn')
    _G.nn = nn -- as the nnlua runner has it (not so under stock lua5.4)
    assert.truthy(has(repl.complete('nn.op'), 'nn.optim'))
    assert.truthy(has(repl.complete('nn.Seq'), 'nn.Sequential'))
    _G.__t = nn.zeros(2)
    local m = repl.complete('__t:')
    assert.truthy(has(m, '__t:sum') and has(m, '__t:masked_fill'))
    assert.is_false(has(m, '__t:manual_seed') or has(m, '__t:map_file') or has(m, '__t:Linear') or has(m, '__t:zeros'))
    _G.__m = nn.Sequential(nn.Linear(2, 2))
    local mm = repl.complete('__m:')
    assert.truthy(has(mm, '__m:parameters') and has(mm, '__m:train') and has(mm, '__m:save'))
    _G.__l = nn.Linear(2, 3)
    assert.truthy(has(repl.complete('__l:pa'), '__l:parameters'))
    assert.truthy(has(repl.complete('__l.'), '__l.weight'))
    _G.__t, _G.__m, _G.__l, _G.nn = nil, nil, nil, had
    assert.same({}, repl.complete('nosuchthing.x'))
  end)

  it('shows tables readably, depth- and size-limited, and optimizers by their settings', function()
    assert.equal('{ 1, 2, "a\\nb", a = { b = {...} } }', repl.show({ 1, 2, 'a\nb', a = { b = { c = 1 } } }))
    local big = {}
    for i = 1, 30 do big[i] = i end
    assert.truthy(repl.show(big):find('... (10 more)', 1, true))
    local t = {}
    t.self = t
    assert.equal('{ self = <cycle> }', repl.show(t))
    assert.equal('<class Sequential>', repl.show(nn.Sequential))
    local opt = nn.optim.AdamW({ nn.zeros(3):requires_grad_() }, { lr = 0.01 })
    assert.truthy(repl.show(opt):find('AdamW (1 parameter group)\n  group 1: 1 tensors, 3 values; ', 1, true))
    assert.truthy(repl.show(opt):find('lr=0.01', 1, true))
    assert.truthy(tostring(nn.optim.CosineLR(opt, { total = 10 })):find('^CosineLR%(min_lr=0, total=10, warmup=0; step 0'))
  end)
end)
