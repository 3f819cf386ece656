#!/usr/bin/python3
"""Reference BLEU scores for nn.metrics.bleu, from NLTK's corpus_bleu.

Run by a developer (never by CI):  /usr/bin/python3 tests/ref/gen_metrics.py
(needs Debian's python3-nltk). Writes tests/ref/metrics.json, read by
tests/metrics_spec.lua.

References are the German texts of the committed DDTP slice
(tests/data/ddtp/Translation-de: synopses and paragraphs); hypotheses are
those texts damaged by a seeded random edit per word (kept, dropped,
duplicated, swapped with the next, or replaced by a word from elsewhere).
Both sides are cut by sacreBLEU's 13a tokeniser (its regular expressions,
written out below) and scored by NLTK's corpus_bleu with uniform weights and
no smoothing, times 100; the tokens are stored too, so the spec checks the
tokeniser and the score separately. A two-reference case adds a second damaged copy of each
German text as the other reference.
"""
import json
import os
import random
import re

from nltk.translate.bleu_score import corpus_bleu

HERE = os.path.dirname(os.path.abspath(__file__))
SLICE = os.path.join(HERE, "..", "data", "ddtp", "Translation-de")

REGEX = [
    (re.compile(r"([\{-\~\[-\` -\&\(-\+\:-\@\/])"), r" \1 "),
    (re.compile(r"([^0-9])([\.,])"), r"\1 \2 "),
    (re.compile(r"([\.,])([^0-9])"), r" \1 \2"),
    (re.compile(r"([0-9])(-)"), r"\1 \2 "),
]


def tok13a(line):
    line = line.replace("<skipped>", "").replace("-\n", "").replace("\n", " ")
    if "&" in line:
        line = line.replace("&quot;", '"').replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">")
    line = " " + line + " "
    for r, s in REGEX:
        line = r.sub(s, line)
    return line.split()


def texts():
    out, cur = [], None
    for line in open(SLICE, encoding="utf-8"):
        line = line.rstrip("\n")
        if line.startswith("Description-de: "):
            out.append(line[len("Description-de: "):])
        elif line.startswith(" ") and line != " .":
            out.append(line[1:])
    return out


rng = random.Random(0)


def damage(s, vocab):
    w = s.split()
    out, i = [], 0
    while i < len(w):
        r = rng.random()
        if r < 0.70:
            out.append(w[i])
        elif r < 0.78:
            pass
        elif r < 0.84:
            out += [w[i], w[i]]
        elif r < 0.92 and i + 1 < len(w):
            out += [w[i + 1], w[i]]
            i += 1
        else:
            out.append(rng.choice(vocab))
        i += 1
    return " ".join(out)


refs = texts()
vocab = sorted({w for s in refs for w in s.split()})
hyps = [damage(s, vocab) for s in refs]
cases = []


def case(name, hyps, refs):
    # NLTK counts at least one n-gram per sentence for every order (a
    # hypothesis of 2 tokens has 1 "4-gram"); sacreBLEU counts none. Pairs
    # with hypotheses shorter than 4 tokens are left out so both agree.
    keep = [i for i, h in enumerate(hyps) if len(tok13a(h)) >= 4]
    hyps, refs = [hyps[i] for i in keep], [refs[i] for i in keep]
    rt = [[tok13a(r) for r in (rs if isinstance(rs, list) else [rs])] for rs in refs]
    ht = [tok13a(h) for h in hyps]
    cases.append({
        "name": name, "hyps": hyps, "refs": refs,
        "hyp_tokens": ht, "ref_tokens": [r[0] for r in rt],
        "bleu": 100 * corpus_bleu(rt, ht),
    })


case("ddtp-de damaged", hyps, refs)
case("first 20", hyps[:20], refs[:20])
case("short hypotheses (brevity penalty)", [" ".join(h.split()[: max(1, len(h.split()) // 2)]) for h in hyps[:40]], refs[:40])
case("two references", hyps[:30], [[r, damage(r, vocab)] for r in refs[:30]])
case("punctuation", ["Hello, world! (It costs $3.50, 1-2 days.) a.b,c \"q\" &amp; x/y"],
     ["Hello, world! (It costs $3.50, 1-2 days.) a.b,c \"q\" & x/y"])
with open(os.path.join(HERE, "metrics.json"), "w") as f:
    json.dump(cases, f, ensure_ascii=False)
print(len(cases), "cases;", [round(c["bleu"], 4) for c in cases])
