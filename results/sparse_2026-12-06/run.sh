#!/usr/bin/env bash
# Issue #21: the sparse products' packed panels / vector lists / row blocks / column split
# (c09847f, 88526b3, 9888850) against the library before them (3ef6710).
# Builds (made before, commands in config.txt):
#   new native ./target/release/examples/bench      new base /tmp/tgt-base/release/examples/bench
#   old native /tmp/tgt-oldnat/release/examples/bench old base /tmp/tgt-oldbase/release/examples/bench
#   step harness (step_harness.rs in a scratch crate depending on drsae by path, default
#   flags = the baseline a dependent crate gets): /tmp/step_new, /tmp/step_old.
# Usage: run.sh [OUT_DIR]
set -u
cd "$(dirname "$0")/../.."
out=${1:-results/sparse_2026-12-06}
mkdir -p $out
bin() { case $1 in native) echo ./target/release/examples/bench;; base) echo /tmp/tgt-base/release/examples/bench;;
  oldnative) echo /tmp/tgt-oldnat/release/examples/bench;; oldbase) echo /tmp/tgt-oldbase/release/examples/bench;; esac; }
lab() { sed "s/^{/{\"round\": $1, \"build\": \"$2\", /"; }
up() { echo "{\"round\": $1, \"what\": \"$2\", \"uptime\": \"$(uptime | sed 's/^ *//')\"}"; }
# 1. One-thread training lines, alternating, 2 rounds.
for r in 1 2; do for b in oldnative native oldbase base; do
  up $r "$b train1" >> $out/train_1thread.jsonl
  $(bin $b) train --threads 1 2>/dev/null | lab $r $b >> $out/train_1thread.jsonl
done; done
# 2. Kernel lines, one round per build.
for b in native base oldnative oldbase; do
  up 1 "$b kernels" >> $out/kernels.jsonl
  $(bin $b) kernels 2>/dev/null | lab 1 $b >> $out/kernels.jsonl
done
# 3. Training on a trained model (results/final_h400/s100), the step harness, 3 rounds.
m=results/final_h400/s100/model.safetensors
for r in 1 2 3; do for b in old new; do for th in 1 2; do for bs in 10 100; do
  echo "{\"round\": $r, \"build\": \"$b\", \"threads\": $th, \"batch\": $bs, \"uptime\": \"$(uptime | sed 's/^ *//')\", \"out\": \"$(MODEL=$m /tmp/step_$b $th $bs sup 4 2>&1 | tail -1)\"}" >> $out/trained_model.jsonl
done; done; done; done
# 4. Two threads against PyTorch (eager), in the order native, base, torch, base, native.
for b in native base torch base native; do
  up 1 "$b train2" >> $out/train_vs_torch.jsonl
  case $b in
    torch) python3 scripts/pytorch_drsae_step.py 2 2>/dev/null | lab 1 torch >> $out/train_vs_torch.jsonl ;;
    *) $(bin $b) train --threads 2 2>/dev/null | lab 1 $b >> $out/train_vs_torch.jsonl ;;
  esac
done
echo finished >> $out/done.txt
