#!/usr/bin/env python3
"""Issue #23, 200 units T = 11, stage 2: the E bound, decided on validation only.

Reads only `val_error` of each run's final JSON (never `test_error`), pairs the runs by
seed and applies the rule fixed in results/recipe_selection.md: the alternative wins only
if its mean validation error is lower by more than one standard error of the paired
difference; otherwise it is a tie and the documented setting (the code's bound 1.25/T)
stays. Prints the table and writes the decision (the extra flags of the chosen recipe) to
decision.txt.
"""
import json, math, os, sys

here = os.path.dirname(os.path.abspath(__file__))
default = {0: "../mnist8_h200_b50_s0.json", 1: "../mnist8_h200_b50_s1.json",
           2: "b99975_s2.json", 3: "b99975_s3.json", 4: "b99975_s4.json"}
alt = {s: f"emax_s{s}.json" for s in range(5)}

def val(rel):
    with open(os.path.join(here, rel)) as f:
        return float(json.load(f)["val_error"])

d = [val(default[s]) for s in range(5)]
a = [val(alt[s]) for s in range(5)]
diff = [x - y for x, y in zip(a, d)]
n = len(diff)
mean = lambda v: sum(v) / len(v)
sd = lambda v: math.sqrt(sum((x - mean(v)) ** 2 for x in v) / (len(v) - 1))
md, se = mean(diff), sd(diff) / math.sqrt(n)
print("seed  default(1.25/T)  e_max 0.125")
for s in range(5):
    print(f"{s:4d}  {d[s]:15.2f}  {a[s]:11.2f}")
print(f"mean  {mean(d):15.3f}  {mean(a):11.3f}   (sd {sd(d):.3f} / {sd(a):.3f})")
print(f"paired difference (0.125 - default) {md:+.3f}, standard error {se:.3f}")
if md < -se:
    choice, flags = "e_max 0.125 wins", "--e-max 0.125"
else:
    choice, flags = "tie or worse: the default bound stays", ""
print("decision:", choice)
with open(os.path.join(here, "decision.txt"), "w") as f:
    f.write(flags + "\n")
