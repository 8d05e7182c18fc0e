#!/usr/bin/env bash
# Issue #23, 200 units T = 11, stages 2 and 3 in one queue, so that stage 3 starts from the
# decision of decide_emax.py (validation only) without anyone reading a test error first.
# Stage 2: --average 0.99975 --e-max 0.125, seeds 0-4 -> results/sel_h200/emax_sS.
# Stage 3: --average 0.99975 + the decided flags, seeds 100-107 -> results/final_h200/sS.
# BIN: a copy of target/release/drsae (sha256 in binary.txt).
set -u
cd "$(dirname "$0")/../.."
export BIN
for s in 0 1 2 3 4; do echo "emax_s$s --average 0.99975 --e-max 0.125 --seed $s"; done \
  | OUT=results/sel_h200 bash results/sel_h200/run.sh
python3 results/sel_h200/decide_emax.py > results/sel_h200/decision.log
flags=$(cat results/sel_h200/decision.txt)
mkdir -p results/final_h200
for s in 100 101 102 103 104 105 106 107; do echo "s$s --average 0.99975 $flags --seed $s"; done \
  | OUT=results/final_h200 bash results/sel_h200/run.sh
echo "pipeline done" >> results/final_h200/done.txt
