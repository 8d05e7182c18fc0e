//! Throughput benchmarks as JSON lines: `cargo run --release --example bench -- [kernels|train [BATCH]|conv [NAME]|models|all]`.
//!
//! Each line is `{"bench": NAME, "value": X, "unit": U}`; the best of several timed
//! repetitions is reported.

mod common;

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

/// FLOP of one DrSAE training step per example: forward 2(2mn + (T−1)n²), backward
/// 2(3mn + 2(T−1)n²), classifier terms ignored.
fn drsae_step_flops(m: usize, n: usize, t: usize) -> f64 {
    2.0 * (5.0 * (m * n) as f64 + 3.0 * ((t - 1) * n * n) as f64)
}

fn train(only_batch: Option<usize>) {
    use drsae::models::DrsaeNetwork;
    use drsae::train::{DrsaeConfig, DrsaeStep, Optimizer, Schedule};
    let (m, n, t) = (784, 400, 11);
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    // Real data: the bundled sample, unit-norm rows.
    let mnist = drsae::data::Mnist::load("data/mnist-sample").unwrap_or_else(|e| die(e));
    let mut x = mnist.train.images.row_range(0, 2000).to_owned();
    drsae::data::normalize_rows_l2(&mut x);
    let labels = &mnist.train.labels[..2000];
    let gemm_rate = reference_gemm_rate();
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
            emit(
                &format!(
                    "drsae_b{batch}_{}",
                    if supervised { "sup" } else { "unsup" }
                ),
                rate,
                "samples/s",
            );
            if batch == 100 && supervised {
                let gflops = rate * drsae_step_flops(m, n, t) / 1e9;
                emit("drsae_b100_gflops", gflops, "GFLOP/s");
                emit("sgemm_256x784x400_same_run", gemm_rate, "GFLOP/s");
                emit("drsae_b100_gemm_fraction", gflops / gemm_rate, "ratio");
            }
        }
    }
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

/// Convolutional group-sparse auto-encoder forward + backward (the `conv` example's two
/// layers and a wider first layer), in GFLOP/s of its five GEMMs, against sgemm.
fn conv(only: Option<&str>) {
    use drsae::kernels::{ConvShape, Groups};
    if only.map_or(true, |o| o == "kernels") {
        conv_kernels();
    }
    use drsae::models::{ConvAe, ConvAeWorkspace, EncoderForm};
    let mut rng = rand::rngs::StdRng::seed_from_u64(2);
    let gemm_rate = reference_gemm_rate();
    emit("sgemm_256x784x400_same_run", gemm_rate, "GFLOP/s");
    let mnist = drsae::data::Mnist::load("data/mnist-sample").unwrap_or_else(|e| die(e));
    let batch = 32;
    for (name, h, c, maps) in [
        ("conv_l1_16maps", 28, 1, 16),
        ("conv_l1_32maps", 28, 1, 32),
        ("conv_l2_32maps", 12, 16, 32),
        ("conv_l2_64maps", 12, 32, 64),
    ] {
        if only.is_some_and(|o| !name.contains(o)) {
            continue;
        }
        let shape = ConvShape::new(h, h, c, 5).unwrap();
        let model = ConvAe::init(shape, maps, EncoderForm::Relu, &mut rng);
        let x = if c == 1 {
            mnist.train.images.row_range(0, batch).to_owned()
        } else {
            Mat::random(
                batch,
                shape.image_len(),
                rand_distr::Uniform::new(0.0f32, 1.0),
                &mut rng,
            )
        };
        let groups = Groups::spatial_pools(shape.out_h(), shape.out_w(), maps, 2, 2, 1).unwrap();
        let mut ws = ConvAeWorkspace::default();
        let mut g = model.zero_grads();
        // Five alternating rounds of sgemm and this step; each ratio is taken within one
        // round (the machine's speed drifts by tens of percent over seconds), and the
        // median round is reported.
        let mut rounds: Vec<(f64, f64)> = (0..5)
            .map(|_| {
                let gemm_rate = reference_gemm_rate_for(0.2, 2);
                let secs = time_best(
                    || {
                        model.gradients(&x, &groups, 0.1, &mut ws, &mut g);
                    },
                    0.2,
                    2,
                );
                (model.step_flops(batch) / secs / 1e9, gemm_rate)
            })
            .collect();
        rounds.sort_by(|a, b| (a.0 / a.1).total_cmp(&(b.0 / b.1)));
        let (gflops, gemm_rate) = rounds[rounds.len() / 2];
        emit(&format!("{name}_fwd_bwd"), gflops, "GFLOP/s");
        emit(
            &format!("{name}_images"),
            batch as f64 * gflops * 1e9 / model.step_flops(batch),
            "images/s",
        );
        emit(
            &format!("{name}_gemm_fraction"),
            gflops / gemm_rate,
            "ratio (median of 5 alternating rounds)",
        );
        emit(
            &format!("{name}_gemm_fraction_range"),
            rounds[0].0 / rounds[0].1,
            &format!("lowest round; highest {:.3}", rounds[4].0 / rounds[4].1),
        );
    }
}

/// The layer-1 products (8 images of 28 × 28, 5 × 5 kernels, 16 maps: 4,608 patch rows)
/// on one thread: the gathered kernels reading the images in place against matrixmultiply
/// on the materialised patch matrix (im2col not timed), GFLOP/s.
fn conv_kernels() {
    use drsae::kernels::{
        gathered_gemm, gathered_gemm_relu, gathered_gemm_scatter, gathered_gemm_tn, im2col,
        ConvShape, GatherIndex,
    };
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    let shape = ConvShape::new(28, 28, 1, 5).unwrap();
    let (batch, maps) = (8, 16);
    let u = rand_distr::Uniform::new(-1.0f32, 1.0);
    let x = Mat::random(batch, shape.image_len(), u, &mut rng);
    let w = Mat::random(maps, shape.patch_len(), u, &mut rng);
    let idx = GatherIndex::patches(&shape, batch);
    let rows = idx.rows();
    let mut cols = Mat::zeros(rows, shape.patch_len());
    im2col(&shape, x.as_slice(), cols.as_mut_slice());
    let z = Mat::random(rows, maps, u, &mut rng);
    let zidx = GatherIndex::row_major(rows, maps, maps);
    let mut out = Mat::zeros(rows, maps);
    let mut yout = Mat::zeros(rows, shape.patch_len());
    let mut small = Mat::zeros(shape.patch_len(), maps);
    // The single-channel decoder: the `maps × patch_len` matrix `w` read as Dᵀ and the
    // patch index, both with the taps in column-major order (as `ConvAe` does), to add
    // Z·Dᵀ straight into images.
    let taps = shape.column_major_taps();
    let dtidx = GatherIndex::new(
        (0..maps).map(|m| m * shape.patch_len()).collect(),
        taps.clone(),
    );
    let sidx = GatherIndex::patch_taps(&shape, batch, &taps);
    let mut images = x.clone();
    let (bias, gain) = (vec![0.1; maps], vec![1.5; maps]);
    let mut h = Mat::zeros(rows, maps);
    let mut scratch = Vec::new();
    let flops = 2.0 * (rows * shape.patch_len() * maps) as f64;
    let threads = drsae::linalg::gemm_threads();
    drsae::linalg::set_gemm_threads(1);
    let rate = |f: &mut dyn FnMut()| flops / time_best(f, 0.3, 5) / 1e9;
    let lines = [
        (
            "gathered_encoder_4608x25x16_1thread",
            rate(&mut || {
                let p = idx.over(x.as_slice());
                gathered_gemm(1.0, p, w.t(), false, out.as_mut_slice(), maps, &mut scratch)
            }),
        ),
        (
            // with the bias, ReLU and gain applied to each tile (writes H and Z)
            "gathered_encoder_relu_4608x25x16_1thread",
            rate(&mut || {
                let p = idx.over(x.as_slice());
                let (hs, zs) = (h.as_mut_slice(), out.as_mut_slice());
                gathered_gemm_relu(p, w.t(), &bias, &gain, hs, zs, &mut scratch)
            }),
        ),
        (
            "matrixmultiply_encoder_4608x25x16_1thread",
            rate(&mut || drsae::linalg::gemm(1.0, cols.view(), w.t(), 0.0, out.view_mut())),
        ),
        (
            "gathered_decoder_4608x16x25_1thread",
            rate(&mut || {
                let zz = zidx.over(z.as_slice());
                let plen = shape.patch_len();
                gathered_gemm(
                    1.0,
                    zz,
                    w.view(),
                    false,
                    yout.as_mut_slice(),
                    plen,
                    &mut scratch,
                )
            }),
        ),
        (
            // The single-channel layers' decoder: Z·Dᵀ added into the images (col2im
            // included, unlike the other decoder lines).
            "gathered_decoder_scatter_4608x16x25_1thread",
            rate(&mut || {
                let dt = dtidx.over(w.as_slice());
                let target = sidx.over_mut(images.as_mut_slice());
                gathered_gemm_scatter(1.0, z.as_slice(), maps, dt, target, &mut scratch);
            }),
        ),
        (
            "matrixmultiply_decoder_4608x16x25_1thread",
            rate(&mut || drsae::linalg::gemm(1.0, z.view(), w.view(), 0.0, yout.view_mut())),
        ),
        (
            "gathered_patch_t_codes_25x4608x16_1thread",
            rate(&mut || {
                let p = idx.over(x.as_slice());
                let (zs, sm) = (z.as_slice(), small.as_mut_slice());
                gathered_gemm_tn(1.0, p, zs, maps, maps, false, sm, maps, &mut scratch)
            }),
        ),
        (
            "matrixmultiply_patch_t_codes_25x4608x16_1thread",
            rate(&mut || drsae::linalg::gemm(1.0, cols.t(), z.view(), 0.0, small.view_mut())),
        ),
    ];
    drsae::linalg::set_gemm_threads(threads);
    for (name, v) in lines {
        emit(name, v, "GFLOP/s");
    }
}

/// One training step (forward + backward, no update) of the other models, samples/s at
/// minibatch 100: LISTA (784 → 400, T = 3 on MNIST), the group-sparse auto-encoder (12 × 12
/// patches, 16 × 16 units, 3 × 3 wrap-around pools) and lateral-inhibition sparse coding
/// (8 × 8 patches, 64 units, grid S: inference by coordinate descent from zero, then the
/// W and S gradients).
fn models() {
    use drsae::kernels::Groups;
    use drsae::models::{
        grid_inhibition, inhibition_gradients, EncoderForm, GroupAe, GroupAeWorkspace, Lista,
        ListaWorkspace,
    };
    use drsae::solvers::{inhibited_codes, Dictionary};
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    let mnist = drsae::data::Mnist::load("data/mnist-sample").unwrap_or_else(|e| die(e));
    let batch = 100;
    let mut x = mnist.train.images.row_range(0, batch).to_owned();
    drsae::data::normalize_rows_l2(&mut x);
    // LISTA
    let mut d = Mat::random(784, 400, rand_distr::StandardNormal, &mut rng);
    for j in 0..400 {
        let nrm: f32 = (0..784).map(|i| d[(i, j)] * d[(i, j)]).sum::<f32>().sqrt();
        (0..784).for_each(|i| d[(i, j)] /= nrm);
    }
    let dict = Dictionary::new(d.clone()).unwrap_or_else(|e| die(e));
    let lista = Lista::from_ista(&dict, 0.1, 3);
    let target = lista.encode(&x);
    let (mut ws, mut g) = (ListaWorkspace::default(), lista.zero_grads());
    let secs = time_best(
        || {
            lista.forward(&x, &mut ws);
            lista.backward(&x, &target, &mut ws, &mut g);
        },
        0.5,
        3,
    );
    emit("lista_b100_t3", batch as f64 / secs, "samples/s");
    // Group-sparse auto-encoder on patches
    let patches = Mat::random(batch, 144, rand_distr::StandardNormal, &mut rng);
    let groups = Groups::grid(16, 16, 3, 1, None).unwrap();
    let ae = GroupAe::init(144, 256, EncoderForm::Relu, &mut rng);
    let (mut ws, mut g) = (GroupAeWorkspace::default(), ae.zero_grads());
    let secs = time_best(
        || {
            ae.forward(&patches, &groups, &mut ws);
            ae.backward(&patches, &groups, 0.3, &mut ws, &mut g);
        },
        0.5,
        3,
    );
    emit("group_ae_b100", batch as f64 / secs, "samples/s");
    // Lateral inhibition
    let small = Mat::random(batch, 64, rand_distr::StandardNormal, &mut rng);
    let mut w = Mat::random(64, 64, rand_distr::StandardNormal, &mut rng);
    for j in 0..64 {
        let nrm: f32 = (0..64).map(|i| w[(i, j)] * w[(i, j)]).sum::<f32>().sqrt();
        (0..64).for_each(|i| w[(i, j)] /= nrm);
    }
    let s = grid_inhibition(8, 8, 1, 1.0).unwrap();
    let (mut z, mut dw, mut ds) = (
        Mat::zeros(batch, 64),
        Mat::zeros(64, 64),
        Mat::zeros(64, 64),
    );
    let secs = time_best(
        || {
            z.fill(0.0);
            inhibited_codes(&w, &s, &small, &mut z, 0.1, 50, 1e-4).unwrap();
            inhibition_gradients(&w, &small, &z, &mut dw, &mut ds);
        },
        0.5,
        3,
    );
    emit("inhibition_b100", batch as f64 / secs, "samples/s");
}

fn main() {
    let args = Args::parse(&[]);
    let threads = common::threads(&args);
    let group = args
        .positional
        .first()
        .cloned()
        .unwrap_or_else(|| "kernels".into());
    args.finish_positional(2);
    eprintln!("simd: {}, gemm threads: {threads}", drsae::simd_width());
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
    args.finish_positional(2);
    match group.as_str() {
        "kernels" => kernels(),
        "train" => train(args.positional.get(1).map(|b| {
            b.parse()
                .unwrap_or_else(|_| die(format!("batch `{b}` is not a number")))
        })),
        "conv" => conv(args.positional.get(1).map(|s| s.as_str())),
        "models" => models(),
        "all" => {
            kernels();
            train(None);
            conv(None);
            models()
        }
        other => die(format!(
            "unknown bench group `{other}` (kernels, train, conv, models, all)"
        )),
    }
}
