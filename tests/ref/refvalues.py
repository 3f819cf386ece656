"""Shared by the fixture generators in tests/ref/."""
import torch


def t(x):
    """float32 values with the 9 significant digits that identify them"""
    def short(v):
        return [short(u) for u in v] if isinstance(v, list) else float("%.9g" % v)
    return short(x.detach().tolist())


def module_case(cases, name, module, inputs, call, **extra):
    """Appends a case: the module's state dict, its inputs (dict of float
    tensors; call(module, **leaves) makes the output), the output and the
    gradients of sum(output * proj) for every input and parameter."""
    module.eval()  # dropout off; gradients still flow
    module.zero_grad()
    leaves = {k: v.clone().requires_grad_(True) for k, v in inputs.items()}
    out = call(module, **leaves)
    proj = torch.randn_like(out)
    (out * proj).sum().backward()
    cases.append(dict(name=name, inputs={k: t(v) for k, v in inputs.items()},
                      state={k: t(v) for k, v in module.state_dict().items()},
                      output=t(out), proj=t(proj),
                      grads={k: t(v.grad) for k, v in leaves.items()},
                      param_grads={k: t(p.grad) for k, p in module.named_parameters()}, **extra))
