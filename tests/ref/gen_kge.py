#!/usr/bin/python3
"""Reference values for nnlua's knowledge-graph scores and losses, from
PyTorch 1.13, written the way the RotatE authors' code
(DeepGraphLearning/KnowledgeGraphEmbedding, model.py) computes them: gather
the embeddings, broadcast to (B, N, D), reduce.

Run by a developer (never by CI):  /usr/bin/python3 tests/ref/gen_kge.py
Writes tests/ref/kge.json, read by tests/kge_spec.lua. Indices are stored
1-based, as nnlua counts them.
"""
import json
import math
import os

import torch
import torch.nn.functional as F
from refvalues import t

torch.manual_seed(0)
cases = []
V, NR, K = 9, 4, 3  # entities, relations, rank (complex dims)


def score(model, E, R, anchor, rel, cand, head, gamma, p, phase):
    """scores (B, N): candidates replace the tail (head=False) or head"""
    a = E[anchor].unsqueeze(1)             # (B, 1, de)
    r = R[rel].unsqueeze(1)                # (B, 1, dr)
    c = E[cand] if cand.dim() == 2 else E[cand].unsqueeze(0)  # (B|1, N, de)
    h, tl = (c, a) if head else (a, c)
    if model == "transe":
        return gamma - torch.norm(h + r - tl, p=p, dim=2)
    if model == "distmult":
        return (h * r * tl).sum(2)
    if model == "complex":
        hr, hi = h.chunk(2, dim=2)
        rr, ri = r.chunk(2, dim=2)
        tr, ti = tl.chunk(2, dim=2)
        return (hr * rr * tr + hi * rr * ti + hr * ri * ti - hi * ri * tr).sum(2)
    # rotate
    hr, hi = h.chunk(2, dim=2)
    tr, ti = tl.chunk(2, dim=2)
    cr, ci = torch.cos(r * phase), torch.sin(r * phase)
    if head:  # h = t conj(r)
        xr = cr * tr + ci * ti - hr
        xi = cr * ti - ci * tr - hi
    else:
        xr = hr * cr - hi * ci - tr
        xi = hr * ci + hi * cr - ti
    return gamma - torch.stack([xr, xi]).norm(dim=0).sum(2)


def widths(model):
    if model in ("transe", "distmult"):
        return 2 * K, 2 * K
    return 2 * K, (2 * K if model == "complex" else K)


for model in ["transe", "distmult", "complex", "rotate"]:
    de, dr = widths(model)
    E, R = torch.randn(V, de) * 0.5, torch.randn(NR, dr) * 0.5
    anchor, rel = torch.tensor([0, 3, 8, 3]), torch.tensor([1, 0, 3, 1])
    for head in [False, True]:
        for shared in [False, True]:
            for p in ([1, 2] if model == "transe" else [1]):
                cand = torch.tensor([2, 5, 5, 0, 7]) if shared else torch.randint(0, V, (4, 5))
                Eg, Rg = E.clone().requires_grad_(), R.clone().requires_grad_()
                out = score(model, Eg, Rg, anchor, rel, cand, head, 6.0, p, 0.8)
                proj = torch.randn_like(out)
                (out * proj).sum().backward()
                cases.append(dict(
                    name=f"{model}_{'head' if head else 'tail'}_{'shared' if shared else 'per_query'}_p{p}",
                    model=model, head=head, p=p, gamma=6.0, phase=0.8,
                    E=t(E), R=t(R), anchor=(anchor + 1).tolist(), rel=(rel + 1).tolist(),
                    cand=(cand + 1).tolist(), output=t(out), proj=t(proj),
                    grad_E=t(Eg.grad), grad_R=t(Rg.grad)))

# losses over scores
pos, neg = torch.randn(4) * 3, torch.randn(4, 6) * 3


def loss_case(name, fn, **extra):
    pg, ng = pos.clone().requires_grad_(), neg.clone().requires_grad_()
    out = fn(pg, ng)
    out.backward()
    cases.append(dict(name=name, pos=t(pos), neg=t(neg), output=t(out), grad_pos=t(pg.grad),
                      grad_neg=t(ng.grad), **extra))


def self_adversarial(p, n, temperature, weights=None):
    w = F.softmax(n * temperature, dim=1).detach()
    if weights is None:
        weights = torch.ones_like(p)
    # the RotatE code's weighted means (subsampling weights)
    pos_term = (weights * F.logsigmoid(p)).sum() / weights.sum()
    neg_term = (weights * (w * F.logsigmoid(-n)).sum(1)).sum() / weights.sum()
    return -(pos_term + neg_term) / 2


loss_case("self_adversarial", lambda p, n: self_adversarial(p, n, 0.5), temperature=0.5)
weights = torch.tensor([1.0, 0.5, 0.25, 2.0])
loss_case("self_adversarial_weighted", lambda p, n: self_adversarial(p, n, 0.5, weights),
          temperature=0.5, weights=t(weights))
loss_case("uniform_negative", lambda p, n: -(F.logsigmoid(p).mean() + F.logsigmoid(-n).mean(1).mean()) / 2)
loss_case("margin_ranking", lambda p, n: (n - p.unsqueeze(1) + 2.0).clamp(min=0).mean(), margin=2.0)

out = {"format": "nnlua-ref", "version": 1, "torch": torch.__version__, "cases": cases}
path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "kge.json")
with open(path, "w") as f:
    json.dump(out, f, separators=(",", ":"))
print(f"wrote {len(cases)} cases to {path}")
