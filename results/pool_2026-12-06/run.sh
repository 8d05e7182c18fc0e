#!/usr/bin/env bash
# Issue #21: the two-thread pool under contention, old (workers must all check in to every
# job) against new (the caller waits only for workers that entered the job). Run while two
# one-thread DrSAE trainings (#23's results/sel_h200 chains) hold both cores.
# OLD, NEW: two drsae binaries (sha256 in binaries.txt). Alternates old/new, 3 rounds.
set -eu
OUT=results/pool_2026-12-06
for round in 1 2 3; do
  for which in old new; do
    bin=$OLD; [ $which = new ] && bin=$NEW
    rm -rf /tmp/pool_$which
    uptime | sed "s/^/round $round $which topographic: /" >> $OUT/load.txt
    $bin reproduce topographic -- --epochs 30 --out /tmp/pool_$which --quiet 2>/dev/null | tail -1 \
      | sed "s/^/{\"round\":$round,\"build\":\"$which\",\"job\":\"topographic --epochs 30\",\"result\":/; s/$/}/" >> $OUT/runs.jsonl
    rm -rf /tmp/pool_$which
    $bin train drsae --epochs-unsup 3 --epochs-sup 25 --threads 2 --out /tmp/pool_$which --quiet 2>/dev/null | tail -1 \
      | sed "s/^/{\"round\":$round,\"build\":\"$which\",\"job\":\"train drsae (sample, 3+25 epochs, 2 threads)\",\"result\":/; s/$/}/" >> $OUT/runs.jsonl
  done
done

# Part 2 (idle), run by hand with every other drsae process paused (kill -STOP / -CONT):
#   for r in 1 2; do for b in old new; do
#     bin=/work/wt-old/target/release/examples/bench; [ $b = new ] && bin=target/release/examples/bench
#     $bin train --threads 2 2>/dev/null | sed "s/^{/{\"round\": $r, \"build\": \"$b\", /" >> $OUT/idle_train.jsonl
#   done; done
