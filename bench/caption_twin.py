#!/usr/bin/python3
"""PyTorch twin of examples/caption/train.lua.

The nnlua run with --export DIR writes what this needs, so the two runs
are of one recipe and differ only in the engine: every picture
(images.safetensors), the training captions' token ids, the batch and
translation of every step (plan.txt), the test rows, the initial weights
(init.safetensors, the same parameter names) and the settings
(config.json: AdamW with betas 0.9/0.98 and weight decay on the matrices but
the embedding and grid positions, linear warmup then cosine decay, label
smoothing, clipping at 1, beam size, length penalty, maximum length). The
model is examples/caption/captioner.lua: the CNN (Conv-BN-ReLU blocks, max
pooling, a 1x1 projection), learned grid positions, and bench/mt_twin.py's
pre-norm nn.Transformer with the tied embedding; decoding is mt_twin's
batched beam search with the same KV caching. The test captions go to
DIR/torch_test.ids; `nnlua examples/caption/score.lua --export DIR` scores
them with the same metric code as the nnlua run.

  OPENBLAS_CORETYPE=SkylakeX ATEN_CPU_CAPABILITY=avx512 \\
  GLIBC_TUNABLES=glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=17179869184 \\
  /usr/bin/python3 bench/caption_twin.py DIR
"""
import json
import math
import os
import sys
import time

import torch
import torch.nn as tnn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "ref"))
sys.path.insert(0, HERE)
import safetensors_interop  # noqa: E402
import mt_twin  # noqa: E402
from mt_twin import BOS, EOS, PAD  # noqa: E402


def block(cin, cout, stride):
    return [tnn.Conv2d(cin, cout, 3, stride, 1, bias=False), tnn.BatchNorm2d(cout), tnn.ReLU()]


class Captioner(mt_twin.Seq2Seq):
    def __init__(self, c):
        super().__init__(dict(c, max_len=c["max_len"] + 2))  # as captioner.lua passes to Seq2Seq
        w = c["width"]
        self.cnn = tnn.Sequential(*block(3, w, 2), *block(w, 2 * w, 1), tnn.MaxPool2d(2), *block(2 * w, 4 * w, 1),
                                  tnn.MaxPool2d(2), tnn.Conv2d(4 * w, self.d, 1))
        self.grid = (c["size"] // 8) ** 2
        self.grid_pos = tnn.Parameter(torch.zeros(1, self.grid, self.d))

    def encode(self, images):
        f = self.cnn(images)
        tokens = f.flatten(2).transpose(1, 2) + self.grid_pos
        mem = self.transformer.encoder(self.drop(tokens))
        return mem, torch.zeros(mem.shape[:2], dtype=torch.bool)


def pictures(images, rows, dy=0, dx=0):
    x = images[torch.tensor(rows)]
    if dy or dx:
        s, h, w = max(abs(dy), abs(dx)), x.size(2), x.size(3)
        x = F.pad(x, (s, s, s, s), value=1.0)[:, :, s - dy:s - dy + h, s - dx:s - dx + w].contiguous()
    return x


def decode(model, images, rows, c):
    model.eval()
    out = []
    with torch.no_grad():
        for s in range(0, len(rows), c["decode_batch"]):
            chunk = rows[s:s + c["decode_batch"]]
            mem, pad = model.encode(pictures(images, chunk))
            rep = torch.arange(len(chunk)).repeat_interleave(c["beam"])
            st = mt_twin.State(model, mem[rep], pad[rep])
            out += mt_twin.batch_beam_search(st, len(chunk), c["beam"], [c["max_len"]] * len(chunk),
                                             c["length_penalty"])
    model.train()
    return out


def lr_at(step, c):
    if step <= c["warmup"]:
        return c["lr"] * step / c["warmup"]
    t = (step - c["warmup"]) / max(1, c["steps"] - c["warmup"])
    return c["lr"] * 0.5 * (1 + math.cos(math.pi * t))


def main():
    d = sys.argv[1]
    c = json.load(open(os.path.join(d, "config.json")))
    torch.set_num_threads(c["threads"] if c.get("threads", 0) > 0 else os.cpu_count())
    torch.manual_seed(c["seed"])
    images = safetensors_interop.read(os.path.join(d, "images.safetensors"))[0]["images"].float()
    rows = [int(line) - 1 for line in open(os.path.join(d, "train.rows"))]
    ids = {}
    for line in open(os.path.join(d, "train.ids")):
        j, k, toks = line.rstrip("\n").split("\t")
        ids[(int(j), int(k))] = [int(w) - 1 for w in toks.split()]
    plan = []
    for line in open(os.path.join(d, "plan.txt")):
        f = line.split()
        plan.append((int(f[0]), int(f[1]), [tuple(int(v) for v in u.split(":")) for u in f[2:]]))
    tests = [int(line) - 1 for line in open(os.path.join(d, "test.rows"))]
    model = Captioner(c)
    init, _ = safetensors_interop.read(os.path.join(d, "init.safetensors"))
    init["pe"] = init.pop("pos.pe")
    model.load_state_dict(init)

    def decays(n, p):
        return p.dim() >= 2 and not n.startswith("embed") and n != "grid_pos"
    decay = [p for n, p in model.named_parameters() if decays(n, p)]
    no_decay = [p for n, p in model.named_parameters() if not decays(n, p)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": c["weight_decay"]},
                             {"params": no_decay, "weight_decay": 0.0}], lr=c["lr"], betas=(0.9, 0.98), eps=1e-9)
    t0 = time.perf_counter()
    for step in range(1, c["steps"] + 1):
        for g in opt.param_groups:
            g["lr"] = lr_at(step, c)
        dy, dx, units = plan[step - 1]
        x = pictures(images, [rows[j - 1] for j, _ in units], dy, dx)
        caps = [ids[u] for u in units]
        lt = max(len(t) for t in caps) + 1
        tin = mt_twin.pad_rows([[BOS] + t for t in caps], lt)
        tout = mt_twin.pad_rows([t + [EOS] for t in caps], lt)
        logits = model(x, tin)
        loss = F.cross_entropy(logits.view(-1, logits.size(-1)), tout.view(-1), ignore_index=PAD,
                               label_smoothing=c["smoothing"])
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step % 100 == 0 or step <= 3 or step == c["steps"]:
            print(f"step {step}  train loss {loss.item():.4f}  ({time.perf_counter() - t0:.0f} s)", flush=True)
    train_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    hyps = decode(model, images, tests, c)
    dec_s = time.perf_counter() - t1
    with open(os.path.join(d, "torch_test.ids"), "w") as f:
        for h in hyps:
            f.write(" ".join(str(i + 1) for i in h) + "\n")
    print(f"wall: training {train_s:.1f} s, test decoding {dec_s:.1f} s (beam {c['beam']}, {len(tests)} pictures)")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; captions in {d}/torch_test.ids")


if __name__ == "__main__":
    main()
