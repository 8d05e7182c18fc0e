#!/usr/bin/env bash
# Issue #24, after run.sh: the lateral-inhibition structure rows by epochs (the epoch counts
# the former example's 60 s runs reached: tree 773, grid 454, learned 395) and the
# topographic preset's seed 1.
set -u
OUT=results/presets_2026-12-06
while pgrep -f "presets_2026-12-06/run.sh" > /dev/null; do sleep 5; done
for s in "tree 773" "grid 454" "learned 395"; do
  set -- $s
  $BIN train inhibition --data ../shared/data/natural --structure $1 --epochs $2 --out $OUT/inhibition_$1 --quiet > $OUT/inhibition_$1.json 2> $OUT/inhibition_$1.log
  echo "inhibition_$1 exit $?" >> $OUT/done.txt
done
$BIN reproduce topographic -- --seed 1 --out $OUT/topographic_seed1 --quiet > $OUT/topographic_seed1.json 2> $OUT/topographic_seed1.log
echo "topographic_seed1 exit $?" >> $OUT/done.txt
