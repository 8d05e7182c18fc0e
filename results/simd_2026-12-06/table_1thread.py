#!/usr/bin/env python3
"""train_1thread.jsonl: samples/s per round, medians, base ÷ native."""
import json, os, statistics as st, sys
from collections import defaultdict
here = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
v = defaultdict(list)
for l in open(os.path.join(here, "train_1thread.jsonl")):
    j = json.loads(l)
    if "bench" in j and j["bench"].startswith("drsae_b") and j["bench"].count("_") == 2:
        v[(j["bench"], j["build"])].append(j["value"])
print("| line (1 thread) | native r1 / r2 / r3 | base r1 / r2 / r3 | base ÷ native (medians) |")
print("| --- | --- | --- | --- |")
for line in ["drsae_b10_unsup", "drsae_b10_sup", "drsae_b100_unsup", "drsae_b100_sup"]:
    n, b = v[(line, "native")], v[(line, "base")]
    print(f"| {line} | " + " / ".join(f"{x:,.0f}" for x in n) + " | " + " / ".join(f"{x:,.0f}" for x in b) + f" | {st.median(b)/st.median(n):.2f} |")
