#!/usr/bin/env bash
# Issue #23, unit structure: two variants of "Adam in phase 1, momentum 1e-2 in phase 2"
# (results/mnist9_h400_adam_mom1e-2_s0: 126 part-units, 129 categorical, validation 1.25 %)
# at 400 units, T = 11, seed 0, side by side, one thread each, niced 10:
#   long:  --epochs-sup 150 (half as long again)
#   rec25: --reconstruction 2.5 (half the reconstruction weight)
# Rule fixed before the runs: among the models with > 50 part-units and > 50 categorical
# units (these two and mnist9_h400_adam_mom1e-2_s0), the lowest validation error is the
# candidate; its test error is read once (pick.py reads only val_error and unit counts).
# BIN: a copy of target/release/drsae.
set -u
cd "$(dirname "$0")/../.."
out=results/units_2026-12-06
common="train drsae --data ../shared/data/mnist --hidden 400 --steps 11 --epochs-unsup 5
  --optimizer momentum --lr 1e-2 --optimizer-unsup adam --lr-unsup 2e-3 --batch 50
  --average 0.9999 --threads 1 --seed 0"
nice -n 10 "$BIN" $common --epochs-sup 150 --out $out/long > $out/long.json 2> $out/long.log &
nice -n 10 "$BIN" $common --epochs-sup 100 --reconstruction 2.5 --out $out/rec25 > $out/rec25.json 2> $out/rec25.log &
wait
echo finished >> $out/done.txt
