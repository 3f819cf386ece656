#!/usr/bin/python3
"""Reference values for nnlua's attention and Transformer layers, from
PyTorch 1.13 (torch.nn.MultiheadAttention, nn.TransformerEncoderLayer,
nn.TransformerDecoderLayer, and a hand-written RoPE and attention).

Run by a developer (never by CI):  /usr/bin/python3 tests/ref/gen_attention.py
Writes tests/ref/attention.json, read by tests/transformer_spec.lua: each
case holds the module's state dict, its inputs, the output and the
gradients (of sum(output * proj)) of the inputs and of every parameter.
Dropout is off.
"""
import json
import math
import os

import torch
import torch.nn as tnn
import refvalues

torch.manual_seed(0)
cases = []


def module_case(name, module, inputs, call, **extra):
    refvalues.module_case(cases, name, module, inputs, call, **extra)


E, H = 8, 2
x, mem = torch.randn(2, 5, E), torch.randn(2, 4, E)
kpm = torch.tensor([[False, False, False, True], [False, False, False, False]])
causal = torch.triu(torch.full((5, 5), float("-inf")), 1)

mha = tnn.MultiheadAttention(E, H, batch_first=True)
module_case("mha_self", mha, {"x": x},
            lambda m, x: m(x, x, x, need_weights=False)[0])
module_case("mha_causal", mha, {"x": x},
            lambda m, x: m(x, x, x, attn_mask=causal, need_weights=False)[0])
module_case("mha_cross_padding", mha, {"x": x, "mem": mem},
            lambda m, x, mem: m(x, mem, mem, key_padding_mask=kpm, need_weights=False)[0],
            key_padding_mask=kpm.long().tolist())
module_case("mha_weights", mha, {"x": x, "mem": mem},
            lambda m, x, mem: m(x, mem, mem, need_weights=True)[1])
mha_kv = tnn.MultiheadAttention(E, H, batch_first=True, kdim=6, vdim=3)
module_case("mha_kdim_vdim", mha_kv, {"x": x, "k": torch.randn(2, 4, 6), "v": torch.randn(2, 4, 3)},
            lambda m, x, k, v: m(x, k, v, need_weights=False)[0])

for norm_first in [False, True]:
    enc = tnn.TransformerEncoderLayer(E, H, dim_feedforward=16, dropout=0.0, activation="gelu",
                                      batch_first=True, norm_first=norm_first)
    module_case("encoder_layer_" + ("pre" if norm_first else "post"), enc, {"x": x},
                lambda m, x: m(x, src_mask=causal), norm_first=norm_first)
    dec = tnn.TransformerDecoderLayer(E, H, dim_feedforward=16, dropout=0.0, activation="relu",
                                      batch_first=True, norm_first=norm_first)
    module_case("decoder_layer_" + ("pre" if norm_first else "post"), dec, {"x": x, "mem": mem},
                lambda m, x, mem: m(x, mem, tgt_mask=causal, memory_key_padding_mask=kpm),
                norm_first=norm_first, key_padding_mask=kpm.long().tolist())


# RoPE, half-split layout, by hand
def rope(x, base=10000.0, offset=0):
    d = x.shape[-1]
    half = d // 2
    inv = torch.exp(torch.arange(half).float() * (-2 * math.log(base) / d))
    ang = torch.arange(offset, offset + x.shape[-2]).float()[:, None] * inv
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat([x1 * ang.cos() - x2 * ang.sin(), x1 * ang.sin() + x2 * ang.cos()], -1)


class Rope(tnn.Module):
    def forward(self, x):
        return rope(x, offset=3)


module_case("rope", Rope(), {"x": torch.randn(2, 2, 5, 6)}, lambda m, x: m(x))

out = {"format": "nnlua-ref", "version": 1, "torch": torch.__version__, "cases": cases}
path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "attention.json")
with open(path, "w") as f:
    json.dump(out, f, separators=(",", ":"))
print(f"wrote {len(cases)} cases to {path}")
