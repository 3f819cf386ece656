"""bench/dispatch.py: microseconds per one-element torch.add (out of place
and in place), the PyTorch side of bench/dispatch.lua (median of 5 runs)."""
import argparse
import statistics
import time

import torch

p = argparse.ArgumentParser()
p.add_argument('--calls', type=int, default=1000000)
calls = p.parse_args().calls
a, b = torch.ones(1), torch.ones(1)


def out_of_place():
    for _ in range(calls):
        a + b


def in_place():
    for _ in range(calls):
        a.add_(b)


def us(fn):
    fn()
    ts = []
    for _ in range(5):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts) / calls * 1e6


print('add', us(out_of_place))
print('add_', us(in_place))
