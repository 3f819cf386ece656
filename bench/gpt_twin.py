"""The PyTorch GPT the benchmarks compare nnlua's examples/gpt/model.lua
with: nanoGPT's shape (pre-norm blocks, tied embeddings) and its
initialisation (N(0, 0.02), residual projections scaled by 1/sqrt(2 L),
zero biases). Used by bench/gpt_step.py, bench/quality.py and
tests/ref/gen_gpt_train.py.
"""
import math

import torch
import torch.nn as tnn
import torch.nn.functional as F


class Block(tnn.Module):
    def __init__(self, e, h):
        super().__init__()
        self.h = h
        self.ln_1, self.ln_2 = tnn.LayerNorm(e), tnn.LayerNorm(e)
        self.c_attn, self.attn_proj = tnn.Linear(e, 3 * e), tnn.Linear(e, e)
        self.c_fc, self.mlp_proj = tnn.Linear(e, 4 * e), tnn.Linear(4 * e, e)

    def forward(self, x):
        b, t, e = x.shape
        q, k, v = self.c_attn(self.ln_1(x)).split(e, dim=2)
        q, k, v = (z.view(b, t, self.h, e // self.h).transpose(1, 2) for z in (q, k, v))
        s = (q @ k.transpose(-2, -1)) / math.sqrt(e // self.h)
        s = s.masked_fill(torch.ones(t, t, dtype=torch.bool).triu(1), float("-inf"))
        x = x + self.attn_proj((s.softmax(-1) @ v).transpose(1, 2).reshape(b, t, e))
        return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x))))


class GPT(tnn.Module):
    def __init__(self, vocab, block, n_layer, n_head, e):
        super().__init__()
        self.wte, self.wpe = tnn.Embedding(vocab, e), tnn.Embedding(block, e)
        self.h = tnn.ModuleList(Block(e, n_head) for _ in range(n_layer))
        self.ln_f = tnn.LayerNorm(e)
        self.lm_head = tnn.Linear(e, vocab, bias=False)
        self.lm_head.weight = self.wte.weight
        for name, p in self.named_parameters():
            if name.endswith("bias"):
                tnn.init.zeros_(p)
            elif name.endswith("proj.weight"):
                tnn.init.normal_(p, 0, 0.02 / math.sqrt(2 * n_layer))
            elif "ln" not in name:
                tnn.init.normal_(p, 0, 0.02)

    def forward(self, idx, targets):
        x = self.wte(idx) + self.wpe(torch.arange(idx.shape[1]))
        for block in self.h:
            x = block(x)
        logits = self.lm_head(self.ln_f(x))
        return F.cross_entropy(logits.view(-1, logits.shape[-1]), targets.view(-1))
