#!/usr/bin/env bash
# SAE training throughput side by side on this machine: SAELens's TopK trainer, then drsae's
# `sae throughput` three times and once without AuxK, one after the other, 2 threads.
# Usage: scripts/sae/sidebyside.sh OUTDIR   (needs `pip install sae-lens`, and
# `cargo build --release --example sae`). Writes OUTDIR/{lscpu.txt, run.log, saelens.json,
# drsae_1..3.json, drsae_noaux.json, sidebyside.json}.
set -euo pipefail
out=$1
mkdir -p "$out"
lscpu > "$out/lscpu.txt"
[ -n "${ASSEMBLE_ONLY:-}" ] || {
  uptime
  python3 scripts/sae/saelens_topk_throughput.py --steps 3 --warmup 1 --threads 2 \
    --skip-sparse --out "$out/saelens.json"
  for i in 1 2 3; do
    uptime
    target/release/examples/sae throughput --steps 3 --threads 2 | tee "$out/drsae_$i.json"
  done
  uptime
  target/release/examples/sae throughput --steps 3 --threads 2 --no-aux | tee "$out/drsae_noaux.json"
  uptime
} > "$out/run.log" 2>&1
python3 - "$out" <<'PY'
import json, statistics, sys
out = sys.argv[1]
last = lambda p: json.loads(open(p).read().strip().splitlines()[-1])
s = json.load(open(f"{out}/saelens.json"))
runs = [last(f"{out}/drsae_{i}.json") for i in (1, 2, 3)]
noaux = last(f"{out}/drsae_noaux.json")
tps = [r["tokens_per_second"] for r in runs]
med = statistics.median(tps)
mid = runs[tps.index(med)]
flags = open(f"{out}/lscpu.txt").read()
d = {
    "what": "SAELens TopK trainer (SAETrainer.step) then drsae `sae throughput` three times and once --no-aux, one after the other; d_in 768, d_sae 16384, k 32, batch 4096, AuxK with half the latents dead (k_aux 384), 2 threads",
    "commands": [f"scripts/sae/sidebyside.sh {out}"],
    "cpu": runs[0]["cpu"],
    "avx_flags": sorted({w for w in flags.split() if w.startswith("avx")}),
    "git_commit": runs[0]["git_commit"],
    "saelens_trainer_tokens_per_s": s["trainer"]["tokens_per_s"],
    "saelens_direct_tokens_per_s": s["direct"]["tokens_per_s"],
    "torch_encoder_gemm_best_s": s["gemm_torch"]["best_s"],
    "numpy_encoder_gemm_best_s": s["gemm_numpy_openblas"]["best_s"],
    "drsae_tokens_per_s_runs": tps,
    "drsae_tokens_per_s_median": med,
    "drsae_fraction_of_bound_runs": [r["fraction_of_bound"] for r in runs],
    "drsae_fraction_of_bound_median": mid["fraction_of_bound"],
    "drsae_fraction_of_torch_gemm_bound_median": med * s["gemm_torch"]["best_s"] / 4096,
    "drsae_encoder_gemm_seconds_runs": [r["encoder_gemm_seconds"] for r in runs],
    "ratio_to_saelens_trainer_median": med / s["trainer"]["tokens_per_s"],
    "noaux_tokens_per_s": noaux["tokens_per_second"],
    "noaux_fraction_of_bound": noaux["fraction_of_bound"],
}
json.dump(d, open(f"{out}/sidebyside.json", "w"), indent=1)
print(json.dumps(d, indent=1))
PY
