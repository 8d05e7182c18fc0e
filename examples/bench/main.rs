//! Throughput benchmarks as JSON lines: `cargo run --release --example bench -- [kernels|train [BATCH]|conv [NAME]|models|gemm [MxKxN [LEVEL]]|gemm-ab|all]`.
//!
//! Each line is `{"bench": NAME, "value": X, "unit": U}`; the best of several timed
//! repetitions is reported.

#[path = "../common/mod.rs"]
mod common;
mod conv;
mod gemm;
mod models;
mod train;

use conv::conv;
use models::models;
use train::train;

use common::{die, Args};
use drsae::kernels::{shrink, shrink_reference, Shrink, Theta};
use drsae::linalg::{gemm, Mat};
use rand::SeedableRng;
use std::time::Instant;

fn emit(name: &str, value: f64, unit: &str) {
    println!("{{\"bench\": \"{name}\", \"value\": {value:.4}, \"unit\": \"{unit}\"}}");
}

/// Best seconds per call of `f` over `reps` repetitions of about `target` seconds each.
fn time_best(mut f: impl FnMut(), target: f64, reps: usize) -> f64 {
    f();
    let t = Instant::now();
    f();
    let once = t.elapsed().as_secs_f64().max(1e-9);
    let iters = ((target / once) as usize).max(1);
    let mut best = f64::MAX;
    for _ in 0..reps {
        let t = Instant::now();
        for _ in 0..iters {
            f();
        }
        best = best.min(t.elapsed().as_secs_f64() / iters as f64);
    }
    best
}

fn kernels() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let x = Mat::random(1, 4096, rand_distr::Uniform::new(-1.0f32, 1.0), &mut rng).into_vec();
    let mut out = vec![0.0f32; 4096];
    let t_pure = time_best(
        || {
            shrink(
                Shrink::NonNegative,
                Theta::Uniform(0.1),
                std::hint::black_box(&x),
                &mut out,
            )
        },
        0.2,
        5,
    );
    emit("shrink_l1", 4096.0 / t_pure / 1e9, "Gelem/s");
    let ts = time_best(
        || {
            shrink_reference(
                Shrink::NonNegative,
                Theta::Uniform(0.1),
                std::hint::black_box(&x),
                &mut out,
            )
        },
        0.2,
        5,
    );
    emit("shrink_scalar_l1", 4096.0 / ts / 1e9, "Gelem/s");
    // The ceiling of an out-of-place map in L1: a copy between the same buffers.
    let tc = time_best(|| out.copy_from_slice(std::hint::black_box(&x)), 0.2, 5);
    emit("copy_l1", 4096.0 / tc / 1e9, "Gelem/s");
    let tsigned = time_best(
        || {
            shrink(
                Shrink::Signed,
                Theta::Uniform(0.1),
                std::hint::black_box(&x),
                &mut out,
            )
        },
        0.2,
        5,
    );
    emit("soft_threshold_l1", 4096.0 / tsigned / 1e9, "Gelem/s");

    let n = 64 << 20;
    let big: Vec<f32> = (0..n).map(|i| ((i % 1000) as f32 - 500.0) * 1e-3).collect();
    let mut dst = vec![0.0f32; n];
    let bytes = 2.0 * 4.0 * n as f64;
    let ts = time_best(
        || {
            shrink(
                Shrink::NonNegative,
                Theta::Uniform(0.1),
                std::hint::black_box(&big),
                &mut dst,
            )
        },
        0.5,
        3,
    );
    let tc = time_best(|| dst.copy_from_slice(std::hint::black_box(&big)), 0.5, 3);
    emit("shrink_64m", bytes / ts / 1e9, "GB/s");
    emit("copy_64m", bytes / tc / 1e9, "GB/s");
    drop((big, dst));

    for &(m, k, n) in &[(256, 784, 400), (256, 400, 400), (256, 400, 784)] {
        let a = Mat::random(m, k, rand_distr::Uniform::new(-1.0f32, 1.0), &mut rng);
        let b = Mat::random(k, n, rand_distr::Uniform::new(-1.0f32, 1.0), &mut rng);
        let mut c = Mat::zeros(m, n);
        let t = time_best(|| gemm(1.0, a.view(), b.view(), 0.0, c.view_mut()), 0.3, 5);
        emit(
            &format!("sgemm_{m}x{k}x{n}"),
            2.0 * (m * n * k) as f64 / t / 1e9,
            "GFLOP/s",
        );
    }

    // The minibatch-10 product A·Wᵀ (10 × 400 by 400 × 400 transposed): ours (the few-row
    // kernel) against matrixmultiply called directly, both on one thread.
    let threads = drsae::linalg::gemm_threads();
    drsae::linalg::set_gemm_threads(1);
    let a = Mat::random(10, 400, rand_distr::Uniform::new(-1.0f32, 1.0), &mut rng);
    let w = Mat::random(400, 400, rand_distr::Uniform::new(-1.0f32, 1.0), &mut rng);
    let mut c = Mat::zeros(10, 400);
    let flops = 2.0 * 10.0 * 400.0 * 400.0;
    let ours = time_best(|| gemm(1.0, a.view(), w.t(), 0.0, c.view_mut()), 0.3, 5);
    let mm = time_best(
        || {
            // SAFETY: A (10 × 400, row-major), Wᵀ (W's storage read with row stride 1 and
            // column stride 400) and C (10 × 400) are valid for these strides, and C does
            // not overlap them.
            unsafe {
                matrixmultiply::sgemm(
                    10,
                    400,
                    400,
                    1.0,
                    a.as_slice().as_ptr(),
                    400,
                    1,
                    w.as_slice().as_ptr(),
                    1,
                    400,
                    0.0,
                    c.as_mut_slice().as_mut_ptr(),
                    400,
                    1,
                )
            }
        },
        0.3,
        5,
    );
    emit(
        "sgemm_10x400x400_abt_1thread",
        flops / ours / 1e9,
        "GFLOP/s",
    );
    emit(
        "matrixmultiply_10x400x400_abt_1thread",
        flops / mm / 1e9,
        "GFLOP/s",
    );

    // The minibatch-10 decoder step of DrSAE: G += β·R·D, D += α·Rᵀ·Z, ‖D columns‖ ≤ 1.
    // Fused (one pass over D) against two GEMMs and the column clip, one thread.
    let r = Mat::random(10, 784, rand_distr::Uniform::new(-1.0f32, 1.0), &mut rng);
    let z = Mat::random(10, 400, rand_distr::Uniform::new(-1.0f32, 1.0), &mut rng);
    let mut d = Mat::random(784, 400, rand_distr::Uniform::new(-0.05f32, 0.05), &mut rng);
    let mut g = Mat::zeros(10, 400);
    let flops = 2.0 * 2.0 * 10.0 * 784.0 * 400.0;
    let fused = time_best(
        || {
            drsae::linalg::rank_update_cols(
                -1e-6,
                r.view(),
                z.view(),
                d.view_mut(),
                Some((1.0, g.view_mut())),
                Some(1.0),
            )
        },
        0.3,
        5,
    );
    let unfused = time_best(
        || {
            gemm(1.0, r.view(), d.view(), 1.0, g.view_mut());
            gemm(-1e-6, r.t(), z.view(), 1.0, d.view_mut());
            drsae::linalg::clip_columns(d.view_mut(), 1.0);
        },
        0.3,
        5,
    );
    // The recurrence's product Z·Sᵀ with codes 20 % non-zero (a trained DrSAE's density),
    // skipping the zeros against the dense GEMM, one thread; dense-equivalent GFLOP/s.
    let codes = Mat::from_fn(100, 400, |_, _| {
        if rand::Rng::gen_bool(&mut rng, 0.2) {
            rand::Rng::gen_range(&mut rng, 0.0f32..1.0)
        } else {
            0.0
        }
    });
    let s_t = Mat::random(400, 400, rand_distr::Uniform::new(-0.1f32, 0.1), &mut rng);
    let mut out = Mat::zeros(100, 400);
    let sparse_flops = 2.0 * 100.0 * 400.0 * 400.0;
    let sparse = time_best(
        || drsae::linalg::sparse_gemm(1.0, codes.view(), s_t.view(), 0.0, out.view_mut()),
        0.3,
        5,
    );
    let dense = time_best(
        || gemm(1.0, codes.view(), s_t.view(), 0.0, out.view_mut()),
        0.3,
        5,
    );
    drsae::linalg::set_gemm_threads(threads);
    emit(
        "sparse_gemm_100x400x400_20pct_1thread",
        sparse_flops / sparse / 1e9,
        "GFLOP/s (dense-equivalent)",
    );
    emit(
        "gemm_100x400x400_same_1thread",
        sparse_flops / dense / 1e9,
        "GFLOP/s",
    );
    emit(
        "decoder_step_fused_784x10x400_1thread",
        flops / fused / 1e9,
        "GFLOP/s",
    );
    emit(
        "decoder_step_gemms_784x10x400_1thread",
        flops / unfused / 1e9,
        "GFLOP/s",
    );
}

/// The sgemm rate at the reference shape 256×784×400, for same-run ratios.
fn reference_gemm_rate() -> f64 {
    reference_gemm_rate_for(0.3, 5)
}

/// [`reference_gemm_rate`] timed as the best of `reps` runs of about `target` seconds.
fn reference_gemm_rate_for(target: f64, reps: usize) -> f64 {
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let a = Mat::random(256, 784, rand_distr::Uniform::new(-1.0f32, 1.0), &mut rng);
    let b = Mat::random(784, 400, rand_distr::Uniform::new(-1.0f32, 1.0), &mut rng);
    let mut c = Mat::zeros(256, 400);
    let tg = time_best(
        || gemm(1.0, a.view(), b.view(), 0.0, c.view_mut()),
        target,
        reps,
    );
    2.0 * 256.0 * 784.0 * 400.0 / tg / 1e9
}

/// The CPU's model name and feature flags as the OS reports them (Linux `/proc/cpuinfo`;
/// elsewhere the features std detects).
fn cpu_model_and_flags() -> (String, String) {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let field = |name: &str| {
        info.lines()
            .find(|l| l.split(':').next().is_some_and(|k| k.trim() == name))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().replace('"', "'"))
    };
    let model = field("model name").unwrap_or_else(|| std::env::consts::ARCH.to_string());
    let flags = field("flags")
        .or_else(|| field("Features"))
        .unwrap_or_else(|| {
            let mut f = Vec::new();
            #[cfg(target_arch = "x86_64")]
            {
                macro_rules! probe {
                ($($feat:tt),*) => {
                    $(if std::arch::is_x86_feature_detected!($feat) { f.push($feat); })*
                };
            }
                probe!("sse4.2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl");
            }
            f.join(" ")
        });
    (model, flags)
}

fn main() {
    let args = Args::parse(&[]);
    let threads = common::threads(&args);
    let group = args
        .positional
        .first()
        .cloned()
        .unwrap_or_else(|| "kernels".into());
    args.finish_positional(3);
    eprintln!("simd: {}, gemm threads: {threads}", drsae::simd_width());
    let (model, flags) = cpu_model_and_flags();
    println!(
        "{{\"simd_level\": \"{}\", \"gemm_threads\": {threads}, \"cpu\": \"{model}\", \"flags\": \"{flags}\"}}",
        drsae::simd::level()
    );
    println!(
        "{{\"bench\": \"simd_width\", \"value\": {}, \"unit\": \"{}\"}}",
        // f32 lanes of one hardware vector at the dispatched level.
        match drsae::simd::level() {
            drsae::simd::Level::Avx512 => 16,
            drsae::simd::Level::Avx2Fma => 8,
            _ if cfg!(target_feature = "avx") => 8,
            _ => 4,
        },
        drsae::simd_width()
    );
    args.finish_positional(3);
    match group.as_str() {
        "kernels" => kernels(),
        "train" => train(args.positional.get(1).map(|b| {
            b.parse()
                .unwrap_or_else(|_| die(format!("batch `{b}` is not a number")))
        })),
        "conv" => conv(args.positional.get(1).map(|s| s.as_str())),
        "models" => models(),
        "gemm-ab" => gemm::gemm_ab(),
        "gemm" => gemm::gemm_levels(
            args.positional.get(1).map(|s| s.as_str()),
            args.positional.get(2).map(|s| s.as_str()),
        ),
        "all" => {
            kernels();
            train(None);
            conv(None);
            models()
        }
        other => die(format!(
            "unknown bench group `{other}` (kernels, train, conv, models, gemm, gemm-ab, all)"
        )),
    }
}
