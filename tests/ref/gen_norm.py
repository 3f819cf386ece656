#!/usr/bin/python3
"""Reference values for nnlua's normalisation layers with running
statistics, from PyTorch.

Run by a developer (never by CI):  /usr/bin/python3 tests/ref/gen_norm.py
Writes tests/ref/norm.json, read by tests/norm_spec.lua. Each case is a
layer built with the given options and a state dict (weight and bias
drawn at random), then a list of steps: a mode ('train' or 'eval'), the
input, the output, the gradients of sum(output * proj) for the input and
every parameter, and the state dict after the step (running statistics,
num_batches_tracked).
"""
import json
import os

import torch
from refvalues import t

torch.manual_seed(0)
cases = []


def state(module):
    return {k: (t(v) if v.dtype.is_floating_point else int(v)) for k, v in module.state_dict().items()}


def case(name, module, shapes, modes, **options):
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn_like(p))
    start = state(module)
    steps = []
    for shape, mode in zip(shapes, modes):
        module.train(mode == "train")
        module.zero_grad()
        x = (torch.randn(*shape) * 2 + 0.5).requires_grad_(True)
        out = module(x)
        proj = torch.randn_like(out)
        (out * proj).sum().backward()
        steps.append(dict(mode=mode, x=t(x), output=t(out), proj=t(proj), grad_x=t(x.grad),
                          param_grads={k: t(p.grad) for k, p in module.named_parameters()},
                          state=state(module)))
    cases.append(dict(name=name, layer=type(module).__name__, args=options.pop("args"),
                      options=options, start=start, steps=steps))


nn = torch.nn
three_train_then_eval = ["train", "train", "train", "eval"]
case("bn2d", nn.BatchNorm2d(3), [(4, 3, 5, 5)] * 4, three_train_then_eval, args=[3])
case("bn2d_momentum_none", nn.BatchNorm2d(2, momentum=None, eps=1e-3), [(3, 2, 4, 4)] * 4,
     three_train_then_eval, args=[2], momentum=False, eps=1e-3)
case("bn1d_nc", nn.BatchNorm1d(5), [(8, 5)] * 4, three_train_then_eval, args=[5])
case("bn1d_ncl", nn.BatchNorm1d(4, momentum=0.3), [(3, 4, 7)] * 4, three_train_then_eval,
     args=[4], momentum=0.3)
case("bn1d_no_affine", nn.BatchNorm1d(3, affine=False), [(6, 3)] * 2, ["train", "eval"],
     args=[3], affine=False)
case("bn2d_no_stats", nn.BatchNorm2d(3, track_running_stats=False), [(2, 3, 3, 3)] * 2,
     ["train", "eval"], args=[3], track_running_stats=False)
case("group_norm", nn.GroupNorm(2, 6), [(3, 6, 4, 5)], ["train"], args=[2, 6])
case("group_norm_1d", nn.GroupNorm(3, 3, eps=1e-4), [(4, 3, 6)], ["train"], args=[3, 3], eps=1e-4)
case("group_norm_no_affine", nn.GroupNorm(1, 4, affine=False), [(2, 4, 3, 3)], ["train"],
     args=[1, 4], affine=False)
case("instance_norm", nn.InstanceNorm2d(3, affine=True), [(2, 3, 5, 4)] * 2, ["train", "eval"],
     args=[3], affine=True)
case("instance_norm_stats", nn.InstanceNorm2d(2, track_running_stats=True), [(3, 2, 4, 4)] * 4,
     three_train_then_eval, args=[2], track_running_stats=True)

out = {"format": "nnlua-ref", "version": 1, "torch": torch.__version__, "cases": cases}
path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "norm.json")
with open(path, "w") as f:
    json.dump(out, f)
print(f"wrote {len(cases)} cases to {path}")
