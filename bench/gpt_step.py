#!/usr/bin/python3
"""PyTorch twin of bench/gpt_step.lua: milliseconds per GPT training step
(AdamW) for nanoGPT's baby config and a 6x384 model, and attention
forward+backward alone. Prints lines "<name> <ms>" (medians).

Run it configured as ../shared/NOTES.md describes ("PyTorch at its best").
"""
import argparse
import math

import torch
import torch.nn as tnn
import torch.nn.functional as F

from timing import time_steps


class Block(tnn.Module):
    def __init__(self, e, h):
        super().__init__()
        self.h = h
        self.ln_1, self.ln_2 = tnn.LayerNorm(e), tnn.LayerNorm(e)
        self.c_attn, self.attn_proj = tnn.Linear(e, 3 * e), tnn.Linear(e, e)
        self.c_fc, self.mlp_proj = tnn.Linear(e, 4 * e), tnn.Linear(4 * e, e)

    def attn(self, x):
        b, t, e = x.shape
        q, k, v = self.c_attn(x).split(e, dim=2)
        q, k, v = (z.view(b, t, self.h, e // self.h).transpose(1, 2) for z in (q, k, v))
        s = (q @ k.transpose(-2, -1)) / math.sqrt(e // self.h)
        s = s.masked_fill(torch.ones(t, t, dtype=torch.bool).triu(1), float("-inf"))
        y = s.softmax(-1) @ v
        return self.attn_proj(y.transpose(1, 2).reshape(b, t, e))

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x))))


class GPT(tnn.Module):
    def __init__(self, v, t, layers, h, e):
        super().__init__()
        self.wte, self.wpe = tnn.Embedding(v, e), tnn.Embedding(t, e)
        self.blocks = tnn.ModuleList(Block(e, h) for _ in range(layers))
        self.ln_f = tnn.LayerNorm(e)
        self.head = tnn.Linear(e, v, bias=False)
        self.head.weight = self.wte.weight

    def forward(self, idx, y):
        t = idx.shape[1]
        x = self.wte(idx) + self.wpe(torch.arange(t))
        for b in self.blocks:
            x = b(x)
        logits = self.head(self.ln_f(x))
        return F.cross_entropy(logits.view(-1, logits.shape[-1]), y.view(-1))


def gpt(name, layers, h, e, t, b, steps, autocast=False):
    torch.manual_seed(0)
    m = GPT(65, t, layers, h, e)
    opt = torch.optim.AdamW(m.parameters(), lr=1e-3)
    x, y = torch.randint(0, 65, (b, t)), torch.randint(0, 65, (b, t))

    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            loss = m(x, y)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
        opt.step()
    print(f"{name} {time_steps(step, steps):.2f}", flush=True)


def attention(steps, dropout=0.0, autocast=False):
    q, k, v = (torch.randn(16, 8, 128, 32, requires_grad=True) for _ in range(3))
    mask = torch.ones(128, 128, dtype=torch.bool).triu(1)

    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            s = (q @ k.transpose(-2, -1)) / math.sqrt(32)
            p = s.masked_fill(mask, float("-inf")).softmax(-1)
            y = F.dropout(p, dropout) @ v
        y.float().sum().backward()
    name = "attention_autocast" if autocast else "attention_dropout" if dropout else "attention"
    print(f"{name} {time_steps(step, steps):.2f}", flush=True)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--only", default="baby,6x384,attention")
    a = ap.parse_args()
    only = a.only.split(",")
    if "baby" in only:
        gpt("baby", 4, 4, 128, 64, 12, a.steps)
    if "6x384" in only:
        gpt("6x384", 6, 6, 384, 256, 8, max(3, a.steps // 3))
        gpt("6x384_autocast", 6, 6, 384, 256, 8, max(3, a.steps // 3), autocast=True)
    if "attention" in only:
        attention(a.steps)
        attention(a.steps, 0.1)
        attention(a.steps, autocast=True)
