#!/usr/bin/env python3
"""train_1thread.jsonl: samples/s per round and build, medians, the ratios."""
import json, os, statistics as st
from collections import defaultdict
here = os.path.dirname(os.path.abspath(__file__))
v = defaultdict(list)
for l in open(os.path.join(here, "train_1thread.jsonl")):
    j = json.loads(l)
    if "bench" in j and j["bench"].startswith("drsae_b") and j["bench"].count("_") == 2:
        v[(j["bench"], j["build"])].append(j["value"])
builds = ["native_old", "base_old", "native_new", "base_new"]
print("| line (1 thread) | " + " | ".join(f"{b} r1 / r2 / r3" for b in builds)
      + " | base ÷ native, old | base ÷ native, new | base new ÷ old |")
print("| --- " * (len(builds) + 4) + "|")
for line in ["drsae_b10_unsup", "drsae_b10_sup", "drsae_b100_unsup", "drsae_b100_sup"]:
    m = {b: st.median(v[(line, b)]) for b in builds}
    print(f"| {line} | " + " | ".join(" / ".join(f"{x:,.0f}" for x in v[(line, b)]) for b in builds)
          + f" | {m['base_old']/m['native_old']:.2f} | {m['base_new']/m['native_new']:.2f}"
          + f" | {m['base_new']/m['base_old']:.2f} |")
