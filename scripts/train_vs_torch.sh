#!/usr/bin/env bash
# DrSAE training throughput, ours and PyTorch's, interleaved in one run (ours, torch, ours)
# so that machine noise shows. 2 threads each.
set -eu
cd "$(dirname "$0")/.."
cargo build --release --example bench
./target/release/examples/bench train --threads 2
python3 scripts/pytorch_drsae_step.py 2
./target/release/examples/bench train --threads 2
