"""Shared by the PyTorch twins of the benchmarks (bench/*.py), like
bench/common.lua for the nnlua side."""
import ctypes
import gc
import statistics
import time

_libc = ctypes.CDLL("libc.so.6")
last_peak_mb = None


def peak_mb():
    """VmHWM: the peak resident MiB of this process"""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return None


def reset_peak():
    """drops garbage, gives freed heap back (the tunables keep it), then
    resets VmHWM to the current RSS (Linux: clear_refs 5)"""
    gc.collect()
    _libc.malloc_trim(0)
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def time_steps(fn, steps):
    """median milliseconds of fn() over steps calls, after two warm-up
    calls; the peak RSS while it ran in last_peak_mb"""
    global last_peak_mb
    reset_peak()
    fn()
    fn()
    ts = []
    for _ in range(steps):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    last_peak_mb = peak_mb()
    return statistics.median(ts) * 1e3


def report(name, ms, fmt="%.2f"):
    """the "<name> <ms>" line bench/common.lua reads, and "<name>_rss <MiB>"
    for the last time_steps"""
    print(f"{name} {fmt % ms}", flush=True)
    if last_peak_mb is not None:
        print(f"{name}_rss {last_peak_mb:.0f}", flush=True)
