#!/usr/bin/python3
"""PyTorch twin of bench/kge_step.lua: milliseconds per knowledge-graph
training step (TransE and RotatE, dim 500, batch 512, 256 negatives per
positive, self-adversarial loss, Adam) on WN18RR's sizes (40,943 entities,
11 relations), written as the RotatE authors' code does it (gather, (B, N,
D) broadcast, dense Adam), and milliseconds per query to rank queries
against every entity (8 at a time, as the RotatE code tests); and a
ComplEx 1-vs-all step (dim 100, every entity a candidate for the tails and
the heads of the batch). Prints "<name> <ms>" lines (medians).

Run it configured as ../shared/NOTES.md describes ("PyTorch at its best").
"""
import argparse
import math
import time

import torch
import torch.nn.functional as F

from timing import report, time_steps

V, NR, B, N, DIM, GAMMA = 40943, 11, 512, 256, 500, 6.0


def score(model, E, R, h, r, t, head):
    """h, t: (B, 1 or N, de); r: (B, 1, dr)"""
    if model == "transe":
        return GAMMA - torch.norm(h + r - t, p=1, dim=2)
    rng = (GAMMA + 2.0) / DIM
    phase = r / (rng / math.pi)
    cr, ci = torch.cos(phase), torch.sin(phase)
    hr, hi = h.chunk(2, dim=2)
    tr, ti = t.chunk(2, dim=2)
    if head:
        xr, xi = cr * tr + ci * ti - hr, cr * ti - ci * tr - hi
    else:
        xr, xi = hr * cr - hi * ci - tr, hr * ci + hi * cr - ti
    return GAMMA - torch.sqrt(xr * xr + xi * xi).sum(2)


def tables(model):
    rng = (GAMMA + 2.0) / DIM
    de = DIM if model == "transe" else 2 * DIM
    E = torch.nn.Parameter(torch.empty(V, de).uniform_(-rng, rng))
    R = torch.nn.Parameter(torch.empty(NR, DIM).uniform_(-rng, rng))
    return E, R


def step_ms(model, steps):
    torch.manual_seed(0)
    E, R = tables(model)
    opt = torch.optim.Adam([E, R], lr=1e-4)
    pos = torch.stack([torch.randint(0, V, (B,)), torch.randint(0, NR, (B,)), torch.randint(0, V, (B,))], 1)

    def step(head):
        neg = torch.randint(0, V, (B, N))
        h, r, t = E[pos[:, 0]].unsqueeze(1), R[pos[:, 1]].unsqueeze(1), E[pos[:, 2]].unsqueeze(1)
        c = E[neg.view(-1)].view(B, N, -1)
        ns = score(model, E, R, c, r, t, True) if head else score(model, E, R, h, r, c, False)
        ps = score(model, E, R, h, r, t, False).squeeze(1)
        w = F.softmax(ns * 1.0, dim=1).detach()
        loss = -(F.logsigmoid(ps).mean() + (w * F.logsigmoid(-ns)).sum(1).mean()) / 2
        opt.zero_grad()
        loss.backward()
        opt.step()

    head = [True]

    def alternating():  # tail and head corruption in turn
        head[0] = not head[0]
        step(head[0])

    return time_steps(alternating, steps)


def one_vs_all_ms(steps, dim=100):
    """ComplEx 1-vs-all: each of B queries' cross-entropy over every entity,
    tails and heads, dense Adam (the kbc / LibKGE formulation)"""
    torch.manual_seed(0)
    E = torch.nn.Parameter(torch.empty(V, 2 * dim).uniform_(-1e-3, 1e-3))
    R = torch.nn.Parameter(torch.empty(NR, 2 * dim).uniform_(-1e-3, 1e-3))
    opt = torch.optim.Adam([E, R], lr=1e-4)
    h, r, t = torch.randint(0, V, (B,)), torch.randint(0, NR, (B,)), torch.randint(0, V, (B,))

    def scores(a, rel, conj):
        ar, ai = E[a].chunk(2, dim=1)
        rr, ri = R[rel].chunk(2, dim=1)
        if conj:
            ri = -ri
        er, ei = E.chunk(2, dim=1)
        return (ar * rr - ai * ri) @ er.t() + (ar * ri + ai * rr) @ ei.t()

    def step():
        loss = (F.cross_entropy(scores(h, r, False), t) + F.cross_entropy(scores(t, r, True), h)) / 2
        opt.zero_grad()
        loss.backward()
        opt.step()

    return time_steps(step, steps)


def rank_ms(model, nq):
    """milliseconds per query, ranking nq queries 8 at a time"""
    torch.manual_seed(0)
    E, R = tables(model)
    q = torch.stack([torch.randint(0, V, (nq,)), torch.randint(0, NR, (nq,)), torch.randint(0, V, (nq,))], 1)
    t0 = time.perf_counter()
    with torch.no_grad():
        for s in range(0, nq, 8):
            x = q[s:s + 8]
            h, r = E[x[:, 0]].unsqueeze(1), R[x[:, 1]].unsqueeze(1)
            sc = score(model, E, R, h, r, E.unsqueeze(0), False)
            target = sc.gather(1, x[:, 2:3])
            (sc > target).sum(1) + 1
    return (time.perf_counter() - t0) * 1e3 / nq


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--queries", type=int, default=200)
    args = ap.parse_args()
    steps = args.steps
    for m in ["transe", "rotate"]:
        report(m + "_step", step_ms(m, steps), "%.3f")
        report(m + "_rank", rank_ms(m, args.queries), "%.3f")
    report("complex_1vsall_step", one_vs_all_ms(steps), "%.3f")


if __name__ == "__main__":
    main()
