#!/usr/bin/python3
"""PyTorch twin of bench/lstm_step.lua: milliseconds per training step of
the character LSTM of examples/char_rnn (vocabulary 65, embedding 128, 2
layers of hidden 512, T 100, B 32, Adam), forward, backward and update.
Prints "lstm <ms>" (the median).

Run it configured as ../shared/NOTES.md describes ("PyTorch at its best").
"""
import argparse

import torch
import torch.nn.functional as F

from char_rnn_twin import CharRNN
from timing import report, time_steps


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=10)
    args = ap.parse_args()
    torch.manual_seed(0)
    model = CharRNN(65)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    x, y = torch.randint(0, 65, (32, 100)), torch.randint(0, 65, (32, 100))

    def step():
        logits, _ = model(x)
        loss = F.cross_entropy(logits.reshape(-1, 65), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()

    report("lstm", time_steps(step, args.steps))


if __name__ == "__main__":
    main()
