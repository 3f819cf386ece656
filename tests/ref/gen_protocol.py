#!/usr/bin/python3
"""Parameter names, shapes and counts of every built-in layer, from
PyTorch 1.13, for the module-protocol spec (tests/protocol_spec.lua).

Run by a developer (never by CI):  /usr/bin/python3 tests/ref/gen_protocol.py
Writes tests/ref/protocol.json: per case the nnlua constructor call (layer,
positional args, options), input shapes and a dtype for one forward, and
PyTorch's state dict (name -> shape), parameter count and children.
RMSNorm and KGEmbedding are not in PyTorch 1.13: their entries are written
by hand below (RMSNorm: one weight of the normalised shape, as
torch.nn.RMSNorm in later releases; KGEmbedding: the entity and relation
tables of the RotatE paper's code, 2 dim wide for the complex models).
"""
import json
import os

import torch.nn as tnn

import mmref

cases = []


def case(layer, args, opts, module, input_shape, dtype='f32', more_inputs=(), listed=False):
    """module None: a layer PyTorch 1.13 lacks, its state written by hand;
    listed: the forward takes its inputs as one list (fusion layers)"""
    if module is None:
        state, count, children, modules = opts.pop('_state'), opts.pop('_count'), [], 1
        buffers = []
    else:
        buffers = sorted(n for n, _ in module.named_buffers())
        state = {k: list(v.shape) for k, v in module.state_dict().items()}
        count = sum(p.numel() for p in module.parameters())
        children = [n for n, _ in module.named_children()]
        modules = len(list(module.modules()))
    cases.append(dict(layer=layer, args=args, opts=opts, inputs=[input_shape] + list(more_inputs),
                      dtype=dtype, state=state, num_parameters=count, children=children, modules=modules,
                      buffers=buffers, listed=listed))


case('Linear', [3, 4], {}, tnn.Linear(3, 4), [2, 3])
case('Linear', [3, 4], {'bias': False}, tnn.Linear(3, 4, bias=False), [2, 3])
case('Embedding', [10, 4], {'padding_idx': 1}, tnn.Embedding(10, 4, padding_idx=0), [2, 3], 'i64')
case('LayerNorm', [4], {}, tnn.LayerNorm(4), [2, 4])
case('LayerNorm', [[2, 4]], {'elementwise_affine': False},
     tnn.LayerNorm([2, 4], elementwise_affine=False), [3, 2, 4])
case('RMSNorm', [4], {'_state': {'weight': [4]}, '_count': 4}, None, [2, 4])
case('Dropout', [0.1], {}, tnn.Dropout(0.1), [2, 4])
for name in ['ReLU', 'GELU', 'SiLU', 'Tanh', 'Sigmoid']:
    case(name, [], {}, getattr(tnn, name)(), [2, 4])
case('GELU', [{'approximate': 'tanh'}], {}, tnn.GELU(approximate='tanh'), [2, 4])
case('Softmax', [-1], {}, tnn.Softmax(-1), [2, 4])
case('LeakyReLU', [0.2], {}, tnn.LeakyReLU(0.2), [2, 4])
case('Flatten', [], {}, tnn.Flatten(), [2, 3, 4])
case('Conv2d', [3, 8, 3], {'padding': 1}, tnn.Conv2d(3, 8, 3, padding=1), [2, 3, 6, 6])
case('Conv2d', [3, 8, [3, 2]], {'bias': False, 'stride': 2},
     tnn.Conv2d(3, 8, (3, 2), bias=False, stride=2), [2, 3, 6, 6])
case('Conv2d', [4, 6, 3], {'groups': 2}, tnn.Conv2d(4, 6, 3, groups=2), [2, 4, 6, 6])
case('MaxPool2d', [2], {}, tnn.MaxPool2d(2), [2, 3, 6, 6])
case('Conv2d', [4, 4, 3], {'groups': 4, 'padding': 1}, tnn.Conv2d(4, 4, 3, groups=4, padding=1),
     [2, 4, 6, 6])
case('Conv1d', [3, 8, 3], {'padding': 1}, tnn.Conv1d(3, 8, 3, padding=1), [2, 3, 10])
case('Conv1d', [4, 8, 5], {'groups': 2, 'bias': False}, tnn.Conv1d(4, 8, 5, groups=2, bias=False), [2, 4, 10])
case('ConvTranspose2d', [4, 6, 3], {'stride': 2}, tnn.ConvTranspose2d(4, 6, 3, stride=2), [2, 4, 5, 5])
case('ConvTranspose2d', [4, 6, [2, 3]], {'groups': 2, 'bias': False},
     tnn.ConvTranspose2d(4, 6, (2, 3), groups=2, bias=False), [2, 4, 5, 5])

for name in ['Mish', 'Hardswish', 'Hardsigmoid', 'PReLU', 'GLU']:
    case(name, [], {}, getattr(tnn, name)(), [2, 4])
case('ELU', [0.5], {}, tnn.ELU(0.5), [2, 4])
case('Softplus', [2, 10], {}, tnn.Softplus(2, 10), [2, 4])
case('PReLU', [3], {}, tnn.PReLU(3), [2, 3, 4])
case('AdaptiveAvgPool2d', [[2, 3]], {}, tnn.AdaptiveAvgPool2d((2, 3)), [2, 3, 7, 5])
case('AdaptiveMaxPool2d', [1], {}, tnn.AdaptiveMaxPool2d(1), [2, 3, 4, 4])
case('BatchNorm1d', [4], {}, tnn.BatchNorm1d(4), [3, 4])
case('BatchNorm1d', [4], {'affine': False}, tnn.BatchNorm1d(4, affine=False), [3, 4, 5])
case('BatchNorm2d', [3], {}, tnn.BatchNorm2d(3), [2, 3, 4, 4])
case('BatchNorm2d', [3], {'track_running_stats': False}, tnn.BatchNorm2d(3, track_running_stats=False),
     [2, 3, 4, 4])
case('GroupNorm', [2, 4], {}, tnn.GroupNorm(2, 4), [2, 4, 3, 3])
case('InstanceNorm2d', [3], {}, tnn.InstanceNorm2d(3), [2, 3, 4, 4])
case('InstanceNorm2d', [3], {'affine': True, 'track_running_stats': True},
     tnn.InstanceNorm2d(3, affine=True, track_running_stats=True), [2, 3, 4, 4])
case('Upsample', [{'scale_factor': 2, 'mode': 'bilinear'}], {}, tnn.Upsample(scale_factor=2, mode='bilinear'),
     [1, 2, 3, 3])
case('EmbeddingBag', [10, 4], {'mode': 'sum'}, tnn.EmbeddingBag(10, 4, mode='sum'), [2, 3], 'i64')
case('RNN', [3, 4], {'nonlinearity': 'relu'}, tnn.RNN(3, 4, nonlinearity='relu'), [5, 2, 3])
case('LSTM', [3, 4], {'num_layers': 2, 'bidirectional': True},
     tnn.LSTM(3, 4, num_layers=2, bidirectional=True), [5, 2, 3])
case('LSTM', [3, 4], {'bias': False, 'batch_first': True}, tnn.LSTM(3, 4, bias=False, batch_first=True),
     [2, 5, 3])
case('GRU', [3, 4], {'num_layers': 3}, tnn.GRU(3, 4, num_layers=3), [5, 2, 3])
for model, de, dr in [('transe', 4, 4), ('complex', 8, 8), ('rotate', 8, 4)]:
    case('KGEmbedding', [], {'model': model, 'num_entities': 10, 'num_relations': 10, 'dim': 4,
                             'sparse': False,
                             '_state': {'entity': [10, de], 'relation': [10, dr]},
                             '_count': 10 * de + 10 * dr}, None, [5], 'i64', [[5], [5]])
case('MultiheadAttention', [8, 2], {}, tnn.MultiheadAttention(8, 2, batch_first=True), [2, 5, 8])
case('MultiheadAttention', [8, 2], {'bias': False, 'kdim': 6, 'vdim': 8},
     tnn.MultiheadAttention(8, 2, bias=False, kdim=6, vdim=8, batch_first=True), [2, 5, 8],
     more_inputs=[[2, 4, 6], [2, 4, 8]])
case('AvgPool2d', [2], {'stride': 1}, tnn.AvgPool2d(2, stride=1), [2, 3, 6, 6])

# the fusion layers: nnlua's and gen_multimodal.py's references share names
case('ConcatFusion', [[3, 5], 4], {}, mmref.ConcatFusion([3, 5], 4), [2, 3], more_inputs=[[2, 5]],
     listed=True)
case('SumFusion', [[3, 5], 4], {}, mmref.SumFusion([3, 5], 4), [2, 3], more_inputs=[[2, 5]],
     listed=True)
case('SumFusion', [[3, 3], 4], {'shared': True}, mmref.SumFusion([3, 3], 4, shared=True), [2, 3],
     more_inputs=[[2, 3]], listed=True)
case('GatedFusion', [[3, 5, 2], 4], {}, mmref.GatedFusion([3, 5, 2], 4), [2, 3],
     more_inputs=[[2, 5], [2, 2]], listed=True)
case('BilinearFusion', [3, 5, 4], {'factor': 3}, mmref.BilinearFusion(3, 5, 4, 3), [2, 3],
     more_inputs=[[2, 5]], listed=True)
case('FiLM', [5, 3], {}, mmref.FiLM(5, 3, 1), [2, 3, 4, 4], more_inputs=[[2, 5]])
case('CrossModalAttention', [8, 6, 2], {}, mmref.CrossModalAttention(8, 6, 2), [2, 5, 8],
     more_inputs=[[2, 4, 6]])

with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), 'protocol.json'), 'w') as f:
    json.dump(cases, f, indent=1)
print(len(cases), 'cases')
