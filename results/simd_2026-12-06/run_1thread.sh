#!/usr/bin/env bash
# Issue #21: baseline build ÷ native build on `bench train --threads 1`, alternating, 3
# rounds; usage: run_1thread.sh [OUT_DIR] (default this directory) (one thread avoids the two-vCPU host's bimodal two-thread mode).
set -u
cd "$(dirname "$0")/../.."
out=${1:-results/simd_2026-12-06}
mkdir -p $out
t=$out/train_1thread.jsonl
for r in 1 2 3; do
  for b in native base; do
    bin=./target/release/examples/bench; [ $b = base ] && bin=/tmp/tgt-base/release/examples/bench
    echo "{\"round\": $r, \"what\": \"$b train\", \"uptime\": \"$(uptime | sed 's/^ *//')\"}" >> $t
    $bin train --threads 1 2>/dev/null | sed "s/^{/{\"round\": $r, \"build\": \"$b\", /" >> $t
  done
done
echo finished >> $out/done_1thread.txt
