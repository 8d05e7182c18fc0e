#!/usr/bin/env python3
"""Markdown tables of a `scripts/simd_measure.sh` results directory.

    python3 scripts/simd_tables.py results/simd_2026-12-03 > /tmp/tables.md

kernels.jsonl / train.jsonl: native vs baseline build per round, ratio base/native;
sgemm_vs_numpy.jsonl: numpy (OpenBLAS AVX-512 kernel) vs ours per round;
train_vs_torch.jsonl: every run in order, mean per build, ratios to PyTorch.
Python 3 standard library only.
"""

import json
import os
import sys
from collections import defaultdict


def rows(path):
    with open(path) as f:
        return [json.loads(l) for l in f if l.strip()]


def fmt(v):
    return f"{v:.4g}" if abs(v) < 1000 else f"{v:,.0f}"


def builds_table(path):
    vals = defaultdict(dict)  # bench -> (round, build) -> value
    loads, rounds = [], set()
    for j in rows(path):
        if "uptime" in j:
            loads.append(f"r{j['round']} {j['what']}: {j['uptime'].split('load average: ')[1]}")
        if "bench" in j and j["bench"] != "simd_width":
            vals[j["bench"]][(j["round"], j["build"])] = j["value"]
            rounds.add(j["round"])
    rounds = sorted(rounds)
    out = ["Load (1/5/15 min) at the start of each run: " + "; ".join(loads), ""]
    head = ["line"] + [f"{c} r{r}" for r in rounds for c in ("native", "base", "base/native")]
    out += ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for b, v in vals.items():
        cells = [b]
        for r in rounds:
            n, s = v.get((r, "native")), v.get((r, "base"))
            cells += [fmt(n) if n else "", fmt(s) if s else "", f"{s / n:.2f}" if n and s else ""]
        out.append("| " + " | ".join(cells) + " |")
    return out


def sgemm_table(path):
    v = {}
    rounds, shapes = set(), []
    for j in rows(path):
        if "bench" in j:
            v[(j["round"], j["bench"])] = j["value"]
            rounds.add(j["round"])
            if j["bench"].startswith("numpy_sgemm_"):
                s = j["bench"][len("numpy_sgemm_"):]
                if s not in shapes:
                    shapes.append(s)
    rounds = sorted(rounds)
    head = ["shape"]
    for r in rounds:
        head += [f"numpy r{r}", f"ours A·B r{r}", f"ours A·Bᵀ r{r}", f"matrixmultiply r{r}", f"best ours / numpy r{r}"]
    out = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for s in shapes:
        cells = [s]
        for r in rounds:
            n = v.get((r, f"numpy_sgemm_{s}"))
            a = v.get((r, f"sgemm_{s}_avx512_2thread"))
            bt = v.get((r, f"sgemm_{s}_bt_avx512_2thread"))
            mm = v.get((r, f"sgemm_{s}_avx2_2thread"))
            best = max(x for x in (a, bt) if x) if (a or bt) else None
            cells += [fmt(x) if x else "" for x in (n, a, bt, mm)]
            cells.append(f"{best / n:.2f}" if n and best else "")
        out.append("| " + " | ".join(cells) + " |")
    return out


def torch_table(path):
    runs, cur = [], None
    for j in rows(path):
        if "uptime" in j:
            cur = {"what": j["what"], "load": j["uptime"].split("load average: ")[1], "v": {}}
            runs.append(cur)
        elif "bench" in j and cur is not None:
            cur["v"][j["bench"].removeprefix("torch_")] = j["value"]
    lines = ["drsae_b10_unsup", "drsae_b10_sup", "drsae_b100_unsup", "drsae_b100_sup"]
    head = ["run (in order)", "load"] + lines
    out = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    means = defaultdict(lambda: defaultdict(list))
    for r in runs:
        out.append("| " + " | ".join([r["what"], r["load"]] + [fmt(r["v"][l]) if l in r["v"] else "" for l in lines]) + " |")
        for l in lines:
            if l in r["v"]:
                means[r["what"]][l].append(r["v"][l])
    mean = {w: {l: sum(x) / len(x) for l, x in d.items()} for w, d in means.items()}
    out.append("")
    out += ["| mean | " + " | ".join(lines) + " |", "|" + " --- |" * (len(lines) + 1)]
    for w in mean:
        out.append(f"| {w} | " + " | ".join(fmt(mean[w].get(l, 0)) for l in lines) + " |")
    t = mean.get("torch train")
    for w in mean:
        if t and w != "torch train":
            out.append(f"| {w} / torch | " + " | ".join(f"{mean[w][l] / t[l]:.2f}" for l in lines) + " |")
    if "native train" in mean and "base train" in mean:
        n, b = mean["native train"], mean["base train"]
        out.append("| base / native | " + " | ".join(f"{b[l] / n[l]:.2f}" for l in lines) + " |")
    return out


def main():
    d = sys.argv[1]
    for name, fn in [("kernels.jsonl", builds_table), ("train.jsonl", builds_table),
                     ("sgemm_vs_numpy.jsonl", sgemm_table), ("train_vs_torch.jsonl", torch_table)]:
        p = os.path.join(d, name)
        if os.path.exists(p):
            print(f"### {name}\n")
            print("\n".join(fn(p)))
            print()


if __name__ == "__main__":
    main()
