"""Shared by the PyTorch twins of the benchmarks (bench/*.py), like
bench/common.lua for the nnlua side."""
import statistics
import time


def time_steps(fn, steps):
    """median milliseconds of fn() over steps calls, after two warm-up calls"""
    fn()
    fn()
    ts = []
    for _ in range(steps):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts) * 1e3
