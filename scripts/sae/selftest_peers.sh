#!/usr/bin/env bash
# Self-test of the round-trip scripts on the peers' own files:
#   bash scripts/sae/selftest_peers.sh [OUT_DIR] [RESULT_JSON]
# Builds the peer SAEs, checks each with its own package (expect 0 error) and with
# the numpy reference of FORMATS.md (expect ~1e-7, float32 vs float64), and checks
# that a corrupted recon.npy is caught. Python side-by-side tooling only.
set -u
cd "$(dirname "$0")/../.."
OUT=${1:-/tmp/sae_peers}
RES=${2:-results/sae_peers_2026-12-02/roundtrip_selftest.json}
rm -rf "$OUT"
python scripts/sae/make_peer_saes.py "$OUT" 2>&1 | grep -v '^Triton'
tmp=$(mktemp -d)
ok=1
for n in standard standard_training topk topk_rescaled topk_from_training jumprelu batchtopk matryoshka_batchtopk; do
  python scripts/sae/check_with_peers.py "$OUT/$n" saelens --json "$tmp/$n.json" >/dev/null 2>&1 || ok=0
done
for n in sparsify sparsify_multi; do
  python scripts/sae/check_with_peers.py "$OUT/$n" sparsify --json "$tmp/$n.json" >/dev/null 2>&1 || ok=0
done
# SAELens's own sparsify converter on sparsify's files (expected to fail, see FORMATS.md)
python scripts/sae/check_with_peers.py "$OUT/sparsify_multi" saelens-sparsify --json "$tmp/saelens_sparsify_converter.json" >/dev/null 2>&1
# negative control: a perturbed recon.npy must fail
cp -r "$OUT/topk" "$tmp/topk_bad"
python - "$tmp/topk_bad/recon.npy" <<'PY'
import sys, numpy as np
r = np.load(sys.argv[1]); r[3, 5] += 1e-3 * np.linalg.norm(r[3]); np.save(sys.argv[1], r)
PY
if python scripts/sae/check_with_peers.py "$tmp/topk_bad" saelens --json "$tmp/negative_control.json" >/dev/null 2>&1; then ok=0; neg=false; else neg=true; fi
python - "$tmp" "$RES" "$ok" "$neg" <<'PY'
import json, sys, glob, os
tmp, res, ok, neg = sys.argv[1], sys.argv[2], sys.argv[3] == "1", sys.argv[4] == "true"
rows = {}
for f in sorted(glob.glob(os.path.join(tmp, "*.json"))):
    o = json.load(open(f))
    name = os.path.basename(f)[:-5]
    rows[name] = [
        {k: r.get(k) for k in ("dir", "loaded_class", "recon_max_rel_err", "codes_max_rel_err", "codes_support_mismatch", "error")}
        | ({"numpy_reference_recon_max_rel_err": r["numpy_reference"]["recon_max_rel_err"]} if "numpy_reference" in r else {})
        for r in o["results"]
    ]
out = {"all_self_checks_pass": ok, "negative_control_caught": neg, "checks": rows}
os.makedirs(os.path.dirname(res), exist_ok=True)
open(res, "w").write(json.dumps(out, indent=2) + "\n")
print(json.dumps({"all_self_checks_pass": ok, "negative_control_caught": neg, "written": res}))
PY
rm -rf "$tmp"
