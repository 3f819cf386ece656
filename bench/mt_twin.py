#!/usr/bin/python3
"""PyTorch twin of examples/mt/train.lua and examples/summarize/train.lua.

The nnlua run with --export DIR writes what this needs, so the two runs are
of the same recipe and differ only in the engine: the token ids of the
training pairs and test sources (the same BPE), the batch of every step
(plan.txt), the initial weights (init.safetensors) and the settings
(config.json: model size, AdamW with betas 0.9/0.98 and weight decay 0.01 on
the matrices but the embedding, linear warmup then inverse-square-root
decay, label smoothing, gradient clipping at 1, beam size, length penalty,
maximum lengths). The model is torch.nn.Transformer(norm_first=True,
batch_first=True) between one tied embedding scaled by sqrt(d_model) with
sinusoidal positions, as examples/mt/model.lua. Decoding is the same
batched beam search (nnlua's generate.batch_beam_search, written again in
Python) with the same KV caching: each decoder layer's self-attention keys
and values grow by one token a step, the memory's keys and values are
projected once. The test hypotheses go to DIR/torch_test.ids, token ids a
line; `nnlua examples/mt/score.lua --export DIR` scores them with the same
metric code as the nnlua run.

  OPENBLAS_CORETYPE=SkylakeX ATEN_CPU_CAPABILITY=avx512 \\
  GLIBC_TUNABLES=glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=17179869184 \\
  /usr/bin/python3 bench/mt_twin.py DIR
"""
import json
import math
import os
import sys
import time

import torch
import torch.nn as tnn
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "ref"))
import safetensors_interop  # noqa: E402

PAD, BOS, EOS = 0, 1, 2  # nnlua's 1, 2, 3 (ids here are nnlua's minus one)


def read_ids(path):
    return [[int(w) - 1 for w in line.split()] for line in open(path)]


class Seq2Seq(tnn.Module):
    def __init__(self, c):
        super().__init__()
        self.d = c["d_model"]
        self.embed = tnn.Embedding(c["vocab"], self.d, padding_idx=PAD)
        self.drop = tnn.Dropout(c["dropout"])
        self.transformer = tnn.Transformer(self.d, c["heads"], c["layers"], c["layers"], c["ff"],
                                           c["dropout"], batch_first=True, norm_first=True)
        n = c["max_len"] + 2
        pos = torch.arange(n, dtype=torch.float32).unsqueeze(1)
        div = torch.exp(torch.arange(0, self.d, 2, dtype=torch.float32) * (-math.log(10000.0) / self.d))
        pe = torch.zeros(n, self.d)
        pe[:, 0::2] = torch.sin(pos * div)
        pe[:, 1::2] = torch.cos(pos * div)
        self.register_buffer("pe", pe)

    def embed_tokens(self, ids, offset=0):
        x = self.embed(ids) * math.sqrt(self.d) + self.pe[offset:offset + ids.size(1)]
        return self.drop(x)

    def encode(self, src):
        pad = src.eq(PAD)
        return self.transformer.encoder(self.embed_tokens(src), src_key_padding_mask=pad), pad

    def forward(self, src, tgt):
        mem, pad = self.encode(src)
        t = tgt.size(1)
        causal = torch.triu(torch.full((t, t), float("-inf")), 1)
        h = self.transformer.decoder(self.embed_tokens(tgt), mem, tgt_mask=causal,
                                     tgt_key_padding_mask=tgt.eq(PAD), memory_key_padding_mask=pad)
        return h @ self.embed.weight.t()


# ---- incremental decoding with caches ------------------------------------------------

def heads(x, h):
    b, t, e = x.shape
    return x.view(b, t, h, e // h).transpose(1, 2)


def attend(q, k, v, mask):
    s = q @ k.transpose(-1, -2) / math.sqrt(q.size(-1))
    if mask is not None:
        s = s + mask
    return torch.softmax(s, -1) @ v


class State:
    def __init__(self, model, mem, pad):
        self.model, self.offset, self.h = model, 0, model.transformer.decoder.layers[0].self_attn.num_heads
        self.k, self.v = [None] * len(model.transformer.decoder.layers), [None] * len(model.transformer.decoder.layers)
        self.mk, self.mv = [], []
        e = model.d
        for layer in model.transformer.decoder.layers:
            w, b = layer.multihead_attn.in_proj_weight, layer.multihead_attn.in_proj_bias
            self.mk.append(heads(F.linear(mem, w[e:2 * e], b[e:2 * e]), self.h))
            self.mv.append(heads(F.linear(mem, w[2 * e:], b[2 * e:]), self.h))
        self.mask = torch.zeros(pad.shape, dtype=torch.float32).masked_fill(pad, float("-inf"))[:, None, None, :]

    def reorder(self, idx, same_items):
        for i in range(len(self.k)):
            self.k[i], self.v[i] = self.k[i][idx], self.v[i][idx]
        if same_items:  # the memory is alike for the beams of one item
            return
        for i in range(len(self.k)):
            self.mk[i], self.mv[i] = self.mk[i][idx], self.mv[i][idx]
        self.mask = self.mask[idx]

    def step(self, tokens):
        m, e = self.model, self.model.d
        x = m.embed_tokens(tokens, self.offset)
        for i, layer in enumerate(m.transformer.decoder.layers):
            sa = layer.self_attn
            q, k, v = F.linear(layer.norm1(x), sa.in_proj_weight, sa.in_proj_bias).chunk(3, -1)
            k, v = heads(k, self.h), heads(v, self.h)
            self.k[i] = k if self.k[i] is None else torch.cat([self.k[i], k], 2)
            self.v[i] = v if self.v[i] is None else torch.cat([self.v[i], v], 2)
            a = attend(heads(q, self.h), self.k[i], self.v[i], None)
            x = x + sa.out_proj(a.transpose(1, 2).reshape(x.shape))
            ca = layer.multihead_attn
            q = F.linear(layer.norm2(x), ca.in_proj_weight[:e], ca.in_proj_bias[:e])
            a = attend(heads(q, self.h), self.mk[i], self.mv[i], self.mask)
            x = x + ca.out_proj(a.transpose(1, 2).reshape(x.shape))
            x = x + layer.linear2(layer.activation(layer.linear1(layer.norm3(x))))
        x = m.transformer.decoder.norm(x)
        self.offset += 1
        return torch.log_softmax(x[:, 0] @ m.embed.weight.t(), -1)


def batch_beam_search(state, n, k, max_len, lp):
    """nnlua's generate.batch_beam_search, line for line"""
    live = list(range(n))
    hist = [[[] for _ in range(k)] for _ in range(n)]
    finished = [[] for _ in range(n)]
    best = [None] * n
    scores = torch.tensor([0.0 if j == 0 else float("-inf") for _ in range(n) for j in range(k)])
    tokens = torch.full((n * k, 1), BOS, dtype=torch.long)
    t = 0
    while live:
        t += 1
        logp = state.step(tokens)
        v = logp.size(1)
        total = (logp + scores.view(-1, 1)).view(len(live), k * v)
        vals, idx = total.topk(min(2 * k, k * v), 1)
        vals, idx = vals.tolist(), idx.tolist()
        keep, nscores, ntok, nlive, before = [], [], [], [], len(live)
        for b, item in enumerate(live):
            m, fin, new = max_len[item], finished[item], []
            for c in range(len(vals[b])):
                val = vals[b][c]
                if val == float("-inf"):
                    break
                frm, tok = idx[b][c] // v, idx[b][c] % v
                if tok == EOS:
                    if c < k:
                        fin.append((hist[item][frm], val / t ** lp))
                elif len(new) < k:
                    new.append((frm, tok, val))
            if len(fin) < k and t >= m:
                for e in new:
                    fin.append((hist[item][e[0]] + [e[1]], e[2] / t ** lp))
            if len(fin) >= k or t >= m or not new:
                top, ts = [], float("-inf")
                for f in fin:
                    if f[1] > ts:
                        top, ts = f[0], f[1]
                best[item] = top
            else:
                h = []
                for e in new:
                    h.append(hist[item][e[0]] + [e[1]])
                    keep.append(b * k + e[0])
                    nscores.append(e[2])
                    ntok.append(e[1])
                for _ in range(len(new), k):
                    h.append(h[0])
                    keep.append(b * k + new[0][0])
                    nscores.append(float("-inf"))
                    ntok.append(new[0][1])
                hist[item] = h
                nlive.append(item)
        live = nlive
        if not live:
            break
        state.reorder(torch.tensor(keep), len(live) == before)
        scores = torch.tensor(nscores)
        tokens = torch.tensor(ntok).view(-1, 1)
    return best


def pad_rows(rows, width):
    return torch.tensor([r + [PAD] * (width - len(r)) for r in rows], dtype=torch.long)


def decode(model, sources, c, beam):
    model.eval()
    order = sorted(range(len(sources)), key=lambda i: (len(sources[i]), i))
    out = [None] * len(sources)
    with torch.no_grad():
        for s in range(0, len(order), c["decode_batch"]):
            chunk = order[s:s + c["decode_batch"]]
            rows = [sources[i] for i in chunk]
            src = pad_rows(rows, max(len(r) for r in rows))
            mem, pad = model.encode(src)
            rep = torch.arange(len(rows)).repeat_interleave(beam)
            st = State(model, mem[rep], pad[rep])
            max_len = [math.floor(c["len_a"] + c["len_b"] * len(r)) for r in rows]
            hyps = batch_beam_search(st, len(rows), beam, max_len, c["length_penalty"])
            for j, i in enumerate(chunk):
                out[i] = hyps[j]
    model.train()
    return out


def main():
    d = sys.argv[1]
    c = json.load(open(os.path.join(d, "config.json")))
    # Debian's PyTorch starts with one thread unless OMP_NUM_THREADS says
    # otherwise; nnlua's --threads 0 means every core, so the same here
    torch.set_num_threads(c["threads"] if c.get("threads", 0) > 0 else os.cpu_count())
    torch.manual_seed(c["seed"])
    src, tgt = read_ids(os.path.join(d, "train.src")), read_ids(os.path.join(d, "train.tgt"))
    plan = read_ids(os.path.join(d, "plan.txt"))  # pair indices minus one
    tests = read_ids(os.path.join(d, "test.src"))
    model = Seq2Seq(c)
    init, _ = safetensors_interop.read(os.path.join(d, "init.safetensors"))
    init["pe"] = init.pop("pos.pe")
    model.load_state_dict(init)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2 and not n.startswith("embed")]
    no_decay = [p for n, p in model.named_parameters() if not (p.dim() >= 2 and not n.startswith("embed"))]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=c["lr"], betas=(0.9, 0.98), eps=1e-9)
    t0 = time.perf_counter()
    for step in range(1, c["steps"] + 1):
        lr = c["lr"] * step / c["warmup"] if step <= c["warmup"] else c["lr"] * math.sqrt(c["warmup"] / step)
        for g in opt.param_groups:
            g["lr"] = lr
        idx = plan[step - 1]
        s = pad_rows([src[i] for i in idx], max(len(src[i]) for i in idx))
        lt = max(len(tgt[i]) for i in idx) + 1
        tin = pad_rows([[BOS] + tgt[i] for i in idx], lt)
        tout = pad_rows([tgt[i] + [EOS] for i in idx], lt)
        logits = model(s, tin)
        loss = F.cross_entropy(logits.view(-1, logits.size(-1)), tout.view(-1), ignore_index=PAD,
                               label_smoothing=c["smoothing"])
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step % 100 == 0 or step == c["steps"]:
            print(f"step {step}  train loss {loss.item():.4f}  ({time.perf_counter() - t0:.0f} s)", flush=True)
    train_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    hyps = decode(model, tests, c, c["beam"])
    dec_s = time.perf_counter() - t1
    with open(os.path.join(d, "torch_test.ids"), "w") as f:
        for h in hyps:
            f.write(" ".join(str(i + 1) for i in h) + "\n")
    print(f"wall: training {train_s:.1f} s, test decoding {dec_s:.1f} s (beam {c['beam']}, {len(tests)} items)")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; hypotheses in {d}/torch_test.ids")


if __name__ == "__main__":
    main()
