#!/usr/bin/python3
"""Reference values for nnlua's cross-modal layers (lua/nnlua/multimodal.lua),
from PyTorch 1.13 modules written here the way the papers define them, with
parameter names matching nnlua's.

Run by a developer (never by CI):  /usr/bin/python3 tests/ref/gen_multimodal.py
Writes tests/ref/multimodal.json, read by tests/multimodal_spec.lua (same
case layout as attention.json: state dict, inputs, output, gradients of
sum(output * proj) for inputs and parameters). A mask (B, M) marks present
modalities with 1.
"""
import json
import os

import torch
import torch.nn as tnn
import torch.nn.functional as F
import refvalues

torch.manual_seed(0)
cases = []


def module_case(name, module, inputs, call, **extra):
    refvalues.module_case(cases, name, module, inputs, call, **extra)


from mmref import (ConcatFusion, SumFusion, GatedFusion, BilinearFusion, FiLM,
                   CrossModalAttention, PatchEmbedding, ViT, ContrastiveLoss)


B = 4
x1, x2, x3 = torch.randn(B, 3), torch.randn(B, 5), torch.randn(B, 2)
mask = torch.tensor([[1.0, 0.0, 1.0], [1.0, 1.0, 1.0], [0.0, 1.0, 1.0], [1.0, 1.0, 0.0]])
mods = {"x1": x1, "x2": x2, "x3": x3}
dims = [3, 5, 2]


def three(m, x1, x2, x3):
    return m([x1, x2, x3])


def three_masked(m, x1, x2, x3):
    return m([x1, x2, x3], mask)


for name, mod in [("concat", ConcatFusion(dims, 4)), ("sum", SumFusion(dims, 4)),
                  ("gated", GatedFusion(dims, 4))]:
    module_case(name + "_fusion", mod, mods, three)
    module_case(name + "_fusion_masked", mod, mods, three_masked, mask=mask.tolist())
module_case("sum_fusion_shared", SumFusion([3, 3], 4, shared=True),
            {"x1": x1, "x2": torch.randn(B, 3)}, lambda m, x1, x2: m([x1, x2]))
mfb = BilinearFusion(3, 5, 4, 3)
module_case("bilinear_fusion", mfb, {"x1": x1, "x2": x2}, lambda m, x1, x2: m([x1, x2]))
module_case("bilinear_fusion_masked", mfb, {"x1": x1, "x2": x2},
            lambda m, x1, x2: m([x1, x2], mask[:, :2]), mask=mask[:, :2].tolist())
module_case("film_image", FiLM(5, 3, 1), {"x": torch.randn(B, 3, 2, 2), "cond": x2},
            lambda m, x, cond: m(x, cond), channel_dim=2)
module_case("film_tokens", FiLM(5, 6, 2), {"x": torch.randn(B, 3, 6), "cond": x2},
            lambda m, x, cond: m(x, cond), channel_dim=-1)
kpm = torch.tensor([[False, False, True], [False, False, False], [False, True, True],
                    [False, False, False]])
module_case("cross_modal_attention", CrossModalAttention(8, 6, 2),
            {"q": torch.randn(B, 5, 8), "c": torch.randn(B, 3, 6)},
            lambda m, q, c: m(q, c, kpm), key_padding_mask=kpm.long().tolist())
module_case("patch_embedding", PatchEmbedding(8, 4, 2, 6), {"x": torch.randn(2, 2, 8, 8)},
            lambda m, x: m(x))
module_case("vit", ViT(8, 4, 1, 8, 2, 2, 16, 3), {"x": torch.randn(3, 1, 8, 8)},
            lambda m, x: m(x))
module_case("contrastive_loss", ContrastiveLoss(0.07),
            {"a": torch.randn(6, 5), "b": torch.randn(6, 5)}, lambda m, a, b: m(a, b))

out = {"format": "nnlua-ref", "version": 1, "torch": torch.__version__, "cases": cases}
path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "multimodal.json")
with open(path, "w") as f:
    json.dump(out, f, separators=(",", ":"))
print(f"wrote {len(cases)} cases to {path}")
