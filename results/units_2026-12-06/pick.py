#!/usr/bin/env python3
"""The rule of run.sh: among models with > 50 part-units and > 50 categorical units, the
lowest validation error. Reads only val_error, part_units and categorical_units."""
import json, os
here = os.path.dirname(os.path.abspath(__file__))
runs = {"mnist9_h400_adam_mom1e-2_s0": os.path.join(here, "..", "mnist9_h400_adam_mom1e-2_s0.json"),
        "long": os.path.join(here, "long.json"), "rec25": os.path.join(here, "rec25.json")}
ok = []
for name, f in runs.items():
    j = json.load(open(f))
    v, p, c = j["val_error"], j["part_units"], j["categorical_units"]
    print(f"{name}: validation {v:.2f} %, part-units {p}, categorical {c}")
    if p > 50 and c > 50:
        ok.append((v, name))
print("chosen:", min(ok)[1] if ok else "none")
