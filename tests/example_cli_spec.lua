-- Every example refuses bad input before doing any work: one line naming
-- the problem, exit status 2, no traceback; --help describes every option.
local support = require 'support'
local exe, run = support.exe, support.run

local scripts = {}
for line in io.popen('ls examples/*/*.lua'):lines() do
  local f = io.open(line)
  local src = f:read('a')
  f:close()
  if src:find('nn.cli.parse', 1, true) then scripts[#scripts + 1] = line end
end

local function user_error(out, code, pattern)
  assert.equal(2, code, out)
  local text = out:gsub('\n$', '')
  assert.is_nil(text:find('\n'), 'more than one line:\n' .. out)
  assert.is_nil(out:find('traceback', 1, true), out)
  if pattern then assert.truthy(out:find(pattern, 1, true), ('wanted %q in:\n%s'):format(pattern, out)) end
end

describe('example command lines', function()
  it('finds every example that takes options', function()
    assert.truthy(#scripts >= 13, table.concat(scripts, ' '))
  end)

  for _, script in ipairs(scripts) do
    it(script .. ': names an unknown option', function()
      local out, code = run(exe .. ' ' .. script .. ' --bogus 3')
      user_error(out, code, 'unknown option --bogus')
    end)

    it(script .. ': --help describes every option with its default', function()
      local out, code = run(exe .. ' ' .. script .. ' --help')
      assert.equal(0, code, out)
      local n = 0
      for line in out:gmatch('[^\n]+') do
        local flag, help = line:match('^  (%-%-%S+ ?%S*)%s+(.*)$')
        if flag then
          n = n + 1
          assert.truthy(#help > 8, 'no description: ' .. line)
          if not flag:find(' ') then -- a flag (boolean) has no default to show
            assert.is_nil(help:find('(default', 1, true), line)
          end
        end
      end
      assert.truthy(n >= 3, out)
    end)
  end

  -- what each defect of the issue did, and the one line it gives now
  local bad = {
    { 'examples/fashion_mnist/train.lua --model transformer', '--model must be one of mlp|cnn|binary, got transformer' },
    { 'examples/fashion_mnist/train.lua --epochs -1', '--epochs must be an integer >= 0, got -1' },
    { 'examples/fashion_mnist/train.lua --data /nonexistent', '--data: /nonexistent is not a directory' },
    { 'examples/resnet/train.lua --blocks 0', '--blocks must be an integer >= 1, got 0' },
    { 'examples/resnet/train.lua --label_smoothing 1', '--label_smoothing must be in [0, 0.99], got 1' },
    { 'examples/char_rnn/train.lua --layers 9', '--layers must be an integer in [1, 8], got 9' },
    { 'examples/char_rnn/train.lua --data /nonexistent', '--data: /nonexistent: No such file or directory' },
    { 'examples/char_rnn/train.lua --data /etc/hostname --out /tmp/nnlua_cr_test.st --force',
      'is too short for --batch 32 streams of --seq_len 100' },
    { 'examples/gpt/train.lua --iters -5', '--iters must be an integer >= 1, got -5' },
    { 'examples/gpt/train.lua --iters 2.5', '--iters must be an integer >= 1, got 2.5' },
    { 'examples/gpt/train.lua --lr abc', '--lr must be a number, got "abc"' },
    { 'examples/gpt/train.lua --data /tmp', '--data: /tmp: Is a directory' },
    { 'examples/gpt/train.lua --data /nonexistent', '--data: /nonexistent: No such file or directory' },
    { 'examples/gpt/train.lua --out /nonexistent/gpt.safetensors', '--out: directory /nonexistent does not exist' },
    { 'examples/gpt/train.lua --out /proc/gpt.safetensors --force', '--out: cannot write in /proc' },
    { 'examples/gpt/train.lua --out /tmp', '--out: /tmp is a directory' },
    { 'examples/gpt/train.lua --n_head 3', '--n_head 3 must divide --n_embd 128' },
    { 'examples/gpt/train.lua --autocast f16', '--autocast must be one of none|bf16, got f16' },
    { 'examples/gpt/train.lua --plot x.svg', '--plot needs --log' },
    { 'examples/gpt/train.lua --iters', '--iters needs a value' },
    { 'examples/gpt/train.lua iters 5', 'unexpected argument "iters"' },
    { 'examples/mt/train.lua --steps -5', '--steps must be an integer >= 1, got -5' },
    { 'examples/mt/train.lua --pair en-es', '--pair must be one of en-de|en-fr, got en-es' },
    { 'examples/mt/train.lua --data /nonexistent', '--data: /nonexistent: No such file or directory' },
    { 'examples/mt/train.lua --heads 3', '--heads 3 must divide --d_model 256' },
    { 'examples/summarize/train.lua --beam 0', '--beam must be an integer >= 1, got 0' },
    { 'examples/caption/train.lua --size 60', '--size 60 must be a multiple of 8' },
    { 'examples/caption/train.lua --data /nonexistent', "--data: cannot open file '/nonexistent'" },
    { 'examples/caption/train.lua --heads 5', '--heads 5 must divide --d_model 192' },
    { 'examples/mt/prepare.lua --task xx', '--task must be one of all|en-de|en-fr|summarize, got xx' },
    { 'examples/mt/prepare.lua --slice 3', '--slice needs --slice_out' },
    { 'examples/mt/score.lua', '--export is required' },
    { 'examples/kge/train.lua --model transx', '--model must be one of transe|distmult|complex|rotate, got transx' },
    { 'examples/kge/train.lua --data /tmp', '--data: no train.txt in /tmp' },
    { 'examples/kge/train.lua --steps 0 --out /nonexistent.safetensors', 'does not exist' },
    { 'examples/kge/predict.lua --model /etc/passwd --relation x', 'give exactly one of --head and --tail' },
    { 'examples/kg_text/train.lua --only text,bogus', '--only: unknown item "bogus"' },
    { 'examples/fusion/train.lua --p_true 2', '--p_true must be in [0, 1], got 2' },
    { 'examples/clip/train.lua --holdout Trouser,Sock', '--holdout: "Sock" is not a Fashion-MNIST class' },
    { 'examples/vit/train.lua --patch 5', '--patch must be one of 1|2|4|7|14|28, got 5' },
    { 'examples/vit/explain.lua', '--model FILE is required' },
    { 'examples/gpt/sample.lua --model /nonexistent', '--model: /nonexistent: No such file or directory' },
  }
  for _, case in ipairs(bad) do
    it(case[1], function()
      local out, code = run(exe .. ' ' .. case[1])
      user_error(out, code, case[2])
    end)
  end

  it('gpt: a text too short for its context is a user error, not a randint failure', function()
    local tiny = support.tempfile('abc')
    local out, code = run(('%s examples/gpt/train.lua --data %s --out %s.st'):format(exe, tiny, tiny))
    user_error(out, code, 'has 3 characters: too few')
    os.remove(tiny)
  end)

  it('gpt: never overwrites an existing model unless --force, and checks before training', function()
    local model = support.tempfile('a good model')
    local text = support.tempfile(('To be, or not to be, that is the question.\n'):rep(50))
    local out, code = run(('%s examples/gpt/train.lua --data %s --out %s'):format(exe, text, model))
    user_error(out, code, 'exists; pass --force to overwrite it')
    assert.equal('a good model', support.read(model))
    out, code = run(('%s examples/gpt/train.lua --data %s --iters 2 --n_layer 1 --n_embd 8 --n_head 2 '
      .. '--block_size 8 --batch 2 --eval_iters 1 --sample_len 0 --out %s --force'):format(exe, text, model))
    assert.equal(0, code, out)
    assert.are_not.equal('a good model', support.read(model))
    -- sample.lua reads the training checkpoint too (config and vocabulary in its extra values)
    local ckpt = os.tmpname() .. '.ckpt'
    out, code = run(('%s examples/gpt/train.lua --data %s --iters 2 --n_layer 1 --n_embd 8 --n_head 2 '
      .. '--block_size 8 --batch 2 --eval_iters 1 --eval_interval 1 --sample_len 0 --out %s --force --ckpt %s')
      :format(exe, text, model, ckpt))
    assert.equal(0, code, out)
    out, code = run(('%s examples/gpt/sample.lua --model %s --tokens 5 --prompt To'):format(exe, ckpt))
    assert.equal(0, code, out)
    assert.truthy(out:find('^To'), out)
    out, code = run(('%s examples/gpt/sample.lua --model %s --prompt "~"'):format(exe, ckpt))
    user_error(out, code, 'is not in the model\'s vocabulary')
    out, code = run(('%s examples/gpt/sample.lua --model %s'):format(exe, text))
    user_error(out, code)
    for _, p in ipairs({ model, text, ckpt }) do os.remove(p) end
  end)
end)
