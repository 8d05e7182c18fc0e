#!/usr/bin/env bash
# Issue #21: the optimiser update as a dispatched SIMD kernel on the GEMM pool (new) against
# the auto-vectorised scalar loop with spawned threads (old, d5ba84b), native and baseline
# builds, `bench train`, alternating, 2 rounds at --threads 1 then 2 rounds at --threads 2.
# Old binaries: copies of the d5ba84b builds in /tmp/bench_{native,base}_old; new: the
# checkout's target/release/examples/bench and /tmp/tgt-base/release/examples/bench.
set -u
cd "$(dirname "$0")/../.."
t=${1:-results/optimizer_simd_2026-12-06}/train.jsonl  # OUT_DIR argument: also used by ../tile_unroll_2026-12-06/run.sh
for th in 1 2; do
  for r in 1 2; do
    for b in native_old native_new base_old base_new; do
      case $b in
        native_old) bin=/tmp/bench_native_old ;; base_old) bin=/tmp/bench_base_old ;;
        native_new) bin=./target/release/examples/bench ;; base_new) bin=/tmp/tgt-base/release/examples/bench ;;
      esac
      echo "{\"round\": $r, \"threads\": $th, \"what\": \"$b\", \"uptime\": \"$(uptime | sed 's/^ *//')\"}" >> $t
      $bin train --threads $th 2>/dev/null | sed "s/^{/{\"round\": $r, \"threads\": $th, \"build\": \"$b\", /" >> $t
    done
  done
done
