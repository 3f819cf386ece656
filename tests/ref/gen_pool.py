#!/usr/bin/python3
"""Reference values for nnlua's adaptive pooling, from PyTorch.

Run by a developer (never by CI):  /usr/bin/python3 tests/ref/gen_pool.py
Writes tests/ref/pool.json, read by tests/adaptive_pool_spec.lua: per case
the input, the output size, the output, the gradient of sum(output * proj)
and, for max pooling, the indices (counted from 1, as nnlua counts).
"""
import json
import os

import torch
import torch.nn.functional as F
from refvalues import t

torch.manual_seed(0)
cases = []
for kind, shape, size in [("avg", (2, 3, 7, 5), (3, 2)), ("avg", (1, 2, 6, 6), (3, 3)),
                          ("avg", (2, 4, 5, 9), (1, 1)), ("avg", (3, 5, 4), (5, 3)),
                          ("max", (2, 3, 7, 5), (3, 2)), ("max", (1, 2, 8, 8), (2, 2)),
                          ("max", (2, 2, 5, 7), (4, 6)), ("max", (3, 6, 5), (1, 2))]:
    x = torch.randn(*shape, requires_grad=True)
    if kind == "avg":
        y, idx = F.adaptive_avg_pool2d(x, size), None
    else:
        y, idx = F.adaptive_max_pool2d(x, size, return_indices=True)
    proj = torch.randn_like(y)
    (y * proj).sum().backward()
    case = dict(kind=kind, size=list(size), x=t(x), output=t(y), proj=t(proj), grad=t(x.grad))
    if idx is not None:
        case["indices"] = (idx + 1).tolist()
    cases.append(case)

# windowed pooling with ceil_mode (and max's indices)
windowed = []
for kind, shape, k, stride, pad in [("max", (2, 2, 7, 6), 3, 2, 1), ("max", (1, 3, 5, 5), 2, 2, 0),
                                    ("avg", (2, 2, 7, 6), 3, 2, 1), ("avg", (1, 2, 5, 8), 2, 3, 0)]:
    x = torch.randn(*shape, requires_grad=True)
    if kind == "max":
        y, idx = F.max_pool2d(x, k, stride, pad, ceil_mode=True, return_indices=True)
    else:
        y, idx = F.avg_pool2d(x, k, stride, pad, ceil_mode=True), None
    proj = torch.randn_like(y)
    (y * proj).sum().backward()
    case = dict(kind=kind, kernel=k, stride=stride, padding=pad, x=t(x), output=t(y), proj=t(proj),
                grad=t(x.grad))
    if idx is not None:
        case["indices"] = (idx + 1).tolist()
    windowed.append(case)

path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pool.json")
with open(path, "w") as f:
    json.dump({"format": "nnlua-ref", "version": 1, "torch": torch.__version__, "cases": cases, "windowed": windowed}, f)
print(f"wrote {len(cases)} cases to {path}")
