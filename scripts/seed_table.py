#!/usr/bin/env python3
"""The per-seed table of a directory of `drsae train drsae` results (sS.json files):
validation and test error, best epoch, unit counts, then mean ± sd (sample sd) of both
errors. Usage: scripts/seed_table.py results/final_h400"""
import glob, json, os, statistics as st, sys

d = sys.argv[1]
rows = []
for f in sorted(glob.glob(os.path.join(d, "s*.json")), key=lambda f: int(os.path.basename(f)[1:-5])):
    j = json.load(open(f))
    rows.append((os.path.basename(f)[1:-5], j))
print("| seed | validation error | test error | best epoch | part-units | categorical units |")
print("| --- | --- | --- | --- | --- | --- |")
for s, j in rows:
    print(f"| {s} | {j['val_error']:.2f} | {j['test_error']:.2f} | {j['best_epoch']} | {j['part_units']} | {j['categorical_units']} |")
v = [j["val_error"] for _, j in rows]
t = [j["test_error"] for _, j in rows]
if len(rows) > 1:
    print(f"\n{len(rows)} seeds: validation {st.mean(v):.3f} ± {st.stdev(v):.3f} %, "
          f"test {st.mean(t):.3f} ± {st.stdev(t):.3f} %")
