#!/usr/bin/env bash
# Issue #23, DrSAE T = 11 (HIDDEN units, default 200): runs a queue of "NAME ARGS..." lines (stdin) on two chains,
# one thread each. Binary: $BIN (a copy of target/release/drsae, its sha256 in binary.txt).
# Each run: `drsae train drsae --data ../shared/data/mnist --hidden HIDDEN --steps 11
#   --epochs-unsup 5 --epochs-sup 100 --lr 2e-3 --batch 50 --threads 1 ARGS --out OUT/NAME`,
# stdout (the final JSON, with the full configuration) to OUT/NAME.json, stderr (progress)
# to OUT/NAME.log.
set -u
OUT=${OUT:-results/sel_h200}
HIDDEN=${HIDDEN:-200}
run() {
  name=$1; shift
  nice -n 10 "$BIN" train drsae --data ../shared/data/mnist --hidden "$HIDDEN" --steps 11 \
    --epochs-unsup 5 --epochs-sup 100 --lr 2e-3 --batch 50 --threads 1 "$@" \
    --out "$OUT/$name" > "$OUT/$name.json" 2> "$OUT/$name.log"
  echo "$name exit $?" >> "$OUT/done.txt"
}
export -f run; export OUT BIN HIDDEN
xargs -P 2 -L 1 bash -c 'run "$@"' _
