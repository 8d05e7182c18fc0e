#!/usr/bin/env python3
"""Samples/s of every `bench train` line in train.jsonl, per thread count, build and round."""
import json, os, statistics as st
from collections import defaultdict
import sys
here = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))  # a results dir: also ../tile_unroll_2026-12-06
v = defaultdict(list)
for l in open(os.path.join(here, "train.jsonl")):
    j = json.loads(l)
    if "bench" in j and j["bench"].startswith("drsae_b") and j["bench"].count("_") == 2:
        v[(j["threads"], j["bench"], j["build"])].append(j["value"])
builds = ["native_old", "native_new", "base_old", "base_new"]
for th in (1, 2):
    print(f"\n--threads {th}: samples/s per round (median)")
    print("| line | " + " | ".join(builds) + " | base_new / native_new | native new / old | base new / old |")
    print("|---" * 8 + "|")
    for line in ["drsae_b10_unsup", "drsae_b10_sup", "drsae_b100_unsup", "drsae_b100_sup"]:
        m = {b: st.median(v[(th, line, b)]) for b in builds}
        cells = [" / ".join(f"{x:,.0f}" for x in v[(th, line, b)]) + f" ({m[b]:,.0f})" for b in builds]
        print(f"| {line} | " + " | ".join(cells) + f" | {m['base_new']/m['native_new']:.3f} | {m['native_new']/m['native_old']:.3f} | {m['base_new']/m['base_old']:.3f} |")
