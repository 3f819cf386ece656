#!/usr/bin/python3
"""PyTorch twin of bench/resnet_step.lua: milliseconds per training step of
the same CIFAR-style ResNet (examples/resnet/model.lua: width 16, 2 basic
blocks a stage, BatchNorm, batch 128 of 1x28x28, SGD with Nesterov
momentum), and of a depthwise 3x3 convolution forward+backward (64
channels, groups 64, 14x14, batch 128). Prints "resnet <ms>" and
"depthwise <ms>" (medians).

Run it configured as ../shared/NOTES.md describes ("PyTorch at its best").
"""
import argparse

import torch
import torch.nn as tnn
import torch.nn.functional as F

from timing import report, time_steps


class Block(tnn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = tnn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = tnn.BatchNorm2d(cout)
        self.conv2 = tnn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = tnn.BatchNorm2d(cout)
        self.shortcut = None
        if stride != 1 or cin != cout:
            self.shortcut = tnn.Sequential(tnn.Conv2d(cin, cout, 1, stride, bias=False),
                                           tnn.BatchNorm2d(cout))

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + (self.shortcut(x) if self.shortcut is not None else x))


class ResNet(tnn.Module):
    def __init__(self, blocks=2, width=16, classes=10):
        super().__init__()
        w = width
        self.stem = tnn.Sequential(tnn.Conv2d(1, w, 3, 1, 1, bias=False), tnn.BatchNorm2d(w), tnn.ReLU())
        layers, cin = [], w
        for stage, cout in enumerate([w, 2 * w, 4 * w]):
            for b in range(blocks):
                layers.append(Block(cin, cout, 2 if (b == 0 and stage > 0) else 1))
                cin = cout
        self.stages = tnn.Sequential(*layers)
        self.pool = tnn.AdaptiveAvgPool2d(1)
        self.head = tnn.Linear(cin, classes)

    def forward(self, x):
        return self.head(self.pool(self.stages(self.stem(x))).flatten(1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=10)
    args = ap.parse_args()
    torch.manual_seed(0)
    model = ResNet()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)
    x, y = torch.randn(128, 1, 28, 28), torch.randint(0, 10, (128,))

    def step():
        loss = F.cross_entropy(model(x), y, label_smoothing=0.1)
        opt.zero_grad()
        loss.backward()
        opt.step()

    report("resnet", time_steps(step, args.steps))
    dx = torch.randn(128, 64, 14, 14, requires_grad=True)
    dw = torch.randn(64, 1, 3, 3, requires_grad=True)

    def depthwise():
        F.conv2d(dx, dw, padding=1, groups=64).sum().backward()

    report("depthwise", time_steps(depthwise, args.steps))


if __name__ == "__main__":
    main()
