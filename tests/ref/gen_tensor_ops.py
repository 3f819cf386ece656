#!/usr/bin/python3
"""Reference values for nnlua's value-dependent and scan tensor ops,
einsum, clamp with tensor bounds and EmbeddingBag, from PyTorch.

Run by a developer (never by CI):  /usr/bin/python3 tests/ref/gen_tensor_ops.py
Writes tests/ref/tensor_ops.json, read by tests/tensor_ops_spec.lua. Per
case: the nnlua function and its arguments (a float tensor {"f32": values,
"grad": true/false}, an index tensor {"i64": values} counted from 1 as Lua
does, or a plain value), the outputs (index outputs counted from 1) and,
when the first output is differentiable, the gradients of
sum(output * proj) for each argument marked grad.
"""
import json
import os

import torch
import torch.nn.functional as F
from refvalues import t

torch.manual_seed(0)
cases = []


def f32(x, grad=True):
    return {"f32": t(x), "grad": grad}


def i64(x, plus=1):
    return {"i64": (x + plus).tolist()}


def case(name, fn, args, torch_fn, outputs_are_index=()):
    leaves = []

    def convert(a):  # depth first, in argument order (the spec walks them alike)
        if isinstance(a, dict) and "f32" in a:
            v = torch.tensor(a["f32"], requires_grad=a["grad"])
            if a["grad"]:
                leaves.append(v)
            return v
        if isinstance(a, dict) and "i64" in a:
            return torch.tensor(a["i64"]) - 1
        if isinstance(a, dict):
            return {k: convert(a[k]) for k in sorted(a)}
        return a
    targs = [convert(a) for a in args]
    outs = torch_fn(*targs)
    if not isinstance(outs, tuple):
        outs = (outs,)
    entry = dict(name=name, fn=fn, args=args,
                 outputs=[(o + 1).tolist() if k in outputs_are_index else
                          (o.tolist() if not o.dtype.is_floating_point else t(o))
                          for k, o in enumerate(outs)])
    if leaves and outs[0].requires_grad:
        proj = torch.randn_like(outs[0])
        (outs[0] * proj).sum().backward()
        entry["proj"] = t(proj)
        entry["grads"] = [t(v.grad) for v in leaves]
    cases.append(entry)


x = torch.randn(3, 4)
mask = (torch.randn(3, 4) > 0).float()
case("masked_select", "masked_select", [f32(x), f32(mask, False)], lambda a, m: a[m.bool()])
rows = torch.tensor([1.0, 0.0, 1.0])
case("masked_select_rows", "masked_select", [f32(x), f32(rows, False)], lambda a, m: a[m.bool()])
case("masked_select_broadcast", "masked_select", [f32(x), f32(torch.tensor([1.0, 0.0, 0.0, 1.0]), False)],
     lambda a, m: torch.masked_select(a, m.bool()))
case("nonzero", "nonzero", [f32(torch.tensor([[0.0, 1.5], [2.0, 0.0], [0.0, 0.0]]), False)],
     lambda a: torch.nonzero(a), outputs_are_index=(0,))
ties = torch.tensor([[3.0, 1.0, 3.0, 2.0, 1.0], [0.5, 0.5, -1.0, 0.5, 2.0]])
case("argsort", "argsort", [f32(ties, False), 2], lambda a, d: torch.argsort(a, dim=1, stable=True),
     outputs_are_index=(0,))
case("argsort_descending", "argsort", [f32(ties, False), 2, True],
     lambda a, d, desc: torch.sort(a, dim=1, descending=True, stable=True)[1], outputs_are_index=(0,))
u = torch.tensor([[2.0, 1.0, 2.0], [3.0, 1.0, -1.0]])
case("unique", "unique", [f32(u, False), {"return_inverse": True, "return_counts": True}],
     lambda a, o: torch.unique(a, sorted=True, return_inverse=True, return_counts=True),
     outputs_are_index=(1,))
a, b = torch.randn(2, 3), torch.randn(3, 4)
case("einsum_matmul", "einsum", ["ij,jk->ik", f32(a), f32(b)], lambda e, p, q: torch.einsum(e, p, q))
q, k = torch.randn(2, 2, 3, 4), torch.randn(2, 2, 5, 4)
case("einsum_attention", "einsum", ["bhqd,bhkd->bhqk", f32(q), f32(k)], lambda e, p, r: torch.einsum(e, p, r))
case("einsum_batch_dot", "einsum", ["bi,bi->b", f32(a), f32(torch.randn(2, 3))],
     lambda e, p, r: torch.einsum(e, p, r))
case("einsum_outer_sum", "einsum", ["ij,k->jk", f32(a), f32(torch.randn(4))], lambda e, p, r: torch.einsum(e, p, r))
case("einsum_transpose_implicit", "einsum", ["ji", f32(a)], lambda e, p: torch.einsum(e, p))
case("einsum_ellipsis", "einsum", ["...ij,...jk->...ik", f32(torch.randn(2, 3, 2, 3)), f32(torch.randn(2, 3, 3, 2))],
     lambda e, p, r: torch.einsum(e, p, r))
z = torch.tensor([[1.5, -2.0, 0.0, 3.0, 0.5], [0.5, 2.0, -1.0, 0.0, 0.0], [1.2, 0.7, -0.4, 2.0, 1.1]])
case("cumprod_zeros", "cumprod", [f32(z), 2], lambda p, d: torch.cumprod(p, 1))
case("cumprod_dim1", "cumprod", [f32(torch.randn(3, 2)), 1], lambda p, d: torch.cumprod(p, 0))
case("logcumsumexp", "logcumsumexp", [f32(torch.randn(2, 6) * 5), 2], lambda p, d: torch.logcumsumexp(p, 1))
case("logcumsumexp_dim1", "logcumsumexp", [f32(torch.randn(4, 3)), 1], lambda p, d: torch.logcumsumexp(p, 0))
lo, hi = torch.randn(4) - 0.5, torch.randn(3, 1) + 0.5
case("clamp_tensors", "clamp", [f32(torch.randn(3, 4)), f32(lo), f32(hi)], lambda p, l, h: torch.clamp(p, l, h))
case("clamp_min_tensor", "clamp", [f32(torch.randn(3, 4)), f32(lo)], lambda p, l: torch.clamp(p, min=l))

W = torch.randn(10, 3)
idx = torch.tensor([2, 5, 5, 1, 9, 0, 3])
offsets = torch.tensor([0, 3, 3, 5])
for mode in ["sum", "mean", "max"]:
    case("embedding_bag_" + mode, "embedding_bag", [i64(idx), f32(W), i64(offsets), {"mode": mode}],
         lambda i, w, o, opt, mode=mode: F.embedding_bag(i, w, o, mode=mode))
psw = torch.randn(7)
case("embedding_bag_weighted", "embedding_bag",
     [i64(idx), f32(W), i64(offsets), {"mode": "sum", "per_sample_weights": f32(psw)}],
     lambda i, w, o, opt: F.embedding_bag(i, w, o, mode="sum", per_sample_weights=opt["per_sample_weights"]))
case("embedding_bag_2d_padding", "embedding_bag",
     [i64(torch.tensor([[1, 4, 2], [4, 4, 0]])), f32(W), None, {"mode": "mean", "padding_idx": 5}],
     lambda i, w, o, opt: F.embedding_bag(i, w, mode="mean", padding_idx=4))

path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tensor_ops.json")
with open(path, "w") as f:
    json.dump({"format": "nnlua-ref", "version": 1, "torch": torch.__version__, "cases": cases}, f)
print(f"wrote {len(cases)} cases to {path}")
