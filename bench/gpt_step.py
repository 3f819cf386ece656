#!/usr/bin/python3
"""PyTorch twin of bench/gpt_step.lua: milliseconds per GPT training step
(AdamW) for nanoGPT's baby config and a 6x384 model, and attention
forward+backward alone. Prints lines "<name> <ms>" (medians).

Run it configured as ../shared/NOTES.md describes ("PyTorch at its best").
"""
import argparse
import math

import torch
import torch.nn.functional as F

from gpt_twin import GPT
from timing import report, time_steps


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
    report(name, time_steps(step, steps))


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
    report(name, time_steps(step, steps))


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
