#!/usr/bin/python3
"""Reference values for nnlua's convolution family, from PyTorch.

Run by a developer (never by CI):  /usr/bin/python3 tests/ref/gen_conv.py
Writes tests/ref/conv.json, read by tests/conv_family_spec.lua: per case a
layer (Conv1d, Conv2d with groups and depthwise, ConvTranspose2d), its
constructor arguments and options, state dict, input, output and the
gradients of sum(output * proj) for the input and every parameter.
"""
import json
import os

import torch
import torch.nn as tnn
from refvalues import t

torch.manual_seed(0)
cases = []


def case(name, layer, args, options, module, shape):
    x = torch.randn(*shape, requires_grad=True)
    y = module(x)
    proj = torch.randn_like(y)
    (y * proj).sum().backward()
    cases.append(dict(name=name, layer=layer, args=args, options=options,
                      state={k: t(v) for k, v in module.state_dict().items()}, x=t(x), output=t(y),
                      proj=t(proj), grad_x=t(x.grad),
                      param_grads={k: t(p.grad) for k, p in module.named_parameters()}))


case("conv1d", "Conv1d", [3, 4, 3], {}, tnn.Conv1d(3, 4, 3), (2, 3, 9))
case("conv1d_stride_pad_dilation", "Conv1d", [4, 6, 3], {"stride": 2, "padding": 2, "dilation": 2},
     tnn.Conv1d(4, 6, 3, stride=2, padding=2, dilation=2), (2, 4, 11))
case("conv1d_groups_no_bias", "Conv1d", [4, 6, 5], {"groups": 2, "bias": False, "padding": 1},
     tnn.Conv1d(4, 6, 5, groups=2, bias=False, padding=1), (3, 4, 8))
case("conv1d_depthwise", "Conv1d", [3, 3, 3], {"groups": 3, "padding": 1},
     tnn.Conv1d(3, 3, 3, groups=3, padding=1), (2, 3, 7))
case("conv2d_groups", "Conv2d", [4, 6, 3], {"groups": 2, "padding": 1},
     tnn.Conv2d(4, 6, 3, groups=2, padding=1), (2, 4, 6, 5))
case("conv2d_depthwise", "Conv2d", [5, 5, 3], {"groups": 5, "padding": 1},
     tnn.Conv2d(5, 5, 3, groups=5, padding=1), (2, 5, 7, 6))
case("conv2d_depthwise_multiplier_stride", "Conv2d", [3, 6, [3, 2]],
     {"groups": 3, "stride": 2, "padding": [1, 0], "dilation": [1, 2]},
     tnn.Conv2d(3, 6, (3, 2), groups=3, stride=2, padding=(1, 0), dilation=(1, 2)), (2, 3, 9, 8))
case("conv_transpose2d", "ConvTranspose2d", [3, 4, 3], {}, tnn.ConvTranspose2d(3, 4, 3), (2, 3, 4, 5))
case("conv_transpose2d_stride_output_padding", "ConvTranspose2d", [4, 2, 3],
     {"stride": 2, "padding": 1, "output_padding": 1},
     tnn.ConvTranspose2d(4, 2, 3, stride=2, padding=1, output_padding=1), (2, 4, 5, 4))
case("conv_transpose2d_groups_dilation", "ConvTranspose2d", [4, 6, [2, 3]],
     {"groups": 2, "dilation": 2, "bias": False, "stride": [1, 2]},
     tnn.ConvTranspose2d(4, 6, (2, 3), groups=2, dilation=2, bias=False, stride=(1, 2)), (1, 4, 3, 4))

path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "conv.json")
with open(path, "w") as f:
    json.dump({"format": "nnlua-ref", "version": 1, "torch": torch.__version__, "cases": cases}, f)
print(f"wrote {len(cases)} cases to {path}")
