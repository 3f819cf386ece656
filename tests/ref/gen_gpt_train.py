#!/usr/bin/python3
"""Thirty training steps of a small GPT in PyTorch 1.13 with the baby-GPT
recipe of examples/gpt/train.lua (bench/quality.py's twin: nanoGPT init,
tied embeddings, AdamW betas 0.9/0.99 with weight decay on 2-D weights
only, warmup then cosine, gradient clipping), for tests/gpt_train_spec.lua.

Run by a developer (never by CI):  /usr/bin/python3 tests/ref/gen_gpt_train.py
Writes tests/ref/gpt_train.safetensors: the initial weights (init.<name>,
nnlua's names), the batches (x, y: steps x B x T, 1-based ids), the loss
of every step and the weights after the last (final.<name>).
"""
import math
import os
import sys

import torch

here = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [here, os.path.join(here, "..", "..", "bench")]
from gpt_twin import GPT  # noqa: E402
from safetensors_interop import write  # noqa: E402

torch.manual_seed(0)
V, T, L, H, E, B, STEPS = 20, 16, 2, 2, 32, 4, 30
LR, MIN_LR, WARMUP, WD, CLIP = 3e-3, 3e-4, 5, 0.1, 0.5
model = GPT(V, T, L, H, E)
RENAME = [(".c_attn.", ".attn.c_attn."), (".attn_proj.", ".attn.c_proj."),
          (".c_fc.", ".mlp.c_fc."), (".mlp_proj.", ".mlp.c_proj.")]


def nnlua_name(name):
    for a, b in RENAME:
        name = name.replace(a, b)
    return name


out = {"init." + nnlua_name(k): v.clone() for k, v in model.state_dict().items() if k != "lm_head.weight"}
x = torch.randint(0, V, (STEPS, B, T))
y = (3 * x + 1) % V  # learnable: the loss falls
decay = [p for p in model.parameters() if p.dim() >= 2]
no_decay = [p for p in model.parameters() if p.dim() < 2]
opt = torch.optim.AdamW([{"params": decay, "weight_decay": WD}, {"params": no_decay, "weight_decay": 0.0}],
                        lr=LR, betas=(0.9, 0.99))


def lr_at(t):
    if t < WARMUP:
        return LR * (t + 1) / WARMUP
    r = (t - WARMUP) / max(1, STEPS - WARMUP)
    return MIN_LR + 0.5 * (1 + math.cos(math.pi * r)) * (LR - MIN_LR)


losses = []
for it in range(STEPS):
    for g in opt.param_groups:
        g["lr"] = lr_at(it)
    loss = model(x[it], y[it])
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP)
    opt.step()
    losses.append(loss.item())
out.update({"final." + nnlua_name(k): v.clone() for k, v in model.state_dict().items() if k != "lm_head.weight"})
out["x"], out["y"], out["losses"] = x + 1, y + 1, torch.tensor(losses)
meta = {"config": "V=%d,T=%d,L=%d,H=%d,E=%d,B=%d,steps=%d" % (V, T, L, H, E, B, STEPS),
        "recipe": "lr=%g,min_lr=%g,warmup=%d,weight_decay=%g,clip=%g" % (LR, MIN_LR, WARMUP, WD, CLIP)}
write(os.path.join(here, "gpt_train.safetensors"), out, meta)
print("wrote gpt_train.safetensors; losses", ["%.4f" % v for v in losses[:3]], "...", "%.4f" % losses[-1])
