#!/usr/bin/python3
"""PyTorch twin of examples/gpt/train.lua for bench/quality.lua: the baby
GPT recipe (nanoGPT's init, weight tying, AdamW betas 0.9/0.99 with weight
decay on 2-D weights only, linear warmup then cosine to min_lr, clip 1)
on a character-level text, 90/10 split. Prints "val_loss <x>" at the end,
averaged over --eval_iters random validation batches.

--paired FILE (written by bench/quality.lua) gives the initial weights (in
nnlua's names) and every batch's start offsets, train and validation, so
both engines train the same model on the same batches.
"""
import argparse
import math
import os
import sys
import time

import torch
import torch.nn as tnn

from gpt_twin import GPT


def main():
    ap = argparse.ArgumentParser()
    for name, default in [("data", ""), ("iters", 2000), ("batch", 12), ("block_size", 64),
                          ("n_layer", 4), ("n_head", 4), ("n_embd", 128), ("lr", 1e-3),
                          ("min_lr", 1e-4), ("warmup", 100), ("weight_decay", 0.1),
                          ("grad_clip", 1.0), ("eval_iters", 200), ("seed", 1), ("paired", "")]:
        ap.add_argument("--" + name, type=type(default), default=default)
    a = ap.parse_args()
    paired = None
    if a.paired:
        sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "ref"))
        from safetensors_interop import read
        paired = read(a.paired)[0]
    torch.manual_seed(a.seed)
    text = open(a.data, "rb").read()
    vocab = sorted(set(text))
    table = bytes(vocab.index(c) if c in vocab else 0 for c in range(256))
    ids = torch.tensor(list(text.translate(table)))
    n_train = int(0.9 * len(ids))
    splits = {"train": ids[:n_train], "val": ids[n_train:]}

    calls = {"train": 0, "val": 0}

    def batch(split):
        d = splits[split]
        if paired is not None:  # the offsets nnlua drew, 0-based
            starts = paired[split + "_starts"][calls[split]].view(-1, 1)
            calls[split] += 1
        else:
            starts = torch.randint(0, len(d) - a.block_size, (a.batch, 1))
        idx = starts + torch.arange(a.block_size)
        return d[idx], d[idx + 1]

    model = GPT(len(vocab), a.block_size, a.n_layer, a.n_head, a.n_embd)
    if paired is not None:
        names = {".attn.c_attn.": ".c_attn.", ".attn.c_proj.": ".attn_proj.",
                 ".mlp.c_fc.": ".c_fc.", ".mlp.c_proj.": ".mlp_proj."}
        sd = {}
        for k, v in paired.items():
            if k.startswith("init."):
                k = k[5:]
                for x, y in names.items():
                    k = k.replace(x, y)
                sd[k] = v
        sd["lm_head.weight"] = sd["wte.weight"]
        model.load_state_dict(sd)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": a.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=a.lr, betas=(0.9, 0.99))

    def lr_at(t):  # the same formula as nn.optim.CosineLR
        if t < a.warmup:
            return a.lr * (t + 1) / a.warmup
        r = (t - a.warmup) / max(1, a.iters - a.warmup)
        return a.min_lr + 0.5 * (1 + math.cos(math.pi * r)) * (a.lr - a.min_lr)

    t0 = time.time()
    for it in range(a.iters):
        for g in opt.param_groups:
            g["lr"] = lr_at(it)
        x, y = batch("train")
        loss = model(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        tnn.utils.clip_grad_norm_(model.parameters(), a.grad_clip)
        opt.step()
    model.eval()
    with torch.no_grad():
        val = sum(model(*batch("val")).item() for _ in range(a.eval_iters)) / a.eval_iters
    print("val_loss %.4f" % val)
    print("seconds %.1f" % (time.time() - t0))


if __name__ == "__main__":
    main()
