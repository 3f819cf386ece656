#!/usr/bin/python3
"""Reference values for nnlua's rearranging ops and resizing, from PyTorch.

Run by a developer (never by CI):  /usr/bin/python3 tests/ref/gen_rearrange.py
Writes tests/ref/rearrange.json, read by tests/rearrange_spec.lua: per case
the nnlua function, its Lua arguments (dims counted from 1), the input,
the output and the gradient of sum(output * proj).
"""
import json
import os

import torch
import torch.nn.functional as F
from refvalues import t

torch.manual_seed(0)
cases = []


def case(name, fn, args, shape, torch_fn):
    x = torch.randn(*shape, requires_grad=True)
    y = torch_fn(x)
    proj = torch.randn_like(y)
    (y * proj).sum().backward()
    cases.append(dict(name=name, fn=fn, args=args, x=t(x), output=t(y), proj=t(proj), grad=t(x.grad)))


case("pad_constant", "pad", [[1, 2], "constant", 0.5], (2, 3), lambda x: F.pad(x, (1, 2), value=0.5))
case("pad_constant_crop", "pad", [[-1, 2, 1, 0]], (2, 3, 4), lambda x: F.pad(x, (-1, 2, 1, 0)))
case("pad_reflect_2d", "pad", [[2, 1, 1, 2], "reflect"], (1, 2, 4, 5),
     lambda x: F.pad(x, (2, 1, 1, 2), mode="reflect"))
case("pad_reflect_1d", "pad", [[3, 2], "reflect"], (2, 3, 5), lambda x: F.pad(x, (3, 2), mode="reflect"))
case("pad_replicate_2d", "pad", [[1, 3, 2, 0], "replicate"], (2, 1, 3, 3),
     lambda x: F.pad(x, (1, 3, 2, 0), mode="replicate"))
case("pad_circular_2d", "pad", [[1, 2, 2, 1], "circular"], (1, 2, 3, 4),
     lambda x: F.pad(x, (1, 2, 2, 1), mode="circular"))
case("flip", "flip", [[1, 3]], (2, 3, 4), lambda x: torch.flip(x, (0, 2)))
case("flip_last", "flip", [-1], (3, 5), lambda x: torch.flip(x, (-1,)))
case("roll", "roll", [[1, -2], [1, 2]], (3, 4), lambda x: torch.roll(x, (1, -2), (0, 1)))
case("roll_flat", "roll", [5], (3, 4), lambda x: torch.roll(x, 5))
case("tile", "tile", [[2, 1, 3]], (2, 3), lambda x: x.repeat(2, 1, 3))
case("tile_short", "tile", [[2]], (2, 3), lambda x: torch.tile(x, (2,)))
case("repeat_interleave", "repeat_interleave", [2, 2], (2, 3), lambda x: torch.repeat_interleave(x, 2, 1))
case("repeat_interleave_tensor", "repeat_interleave", [{"i64": [1, 0, 3]}, 1], (3, 2),
     lambda x: torch.repeat_interleave(x, torch.tensor([1, 0, 3]), 0))
case("repeat_interleave_flat", "repeat_interleave", [2], (2, 2), lambda x: torch.repeat_interleave(x, 2))
case("unfold", "unfold", [2, 3, 2], (2, 7, 3), lambda x: x.unfold(1, 3, 2))
case("unfold_last", "unfold", [-1, 2, 1], (3, 4), lambda x: x.unfold(-1, 2, 1))
case("nearest_size", "interpolate", [{"size": [5, 7]}], (1, 2, 3, 4),
     lambda x: F.interpolate(x, size=(5, 7)))
case("nearest_scale", "interpolate", [{"scale_factor": 2}], (2, 1, 3, 3),
     lambda x: F.interpolate(x, scale_factor=2))
case("nearest_down", "interpolate", [{"size": [2, 3]}], (1, 1, 5, 7), lambda x: F.interpolate(x, size=(2, 3)))
case("bilinear", "interpolate", [{"size": [6, 5], "mode": "bilinear"}], (2, 2, 3, 4),
     lambda x: F.interpolate(x, size=(6, 5), mode="bilinear", align_corners=False))
case("bilinear_align", "interpolate", [{"size": [7, 3], "mode": "bilinear", "align_corners": True}],
     (1, 2, 4, 5), lambda x: F.interpolate(x, size=(7, 3), mode="bilinear", align_corners=True))
case("bilinear_scale", "interpolate", [{"scale_factor": 1.5, "mode": "bilinear"}], (1, 1, 4, 6),
     lambda x: F.interpolate(x, scale_factor=1.5, mode="bilinear", align_corners=False))
case("bilinear_down", "interpolate", [{"size": [2, 3], "mode": "bilinear"}], (1, 1, 5, 7),
     lambda x: F.interpolate(x, size=(2, 3), mode="bilinear", align_corners=False))
case("linear_1d", "interpolate", [{"size": [9], "mode": "linear"}], (2, 3, 4),
     lambda x: F.interpolate(x, size=9, mode="linear", align_corners=False))
case("nearest_1d", "interpolate", [{"scale_factor": 3}], (1, 2, 3), lambda x: F.interpolate(x, scale_factor=3))

path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "rearrange.json")
with open(path, "w") as f:
    json.dump({"format": "nnlua-ref", "version": 1, "torch": torch.__version__, "cases": cases}, f)
print(f"wrote {len(cases)} cases to {path}")
