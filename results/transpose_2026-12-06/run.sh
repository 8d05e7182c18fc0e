#!/usr/bin/env bash
# Issue #21: the dispatched 8x8 transpose (AVX2 shuffles on the x86 levels) against the
# wide::f32x8 one, `bench train --threads 1`, four builds alternating, 3 rounds:
#   *_old: cecdb45 (transpose through wide::f32x8), *_new: the transpose dispatched;
#   base: RUSTFLAGS="-C target-cpu=x86-64" (what a dependent crate gets), native: the
#   repository's .cargo/config.toml (target-cpu=native).
# Binaries: /tmp/bench_{base,native}_{old,new}_t (sha256 in binaries.txt). Background
# trainings (results/final_h400) are paused (SIGSTOP) for the duration.
set -u
cd "$(dirname "$0")/../.."
d=results/transpose_2026-12-06; t=$d/train_1thread.jsonl
pkill -STOP -f drsae_c0392c8; sleep 2
for r in 1 2 3; do
  for b in native_old base_old native_new base_new; do
    echo "{\"round\": $r, \"what\": \"$b train\", \"uptime\": \"$(uptime | sed 's/^ *//')\"}" >> $t
    /tmp/bench_${b}_t train --threads 1 2>/dev/null | sed "s/^{/{\"round\": $r, \"build\": \"$b\", /" >> $t
  done
done
pkill -CONT -f drsae_c0392c8
echo finished >> $d/done.txt
