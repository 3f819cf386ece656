#!/usr/bin/python3
"""A WGAN-GP gradient penalty and a Hessian-vector product from PyTorch
1.13, for the double-backward spec (tests/double_backward_spec.lua).

Run by a developer (never by CI):  /usr/bin/python3 tests/ref/gen_double_backward.py
Writes tests/ref/double_backward.json. The critic is Linear(6, 16) ->
tanh -> LayerNorm(16) -> Linear(16, 1); x_hat = eps real + (1 - eps) fake;
penalty = mean((|d critic(x_hat) / d x_hat|_2 - 1)^2) over the batch; the
file holds the inputs, the weights, the penalty and its gradients with
respect to every weight (a backward through the first backward; zero
for l2.bias, which the input gradient does not depend on). The
Hessian-vector product is of f(x) = sum(softmax(x W) * c) with v.
"""
import json
import os

import torch

torch.manual_seed(0)
B, D, H = 5, 6, 16
real, fake = torch.randn(B, D), torch.randn(B, D)
eps = torch.rand(B, 1)
l1, ln, l2 = torch.nn.Linear(D, H), torch.nn.LayerNorm(H), torch.nn.Linear(H, 1)
with torch.no_grad():
    ln.weight.uniform_(0.5, 1.5)
    ln.bias.uniform_(-0.2, 0.2)


def critic(x):
    return l2(ln(torch.tanh(l1(x))))


x_hat = (eps * real + (1 - eps) * fake).requires_grad_()
out = critic(x_hat)
(g,) = torch.autograd.grad(out.sum(), x_hat, create_graph=True)
penalty = ((g.norm(2, dim=1) - 1) ** 2).mean()
params = {'l1.weight': l1.weight, 'l1.bias': l1.bias, 'ln.weight': ln.weight,
          'ln.bias': ln.bias, 'l2.weight': l2.weight, 'l2.bias': l2.bias}
grads = torch.autograd.grad(penalty, list(params.values()), allow_unused=True)
# l2.bias does not reach the gradient: its penalty gradient is zero
grads = [torch.zeros_like(p) if gr is None else gr for p, gr in zip(params.values(), grads)]

x = torch.randn(3, 4, requires_grad=True)
W, c, v = torch.randn(4, 5), torch.randn(3, 5), torch.randn(3, 4)
f = (torch.softmax(x @ W, dim=1) * c).sum()
(gx,) = torch.autograd.grad(f, x, create_graph=True)
(hv,) = torch.autograd.grad((gx * v).sum(), x)


def t(a):
    return a.detach().tolist()


out = {
    'wgan': {'real': t(real), 'fake': t(fake), 'eps': t(eps),
             'params': {k: t(p) for k, p in params.items()},
             'penalty': penalty.item(),
             'grads': {k: t(gr) for k, gr in zip(params, grads)}},
    'hvp': {'x': t(x), 'W': t(W), 'c': t(c), 'v': t(v), 'hv': t(hv)},
}
path = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'double_backward.json')
with open(path, 'w') as fh:
    json.dump(out, fh)
print('wrote', path)
