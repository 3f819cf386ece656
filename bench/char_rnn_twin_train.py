#!/usr/bin/python3
"""PyTorch twin of examples/char_rnn/train.lua: the same model
(bench/char_rnn_twin.py), split (first 90% of the bytes trains, ids over
the sorted bytes), batches (B contiguous streams read T bytes at a time,
the state carried across batches and reset when the streams wrap), Adam,
gradient clipping, learning-rate halving, and validation (a whole pass over
the validation streams from a fresh state). Prints the lines
"step N: train loss X, val loss Y, S s (M ms/step)" as the Lua script does.

--init_out FILE writes the initial weights as safetensors, so that
examples/char_rnn/train.lua --init FILE starts from the very same ones
(bench/char_rnn_compare.lua runs both this way).
Run it configured as ../shared/NOTES.md describes ("PyTorch at its best").
"""
import argparse
import os
import sys
import time

import torch
import torch.nn.functional as F

from char_rnn_twin import CharRNN

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "ref"))
import safetensors_interop  # noqa: E402  (json + struct writer, Debian has no safetensors)


def streams(ids, batch, seq):
    length = (len(ids) - 1) // batch
    x = ids[: batch * length].view(batch, length)
    y = ids[1: batch * length + 1].view(batch, length)
    state = {"pos": 0}

    def next_batch():
        wrapped = False
        if state["pos"] + seq > length:
            state["pos"], wrapped = 0, True
        p = state["pos"]
        state["pos"] += seq
        return x[:, p:p + seq], y[:, p:p + seq], wrapped

    return next_batch, (length - 1) // seq


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="../shared/data/tinyshakespeare/input.txt")
    for name, default in [("steps", 2000), ("batch", 32), ("seq_len", 100), ("hidden", 512),
                          ("layers", 2), ("embed", 128), ("decay_after", 1000),
                          ("eval_interval", 250), ("seed", 123)]:
        ap.add_argument("--" + name, type=int, default=default)
    for name, default in [("dropout", 0.0), ("lr", 2e-3), ("grad_clip", 5.0)]:
        ap.add_argument("--" + name, type=float, default=default)
    ap.add_argument("--init_out", default="")
    a = ap.parse_args()
    torch.manual_seed(a.seed)
    raw = open(a.data, "rb").read()
    vocab = sorted(set(raw))
    index = {b: i for i, b in enumerate(vocab)}
    ids = torch.tensor([index[b] for b in raw], dtype=torch.int64)
    n_train = int(0.9 * len(ids))
    train_ids, val_ids = ids[:n_train], ids[n_train:]
    print(f"data: {a.data}, {len(raw)} characters, vocabulary {len(vocab)}; "
          f"train {len(train_ids)}, val {len(val_ids)}")
    model = CharRNN(len(vocab), a.embed, a.hidden, a.layers, a.dropout)
    if a.init_out:
        safetensors_interop.write(a.init_out, {k: v.detach() for k, v in model.state_dict().items()}, {})
    opt = torch.optim.Adam(model.parameters(), lr=a.lr)
    next_train, _ = streams(train_ids, a.batch, a.seq_len)

    def validate():
        model.eval()
        next_val, chunks = streams(val_ids, a.batch, a.seq_len)
        total, state = 0.0, None
        with torch.no_grad():
            for _ in range(chunks):
                x, y, _ = next_val()
                logits, state = model(x, state)
                total += F.cross_entropy(logits.reshape(-1, len(vocab)), y.reshape(-1)).item()
        model.train()
        return total / chunks

    state, t0 = None, time.time()
    for step in range(1, a.steps + 1):
        if a.decay_after > 0 and step > a.decay_after and (step - a.decay_after - 1) % a.decay_after == 0:
            for g in opt.param_groups:
                g["lr"] /= 2
        x, y, wrapped = next_train()
        if wrapped:
            state = None
        logits, final = model(x, state)
        loss = F.cross_entropy(logits.reshape(-1, len(vocab)), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), a.grad_clip)
        opt.step()
        state = tuple(s.detach() for s in final)
        if step % a.eval_interval == 0 or step == a.steps:
            vl = validate()
            dt = time.time() - t0
            print(f"step {step}: train loss {loss.item():.4f}, val loss {vl:.4f}, {dt:.1f} s "
                  f"({dt / step * 1e3:.0f} ms/step)", flush=True)


if __name__ == "__main__":
    main()
