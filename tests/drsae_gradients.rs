#![allow(clippy::needless_range_loop)]
//! DrSAE's hand-derived gradients against central finite differences of an independent
//! f64 forward pass, for every entry of every parameter.

use drsae::linalg::Mat;
use drsae::models::{DrsaeNetwork, DrsaeWorkspace, LossWeights};
use rand::{Rng, SeedableRng};

struct P64 {
    e: Vec<f64>,
    s: Vec<f64>,
    b: Vec<f64>,
    d: Vec<f64>,
    c: Vec<f64>,
}

/// Mean weighted loss over the batch, written from the equations with plain loops in f64.
fn loss64(
    p: &P64,
    x: &[Vec<f64>],
    y: &[u8],
    n: usize,
    m: usize,
    k: usize,
    steps: usize,
    w: &LossWeights,
) -> f64 {
    let mut total = 0.0;
    for (xi, &yi) in x.iter().zip(y) {
        let a: Vec<f64> = (0..n)
            .map(|i| (0..m).map(|j| p.e[i * m + j] * xi[j]).sum::<f64>() - p.b[i])
            .collect();
        let mut z = vec![0.0; n];
        for _ in 0..steps {
            z = (0..n)
                .map(|i| (a[i] + (0..n).map(|j| p.s[i * n + j] * z[j]).sum::<f64>()).max(0.0))
                .collect();
        }
        let rec: f64 = (0..m)
            .map(|r| (xi[r] - (0..n).map(|j| p.d[r * n + j] * z[j]).sum::<f64>()).powi(2))
            .sum::<f64>()
            * 0.5;
        let l1: f64 = z.iter().sum();
        let nz = z.iter().map(|v| v * v).sum::<f64>().sqrt().max(1e-6);
        let logits: Vec<f64> = (0..k)
            .map(|c| (0..n).map(|j| p.c[c * n + j] * z[j] / nz).sum())
            .collect();
        let mx = logits.iter().cloned().fold(f64::MIN, f64::max);
        let lse = mx + logits.iter().map(|l| (l - mx).exp()).sum::<f64>().ln();
        total += w.reconstruction as f64 * rec
            + w.sparsity as f64 * l1
            + w.classification as f64 * (lse - logits[yi as usize]);
    }
    total / x.len() as f64
}

fn to64(m: &[f32]) -> Vec<f64> {
    m.iter().map(|&v| v as f64).collect()
}

#[test]
fn every_parameter_matches_finite_differences() {
    check_gradients(7, 6, 4, 11, 0.0, (0.0, 1.0));
}

/// With most units off (a higher threshold b), the products with S take the sparse path
/// (fewer than 35 % non-zeros); the gradients must not change.
#[test]
fn every_parameter_matches_finite_differences_with_sparse_codes() {
    check_gradients(7, 24, 4, 12, 0.45, (0.0, 0.35));
}

/// T = 1: the codes are max(0, Ex − b) and S gets no gradient at all.
#[test]
fn every_parameter_matches_finite_differences_at_one_step() {
    let case = Case {
        steps: 1,
        ..Case::new(7, 6, 13)
    };
    let grads = check_case(&case);
    assert!(
        grads.s.as_slice().iter().all(|v| *v == 0.0),
        "T = 1 but S has a gradient"
    );
}

/// A minibatch of 16 rows, above the 12 of the streaming small-batch kernels (the GEMM
/// path), at T = 1 and T = 3.
#[test]
fn every_parameter_matches_finite_differences_with_a_batch_above_12() {
    for steps in [1, 3] {
        check_case(&Case {
            steps,
            batch: 16,
            ..Case::new(7, 6, 14)
        });
    }
}

/// Codes of norm below ε = NORM_EPS (1e-6): the classifier sees z/ε, not z/‖z‖, so the
/// gradient has no normalisation term. E and b scaled by 1e-7, and perturbed by 1e-10 so
/// that no finite difference leaves the branch.
#[test]
fn every_parameter_matches_finite_differences_below_the_norm_epsilon() {
    let case = Case {
        scale: 1e-7,
        h_codes: 1e-10,
        ..Case::new(7, 6, 15)
    };
    check_case(&case);
}

/// Finite-difference check on an m-input, n-unit model with T = `steps`; `b_shift` is added
/// to every threshold; the final codes' fraction of active units must lie in `density`.
fn check_gradients(m: usize, n: usize, steps: usize, seed: u64, b_shift: f32, density: (f64, f64)) {
    check_case(&Case {
        steps,
        b_shift,
        density,
        ..Case::new(m, n, seed)
    });
}

/// One finite-difference check (see [`check_gradients`]).
struct Case {
    m: usize,
    n: usize,
    steps: usize,
    seed: u64,
    b_shift: f32,
    density: (f64, f64),
    batch: usize,
    /// E and b are multiplied by this (1: unchanged); below 1e-6 / ‖x‖ the codes' norms
    /// fall below ε.
    scale: f32,
    /// The finite-difference step of E and b (the other tensors use 1e-6, or 1e-4 for D
    /// and C when `scale` < 1, where their gradients are tiny).
    h_codes: f64,
}

impl Case {
    fn new(m: usize, n: usize, seed: u64) -> Case {
        Case {
            m,
            n,
            steps: 4,
            seed,
            b_shift: 0.0,
            density: (0.0, 1.0),
            batch: 3,
            scale: 1.0,
            h_codes: 1e-6,
        }
    }
}

/// Runs the check and returns the analytic gradients of the last loss weights.
fn check_case(case: &Case) -> drsae::models::DrsaeGrads {
    let Case {
        m,
        n,
        steps,
        seed,
        b_shift,
        density,
        batch,
        scale,
        h_codes,
    } = *case;
    let k = 3;
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let data = Mat::random(20, m, rand_distr::Uniform::new(0.0f32, 1.0), &mut rng);
    let mut parts = DrsaeNetwork::init(&data, n, k, steps, &mut rng).into_parts();
    // Perturb away from the symmetric initialisation so every path carries gradient.
    let u = rand_distr::Uniform::new(-0.3f32, 0.3);
    for v in parts
        .e
        .as_mut_slice()
        .iter_mut()
        .chain(parts.s.as_mut_slice())
        .chain(parts.d.as_mut_slice())
    {
        *v += rng.sample(u);
    }
    for v in &mut parts.b {
        *v = rng.sample(u) * 0.3 + b_shift;
    }
    for v in parts.e.as_mut_slice() {
        *v *= scale;
    }
    for v in &mut parts.b {
        *v *= scale;
    }
    let model = DrsaeNetwork::from_parts(parts).unwrap();
    let x = Mat::random(batch, m, rand_distr::Uniform::new(0.0f32, 1.0), &mut rng);
    let labels: Vec<u8> = (0..batch).map(|i| [0u8, 2, 1][i % 3]).collect();
    let mut last = None;
    for w in [
        LossWeights {
            reconstruction: 1.3,
            sparsity: 0.07,
            classification: 0.9,
        },
        LossWeights {
            reconstruction: 5.0,
            sparsity: 0.09,
            classification: 0.0,
        },
    ] {
        let mut ws = DrsaeWorkspace::default();
        let loss = model.forward(&x, Some(&labels), &mut ws);
        let codes = ws.codes(batch, steps).to_owned();
        let active = codes.as_slice().iter().filter(|v| **v > 0.0).count();
        let frac = active as f64 / codes.as_slice().len() as f64;
        assert!(
            active > 0 && frac > density.0 && frac < density.1,
            "want a fraction of active units in {density:?}, got {frac}"
        );
        if scale < 1.0 {
            for row in codes.rows() {
                let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt();
                assert!(
                    norm < 0.5 * drsae::models::NORM_EPS,
                    "‖z‖ = {norm} is not below ε"
                );
            }
        }
        let mut grads = model.zero_grads();
        model.backward(&x, Some(&labels), &w, &mut ws, &mut grads);

        let p = P64 {
            e: to64(model.e().as_slice()),
            s: to64(model.s().as_slice()),
            b: to64(model.b()),
            d: to64(model.d().as_slice()),
            c: to64(model.c().as_slice()),
        };
        let x64: Vec<Vec<f64>> = x.rows().map(to64).collect();
        let f0 = loss64(&p, &x64, &labels, n, m, k, steps, &w);
        assert!(
            (f0 - loss.mean(&w)).abs() < 1e-4 * f0.abs().max(1.0),
            "forward: f64 {f0} vs ours {}",
            loss.mean(&w)
        );

        let tensors: [(&str, &[f32]); 5] = [
            ("E", grads.e.as_slice()),
            ("S", grads.s.as_slice()),
            ("b", &grads.b),
            ("D", grads.d.as_slice()),
            ("C", grads.c.as_slice()),
        ];
        for (name, g) in tensors {
            let h = match name {
                "E" | "b" => h_codes,
                "D" | "C" if scale < 1.0 => 1e-4,
                _ => 1e-6,
            };
            let gmax = g.iter().fold(0.0f64, |a, &v| a.max((v as f64).abs()));
            for idx in 0..g.len() {
                let fd = {
                    let mut pp = P64 {
                        e: p.e.clone(),
                        s: p.s.clone(),
                        b: p.b.clone(),
                        d: p.d.clone(),
                        c: p.c.clone(),
                    };
                    let field = |q: &mut P64| -> *mut f64 {
                        match name {
                            "E" => &mut q.e[idx],
                            "S" => &mut q.s[idx],
                            "b" => &mut q.b[idx],
                            "D" => &mut q.d[idx],
                            _ => &mut q.c[idx],
                        }
                    };
                    let ptr = field(&mut pp);
                    // SAFETY: ptr points into pp, which outlives its uses here.
                    let orig = unsafe { *ptr };
                    unsafe { *ptr = orig + h };
                    let fp = loss64(&pp, &x64, &labels, n, m, k, steps, &w);
                    unsafe { *ptr = orig - h };
                    let fm = loss64(&pp, &x64, &labels, n, m, k, steps, &w);
                    (fp - fm) / (2.0 * h)
                };
                let ours = g[idx] as f64;
                let tol = 2e-3 * fd.abs().max(1e-2 * gmax).max(1e-6);
                assert!(
                    (ours - fd).abs() <= tol,
                    "∂L/∂{name}[{idx}] (w_s = {}): ours {ours:e}, finite differences {fd:e}",
                    w.classification
                );
            }
        }
        last = Some(grads);
    }
    last.unwrap()
}

#[test]
fn fused_sgd_step_equals_backward_update_project() {
    // (inputs, units, steps, batch): narrow D strips and E rows with tails, full 8-column
    // strips, and a batch above the streaming kernels' limit (the GEMM fallback).
    for (m, n, steps, batch) in [(9, 7, 5, 4), (21, 19, 3, 10), (17, 12, 2, 13)] {
        fused_sgd_case(m, n, steps, batch);
    }
}

fn fused_sgd_case(m: usize, n: usize, steps: usize, batch: usize) {
    let k = 3;
    let mut rng = rand::rngs::StdRng::seed_from_u64(21);
    let data = Mat::random(40, m, rand_distr::Uniform::new(0.0f32, 1.0), &mut rng);
    let mut parts = DrsaeNetwork::init(&data, n, k, steps, &mut rng).into_parts();
    // Spread the encoder row and decoder column norms so that the bounds are active for
    // some rows and columns only.
    for (i, row) in parts.e.rows_mut().enumerate() {
        row.iter_mut().for_each(|v| *v *= 0.5 + i as f32 / n as f32);
    }
    for row in parts.d.rows_mut() {
        for (j, v) in row.iter_mut().enumerate() {
            *v *= 0.6 + 1.2 * j as f32 / n as f32;
        }
    }
    let model = DrsaeNetwork::from_parts(parts).unwrap();
    let e_max = 1.25 / steps.max(11) as f32;
    let x = Mat::random(batch, m, rand_distr::Uniform::new(0.0f32, 1.0), &mut rng);
    let labels: Vec<u8> = (0..batch).map(|i| (i % k) as u8).collect();
    let rates = [0.3f32, 0.2, 0.1, 0.5, 0.4];
    for w in [LossWeights::paper(), LossWeights::paper().unsupervised()] {
        let mut ws = DrsaeWorkspace::default();
        model.forward(&x, Some(&labels), &mut ws);
        let mut g = model.zero_grads();
        model.backward(&x, Some(&labels), &w, &mut ws, &mut g);
        let mut stepped = model.clone().into_parts();
        for (p, gr, r) in [
            (stepped.e.as_mut_slice(), g.e.as_slice(), rates[0]),
            (stepped.s.as_mut_slice(), g.s.as_slice(), rates[1]),
            (&mut stepped.b[..], &g.b[..], rates[2]),
            (stepped.d.as_mut_slice(), g.d.as_slice(), rates[3]),
            (stepped.c.as_mut_slice(), g.c.as_slice(), rates[4]),
        ] {
            p.iter_mut().zip(gr).for_each(|(p, g)| *p -= r * g);
        }
        let unprojected = DrsaeNetwork::from_parts(stepped).unwrap();
        let mut expected = unprojected.clone();
        expected.project(e_max);
        assert!(
            expected.e() != unprojected.e() && expected.d() != unprojected.d(),
            "the bounds should be active in this test: E {} D {}",
            expected.e() != unprojected.e(),
            expected.d() != unprojected.d()
        );
        let mut fused = model.clone();
        let mut ws2 = DrsaeWorkspace::default();
        fused.forward(&x, Some(&labels), &mut ws2);
        fused.sgd_step(&x, Some(&labels), &w, &mut ws2, rates, e_max);
        for (a, b, name) in [
            (fused.e(), expected.e(), "E"),
            (fused.s(), expected.s(), "S"),
            (fused.d(), expected.d(), "D"),
            (fused.c(), expected.c(), "C"),
        ] {
            assert!(
                a.max_abs_diff(b) < 1e-5,
                "{name} ({m}, {n}, {steps}, {batch}): {}",
                a.max_abs_diff(b)
            );
        }
        assert!(fused
            .b()
            .iter()
            .zip(expected.b())
            .all(|(a, b)| (a - b).abs() < 1e-5));
        assert!(fused != model, "the fused step changed nothing");
    }
}
