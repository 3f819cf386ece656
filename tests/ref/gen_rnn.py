#!/usr/bin/python3
"""Reference values for nnlua's RNN, LSTM and GRU, from PyTorch.

Run by a developer (never by CI):  /usr/bin/python3 tests/ref/gen_rnn.py
Writes tests/ref/rnn.json, read by tests/rnn_spec.lua. Each case: the
layer, its constructor arguments and options, its state dict (PyTorch's
names), the input, the initial states (or none), the lengths (or none:
variable lengths go through pack_padded_sequence and come back padded
with zeros), the output and final states, and the gradients of
sum(out * proj) + sum(h_n * proj_h) (+ sum(c_n * proj_c)) for the input,
the initial states and every parameter.
"""
import json
import os

import torch
import torch.nn as tnn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
from refvalues import t

torch.manual_seed(0)
cases = []


def case(name, kind, input_size, hidden, T, B, lengths=None, initial=False, **options):
    module = getattr(tnn, kind)(input_size, hidden, **options)
    bf = options.get("batch_first", False)
    dirs = 2 if options.get("bidirectional", False) else 1
    layers = options.get("num_layers", 1)
    x = torch.randn(*((B, T, input_size) if bf else (T, B, input_size)), requires_grad=True)
    state = None
    leaves = {}
    if initial:
        h0 = torch.randn(layers * dirs, B, hidden, requires_grad=True)
        leaves["h0"] = h0
        state = h0
        if kind == "LSTM":
            c0 = torch.randn(layers * dirs, B, hidden, requires_grad=True)
            leaves["c0"] = c0
            state = (h0, c0)
    if lengths is not None:
        packed = pack_padded_sequence(x, torch.tensor(lengths), batch_first=bf, enforce_sorted=False)
        out, hn = module(packed, state)
        out, _ = pad_packed_sequence(out, batch_first=bf, total_length=T)
    else:
        out, hn = module(x, state)
    h, c = (hn if kind == "LSTM" else (hn, None))
    proj, proj_h = torch.randn_like(out), torch.randn_like(h)
    loss = (out * proj).sum() + (h * proj_h).sum()
    entry = {}
    if c is not None:
        proj_c = torch.randn_like(c)
        loss = loss + (c * proj_c).sum()
        entry.update(c_n=t(c), proj_c=t(proj_c))
    loss.backward()
    opts = {k: v for k, v in options.items()}
    entry.update(name=name, layer=kind, args=[input_size, hidden], options=opts,
                 state={k: t(v) for k, v in module.state_dict().items()}, x=t(x),
                 initial={k: t(v) for k, v in leaves.items()}, lengths=lengths,
                 output=t(out), h_n=t(h), proj=t(proj), proj_h=t(proj_h), grad_x=t(x.grad),
                 grad_initial={k: t(v.grad) for k, v in leaves.items()},
                 param_grads={k: t(p.grad) for k, p in module.named_parameters()})
    cases.append(entry)


case("rnn_tanh", "RNN", 3, 4, 5, 2)
case("rnn_relu_2layers_h0", "RNN", 3, 4, 4, 3, initial=True, num_layers=2, nonlinearity="relu")
case("rnn_bidirectional_lengths", "RNN", 2, 3, 5, 3, lengths=[5, 2, 4], bidirectional=True)
case("lstm", "LSTM", 3, 5, 6, 2)
case("lstm_2layers_bidir_state", "LSTM", 4, 3, 5, 2, initial=True, num_layers=2, bidirectional=True)
case("lstm_batch_first_lengths", "LSTM", 3, 4, 6, 3, lengths=[6, 1, 3], batch_first=True,
     bidirectional=True)
case("lstm_no_bias", "LSTM", 2, 3, 4, 2, bias=False)
case("gru", "GRU", 3, 4, 5, 2)
case("gru_2layers_bidir_lengths_h0", "GRU", 3, 3, 6, 3, lengths=[4, 6, 2], initial=True,
     num_layers=2, bidirectional=True)
case("gru_batch_first", "GRU", 2, 5, 4, 2, batch_first=True)

path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "rnn.json")
with open(path, "w") as f:
    json.dump({"format": "nnlua-ref", "version": 1, "torch": torch.__version__, "cases": cases}, f)
print(f"wrote {len(cases)} cases to {path}")
