#!/usr/bin/env python3
"""Check the numpy forward of FORMATS.md against SAELens for the normalisation and
apply_b_dec_to_input variants (constant_norm_rescale, layer_norm; b_dec on/off).

    python scripts/sae/verify_norm_variants.py PEER_DIR [OUT.json]

PEER_DIR is what make_peer_saes.py wrote. Python side-by-side tooling only.
"""
import json
import shutil
import sys
import tempfile
import warnings
from pathlib import Path

warnings.filterwarnings("ignore")
sys.path.insert(0, str(Path(__file__).resolve().parent))
import numpy as np

import check_with_peers as C

src = Path(sys.argv[1])
x = np.load(src / "inputs.npy")
work = Path(tempfile.mkdtemp(prefix="normvar_"))
rows = []
for base in ("standard", "topk", "topk_rescaled", "jumprelu"):
    for norm in ("none", "expected_average_only_in", "constant_norm_rescale", "layer_norm"):
        for ab in (True, False):
            d = work / f"{base}_{norm}_{ab}"
            shutil.copytree(src / base, d)
            cfg = json.loads((d / "cfg.json").read_text())
            cfg["normalize_activations"], cfg["apply_b_dec_to_input"] = norm, ab
            (d / "cfg.json").write_text(json.dumps(cfg))
            rec, codes, _ = C.run_saelens(d, x)
            nrec, ncodes = C.numpy_saelens(d, x)
            r = {"arch_dir": base, "normalize_activations": norm, "apply_b_dec_to_input": ab,
                 "recon_rel_err": C.rel_rows(rec, nrec), "codes_rel_err": C.rel_rows(codes, ncodes)}
            rows.append(r)
            print(json.dumps(r))
shutil.rmtree(work)
worst = max(r["recon_rel_err"] for r in rows)
print(json.dumps({"worst_recon_rel_err": worst}))
if len(sys.argv) > 2:
    Path(sys.argv[2]).write_text(json.dumps({"worst_recon_rel_err": worst, "rows": rows}, indent=1) + "\n")
