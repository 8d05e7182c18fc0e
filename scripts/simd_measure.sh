#!/usr/bin/env bash
# The issue-21 measurements (run-time SIMD dispatch): the native build against the x86-64
# baseline build, and drsae's sgemm against numpy/OpenBLAS with its AVX-512 kernel, in
# alternating rounds of one run. Usage: scripts/simd_measure.sh OUT_DIR [ROUNDS]
# Needs both builds first:
#   cargo build --release --example bench
#   RUSTFLAGS="-C target-cpu=x86-64" cargo build --release --example bench --target-dir /tmp/tgt-base
set -u
cd "$(dirname "$0")/.."
out=${1:?output directory}
rounds=${2:-3}
mkdir -p "$out"
native=./target/release/examples/bench
base=/tmp/tgt-base/release/examples/bench
numpy() { env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OPENBLAS_NUM_THREADS=2 python3 scripts/numpy_sgemm.py "$@"; }
{
  echo "date: $(date -u +%FT%TZ)"
  echo "commit: $(git rev-parse HEAD) ($(git status --porcelain | wc -l) uncommitted paths)"
  echo "rustc: $(rustc --version)"
  echo "native build: cargo build --release --example bench (.cargo/config.toml: $(grep rustflags .cargo/config.toml))"
  echo "baseline build: RUSTFLAGS=\"-C target-cpu=x86-64\" cargo build --release --example bench --target-dir /tmp/tgt-base"
  echo "numpy: $(python3 -c 'import numpy; print(numpy.__version__)'), run as: env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OPENBLAS_NUM_THREADS=2 python3 scripts/numpy_sgemm.py"
  echo "openblas: $(env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OPENBLAS_NUM_THREADS=2 python3 -c 'import numpy as np, threadpoolctl; np.ones((8,8),np.float32)@np.ones((8,8),np.float32); print(threadpoolctl.threadpool_info())' 2>&1)"
  echo "DRSAE_SIMD: ${DRSAE_SIMD:-unset}; gemm threads: default (all logical cores)"
  echo
  lscpu
} > "$out/config.txt"
log() { echo "{\"what\": \"$2\", \"uptime\": \"$(uptime | sed "s/^ *//")\"}"; }
for r in $(seq 1 "$rounds"); do
  for build in native base; do
    bin=$native; [ $build = base ] && bin=$base
    { log "$r" "$build kernels"; $bin kernels 2>/dev/null; } | sed "s/^{/{\"round\": $r, \"build\": \"$build\", /" >> "$out/kernels.jsonl"
    { log "$r" "$build train"; $bin train 2>/dev/null; } | sed "s/^{/{\"round\": $r, \"build\": \"$build\", /" >> "$out/train.jsonl"
  done
  { log "$r" numpy; numpy --big; } | sed "s/^{/{\"round\": $r, /" >> "$out/sgemm_vs_numpy.jsonl"
  for shape in 256x784x400 256x400x400 256x400x784 4096x768x16384; do
    for level in avx512 avx2; do
      { log "$r" "gemm $shape $level"; $native gemm $shape $level 2>/dev/null | grep sgemm_; } | sed "s/^{/{\"round\": $r, /" >> "$out/sgemm_vs_numpy.jsonl"
    done
  done
done
