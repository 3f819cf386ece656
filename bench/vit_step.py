#!/usr/bin/python3
"""PyTorch twin of bench/vit_step.lua: milliseconds per training step of
the same small ViT (patch 7, d 64, 4 pre-norm GELU layers, 4 heads, MLP
128, batch 128, AdamW). Prints "vit <ms>" (median).

Run it configured as ../shared/NOTES.md describes ("PyTorch at its best").
"""
import argparse

import torch
import torch.nn as tnn
import torch.nn.functional as F

from timing import report, time_steps


class ViT(tnn.Module):
    def __init__(self, size=28, patch=7, dim=64, depth=4, heads=4, mlp=128, classes=10):
        super().__init__()
        n = (size // patch) ** 2
        self.proj = tnn.Conv2d(1, dim, patch, stride=patch)
        self.cls = tnn.Parameter(torch.randn(1, 1, dim) * 0.02)
        self.pos = tnn.Parameter(torch.randn(1, n + 1, dim) * 0.02)
        self.blocks = tnn.ModuleList(
            tnn.TransformerEncoderLayer(dim, heads, mlp, 0.0, "gelu", batch_first=True,
                                        norm_first=True) for _ in range(depth))
        self.norm = tnn.LayerNorm(dim)
        self.head = tnn.Linear(dim, classes)

    def forward(self, x):
        p = self.proj(x).flatten(2).transpose(1, 2)
        h = torch.cat([self.cls.expand(x.shape[0], -1, -1), p], 1) + self.pos
        for b in self.blocks:
            h = b(h)
        return self.head(self.norm(h)[:, 0])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=20)
    steps = ap.parse_args().steps
    torch.manual_seed(0)
    m = ViT()
    opt = torch.optim.AdamW(m.parameters(), lr=1e-3)
    x, y = torch.randn(128, 1, 28, 28), torch.randint(0, 10, (128,))

    def step():
        loss = F.cross_entropy(m(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    report("vit", time_steps(step, steps), "%.3f")


if __name__ == "__main__":
    main()
