#!/usr/bin/python3
"""One training epoch of the Fashion-MNIST MLP and CNN in PyTorch, the same
models, optimizer and batch as examples/fashion_mnist/train.lua. Prints
"mlp <seconds>" and "cnn <seconds>" (median of --epochs epochs).

Run it configured as ../shared/NOTES.md describes ("PyTorch at its best"):
  OPENBLAS_CORETYPE=SkylakeX ATEN_CPU_CAPABILITY=avx512 \
  GLIBC_TUNABLES=glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=17179869184 \
  /usr/bin/python3 bench/fashion_mnist.py
"""
import argparse
import gzip
import statistics
import time

import numpy as np
import torch
import torch.nn as tnn
import torch.nn.functional as F

from timing import peak_mb, reset_peak


def load(d, split):
    with gzip.open(f"{d}/{split}-images-idx3-ubyte.gz") as f:
        x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 784)
    with gzip.open(f"{d}/{split}-labels-idx1-ubyte.gz") as f:
        y = np.frombuffer(f.read(), np.uint8, offset=8)
    return torch.tensor(x, dtype=torch.float32) / 255, torch.tensor(y, dtype=torch.int64)


class CNN(tnn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = tnn.Conv2d(1, 32, 3, padding=1)
        self.conv2 = tnn.Conv2d(32, 64, 3, padding=1)
        self.pool = tnn.MaxPool2d(2)
        self.fc1 = tnn.Linear(64 * 7 * 7, 128)
        self.drop = tnn.Dropout(0.3)
        self.fc2 = tnn.Linear(128, 10)

    def forward(self, x):
        x = x.view(-1, 1, 28, 28)
        x = self.pool(F.relu(self.conv1(x)))
        x = self.pool(F.relu(self.conv2(x)))
        return self.fc2(self.drop(F.relu(self.fc1(x.flatten(1)))))


def epoch(model, x, y, batch):
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    perm = torch.randperm(x.shape[0])
    t0 = time.perf_counter()
    for s in range(x.shape[0] // batch):
        ids = perm[s * batch:(s + 1) * batch]
        loss = F.cross_entropy(model(x[ids]), y[ids])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--models", default="mlp,cnn")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    x, y = load(a.data, "train")
    for name in a.models.split(","):
        make = {"mlp": lambda: tnn.Sequential(tnn.Linear(784, 256), tnn.ReLU(), tnn.Linear(256, 256),
                                              tnn.ReLU(), tnn.Linear(256, 10)),
                "cnn": CNN}[name]
        reset_peak()
        times = [epoch(make(), x, y, a.batch) for _ in range(a.epochs)]
        print(f"{name} {statistics.median(times):.3f}", flush=True)
        print(f"{name}_rss {peak_mb():.0f}", flush=True)


if __name__ == "__main__":
    main()
