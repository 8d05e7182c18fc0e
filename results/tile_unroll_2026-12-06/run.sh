#!/usr/bin/env bash
# Issue #21: the packed AVX-512 tile with its k loop unrolled by four in the source (new)
# against LLVM-unrolled (old, d5ba84b), native and baseline
# builds, `bench train`, alternating, 2 rounds at --threads 1 then 2 rounds at --threads 2.
# Old binaries: copies of the d5ba84b builds in /tmp/bench_{native,base}_old; new: the
# checkout's target/release/examples/bench and /tmp/tgt-base/release/examples/bench.
set -u
set -u
cd "$(dirname "$0")/../.."
exec results/optimizer_simd_2026-12-06/run.sh results/tile_unroll_2026-12-06
