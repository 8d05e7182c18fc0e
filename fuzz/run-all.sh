#!/usr/bin/env bash
# Runs every fuzz target for SECS seconds (default 600) one after the other, without a
# sanitizer; new corpus entries go to the ignored fuzz/corpus/<target>/, crashes to
# fuzz/artifacts/<target>/. Logs: fuzz/logs/<target>.log.
set -u
cd "$(dirname "$0")"
secs=${1:-600}
mkdir -p logs
for t in idx pgm json model_file checkpoint kernels layouts mnist_dir resume model_load; do
  mkdir -p corpus/$t
  RUSTC_BOOTSTRAP=1 cargo fuzz run --sanitizer none $t corpus/$t seeds/$t -- -max_total_time=$secs -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 > logs/$t.log 2>&1
  echo "$t: exit $?"
done
