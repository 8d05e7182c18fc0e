//! `bench train [BATCH]`: DrSAE training steps (n = 400, T = 11) on the bundled MNIST sample,
//! samples/s, and at minibatch 100 the executed GFLOP/s over the best sgemm rate of the run.

use super::{emit, gemm::rate, time_best};
use crate::common::die;
use drsae::linalg::Mat;
use rand::SeedableRng;

/// Dense FLOP of one DrSAE training step per example: forward 2(2mn + (T−1)n²), backward
/// 2(3mn + 2(T−1)n²), classifier terms ignored.
fn drsae_dense_flops(m: usize, n: usize, t: usize) -> f64 {
    2.0 * (5.0 * (m * n) as f64 + 3.0 * ((t - 1) * n * n) as f64)
}

/// FLOP one DrSAE training step executes per example: the five m × n products are dense;
/// the recurrence's products skip the zeros of the codes (forward: Zᵗ⁻¹·Sᵀ for t = 1..T−1)
/// and of δUᵗ (backward: δUᵗ·S and the δUᵗᵀ·Zᵗ⁻¹ of ∂S for t = 1..T−1), each non-zero
/// costing 2n. δUᵗ = Ḡᵗ ⊙ [Zᵗ ≠ 0] has at most the non-zeros of Zᵗ, which are counted (an
/// upper bound). `nnz[t]` is the mean number of non-zero codes per example after step t.
fn drsae_executed_flops(m: usize, n: usize, nnz: &[f64]) -> f64 {
    let t = nnz.len();
    let forward: f64 = nnz[..t - 1].iter().sum();
    let backward: f64 = nnz[1..].iter().sum();
    2.0 * (5.0 * (m * n) as f64 + n as f64 * (forward + 2.0 * backward))
}

/// The best sgemm rate at the DrSAE shapes (B row-major and transposed), GFLOP/s.
pub(crate) fn best_sgemm_rate() -> f64 {
    let mut best = 0.0f64;
    for shape in &super::gemm::SHAPES[..3] {
        for transposed in [false, true] {
            best = best.max(rate(*shape, transposed, 0.02));
        }
    }
    best
}

pub(crate) fn train(only_batch: Option<usize>) {
    use drsae::models::{DrsaeNetwork, DrsaeWorkspace};
    use drsae::train::{DrsaeConfig, DrsaeStep, Optimizer, Schedule};
    let (m, n, t) = (784, 400, 11);
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    // Real data: the bundled sample, unit-norm rows.
    let mnist = drsae::data::Mnist::load("data/mnist-sample").unwrap_or_else(|e| die(e));
    let mut x = mnist.train.images.row_range(0, 2000).to_owned();
    drsae::data::normalize_rows_l2(&mut x);
    let labels = &mnist.train.labels[..2000];
    let gemm_before = best_sgemm_rate();
    let mut executed = Vec::new();
    for &batch in &[10usize, 100] {
        if only_batch.is_some_and(|b| b != batch) {
            continue;
        }
        for supervised in [false, true] {
            let cfg = DrsaeConfig {
                hidden: n,
                steps: t,
                batch,
                optimizer: Optimizer::Sgd,
                lr: 1e-3,
                schedule: Schedule::Constant,
                ..Default::default()
            };
            let mut model = DrsaeNetwork::init(&x, n, 10, t, &mut rng);
            let mut step = DrsaeStep::new(&model, &cfg);
            let weights = if supervised {
                cfg.weights
            } else {
                cfg.weights.unsupervised()
            };
            let nb = x.nrows() / batch;
            let batches: Vec<Mat> = (0..nb)
                .map(|k| x.row_range(k * batch, (k + 1) * batch).to_owned())
                .collect();
            let mut k = 0;
            let secs = time_best(
                || {
                    let i = k % nb;
                    k += 1;
                    step.run(
                        &mut model,
                        &cfg,
                        &batches[i],
                        &labels[i * batch..(i + 1) * batch],
                        &weights,
                        1e-3,
                    )
                    .unwrap();
                },
                1.0,
                3,
            );
            let rate = batch as f64 / secs;
            let name = format!(
                "drsae_b{batch}_{}",
                if supervised { "sup" } else { "unsup" }
            );
            emit(&name, rate, "samples/s");
            if batch == 100 {
                // The codes' density per step, on the model as the timed steps left it.
                let mut ws = DrsaeWorkspace::default();
                let mut nnz = vec![0.0f64; t];
                for b in &batches {
                    model.forward(b, None, &mut ws);
                    for (step_t, count) in nnz.iter_mut().enumerate() {
                        let z = ws.step_codes(batch, step_t).to_owned();
                        *count += z.as_slice().iter().filter(|&&v| v != 0.0).count() as f64;
                    }
                }
                nnz.iter_mut().for_each(|c| *c /= x.nrows() as f64);
                let density = nnz.iter().sum::<f64>() / (t * n) as f64;
                emit(&format!("{name}_code_density"), density, "fraction");
                let gflops = rate * drsae_executed_flops(m, n, &nnz) / 1e9;
                emit(&format!("{name}_executed_gflops"), gflops, "GFLOP/s");
                let dense = rate * drsae_dense_flops(m, n, t) / 1e9;
                emit(&format!("{name}_dense_equivalent_gflops"), dense, "GFLOP/s");
                let label = if supervised {
                    "drsae_b100".to_string()
                } else {
                    name
                };
                executed.push((label, gflops));
            }
        }
    }
    let gemm_rate = gemm_before.max(best_sgemm_rate());
    emit("sgemm_best_same_run", gemm_rate, "GFLOP/s");
    for (name, gflops) in executed {
        emit(
            &format!("{name}_gemm_fraction"),
            gflops / gemm_rate,
            "ratio",
        );
    }
}
