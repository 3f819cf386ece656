-- The examples run end to end on tiny settings (their real runs are
-- reported in the README and the closing notes, not timed here).
local support = require 'support'
local exe, run = support.exe, support.run

describe('examples', function()
  it('gpt: trains, saves, and samples from the saved model', function()
    local text = support.tempfile(('To be, or not to be, that is the question.\n'):rep(200))
    local ckpt = os.tmpname() .. '.safetensors'
    local out, code = run(('%s examples/gpt/train.lua --data %s --iters 20 --n_layer 1 --n_head 2 '
      .. '--n_embd 16 --block_size 16 --batch 4 --eval_interval 10 --eval_iters 2 '
      .. '--log_interval 10 --sample_len 20 --out %s'):format(exe, text, ckpt))
    assert.equal(0, code, out)
    assert.truthy(out:find('val loss', 1, true))
    assert.truthy(out:find('tok/s', 1, true))
    assert.truthy(out:find('saved ' .. ckpt, 1, true))
    local att, emb = os.tmpname() .. '.svg', os.tmpname() .. '.svg'
    local s, code2 = run(('%s examples/gpt/sample.lua --model %s --tokens 30 --prompt "To " '
      .. '--attention_svg %s --embedding_svg %s'):format(exe, ckpt, att, emb))
    assert.equal(0, code2, s)
    assert.truthy(s:find('^To '))
    for _, p in ipairs({ att, emb }) do
      local svg = io.open(p):read('a')
      assert.truthy(svg:find('<svg', 1, true))
      assert.truthy(svg:find('<rect', 1, true) or svg:find('<circle', 1, true))
      os.remove(p)
    end
    local missing, code3 = run(exe .. ' examples/gpt/sample.lua --model /nonexistent.safetensors')
    assert.equal(2, code3)
    assert.truthy(missing:find('No such file', 1, true))
    os.remove(text)
    os.remove(ckpt)
  end)

  it('char_rnn: trains an LSTM with state carried across batches, validates, saves and samples', function()
    local text = support.tempfile(('ROMEO: what light through yonder window breaks?\n'):rep(60))
    local ckpt = os.tmpname() .. '.safetensors'
    local out, code = run(('%s examples/char_rnn/train.lua --data %s --steps 12 --batch 4 --seq_len 16 '
      .. '--hidden 16 --embed 8 --eval_interval 6 --sample_len 20 --out %s'):format(exe, text, ckpt))
    assert.equal(0, code, out)
    assert.truthy(out:find('step 12: train loss [%d.]+, val loss [%d.]+'), out)
    assert.truthy(out:find('--- sample (temperature 0.8) ---\nROMEO:', 1, true), out)
    local nn = require 'nnlua'
    local st = assert(nn.load(ckpt))
    assert.same({ 64, 16 }, st['lstm.weight_hh_l1']:size())
    os.remove(text)
    os.remove(ckpt)
  end)

  -- a cache of Translation files made from the committed DDTP slice
  local function ddtp_cache()
    local cache = support.tempdir()
    assert(os.execute(('mkdir -p %s/lists'):format(cache)))
    for _, l in ipairs({ 'en', 'de', 'fr' }) do -- every language: nothing is fetched
      assert(os.execute(('cp tests/data/ddtp/Translation-%s %s/lists/slice_main_i18n_Translation-%s'):format(l, cache, l)))
    end
    local out, code = run(('%s examples/mt/prepare.lua --cache %s --test 20 --valid 10'):format(exe, cache))
    assert.equal(0, code, out)
    return cache, out
  end
  local tiny = '--steps 6 --batch_tokens 400 --vocab 300 --d_model 16 --heads 2 --layers 1 --ff 32 '
    .. '--eval_every 3 --eval_items 4 --beam 2 --decode_batch 3'

  it('mt: prepares DDTP data, trains, beam-decodes the test split and scores it; the twin export scores too', function()
    local cache, prep = ddtp_cache()
    assert.truthy(prep:find('en%-de +%d+ candidate pairs %-> train %d+, valid %d+, test %d+'), prep)
    assert.is_nil(prep:find('fetching', 1, true), prep)
    local model, log, svg, hyps = cache .. '/mt.safetensors', cache .. '/mt.jsonl', cache .. '/bleu.svg', cache .. '/test.hyp'
    local out, code = run(('%s examples/mt/train.lua --cache %s %s --out %s --log %s --plot %s --hyps %s --greedy '
      .. '--time_single 3 --export %s/export'):format(exe, cache, tiny, model, log, svg, hyps, cache))
    assert.equal(0, code, out)
    assert.truthy(out:find('valid BLEU %(greedy, 4 items%)'), out)
    assert.truthy(out:find('test BLEU [%d.]+ %(en%-de'), out)
    assert.truthy(out:find('test: BLEU [%d.]+ greedy'), out)
    assert.truthy(out:find('beam 2 decoding of 3 test items'), out)
    assert.truthy(support.read(svg):find('<svg', 1, true))
    assert.truthy(support.read(cache .. '/export/plan.txt'):find('^%d'))
    -- the nnlua hypotheses, as ids, through the scorer the twin's go through
    local nn = require 'nnlua'
    local bpe = nn.tokenizer.BPE.load(cache .. '/export/vocab.bpe')
    local lines = {}
    for line in io.lines(hyps) do
      local ids = bpe:encode(line):totable()
      for i = 1, #ids do ids[i] = ids[i] + 3 end
      lines[#lines + 1] = table.concat(ids, ' ')
    end
    support.write(cache .. '/ours.ids', table.concat(lines, '\n') .. '\n')
    local score, c2 = run(('%s examples/mt/score.lua --export %s/export --ids %s/ours.ids'):format(exe, cache, cache))
    assert.equal(0, c2, score)
    local b1 = tonumber(out:match('test BLEU ([%d.]+)'))
    local b2 = tonumber(score:match('^BLEU ([%d.]+)'))
    assert.truthy(b2 and math.abs(b1 - b2) < 0.006, out .. score)
    os.execute('rm -rf ' .. cache)
  end)

  it('summarize: trains on description -> synopsis and reports ROUGE beside the two baselines', function()
    local cache = ddtp_cache()
    local out, code = run(('%s examples/summarize/train.lua --cache %s %s --max_tgt 12 --out %s/s.safetensors')
      :format(exe, cache, tiny, cache))
    assert.equal(0, code, out)
    assert.truthy(out:find('lead%-%d+ baseline +ROUGE%-1 [%d.]+  ROUGE%-2 [%d.]+  ROUGE%-L [%d.]+'), out)
    assert.truthy(out:find('TF%-IDF retrieval baseline +ROUGE%-1'), out)
    assert.truthy(out:find('model, beam 2 +ROUGE%-1 [%d.]+'), out)
    os.execute('rm -rf ' .. cache)
  end)

  it('vit: trains on a few images and draws its attention maps', function()
    local svg = os.tmpname() .. '.svg'
    local out, code = run(('%s examples/vit/train.lua --limit 256 --epochs 1 --batch 64 --dim 16 '
      .. '--depth 1 --heads 2 --mlp 32 --attention %s'):format(exe, svg))
    assert.equal(0, code, out)
    assert.truthy(out:find('ViT: test accuracy', 1, true))
    assert.truthy(support.read(svg):find('<rect', 1, true))
    os.remove(svg)
  end)

  it('vit explain: saliency and rollout of a trained ViT, from hooks, in one picture', function()
    local svg, ckpt = os.tmpname() .. '.svg', os.tmpname() .. '.ckpt'
    local sizes = '--dim 16 --depth 2 --heads 2 --mlp 32'
    local out, code = run(('%s examples/vit/train.lua --limit 256 --epochs 1 --batch 64 %s '
      .. '--attention %s --out %s'):format(exe, sizes, svg, ckpt))
    assert.equal(0, code, out)
    out, code = run(('%s examples/vit/explain.lua --model %s %s --show 2 --out %s'):format(exe, ckpt,
      sizes, svg))
    assert.equal(0, code, out)
    assert.truthy(out:find('image 2: .* of saliency, .* of rollout'), out)
    local pic = support.read(svg)
    assert.truthy(pic:find('attention rollout', 1, true) and pic:find('predicted: ', 1, true))
    out, code = run(exe .. ' examples/vit/explain.lua')
    assert.truthy(code ~= 0 and out:find('--model FILE is required', 1, true), out)
    os.remove(svg)
    os.remove(ckpt)
  end)

  it('fashion_mnist --model binary: binary weights trained through a Lua straight-through estimator', function()
    local out, code = run(exe .. ' examples/fashion_mnist/train.lua --model binary --epochs 1 --limit 2000')
    assert.equal(0, code, out)
    local acc = tonumber(out:match('binary: test accuracy ([%d.]+)'))
    assert.truthy(acc and acc > 0.3, out) -- chance is 0.1; 16 steps reach ~0.5
    out, code = run(exe .. ' examples/fashion_mnist/train.lua --model transformer')
    assert.truthy(code == 2 and out:find('--model must be one of mlp|cnn|binary, got transformer', 1, true), out)
  end)

  it('clip: trains contrastively and reports retrieval and zero-shot accuracy', function()
    local out, code = run(exe .. ' examples/clip/train.lua --limit 512 --epochs 1 --batch 32')
    assert.equal(0, code, out)
    assert.truthy(out:find('image->text R@1', 1, true))
    assert.truthy(out:find('zero-shot on the 2 held-out classes (Trouser,Sandal)', 1, true))
  end)

  it('multitask and fusion: print their comparison tables', function()
    local out, code = run(exe .. ' examples/multitask/train.lua --limit 512 --epochs 1')
    assert.equal(0, code, out)
    assert.truthy(out:find('multitask (both heads)', 1, true))
    assert.truthy(out:find('coarse only', 1, true))
    local f, fcode = run(exe .. ' examples/fusion/train.lua --limit 512 --epochs 1')
    assert.equal(0, fcode, f)
    for _, kind in ipairs({ 'image only', 'text only', 'concat', 'sum', 'gated', 'bilinear', 'film',
                            'cross-attention' }) do
      assert.truthy(f:find('\n' .. kind:gsub('%-', '%%-') .. ' +0%.%d+ +%d+'), kind .. ' missing:\n' .. f)
    end
  end)

  it('kge: builds a WordNet graph, trains, early-stops, saves and answers queries', function()
    local dir = os.tmpname()
    os.remove(dir)
    local out, code = run(('%s examples/kge/wordnet.lua --out %s --valid 200 --test 200'):format(exe, dir))
    assert.equal(0, code, out)
    assert.truthy(out:find('WordNet knowledge graph', 1, true))
    local model = dir .. '/m.safetensors'
    local t, tcode = run(('%s examples/kge/train.lua --data %s --model transe --dim 8 --batch 64 '
      .. '--negatives 4 --temperature 0.5 --subsampling --steps 20 --eval_every 10 --valid_limit 50 '
      .. '--patience 1 --out %s'):format(exe, dir, model))
    assert.equal(0, tcode, t)
    assert.truthy(t:find('adversarial loss (temperature 0.5, subsampling weights)', 1, true))
    assert.truthy(t:find('valid MRR', 1, true))
    assert.truthy(t:find('transe test %(filtered, %d+ queries%): MRR'))
    assert.truthy(t:find('_hypernym', 1, true)) -- the per-relation breakdown
    local e, ecode = run(('%s examples/kge/train.lua --data %s --model transe --dim 8 --steps 0 --out %s')
      :format(exe, dir, model)) -- evaluation of the saved model only
    assert.equal(0, ecode, e)
    assert.truthy(e:find('transe test %(filtered, %d+ queries%): MRR'))
    local w, wcode = run(('%s examples/kge/train.lua --data %s --model transe --dim 8 --batch 64 --negatives 4 '
      .. '--filter_negatives --steps 10 --eval_every 10 --valid_limit 50 --resume %s --out %s/w.safetensors'):format(exe, dir, model, dir))
    assert.equal(0, wcode, w) -- a warm restart from the saved model
    assert.truthy(w:find('resumed from ' .. model .. ' (step ', 1, true))
    assert.truthy(w:find('4 filtered negatives', 1, true))
    local m, mcode = run(('%s examples/kge/train.lua --data %s --model transe --dim 16 --steps 10 --resume %s')
      :format(exe, dir, model))
    assert.equal(2, mcode)
    assert.truthy(m:find('a transe model of dim 8, not transe of dim 16', 1, true))
    local p, pcode = run(('%s examples/kge/predict.lua --model %s --head 02084071.n --relation _hypernym --k 3')
      :format(exe, model))
    assert.equal(0, pcode, p)
    assert.truthy(p:find('02084071.n (dog, domestic_dog, Canis_familiaris), _hypernym, ?)', 1, true))
    assert.truthy(p:find(' 3. ', 1, true))
    local bad, bcode = run(('%s examples/kge/predict.lua --model %s --head 02084071.n --relation _nope'):format(exe, model))
    assert.equal(2, bcode)
    assert.truthy(bad:find('unknown relation "_nope"', 1, true))
    local c, ccode = run(('%s examples/kge/train.lua --data %s --model complex --dim 8 --batch 64 --loss ce '
      .. '--optimizer adagrad --lr 0.1 --regularizer n3 --reg_weight 0.01 --schedule plateau --steps 30 '
      .. '--eval_every 10 --valid_limit 50 --patience 3 --out %s/c.safetensors'):format(exe, dir, dir))
    assert.equal(0, ccode, c)
    assert.truthy(c:find('all entities, batch 64, adagrad lr 0.1 (plateau schedule), ce loss', 1, true))
    assert.truthy(c:find('complex test %(filtered, %d+ queries%): MRR'))
    local d, dcode = run(('%s examples/kge/train.lua --data %s --model distmult --dim 8 --batch 64 --loss ce '
      .. '--candidates 32 --steps 10 --eval_every 10 --valid_limit 50 --out %s/d.safetensors'):format(exe, dir, dir))
    assert.equal(0, dcode, d)
    assert.truthy(d:find('32 shared candidates, batch 64, adam', 1, true))
    assert.truthy(d:find('distmult test %(filtered, %d+ queries%): MRR'))
    -- the KG entity table fused into a gloss classifier (tiny: 1500 synsets, one epoch)
    local k, kcode = run(('%s examples/kg_text/train.lua --kg %s --limit 1500 --epochs 1 --dim 16 '
      .. '--layers 1 --batch 32'):format(exe, model))
    assert.equal(0, kcode, k)
    assert.truthy(k:find('1500 synsets (1200 / 150 / 150), 45 classes', 1, true))
    assert.truthy(k:find('\ntext%s+%d%.%d+%s+%d%.%d+'))
    assert.truthy(k:find('text%+KG gated%s+%d%.%d+%s+%d%.%d+.-points over text only'))
    assert.truthy(k:find('KG only%s+%d%.%d+%s+%d%.%d+'))
    local miss, mcode = run(('%s examples/kg_text/train.lua --kg %s/nothing.safetensors --kg_steps 0 --limit 10')
      :format(exe, dir))
    assert.equal(2, mcode)
    assert.truthy(miss:find('nothing.safetensors', 1, true), miss)
    os.execute('rm -r ' .. dir)
  end)
end)

describe('training experience', function()
  local nn = require 'nnlua'

  it('gpt: a resumed run continues bit for bit', function()
    local text = support.tempfile(('All the world is a stage, and all the men and women merely players.\n'):rep(60))
    local base = ('%s examples/gpt/train.lua --data %s --n_layer 1 --n_head 2 --n_embd 16 '
      .. '--block_size 16 --batch 4 --eval_interval 10 --eval_iters 2 --log_interval 10 '
      .. '--sample_len 5 --dropout 0.1 --force --out %s'):format(exe, text, os.tmpname())
    local full, half, ck = os.tmpname(), os.tmpname(), os.tmpname() .. '.safetensors'
    assert.equal(0, select(2, run(base .. ' --iters 30 --log ' .. full)))
    assert.equal(0, select(2, run(base .. ' --iters 10 --log ' .. half .. ' --ckpt ' .. ck)))
    local out, code = run(base .. ' --iters 30 --log ' .. half .. ' --resume ' .. ck)
    assert.equal(0, code, out)
    assert.truthy(out:find('resumed from', 1, true))
    local function losses(path)
      local t = {}
      for line in io.lines(path) do
        if line:find('"loss"', 1, true) then t[#t + 1] = line end
      end
      return t
    end
    local a, b = losses(full), losses(half)
    assert.equal(30, #a)
    assert.same(a, b)
    for _, p in ipairs({ text, full, half, ck }) do os.remove(p) end
  end)

  it('on a terminal: one line cut to its width, prints above it, plain units', function()
    local function run_bar(width, body)
      local chunks = {}
      local out, print0 = io.stdout, _G.print
      io.stdout = { write = function(_, ...) for _, s in ipairs({ ... }) do chunks[#chunks + 1] = tostring(s) end end,
                    flush = function() end }
      _G.print = function(...) io.stdout:write(table.concat({ ... }, '\t'), '\n') end -- as the real one would
      local plain = _G.print
      local ok, err = pcall(function()
        for i, _, bar in nn.progress(12, { desc = 'train', tty = true, width = width }) do
          local t0 = nn.clock()
          while nn.clock() - t0 < 0.03 do end
          bar.loss, bar.lr, bar['tok/s'] = 1 / i, 3e-4, 21100.5
          if body then body(i) end
        end
      end)
      io.stdout = out
      local restored = _G.print
      _G.print = print0
      assert(ok, err)
      assert.equal(plain, restored) -- _G.print is itself again after the loop
      return table.concat(chunks)
    end
    local text = run_bar(60, function(i) if i == 6 then _G.print('step 6: val loss 1.5') end end)
    for line in text:gsub('\027%[K', ''):gmatch('[^\r\n]+') do
      assert.truthy(#line < 60, ('%d columns: %q'):format(#line, line))
    end
    assert.truthy(text:find('\r\027%[Kstep 6: val loss 1.5\n'), text) -- on its own line
    assert.truthy(text:find('train 12/12', 1, true))
    local wide = run_bar(200)
    assert.truthy(wide:find('tok/s 21.1k', 1, true), wide)
    assert.truthy(wide:find('lr 0.0003', 1, true), wide)
    assert.is_nil(wide:find('e+', 1, true), wide)
    assert.truthy(wide:find('[====', 1, true), wide)
    local narrow = run_bar(30)
    for line in narrow:gsub('\027%[K', ''):gmatch('[^\r\n]+') do assert.truthy(#line < 30, line) end
    -- a loop left by break takes its bar off the screen
    local out, print0 = io.stdout, _G.print
    io.stdout = { write = function() end, flush = function() end }
    for i in nn.progress(5, { tty = true, width = 80 }) do
      local t0 = nn.clock()
      while nn.clock() - t0 < 0.12 do end
      if i == 3 then break end
    end
    local after = _G.print
    io.stdout, _G.print = out, print0
    assert.equal(print0, after)
  end)

  it('prints progress lines with rate, ETA and metrics when not on a terminal', function()
    local lines = {}
    local write = io.write
    local out = io.stdout
    local fake = { write = function(_, ...) for _, s in ipairs({ ... }) do lines[#lines + 1] = s end end,
                   flush = function() end }
    io.stdout = fake
    local ok, err = pcall(function()
      for i, _, bar in nn.progress(20, { desc = 'epoch', every = 10, tty = false }) do bar.loss = 1 / i end
    end)
    io.stdout = out
    io.write = write
    assert(ok, err)
    local text = table.concat(lines)
    assert.truthy(text:find('epoch 10/20', 1, true))
    assert.truthy(text:find('epoch 20/20', 1, true))
    assert.truthy(text:find('it/s', 1, true))
    assert.truthy(text:find('loss 0.05', 1, true))
    assert.is_nil(text:find('\r', 1, true))
  end)

  it('logs metrics as JSON lines or CSV and plots them as SVG', function()
    local jl, csv, svg = os.tmpname() .. '.jsonl', os.tmpname() .. '.csv', os.tmpname() .. '.svg'
    local a, b = nn.progress.log(jl), nn.progress.log(csv)
    for step = 1, 5 do
      a:write({ step = step, loss = 1 / step })
      b:write({ step = step, loss = 1 / step })
    end
    a:close()
    b:close()
    local first = io.lines(jl)()
    assert.equal('{"loss":1,"step":1}', first:gsub('1%.0+', '1'))
    local c = io.open(csv):read('a')
    assert.truthy(c:find('^loss,step\n1.0,1\n'))
    assert.is_true(nn.plot.from_log(jl, svg, { 'loss' }, { title = 'a <title>' }))
    local s = io.open(svg):read('a')
    assert.truthy(s:find('<svg', 1, true))
    assert.truthy(s:find('<polyline', 1, true))
    assert.truthy(s:find('a &lt;title&gt;', 1, true))
    local ok, err = nn.plot.svg(svg, { { name = 'x', y = { 0 / 0 } } })
    assert.is_nil(ok)
    assert.truthy(err:find('no finite', 1, true))
    for _, p in ipairs({ jl, csv, svg }) do os.remove(p) end
  end)

  it('names the first op that makes a NaN or Inf in anomaly mode', function()
    local prev = nn.detect_anomaly(true)
    local x = nn.tensor({ 1, 0 }):requires_grad_()
    local ok, err = pcall(function() return x:log() end)
    assert.is_false(ok)
    assert.truthy(err:find('anomaly: log produced Inf', 1, true))
    local z = nn.tensor({ 0.0 }):requires_grad_()
    ok, err = pcall(function() z:sqrt():sum():backward() end)
    assert.is_false(ok)
    assert.truthy(err:find('sqrt produced Inf in a gradient', 1, true))
    nn.detect_anomaly(prev)
    assert.equal('-inf', tostring(x:log()[2]))
  end)
end)
