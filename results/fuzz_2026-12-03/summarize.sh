#!/usr/bin/env bash
# Summarises the TARGET.log files of run.sh into summary.md (one row per target), in this
# directory or in the directory given as the first argument (relative to this one or
# absolute: `bash summarize.sh ten_minutes` writes ten_minutes/summary.md).
cd "$(dirname "$0")"
cd "${1:-.}" || exit 1
{
  echo "| target | seconds | executions | exec/s | coverage (cov) | features (ft) | corpus | peak RSS MB | crashes / timeouts / OOM |"
  echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
  for t in mnist_dir resume model_load idx pgm model_file checkpoint kernels layouts; do
    f=$t.log
    [ -f "$f" ] || { echo "| $t | not run | | | | | | | |"; continue; }
    done_line=$(grep -E '^Done [0-9]+ runs' "$f" | tail -1)
    runs=$(echo "$done_line" | awk '{print $2}')
    secs=$(echo "$done_line" | awk '{print $5}')
    last=$(grep -E '^#[0-9]+' "$f" | tail -1)
    cov=$(echo "$last" | grep -oE 'cov: [0-9]+' | awk '{print $2}')
    ft=$(echo "$last" | grep -oE 'ft: [0-9]+' | awk '{print $2}')
    corp=$(echo "$last" | grep -oE 'corp: [0-9]+/[0-9]+[a-zA-Z]*' | awk '{print $2}')
    eps=$(grep -E '^stat::average_exec_per_sec' "$f" | awk '{print $2}')
    rss=$(grep -E '^stat::peak_rss_mb' "$f" | awk '{print $2}')
    bad=$(grep -cE 'deadly signal|==ERROR|ERROR: libFuzzer|Test unit written to|panicked at' "$f")
    [ -z "$done_line" ] && runs="(unfinished)"
    echo "| $t | $secs | $runs | $eps | $cov | $ft | $corp | $rss | $bad |"
  done
} > summary.md
cat summary.md
