//! Batch lasso on MNIST: the dictionary is the first K training images (pixels/255, each
//! column scaled to unit L2 norm), the inputs the first N test images (pixels/255).
//!
//! ```text
//! cargo run --release --example lasso -- --data ../shared/data/mnist --atoms 400 --n 1000 \
//!     --lambda 0.5 --solver exact [--iters I] [--tol T] [--threads P] [--non-negative]
//!     [--save-codes FILE] [--repeat R]
//! ```
//! `--repeat R` solves R times from zero codes and reports the fastest (`ms`).
//! ```text
//! ```
//! Last stdout line: `{"solver", "ms", "objective", "duality_gap", "mean_nnz", "iterations"}`.

mod common;

use common::{die, Args, Json};
use drsae::data::Mnist;
use drsae::linalg::Mat;
use drsae::solvers::{Dictionary, LassoOptions, Solver};
use std::io::Write;
use std::time::Instant;

fn main() {
    let args = Args::parse(&["non-negative"]);
    common::threads(&args);
    let data = args
        .str("data")
        .unwrap_or_else(|| "data/mnist-sample".into());
    let atoms: usize = args.get("atoms", 400);
    let n: usize = args.get("n", 1000);
    let lambda: f32 = args.get("lambda", 0.5);
    let solver: Solver = args
        .get::<String>("solver", "exact".into())
        .parse()
        .unwrap_or_else(|e| die(e));
    let default_iters = match solver {
        Solver::Ista | Solver::Fista => 1000,
        Solver::Cod | Solver::Exact => 1000,
    };
    let iters: usize = args.get("iters", default_iters);
    let tol: f64 = args.get("tol", 1e-7);
    let non_negative = args.flag("non-negative");
    let save = args.str("save-codes");
    let repeat: usize = args.get("repeat", 1);
    args.finish();

    let mnist = Mnist::load(&data).unwrap_or_else(|e| die(e));
    if atoms == 0 || atoms > mnist.train.len() || n == 0 || n > mnist.test.len() {
        die(format!(
            "--atoms must be in 1..={} and --n in 1..={}",
            mnist.train.len(),
            mnist.test.len()
        ));
    }
    let dict = Dictionary::from_unit_rows(&mnist.train.images.row_range(0, atoms).to_owned())
        .unwrap_or_else(|e| die(e));
    let x = mnist.test.images.row_range(0, n).to_owned();
    let opts = LassoOptions::new(lambda)
        .max_iters(iters)
        .tol(tol)
        .non_negative(non_negative);
    let mut z = Mat::zeros(n, atoms);
    let mut best_ms = f64::MAX;
    for _ in 1..repeat {
        z.fill(0.0);
        let t = Instant::now();
        solver
            .solve(&dict, &x, &mut z, &opts)
            .unwrap_or_else(|e| die(e));
        best_ms = best_ms.min(t.elapsed().as_secs_f64() * 1e3);
    }
    z.fill(0.0);
    eprintln!(
        "lasso: {n} inputs, {atoms} atoms, λ = {lambda}, solver {solver:?}, L = {:.3}",
        dict.lipschitz()
    );
    let t = Instant::now();
    let stats = solver
        .solve(&dict, &x, &mut z, &opts)
        .unwrap_or_else(|e| die(e));
    let ms = best_ms.min(t.elapsed().as_secs_f64() * 1e3);
    if let Some(path) = save {
        let bytes: Vec<u8> = z.as_slice().iter().flat_map(|v| v.to_le_bytes()).collect();
        std::fs::File::create(&path)
            .and_then(|mut f| f.write_all(&bytes))
            .unwrap_or_else(|e| die(format!("{path}: {e}")));
    }
    Json::new()
        .str("solver", &format!("{solver:?}").to_lowercase())
        .num("ms", ms)
        .num("objective", stats.objective)
        .num("duality_gap", stats.duality_gap)
        .num("mean_nnz", stats.mean_nnz)
        .num("iterations", stats.iterations)
        .print();
}
