#!/usr/bin/env bash
# Issue #21 re-measured on an idle machine after the pool fix (8cf56f6) and the shrink's
# cache-line head (d5ba84b): scripts/simd_measure.sh with 2 rounds, then five training runs
# in the order native, base, PyTorch, base, native (2 threads each) into train_vs_torch.jsonl.
# Usage: run.sh [OUT_DIR] (default this directory). Both bench builds first (see scripts/simd_measure.sh's header).
set -u
cd "$(dirname "$0")/../.."
out=${1:-results/simd_2026-12-06}
mkdir -p $out
scripts/simd_measure.sh $out 2
t=$out/train_vs_torch.jsonl
lab() { sed "s/^{/{\"round\": 1, \"build\": \"$1\", /"; }
for b in native base torch base native; do
  echo "{\"what\": \"$b train\", \"uptime\": \"$(uptime | sed 's/^ *//')\"}" >> $t
  case $b in
    native) ./target/release/examples/bench train --threads 2 2>/dev/null | lab native >> $t ;;
    base) /tmp/tgt-base/release/examples/bench train --threads 2 2>/dev/null | lab base >> $t ;;
    torch) python3 scripts/pytorch_drsae_step.py 2 2>/dev/null | lab torch >> $t ;;
  esac
done
echo finished >> $out/done.txt
