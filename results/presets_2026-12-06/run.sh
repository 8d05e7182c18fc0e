#!/usr/bin/env bash
# Issue #24: BENCHMARKS.md's natural-image and conv presets measured with the drsae CLI
# (BIN, built from 8cf56f6; sha256 in binary.txt). Epoch-based presets, so the models do not
# depend on the machine's speed; run beside #23's two one-thread chains (timings contended).
set -u
OUT=results/presets_2026-12-06
for p in topographic pinwheel topographic-tree conv inhibition-grid; do
  $BIN reproduce $p -- --out $OUT/$p --quiet > $OUT/$p.json 2> $OUT/$p.log
  echo "$p exit $?" >> $OUT/done.txt
done
