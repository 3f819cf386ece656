-- The GPT example's recipe trains step for step as PyTorch does: the same
-- initial weights and batches give the same losses and final weights
-- (fixture: tests/ref/gen_gpt_train.py).
package.path = 'examples/gpt/?.lua;' .. package.path
local nn = require 'nnlua'
local GPT = require 'model'

describe('GPT training against PyTorch', function()
  it('matches 30 AdamW steps with warmup, cosine decay and clipping', function()
    local ref, meta = assert(nn.load('tests/ref/gpt_train.safetensors'))
    local c, r = {}, {}
    for k, v in meta.config:gmatch('(%w+)=(%d+)') do c[k] = tonumber(v) end
    for k, v in meta.recipe:gmatch('([%w_]+)=([%d.e-]+)') do r[k] = tonumber(v) end
    local model = GPT({ vocab_size = c.V, block_size = c.T, n_layer = c.L, n_head = c.H, n_embd = c.E,
                        dropout = 0, bias = true })
    local init = {}
    for k, v in pairs(ref) do
      local name = k:match('^init%.(.*)$')
      if name then init[name] = v end
    end
    init['lm_head.weight'] = init['wte.weight'] -- tied
    model:load_state_dict(init)
    local opt = model:optimizer({ lr = r.lr, weight_decay = r.weight_decay })
    local sched = nn.optim.CosineLR(opt, { warmup = r.warmup, total = c.steps, min_lr = r.min_lr })
    for it = 1, c.steps do
      local _, loss = model(ref.x[it], ref.y[it])
      opt:zero_grad()
      loss:backward()
      nn.optim.clip_grad_norm_(model:parameters(), r.clip)
      opt:step()
      sched:step()
      assert.near(ref.losses[it], loss:item(), 2e-4 * it, 'step ' .. it)
    end
    assert.truthy(ref.losses[c.steps] < ref.losses[1] - 0.3) -- it learned something
    for name, p in model:named_parameters() do
      assert.near(0, (p - ref['final.' .. name]):abs():max():item(), 1e-3, name)
    end
  end)
end)
