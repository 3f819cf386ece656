--- A busted output handler: failures in full, then one summary line
--- "busted: N passed, N failed" (errors count as failures) for tests/run.sh.
return function(options)
  local busted = require 'busted'
  local handler = require 'busted.outputHandlers.base'()

  local function show(kind, t)
    local where = t.element.trace and (t.element.trace.short_src .. ':' ..
      t.element.trace.currentline) or '?'
    io.write(('%s: %s\n  %s\n  %s\n'):format(kind, handler.getFullName(t.element),
      where, tostring(t.message):gsub('\n', '\n  ')))
    if t.trace and t.trace.traceback and options.verbose then
      io.write(t.trace.traceback, '\n')
    end
  end

  handler.suiteEnd = function()
    for _, t in ipairs(handler.failures) do show('FAIL', t) end
    for _, t in ipairs(handler.errors) do show('ERROR', t) end
    io.write(('busted: %d passed, %d failed\n'):format(#handler.successes,
      #handler.failures + #handler.errors))
    io.flush()
    return nil, true
  end

  busted.subscribe({ 'suite', 'end' }, handler.suiteEnd)
  return handler
end
