#![allow(clippy::needless_range_loop)]
//! Convolutional and locally-connected group-sparse auto-encoders: forward passes against
//! direct f64 references (plain loops, no im2col), every gradient against central finite
//! differences of those references, and the shared training loop on both.

use drsae::kernels::{ConvShape, Groups};
use drsae::linalg::Mat;
use drsae::models::{
    support_coverage, ConvAe, ConvAeWorkspace, EncoderForm, GroupAe, GroupAeWorkspace, LocalSheet,
};
use drsae::train::{train_group_ae, GroupAeConfig};
use rand::{Rng, SeedableRng};

/// Parameters in f64: W (maps × patch), bias, gain, D (patch × maps).
type P64 = [Vec<f64>; 4];

fn act(form: EncoderForm, u: f64) -> f64 {
    match form {
        EncoderForm::Relu => u.max(0.0),
        EncoderForm::Tanh => u.tanh(),
    }
}

fn group_term(groups: &Groups, z: &[f64]) -> f64 {
    (0..groups.len())
        .map(|k| {
            let (m, w) = groups.group(k);
            m.iter()
                .zip(w)
                .map(|(&j, &wt)| wt as f64 * z[j as usize].powi(2))
                .sum::<f64>()
                .sqrt()
        })
        .sum()
}

/// Direct f64 convolutional loss, batch mean.
fn conv_loss64(m: &ConvAe, p: &P64, x: &Mat, groups: &Groups, lambda: f64) -> f64 {
    let s = m.shape();
    let (k, c, maps) = (s.kernel, s.channels, m.maps());
    let weights = s.coverage_weights();
    let mut total = 0.0;
    for i in 0..x.nrows() {
        let img = x.row(i);
        let mut z = vec![0.0; s.positions() * maps];
        for oy in 0..s.out_h() {
            for ox in 0..s.out_w() {
                for mm in 0..maps {
                    let mut u = p[1][mm];
                    for a in 0..k {
                        for b in 0..k {
                            for ch in 0..c {
                                u += p[0][mm * s.patch_len() + (a * k + b) * c + ch]
                                    * img[((oy + a) * s.width + ox + b) * c + ch] as f64;
                            }
                        }
                    }
                    z[(oy * s.out_w() + ox) * maps + mm] = p[2][mm] * act(m.form(), u);
                }
            }
        }
        let mut xhat = vec![0.0; s.image_len()];
        for oy in 0..s.out_h() {
            for ox in 0..s.out_w() {
                for mm in 0..maps {
                    let zv = z[(oy * s.out_w() + ox) * maps + mm];
                    for a in 0..k {
                        for b in 0..k {
                            for ch in 0..c {
                                xhat[((oy + a) * s.width + ox + b) * c + ch] +=
                                    p[3][((a * k + b) * c + ch) * maps + mm] * zv;
                            }
                        }
                    }
                }
            }
        }
        let rec: f64 = (0..s.image_len())
            .map(|q| {
                let w = if m.weighted() { weights[q] as f64 } else { 1.0 };
                w * (img[q] as f64 - xhat[q]).powi(2)
            })
            .sum();
        total += 0.5 * rec + lambda * group_term(groups, &z);
    }
    total / x.nrows() as f64
}

/// Dense (optionally masked and weighted) f64 loss, batch mean.
fn dense_loss64(m: &GroupAe, p: &P64, x: &Mat, groups: &Groups, lambda: f64) -> f64 {
    let (n, q) = (m.hidden(), x.ncols());
    let mut total = 0.0;
    for i in 0..x.nrows() {
        let z: Vec<f64> = (0..n)
            .map(|j| {
                let u = (0..q)
                    .map(|k| p[0][j * q + k] * x[(i, k)] as f64)
                    .sum::<f64>()
                    + p[1][j];
                p[2][j] * act(m.form(), u)
            })
            .collect();
        let rec: f64 = (0..q)
            .map(|r| {
                let w = m.recon_weights().map_or(1.0, |w| w[r] as f64);
                w * (x[(i, r)] as f64 - (0..n).map(|j| p[3][r * n + j] * z[j]).sum::<f64>()).powi(2)
            })
            .sum();
        total += 0.5 * rec + lambda * group_term(groups, &z);
    }
    total / x.nrows() as f64
}

/// Checks every analytic gradient entry against central differences of `f`.
fn check_fd(
    what: &str,
    grads: [&[f32]; 4],
    base: &P64,
    f: &dyn Fn(&P64) -> f64,
    mask: Option<[&[f32]; 4]>,
) {
    let h = 1e-6;
    for (t, name) in ["W", "bias", "gain", "D"].iter().enumerate() {
        let ours = grads[t];
        let gmax = ours.iter().fold(0.0f64, |a, &v| a.max((v as f64).abs()));
        for idx in 0..ours.len() {
            if let Some(mk) = mask {
                if mk[t][idx] == 0.0 {
                    assert_eq!(ours[idx], 0.0, "{what}: ∂{name}[{idx}] outside the support");
                    continue;
                }
            }
            let eval = |d: f64| {
                let mut q = base.clone();
                q[t][idx] += d;
                f(&q)
            };
            let fd = (eval(h) - eval(-h)) / (2.0 * h);
            let tol = 2e-3 * fd.abs().max(1e-2 * gmax).max(1e-7);
            assert!(
                (ours[idx] as f64 - fd).abs() <= tol,
                "{what} ∂/∂{name}[{idx}]: ours {} fd {fd}",
                ours[idx]
            );
        }
    }
}

fn to64(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&a| a as f64).collect()
}

#[test]
fn conv_gradients_match_finite_differences() {
    let shape = ConvShape::new(6, 5, 2, 3).unwrap();
    let maps = 4;
    let (oh, ow) = (shape.out_h(), shape.out_w());
    let pools = [
        (
            "per-map 2×2",
            Groups::spatial_pools(oh, ow, maps, 2, 1, 1).unwrap(),
        ),
        (
            "across maps 2×2 stride 2",
            Groups::spatial_pools(oh, ow, maps, 2, 2, 2).unwrap(),
        ),
        ("singletons", Groups::disjoint(oh * ow * maps, 1).unwrap()),
    ];
    for form in [EncoderForm::Relu, EncoderForm::Tanh] {
        for weighted in [true, false] {
            for (name, groups) in &pools {
                let mut rng = rand::rngs::StdRng::seed_from_u64(5);
                let mut parts = ConvAe::init(shape, maps, form, &mut rng).into_parts();
                parts.weighted = weighted;
                for (b, g) in parts.bias.iter_mut().zip(parts.gain.iter_mut()) {
                    *b = rng.gen_range(-0.2..0.2);
                    *g = rng.gen_range(0.5..1.5);
                }
                let m = ConvAe::from_parts(parts).unwrap();
                let x = Mat::random(3, shape.image_len(), rand_distr::StandardNormal, &mut rng);
                let lambda = 0.3;
                let mut ws = ConvAeWorkspace::default();
                let loss = m.forward(&x, groups, &mut ws);
                let mut g = m.zero_grads();
                m.backward(&x, groups, lambda, &mut ws, &mut g);
                let base: P64 = [
                    to64(m.filters().as_slice()),
                    to64(m.bias()),
                    to64(m.gain()),
                    to64(m.dec().as_slice()),
                ];
                let f0 = conv_loss64(&m, &base, &x, groups, lambda as f64);
                assert!(
                    (f0 - loss.mean(lambda)).abs() < 1e-4 * f0.max(1.0),
                    "{name}: forward {f0} vs {}",
                    loss.mean(lambda)
                );
                let what = format!("conv {form:?} weighted {weighted} {name}");
                check_fd(
                    &what,
                    [g.w.as_slice(), &g.bias, &g.gain, g.dec.as_slice()],
                    &base,
                    &|p| conv_loss64(&m, p, &x, groups, lambda as f64),
                    None,
                );
            }
        }
    }
}

/// Single-channel layers take another decoder path (the product scattered straight into
/// the residual images, `gathered_gemm_scatter`), and 8 maps the 8-wide encoder pass: both
/// against finite differences of the direct reference.
#[test]
fn single_channel_conv_gradients_match_finite_differences() {
    let shape = ConvShape::new(6, 5, 1, 3).unwrap();
    let (oh, ow) = (shape.out_h(), shape.out_w());
    for maps in [3, 8] {
        let pools = [
            (
                "per-map 2×2",
                Groups::spatial_pools(oh, ow, maps, 2, 1, 1).unwrap(),
            ),
            ("singletons", Groups::disjoint(oh * ow * maps, 1).unwrap()),
        ];
        for form in [EncoderForm::Relu, EncoderForm::Tanh] {
            for weighted in [true, false] {
                for (name, groups) in &pools {
                    let mut rng = rand::rngs::StdRng::seed_from_u64(15);
                    let mut parts = ConvAe::init(shape, maps, form, &mut rng).into_parts();
                    parts.weighted = weighted;
                    for (b, g) in parts.bias.iter_mut().zip(parts.gain.iter_mut()) {
                        *b = rng.gen_range(-0.2..0.2);
                        *g = rng.gen_range(0.5..1.5);
                    }
                    let m = ConvAe::from_parts(parts).unwrap();
                    let x = Mat::random(3, shape.image_len(), rand_distr::StandardNormal, &mut rng);
                    let lambda = 0.3;
                    let mut ws = ConvAeWorkspace::default();
                    let loss = m.forward(&x, groups, &mut ws);
                    let mut g = m.zero_grads();
                    m.backward(&x, groups, lambda, &mut ws, &mut g);
                    let base: P64 = [
                        to64(m.filters().as_slice()),
                        to64(m.bias()),
                        to64(m.gain()),
                        to64(m.dec().as_slice()),
                    ];
                    let f0 = conv_loss64(&m, &base, &x, groups, lambda as f64);
                    let what =
                        format!("1-channel conv, {maps} maps, {form:?} weighted {weighted} {name}");
                    assert!(
                        (f0 - loss.mean(lambda)).abs() < 1e-4 * f0.max(1.0),
                        "{what}: forward {f0} vs {}",
                        loss.mean(lambda)
                    );
                    check_fd(
                        &what,
                        [g.w.as_slice(), &g.bias, &g.gain, g.dec.as_slice()],
                        &base,
                        &|p| conv_loss64(&m, p, &x, groups, lambda as f64),
                        None,
                    );
                }
            }
        }
    }
}

#[test]
fn locally_connected_gradients_stay_on_the_support() {
    let (h, w, grid) = (6, 6, 2);
    let sheet = LocalSheet::new(grid, 1, 2, 3).unwrap();
    assert!(sheet.image() <= h);
    // A 6 × 6 input: the sheet's 5 × 5 windows plus a column and row nobody sees.
    let mut support = Mat::zeros(4, 36);
    for (u, row) in sheet.support().rows().enumerate() {
        for (i, v) in row.iter().enumerate() {
            support[(u, (i / 5) * 6 + i % 5)] = *v;
        }
    }
    let weights = support_coverage(&support);
    let groups = Groups::grid(grid, grid, 2, 1, None).unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(9);
    for form in [EncoderForm::Relu, EncoderForm::Tanh] {
        let mut parts = GroupAe::init(h * w, grid * grid, form, &mut rng)
            .with_support(support.clone())
            .unwrap()
            .with_recon_weights(weights.clone())
            .unwrap()
            .into_parts();
        for b in parts.bias.iter_mut() {
            *b = rng.gen_range(-0.2..0.2);
        }
        let m = GroupAe::from_parts(parts).unwrap();
        // Parameters outside the support are zero after construction.
        for (v, s) in m.w().as_slice().iter().zip(support.as_slice()) {
            assert!(*s == 1.0 || *v == 0.0);
        }
        let x = Mat::random(4, h * w, rand_distr::StandardNormal, &mut rng);
        let lambda = 0.2;
        let mut ws = GroupAeWorkspace::default();
        let loss = m.forward(&x, &groups, &mut ws);
        let mut g = m.zero_grads();
        m.backward(&x, &groups, lambda, &mut ws, &mut g);
        let base: P64 = [
            to64(m.w().as_slice()),
            to64(m.bias()),
            to64(m.gain()),
            to64(m.dec().as_slice()),
        ];
        let f0 = dense_loss64(&m, &base, &x, &groups, lambda as f64);
        assert!((f0 - loss.mean(lambda)).abs() < 1e-4 * f0.max(1.0));
        let dmask = support.transposed();
        let ones = vec![1.0; grid * grid];
        check_fd(
            &format!("local {form:?}"),
            [g.w.as_slice(), &g.bias, &g.gain, g.dec.as_slice()],
            &base,
            &|p| dense_loss64(&m, p, &x, &groups, lambda as f64),
            Some([support.as_slice(), &ones, &ones, dmask.as_slice()]),
        );
    }
    // A bad mask is an error, not a panic.
    let m = GroupAe::init(h * w, 4, EncoderForm::Relu, &mut rng);
    assert!(m.clone().with_support(Mat::zeros(4, h * w)).is_err());
    assert!(m.with_recon_weights(vec![-1.0; h * w]).is_err());
}

#[test]
fn pooled_features_are_a_channels_last_image() {
    let shape = ConvShape::new(6, 6, 1, 3).unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let m = ConvAe::init(shape, 2, EncoderForm::Relu, &mut rng);
    let groups = Groups::spatial_pools(4, 4, 2, 2, 2, 1).unwrap();
    assert_eq!(Groups::pooled_size(4, 4, 2, 2), (2, 2));
    let x = Mat::random(2, 36, rand_distr::StandardNormal, &mut rng);
    let mut ws = ConvAeWorkspace::default();
    let pooled = m.pooled(&x, &groups, &mut ws);
    assert_eq!(pooled.shape(), (2, 8));
    // pooled (py, px, map) = ‖codes of map over the 2×2 window‖
    let z = m.codes(&ws);
    for b in 0..2 {
        for (py, px, mm) in [(0, 0, 0), (1, 0, 1), (1, 1, 0)] {
            let mut s = 0.0f32;
            for dy in 0..2 {
                for dx in 0..2 {
                    let pos = (py * 2 + dy) * 4 + px * 2 + dx;
                    s += z[(b * 16 + pos, mm)].powi(2);
                }
            }
            let got = pooled[(b, (py * 2 + px) * 2 + mm)];
            assert!((got - s.sqrt()).abs() < 1e-6, "{got} vs {}", s.sqrt());
        }
    }
    assert!(Groups::spatial_pools(4, 4, 3, 2, 1, 2).is_err());
}

#[test]
fn training_lowers_the_loss_of_conv_and_local_models_and_is_reproducible() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(2);
    // Smooth random images: sums of a few oriented ramps, so there is structure to learn.
    let shape = ConvShape::new(10, 10, 1, 5).unwrap();
    let x = Mat::from_fn(200, 100, |i, j| {
        let (y, xx) = ((j / 10) as f32, (j % 10) as f32);
        let a = (i as f32 * 0.37).sin();
        ((a * y + (1.0 - a.abs()) * xx) * 0.7 + i as f32).sin()
    });
    let groups = Groups::spatial_pools(6, 6, 4, 2, 2, 1).unwrap();
    let cfg = GroupAeConfig {
        lambda: 0.05,
        batch: 20,
        epochs: 6,
        lr: 5e-3,
        ..Default::default()
    };
    let train = |seed| {
        let mut r = rand::rngs::StdRng::seed_from_u64(seed);
        let mut m = ConvAe::init(shape, 4, EncoderForm::Relu, &mut r);
        let mut curve = vec![];
        train_group_ae(&mut m, &x, &groups, &cfg, |_, l, _| {
            curve.push(l.mean(0.05))
        })
        .unwrap();
        (m, curve)
    };
    let (a, curve) = train(3);
    assert!(
        curve.last().unwrap() < &(0.7 * curve[0]),
        "conv loss did not fall: {curve:?}"
    );
    let (b, _) = train(3);
    assert_eq!(a, b, "same seed, same model");
    // PSD is a dense-model mode: asking for it on a conv model is an error.
    let mut m = ConvAe::init(shape, 4, EncoderForm::Relu, &mut rng);
    let psd = GroupAeConfig {
        psd: Some((1.0, 5)),
        ..cfg.clone()
    };
    assert!(train_group_ae(&mut m, &x, &groups, &psd, |_, _, _| {}).is_err());

    // Locally connected: 3×3 positions with 2×2 units each, 4×4 windows every 3 pixels.
    let sheet = LocalSheet::new(3, 2, 3, 4).unwrap();
    assert_eq!(sheet.image(), 10);
    let support = sheet.support();
    let mut lc = GroupAe::init(100, 36, EncoderForm::Relu, &mut rng)
        .with_support(support.clone())
        .unwrap()
        .with_recon_weights(support_coverage(&support))
        .unwrap();
    let lgroups = Groups::sheet_pools(6, 6, 3).unwrap();
    let mut curve = vec![];
    train_group_ae(&mut lc, &x, &lgroups, &cfg, |_, l, _| {
        curve.push(l.mean(0.05))
    })
    .unwrap();
    assert!(curve.last().unwrap() < &(0.9 * curve[0]), "{curve:?}");
    for (v, s) in lc.w().as_slice().iter().zip(support.as_slice()) {
        assert!(*s == 1.0 || *v == 0.0, "training left the support");
    }
}

#[test]
fn softmax_gradients_match_finite_differences_and_training_separates_classes() {
    use drsae::models::Softmax;
    use drsae::train::{train_softmax, SoftmaxConfig};
    let mut rng = rand::rngs::StdRng::seed_from_u64(4);
    let (b, f, c) = (5, 4, 3);
    let m = Softmax::from_parts(
        Mat::random(c, f, rand_distr::StandardNormal, &mut rng),
        vec![0.1, -0.2, 0.3],
    )
    .unwrap();
    assert!(Softmax::from_parts(Mat::zeros(3, 4), vec![0.0; 2]).is_err());
    let x = Mat::random(b, f, rand_distr::StandardNormal, &mut rng);
    let y = [0u8, 2, 1, 1, 0];
    let wd = 0.1f64;
    let loss64 = |w: &[f64], bias: &[f64]| -> f64 {
        let mut total = 0.0;
        for i in 0..b {
            let logits: Vec<f64> = (0..c)
                .map(|k| bias[k] + (0..f).map(|j| w[k * f + j] * x[(i, j)] as f64).sum::<f64>())
                .collect();
            let mx = logits.iter().cloned().fold(f64::MIN, f64::max);
            let lse = mx + logits.iter().map(|l| (l - mx).exp()).sum::<f64>().ln();
            total += lse - logits[y[i] as usize];
        }
        total / b as f64 + 0.5 * wd * w.iter().map(|v| v * v).sum::<f64>()
    };
    let mut p = Mat::zeros(0, 0);
    m.forward(&x, Some(&y), &mut p);
    let mut g = m.zero_grads();
    m.backward(&x, &y, &mut p, wd as f32, &mut g);
    let (w0, b0) = (to64(m.w().as_slice()), to64(m.b()));
    let h = 1e-6;
    for i in 0..w0.len() {
        let (mut a, mut bb) = (w0.clone(), w0.clone());
        a[i] += h;
        bb[i] -= h;
        let fd = (loss64(&a, &b0) - loss64(&bb, &b0)) / (2.0 * h);
        assert!(
            (g.w.as_slice()[i] as f64 - fd).abs() < 1e-4,
            "∂W[{i}] {} vs {fd}",
            g.w.as_slice()[i]
        );
    }
    for i in 0..c {
        let (mut a, mut bb) = (b0.clone(), b0.clone());
        a[i] += h;
        bb[i] -= h;
        let fd = (loss64(&w0, &a) - loss64(&w0, &bb)) / (2.0 * h);
        assert!(
            (g.b[i] as f64 - fd).abs() < 1e-4,
            "∂b[{i}] {} vs {fd}",
            g.b[i]
        );
    }
    // Three separable clusters are learned; bad labels are an error.
    let xs = Mat::from_fn(300, 2, |i, j| {
        let k = (i % 3) as f32;
        (if j == 0 { k.cos() } else { k.sin() }) * 3.0 + ((i * 7 + j * 3) % 11) as f32 * 0.05
    });
    let ys: Vec<u8> = (0..300).map(|i| (i % 3) as u8).collect();
    let mut clf = Softmax::new(2, 3);
    let cfg = SoftmaxConfig {
        epochs: 20,
        batch: 30,
        lr: 0.05,
        ..Default::default()
    };
    train_softmax(&mut clf, &xs, &ys, &cfg, |_, _, _| {}).unwrap();
    assert_eq!(clf.error_percent(&xs, &ys), 0.0);
    let mut bad = ys.clone();
    bad[0] = 7;
    assert!(train_softmax(&mut clf, &xs, &bad, &cfg, |_, _, _| {}).is_err());
}

#[test]
fn data_parallel_gradients_match_and_do_not_depend_on_the_thread_count() {
    use drsae::linalg::set_gemm_threads;
    let shape = ConvShape::new(12, 11, 3, 4).unwrap();
    let maps = 5;
    let groups = Groups::spatial_pools(shape.out_h(), shape.out_w(), maps, 2, 2, 1).unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(8);
    let m = ConvAe::init(shape, maps, EncoderForm::Relu, &mut rng);
    // 21 images: two full chunks of 8 and a partial one.
    let x = Mat::random(21, shape.image_len(), rand_distr::StandardNormal, &mut rng);
    let mut ws = ConvAeWorkspace::default();
    let whole = m.forward(&x, &groups, &mut ws);
    let mut g = m.zero_grads();
    m.backward(&x, &groups, 0.2, &mut ws, &mut g);
    let mut runs = vec![];
    for threads in [1, 2, 1] {
        set_gemm_threads(threads);
        let mut gp = m.zero_grads();
        let l = m.gradients(&x, &groups, 0.2, &mut ws, &mut gp);
        runs.push((l, gp));
    }
    set_gemm_threads(std::thread::available_parallelism().map_or(1, |n| n.get()));
    let (l, gp) = &runs[0];
    assert_eq!(l.count, 21);
    assert!((l.mean(0.2) - whole.mean(0.2)).abs() < 1e-5 * whole.mean(0.2));
    for (a, b) in [
        (g.w.as_slice(), gp.w.as_slice()),
        (&g.bias[..], &gp.bias[..]),
        (&g.gain[..], &gp.gain[..]),
        (g.dec.as_slice(), gp.dec.as_slice()),
    ] {
        let scale = a.iter().fold(0.0f32, |s, v| s.max(v.abs()));
        for (u, v) in a.iter().zip(b) {
            assert!((u - v).abs() <= 1e-4 * scale, "{u} vs {v}");
        }
    }
    for (l2, g2) in &runs[1..] {
        assert_eq!(l2, l);
        assert_eq!(g2.w, gp.w);
        assert_eq!(g2.dec, gp.dec);
        assert_eq!((&g2.bias, &g2.gain), (&gp.bias, &gp.gain));
    }
}

#[test]
fn conv_training_resumes_exactly_and_a_local_checkpoint_rejects_another_layout() {
    use drsae::train::{train_group_ae_with, Checkpointing};
    let dir = std::env::temp_dir().join(format!("drsae-conv-ckpt-{}", std::process::id()));
    let ck = |stop: Option<u64>, resume: bool| Checkpointing {
        dir: Some(dir.clone()),
        every_steps: 3,
        resume,
        stop_after_steps: stop,
    };
    let mut rng = rand::rngs::StdRng::seed_from_u64(12);
    let shape = ConvShape::new(8, 8, 1, 3).unwrap();
    let x = Mat::random(40, 64, rand_distr::StandardNormal, &mut rng);
    let groups = Groups::spatial_pools(6, 6, 3, 2, 2, 1).unwrap();
    let cfg = GroupAeConfig {
        epochs: 3,
        batch: 10,
        lambda: 0.1,
        ..Default::default()
    };
    let init = ConvAe::init(shape, 3, EncoderForm::Relu, &mut rng);
    let mut reference = init.clone();
    train_group_ae(&mut reference, &x, &groups, &cfg, |_, _, _| {}).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let mut a = init.clone();
    assert!(matches!(
        train_group_ae_with(&mut a, &x, &groups, &cfg, &ck(Some(5), false), |_, _, _| {}),
        Err(drsae::Error::Interrupted { step: 5 })
    ));
    let mut b = init.clone();
    train_group_ae_with(&mut b, &x, &groups, &cfg, &ck(None, true), |_, _, _| {}).unwrap();
    assert!(b == reference, "conv AE differs after resume");

    // Locally connected: a checkpoint of one sheet layout does not resume into another
    // with the same shapes.
    let _ = std::fs::remove_dir_all(&dir);
    let sheet = |stride| LocalSheet::new(2, 2, stride, 4).unwrap();
    let local = |s: LocalSheet| {
        let mut support = Mat::zeros(16, 64);
        for (u, row) in s.support().rows().enumerate() {
            let side = s.image();
            for (i, v) in row.iter().enumerate() {
                support[(u, (i / side) * 8 + i % side)] = *v;
            }
        }
        GroupAe::init(
            64,
            16,
            EncoderForm::Relu,
            &mut rand::rngs::StdRng::seed_from_u64(3),
        )
        .with_support(support)
        .unwrap()
    };
    let lgroups = Groups::sheet_pools(4, 4, 2).unwrap();
    let mut first = local(sheet(2));
    assert!(train_group_ae_with(
        &mut first,
        &x,
        &lgroups,
        &cfg,
        &ck(Some(4), false),
        |_, _, _| {}
    )
    .is_err());
    let mut other = local(sheet(3));
    let r = train_group_ae_with(
        &mut other,
        &x,
        &lgroups,
        &cfg,
        &ck(None, true),
        |_, _, _| {},
    );
    assert!(r.is_err(), "resumed a checkpoint of another layout");
    let _ = std::fs::remove_dir_all(&dir);
}
