#!/usr/bin/env bash
# Re-measures every figure of BENCHMARKS.md on this machine, one after the other (run it on
# an otherwise idle machine). Outputs: results/*.json|log. Needs ../shared/data, and for the
# peer columns: pip install numpy spams-bin torch.
set -u
cd "$(dirname "$0")/.."
mkdir -p results
cargo build --release --examples -p drsae
cargo build --release -p drsae-cli
lscpu | grep -E "Model name|^CPU\(s\)|L2|L3" > results/machine.txt
./target/release/examples/bench kernels > results/bench_kernels.json
OPENBLAS_NUM_THREADS=2 python3 scripts/numpy_sgemm.py > results/numpy_sgemm.json
python3 scripts/lasso_vs_spams.py ../shared/data/mnist exact fista > results/lasso_vs_spams.json
./target/release/examples/bench train > results/bench_train.json
python3 scripts/pytorch_drsae_step.py 2 > results/torch_train.json
./target/release/drsae reproduce sample -- --out results/mnist_sample > results/mnist_sample.json 2> results/mnist_sample.log
./target/release/drsae reproduce topographic -- --out results/topographic > results/topographic.json 2> results/topographic.log
for s in tree grid learned; do
  ./target/release/drsae train inhibition --data ../shared/data/natural --structure $s --time-budget 60 --epochs 100000 --out results/inhibition_$s > results/inhibition_$s.json 2> results/inhibition_$s.log
done
./target/release/examples/bench conv > results/bench_conv.json
./target/release/drsae train conv --data ../shared/data/mnist --maps2 32 --random-baseline --time-budget 150 --out results/conv > results/conv.json 2> results/conv.log
./target/release/drsae reproduce pinwheel -- --out results/pinwheel > results/pinwheel.json 2> results/pinwheel.log
