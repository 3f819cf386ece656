#!/usr/bin/python3
"""Reference values for nnlua's activations, from PyTorch.

Run by a developer (never by CI):  /usr/bin/python3 tests/ref/gen_act.py
Writes tests/ref/act.json, read by tests/activation_spec.lua: per case the
layer and its arguments, the input, the weight (PReLU), the output and the
gradients of sum(output * proj).
"""
import json
import os

import torch
import torch.nn as tnn
from refvalues import t

torch.manual_seed(0)
cases = []


def case(layer, args, module, shape):
    x = (torch.randn(*shape) * 3).requires_grad_(True)
    y = module(x)
    proj = torch.randn_like(y)
    (y * proj).sum().backward()
    entry = dict(layer=layer, args=args, x=t(x), output=t(y), proj=t(proj), grad=t(x.grad))
    if isinstance(module, tnn.PReLU):
        entry["weight"] = t(module.weight)
        entry["weight_grad"] = t(module.weight.grad)
    cases.append(entry)


case("ELU", [], tnn.ELU(), (4, 5))
case("ELU", [0.5], tnn.ELU(0.5), (4, 5))
case("Softplus", [], tnn.Softplus(), (4, 5))
case("Softplus", [2, 3], tnn.Softplus(2, 3), (4, 5))
case("Mish", [], tnn.Mish(), (4, 5))
case("Hardswish", [], tnn.Hardswish(), (4, 5))
case("Hardsigmoid", [], tnn.Hardsigmoid(), (4, 5))
p = tnn.PReLU()
case("PReLU", [], p, (3, 4))
p3 = tnn.PReLU(3, 0.1)
with torch.no_grad():
    p3.weight.copy_(torch.tensor([0.1, -0.2, 0.3]))
case("PReLU", [3, 0.1], p3, (2, 3, 4))
case("GLU", [], tnn.GLU(), (3, 6))
case("GLU", [2], tnn.GLU(1), (2, 4, 3))

path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "act.json")
with open(path, "w") as f:
    json.dump({"format": "nnlua-ref", "version": 1, "torch": torch.__version__, "cases": cases}, f)
print(f"wrote {len(cases)} cases to {path}")
