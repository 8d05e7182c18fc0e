#!/usr/bin/env bash
# Runs every fuzz target for SECS seconds (default 300), one after the other under nice -n 15, from the
# binaries `RUSTC_BOOTSTRAP=1 cargo fuzz build --sanitizer none` built (the same binaries
# and libFuzzer options as `cargo fuzz run --sanitizer none TARGET -- -max_total_time=300
# -rss_limit_mb=2048 -timeout=10`, without cargo rebuilding them mid-run).
# Corpus: fuzz/corpus/TARGET (ignored by git) plus the seeds; crashes in
# fuzz/artifacts/TARGET/; each run's log here as TARGET.log, or in $FUZZ_OUT if set (a
# directory, relative to this one or absolute: `FUZZ_OUT=ten_minutes bash run.sh 600 idx`).
# If BUILT_AT is set (the commit the binaries were built from), each log's first line ends
# with "(binaries at $BUILT_AT)".
set -u
cd "$(dirname "$0")/../../fuzz"
secs=${1:-300}
shift || true
targets=${*:-idx pgm model_file checkpoint kernels layouts mnist_dir resume model_load}
bin=target/x86_64-unknown-linux-gnu/release
here=$(pwd)/../results/fuzz_2026-12-03
out=${FUZZ_OUT:-.}
case $out in /*) ;; *) out=$here/$out ;; esac
mkdir -p "$out"
built=${BUILT_AT:+ (binaries at $BUILT_AT)}
for t in $targets; do
  mkdir -p corpus/$t artifacts/$t
  cmd="$bin/$t -max_total_time=$secs -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 -artifact_prefix=artifacts/$t/ corpus/$t seeds/$t"
  echo "# $(date -u +%FT%TZ) $cmd$built" > "$out/$t.log"
  nice -n 15 $cmd >> "$out/$t.log" 2>&1
  echo "# exit $? at $(date -u +%FT%TZ)" >> "$out/$t.log"
done
