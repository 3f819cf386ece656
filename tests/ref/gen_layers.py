#!/usr/bin/python3
"""Reference values for nnlua's layers, losses and optimizers, from PyTorch.

Run by a developer (never by CI):  /usr/bin/python3 tests/ref/gen_layers.py
Writes tests/ref/layers.json, read by tests/reference_spec.lua. Each case
holds its inputs, the output, and the gradients of sum(output * proj) with
respect to every input that requires grad (proj is stored too). Class
indices are stored 1-based, as nnlua counts them.
"""
import json
import os

import torch
import torch.nn.functional as F
from refvalues import t

torch.manual_seed(0)
cases = []


def case(name, fn, inputs, consts=None, **extra):
    """inputs: name -> float tensor needing grad; consts: name -> value"""
    leaves = {k: v.clone().requires_grad_(True) for k, v in inputs.items()}
    out = fn(**leaves, **(consts or {}))
    proj = torch.randn_like(out)
    (out * proj).sum().backward()
    entry = {
        "name": name,
        "inputs": {k: t(v) for k, v in inputs.items()},
        "output": t(out),
        "proj": t(proj),
        "grads": {k: t(v.grad) for k, v in leaves.items()},
    }
    entry.update(extra)
    cases.append(entry)


def rnd(*shape):
    return torch.randn(*shape)


# ---- layers ---------------------------------------------------------------
case("linear", lambda x, w, b: F.linear(x, w, b), {"x": rnd(2, 3, 4), "w": rnd(5, 4), "b": rnd(5)})
case("linear_nobias", lambda x, w: F.linear(x, w), {"x": rnd(3, 4), "w": rnd(2, 4)})
case("layer_norm", lambda x, w, b: F.layer_norm(x, (4,), w, b, 1e-5),
     {"x": rnd(2, 3, 4) * 3 + 1, "w": rnd(4), "b": rnd(4)})
case("layer_norm_2d", lambda x, w, b: F.layer_norm(x, (3, 4), w, b, 1e-5),
     {"x": rnd(2, 3, 4), "w": rnd(3, 4), "b": rnd(3, 4)})
case("rms_norm", lambda x, w: x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * w,
     {"x": rnd(3, 5), "w": rnd(5)})
idx = torch.tensor([[0, 2, 4], [4, 1, 0]])
case("embedding", lambda w, idx: F.embedding(idx, w, padding_idx=4),
     {"w": rnd(5, 3)}, {"idx": idx}, idx=(idx + 1).tolist(), padding_idx=5)
case("conv2d", lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1),
     {"x": rnd(2, 3, 6, 7), "w": rnd(4, 3, 3, 3), "b": rnd(4)}, stride=2, padding=1, dilation=1)
case("conv2d_dilated", lambda x, w: F.conv2d(x, w, None, stride=1, padding=2, dilation=2),
     {"x": rnd(1, 2, 5, 5), "w": rnd(3, 2, 3, 2)}, stride=1, padding=2, dilation=2)
case("max_pool2d", lambda x: F.max_pool2d(x, 2, 2), {"x": rnd(2, 3, 6, 5)}, kernel=2, stride=2, padding=0)
case("avg_pool2d", lambda x: F.avg_pool2d(x, 3, 2, 1), {"x": rnd(2, 2, 7, 7)}, kernel=3, stride=2, padding=1)
case("gelu", lambda x: F.gelu(x), {"x": rnd(4, 5) * 2})
case("gelu_tanh", lambda x: F.gelu(x, approximate="tanh"), {"x": rnd(4, 5) * 2})
case("silu", lambda x: F.silu(x), {"x": rnd(4, 5) * 2})
case("softmax", lambda x: F.softmax(x, 1), {"x": rnd(3, 6) * 3})
case("log_softmax", lambda x: F.log_softmax(x, 0), {"x": rnd(3, 6) * 3})

# ---- losses ---------------------------------------------------------------
target = torch.tensor([0, 3, 1, 2, 3])
weight = torch.rand(4) + 0.5
for red in ["mean", "sum", "none"]:
    case("cross_entropy_" + red,
         lambda x, target, weight, red=red: F.cross_entropy(x, target, weight=weight, ignore_index=1,
                                                           label_smoothing=0.1, reduction=red),
         {"x": rnd(5, 4)}, {"target": target, "weight": weight},
         target=(target + 1).tolist(), weight=t(weight), ignore_index=2, label_smoothing=0.1,
         reduction=red)
probs = torch.softmax(rnd(5, 4), 1)
case("cross_entropy_probs", lambda x, p: F.cross_entropy(x, p, label_smoothing=0.2),
     {"x": rnd(5, 4)}, {"p": probs}, probs=t(probs), label_smoothing=0.2)
case("nll_loss", lambda x, target, weight: F.nll_loss(F.log_softmax(x, 1), target, weight=weight,
                                                      ignore_index=1),
     {"x": rnd(5, 4)}, {"target": target, "weight": weight},
     target=(target + 1).tolist(), weight=t(weight), ignore_index=2)
y = rnd(3, 4)
case("mse_loss", lambda x, y: F.mse_loss(x, y), {"x": rnd(3, 4)}, {"y": y}, y=t(y))
case("l1_loss", lambda x, y: F.l1_loss(x, y, reduction="sum"), {"x": rnd(3, 4)}, {"y": y}, y=t(y))
case("smooth_l1_loss", lambda x, y: F.smooth_l1_loss(x, y, beta=0.5), {"x": rnd(3, 4)}, {"y": y}, y=t(y))
yb = (torch.rand(3, 4) > 0.5).float()
case("binary_cross_entropy", lambda p, y: F.binary_cross_entropy(p, y),
     {"p": torch.rand(3, 4) * 0.9 + 0.05}, {"y": yb}, y=t(yb))
pw = torch.rand(4) + 0.5
case("bce_with_logits", lambda x, y, pw: F.binary_cross_entropy_with_logits(x, y, pos_weight=pw),
     {"x": rnd(3, 4) * 3}, {"y": yb, "pw": pw}, y=t(yb), pos_weight=t(pw))
sign = torch.tensor([1.0, -1.0, 1.0, -1.0, 1.0])
case("margin_ranking_loss", lambda a, b, y: F.margin_ranking_loss(a, b, y, margin=0.3),
     {"a": rnd(5), "b": rnd(5)}, {"y": sign}, y=t(sign))
case("cosine_embedding_loss", lambda a, b, y: F.cosine_embedding_loss(a, b, y, margin=0.2),
     {"a": rnd(5, 3), "b": rnd(5, 3)}, {"y": sign}, y=t(sign))
tp = torch.softmax(rnd(3, 4), 1)
case("kl_div", lambda x, tp: F.kl_div(F.log_softmax(x, 1), tp, reduction="batchmean"),
     {"x": rnd(3, 4)}, {"tp": tp}, target=t(tp))

# ---- optimizers: three steps on fixed gradients ---------------------------
p0, grads = rnd(6), [rnd(6) for _ in range(3)]
optims = {
    "sgd": (torch.optim.SGD, {"lr": 0.1, "momentum": 0.9, "weight_decay": 0.01, "nesterov": True}),
    "sgd_dampening": (torch.optim.SGD, {"lr": 0.1, "momentum": 0.5, "dampening": 0.3}),
    "adam": (torch.optim.Adam, {"lr": 0.01, "betas": (0.8, 0.9), "weight_decay": 0.1, "amsgrad": True}),
    "adamw": (torch.optim.AdamW, {"lr": 0.01, "weight_decay": 0.1}),
    "rmsprop": (torch.optim.RMSprop, {"lr": 0.01, "momentum": 0.9, "centered": True, "weight_decay": 0.1}),
    "adagrad": (torch.optim.Adagrad, {"lr": 0.1, "lr_decay": 0.01, "weight_decay": 0.1}),
}
for name, (cls, kw) in optims.items():
    p = p0.clone().requires_grad_(True)
    opt = cls([p], **kw)
    after = []
    for g in grads:
        p.grad = g.clone()
        opt.step()
        after.append(t(p))
    cases.append({"name": "optim_" + name, "optimizer": name, "options": {
        k: list(v) if isinstance(v, tuple) else v for k, v in kw.items()},
        "param": t(p0), "grads": [t(g) for g in grads], "after": after})

# grouped convolution (appended last so the earlier cases keep their draws)
case("conv2d_groups", lambda x, w, b: F.conv2d(x, w, b, stride=1, padding=1, groups=3),
     {"x": rnd(2, 6, 5, 5), "w": rnd(9, 2, 3, 3), "b": rnd(9)}, stride=1, padding=1, groups=3)

out = {"format": "nnlua-ref", "version": 1, "torch": torch.__version__, "cases": cases}
path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "layers.json")
with open(path, "w") as f:
    json.dump(out, f, separators=(",", ":"))
print(f"wrote {len(cases)} cases to {path}")
