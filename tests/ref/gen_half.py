#!/usr/bin/python3
"""bf16, f16 and f64 tensors written by PyTorch 1.13, for tests/half_spec.lua.

Run by a developer (never by CI):  /usr/bin/python3 tests/ref/gen_half.py
Writes tests/ref/half.safetensors (json and struct by hand: Debian 12 has
no python3-safetensors; numpy has no bf16, so its bits go out as int16):
  linear.weight, linear.bias  BF16: a torch Linear(8, 5) converted with .bfloat16()
  x                           BF16 (3, 8)
  y                           BF16: torch's linear(x, weight, bias) in bf16
  h                           F16: edge values (max, a subnormal, -0, inf, 1/3)
  d                           F64: doubles, read by nnlua as f32
The metadata holds h's and d's values as JSON, and y computed in f32 from
the same bf16 inputs.
"""
import json
import os
import struct

import torch

NAMES = {torch.bfloat16: "BF16", torch.float16: "F16", torch.float64: "F64",
         torch.float32: "F32"}


def raw(t):
    t = t.contiguous()
    if t.dtype in (torch.bfloat16, torch.float16):
        t = t.view(torch.int16)
    return t.numpy().tobytes()


def write(path, tensors, metadata):
    header, data, offset = {}, b"", 0
    for name, t in tensors.items():
        b = raw(t)
        header[name] = {"dtype": NAMES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(b)]}
        data += b
        offset += len(b)
    header["__metadata__"] = metadata
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + data)


torch.manual_seed(0)
lin = torch.nn.Linear(8, 5).bfloat16()
x = torch.randn(3, 8).bfloat16()
y = torch.nn.functional.linear(x, lin.weight, lin.bias)
y32 = torch.nn.functional.linear(x.float(), lin.weight.float(), lin.bias.float())
h = torch.tensor([65504.0, 6e-8, -0.0, float("inf"), 1 / 3, -2.5, 1e-5], dtype=torch.float16)
d = torch.tensor([1 / 3, -1e-40, 3.0e38, 2.0 ** -20, 1e300], dtype=torch.float64)
meta = {"h": json.dumps([str(float(v)) for v in h.float()]),  # as strings: JSON has no inf
        "d": json.dumps([str(float(v)) for v in d.float()]),
        "y32": json.dumps(y32.tolist())}
path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "half.safetensors")
write(path, {"linear.weight": lin.weight.detach(), "linear.bias": lin.bias.detach(), "x": x,
             "y": y.detach(), "h": h, "d": d}, meta)
print("wrote", path)
