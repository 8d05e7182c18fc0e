#![allow(clippy::needless_range_loop)]
//! The sparse auto-encoders' hand-derived gradients against central finite differences of
//! an independent f64 forward pass (every entry of every tensor), and JumpReLU's
//! straight-through threshold gradient against its definition, on every SIMD level.

use drsae::linalg::Mat;
use drsae::models::{AuxK, SaeGrads, SaeKind, SaeNetwork, SaeObjective, SaeWorkspace};
use rand::{Rng, SeedableRng};

/// Parameters in f64: w_enc, b_enc, w_dec, b_dec, theta (m × d row-major where 2-D).
#[derive(Clone)]
struct P {
    w_enc: Vec<f64>,
    b_enc: Vec<f64>,
    w_dec: Vec<f64>,
    b_dec: Vec<f64>,
    theta: Vec<f64>,
}

struct Case {
    kind: SaeKind,
    obj: SaeObjective,
    dead: Vec<u32>,
    m: usize,
    d: usize,
    x: Vec<Vec<f64>>,
}

/// Pre-activations and the active sets (sorted latents) of each row, from the equations.
fn forward(c: &Case, p: &P) -> (Vec<Vec<f64>>, Vec<Vec<usize>>) {
    let (m, d) = (c.m, c.d);
    let pre: Vec<Vec<f64>> =
        c.x.iter()
            .map(|x| {
                (0..m)
                    .map(|j| {
                        (0..d)
                            .map(|i| p.w_enc[j * d + i] * (x[i] - p.b_dec[i]))
                            .sum::<f64>()
                            + p.b_enc[j]
                    })
                    .collect()
            })
            .collect();
    let active: Vec<Vec<usize>> = match c.kind {
        SaeKind::Relu => pre
            .iter()
            .map(|r| (0..m).filter(|&j| r[j] > 0.0).collect())
            .collect(),
        SaeKind::JumpRelu => pre
            .iter()
            .map(|r| {
                (0..m)
                    .filter(|&j| r[j] > p.theta[j] && r[j] > 0.0)
                    .collect()
            })
            .collect(),
        SaeKind::TopK { k } => pre
            .iter()
            .map(|r| {
                let mut idx: Vec<usize> = (0..m).filter(|&j| r[j] > 0.0).collect();
                idx.sort_by(|&a, &b| r[b].total_cmp(&r[a]));
                idx.truncate(k);
                idx.sort();
                idx
            })
            .collect(),
        SaeKind::BatchTopK { k } => {
            let mut all: Vec<f64> = pre.iter().flatten().cloned().filter(|v| *v > 0.0).collect();
            all.sort_by(|a, b| b.total_cmp(a));
            let n = k * c.x.len();
            let t = if n <= all.len() { all[n - 1] } else { 0.0 };
            pre.iter()
                .map(|r| (0..m).filter(|&j| r[j] >= t && r[j] > 0.0).collect())
                .collect()
        }
    };
    (pre, active)
}

/// The reconstruction part of the loss as a function of the codes (rows × m, dense).
fn recon_loss(c: &Case, p: &P, z: &[Vec<f64>]) -> f64 {
    let prefixes = if c.obj.prefixes.is_empty() {
        vec![c.m]
    } else {
        c.obj.prefixes.clone()
    };
    let mut total = 0.0;
    for (b, x) in c.x.iter().enumerate() {
        let mut per = 0.0;
        for &end in &prefixes {
            for i in 0..c.d {
                let xh: f64 = p.b_dec[i]
                    + (0..end)
                        .map(|j| z[b][j] * p.w_dec[j * c.d + i])
                        .sum::<f64>();
                per += (xh - x[i]).powi(2);
            }
        }
        total += per / prefixes.len() as f64;
    }
    total / c.x.len() as f64
}

/// The whole loss; `e` (AuxK's residuals) is held fixed, as the method detaches it.
fn loss(c: &Case, p: &P, e: &[Vec<f64>]) -> f64 {
    let (pre, active) = forward(c, p);
    let rows = c.x.len() as f64;
    let mut z = vec![vec![0.0; c.m]; c.x.len()];
    for (b, a) in active.iter().enumerate() {
        for &j in a {
            z[b][j] = pre[b][j];
        }
    }
    let mut l = recon_loss(c, p, &z);
    let lambda = c.obj.sparsity as f64;
    match c.kind {
        SaeKind::Relu => {
            for (b, a) in active.iter().enumerate() {
                for &j in a {
                    let n = (0..c.d)
                        .map(|i| p.w_dec[j * c.d + i].powi(2))
                        .sum::<f64>()
                        .sqrt();
                    l += lambda * z[b][j] * n / rows;
                }
            }
        }
        SaeKind::JumpRelu => {
            l += lambda * active.iter().map(|a| a.len() as f64).sum::<f64>() / rows;
        }
        _ => {}
    }
    if let Some(a) = c.obj.aux {
        if !c.dead.is_empty() {
            let k_aux = a.k_aux.min(c.dead.len());
            let scale = (c.dead.len() as f64 / a.k_aux as f64).min(1.0);
            for (b, r) in pre.iter().enumerate() {
                let mut idx: Vec<usize> = c
                    .dead
                    .iter()
                    .map(|&j| j as usize)
                    .filter(|&j| r[j] > 0.0)
                    .collect();
                idx.sort_by(|&u, &v| r[v].total_cmp(&r[u]));
                idx.truncate(k_aux);
                for i in 0..c.d {
                    let eh: f64 = idx.iter().map(|&j| r[j] * p.w_dec[j * c.d + i]).sum();
                    l += a.coefficient as f64 * scale * (eh - e[b][i]).powi(2) / rows;
                }
            }
        }
    }
    l
}

/// AuxK's targets `x − x̂` at the given parameters.
fn residuals(c: &Case, p: &P) -> Vec<Vec<f64>> {
    let (pre, active) = forward(c, p);
    c.x.iter()
        .enumerate()
        .map(|(b, x)| {
            (0..c.d)
                .map(|i| {
                    x[i] - p.b_dec[i]
                        - active[b]
                            .iter()
                            .map(|&j| pre[b][j] * p.w_dec[j * c.d + i])
                            .sum::<f64>()
                })
                .collect()
        })
        .collect()
}

fn tensor(p: &mut P, t: usize) -> &mut Vec<f64> {
    match t {
        0 => &mut p.w_enc,
        1 => &mut p.b_enc,
        2 => &mut p.w_dec,
        3 => &mut p.b_dec,
        _ => &mut p.theta,
    }
}

fn make(kind: SaeKind, obj: SaeObjective, dead: Vec<u32>, rows: usize, seed: u64) -> (Case, P) {
    let (m, d) = (40, 12);
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut u = |s: f64| rng.gen_range(-s..s);
    let p = P {
        w_enc: (0..m * d).map(|_| u(0.5)).collect(),
        b_enc: (0..m).map(|_| u(0.2)).collect(),
        w_dec: (0..m * d).map(|_| u(0.5)).collect(),
        b_dec: (0..d).map(|_| u(0.3)).collect(),
        theta: (0..m).map(|_| 0.2 + u(0.15)).collect(),
    };
    let x = (0..rows)
        .map(|_| (0..d).map(|_| u(1.0)).collect())
        .collect();
    (
        Case {
            kind,
            obj,
            dead,
            m,
            d,
            x,
        },
        p,
    )
}

fn to_net(c: &Case, p: &P) -> SaeNetwork {
    let f = |v: &[f64]| v.iter().map(|&x| x as f32).collect::<Vec<f32>>();
    SaeNetwork::from_parts(
        c.kind,
        Mat::from_vec(c.m, c.d, f(&p.w_enc)),
        f(&p.b_enc),
        Mat::from_vec(c.m, c.d, f(&p.w_dec)),
        f(&p.b_dec),
        f(&p.theta),
        true,
    )
    .unwrap()
}

/// Rounds the f64 parameters to f32 so that both passes see the same network.
fn round(p: &mut P) {
    for t in 0..5 {
        for v in tensor(p, t).iter_mut() {
            *v = *v as f32 as f64;
        }
    }
}

fn analytic(c: &Case, p: &P) -> (SaeGrads, drsae::models::SaeLoss) {
    let net = to_net(c, p);
    let x = Mat::from_fn(c.x.len(), c.d, |i, j| c.x[i][j] as f32);
    let mut ws = SaeWorkspace::default();
    let mut g = SaeGrads::zeros(&net);
    // Stale values must be overwritten.
    g.w_enc.fill(7.0);
    g.b_dec.fill(7.0);
    let l = net.loss_and_gradient(x.view(), &c.obj, &c.dead, &mut ws, &mut g);
    (g, l)
}

fn check(name: &str, c: &Case, p: &P) {
    for level in drsae::simd::available() {
        drsae::simd::force(level).unwrap();
        let (g, l) = analytic(c, p);
        let e = residuals(c, p);
        let want = loss(c, p, &e);
        assert!(
            (l.total - want).abs() <= 1e-4 * want.abs().max(1.0),
            "{name} {level}: loss {} vs reference {want}",
            l.total
        );
        let got: [&[f32]; 4] = [g.w_enc.as_slice(), &g.b_enc, g.w_dec.as_slice(), &g.b_dec];
        for (t, got) in got.iter().enumerate() {
            let h = 1e-6;
            let mut fd = vec![0.0; got.len()];
            for i in 0..got.len() {
                let mut q = p.clone();
                tensor(&mut q, t)[i] += h;
                let up = loss(c, &q, &e);
                tensor(&mut q, t)[i] -= 2.0 * h;
                let down = loss(c, &q, &e);
                fd[i] = (up - down) / (2.0 * h);
            }
            let scale = fd.iter().fold(1e-3f64, |a, v| a.max(v.abs()));
            for i in 0..got.len() {
                assert!(
                    (got[i] as f64 - fd[i]).abs() <= 2e-3 * scale,
                    "{name} {level}: tensor {t} entry {i}: analytic {} vs finite difference {} (scale {scale})",
                    got[i],
                    fd[i]
                );
            }
            assert!(
                fd.iter().any(|v| v.abs() > 1e-6),
                "{name}: tensor {t} has no gradient at all (vacuous check)"
            );
        }
    }
    drsae::simd::force(drsae::simd::available().into_iter().last().unwrap()).unwrap();
}

#[test]
fn relu_with_decoder_weighted_l1() {
    let obj = SaeObjective {
        sparsity: 0.3,
        ..SaeObjective::default()
    };
    let (c, mut p) = make(SaeKind::Relu, obj, vec![], 6, 1);
    round(&mut p);
    check("relu", &c, &p);
}

#[test]
fn topk_with_auxk() {
    let obj = SaeObjective {
        aux: Some(AuxK {
            k_aux: 4,
            coefficient: 0.5,
        }),
        ..SaeObjective::default()
    };
    let dead: Vec<u32> = (0..40).filter(|j| j % 3 == 0).collect();
    let (c, mut p) = make(SaeKind::TopK { k: 5 }, obj, dead, 7, 2);
    round(&mut p);
    check("topk+auxk", &c, &p);
}

#[test]
fn topk_with_auxk_over_more_rows_than_one_block() {
    // 30 rows: several row blocks per thread split; few dead latents (scale < 1).
    let obj = SaeObjective {
        aux: Some(AuxK {
            k_aux: 8,
            coefficient: 1.0 / 32.0,
        }),
        ..SaeObjective::default()
    };
    let (c, mut p) = make(SaeKind::TopK { k: 3 }, obj, vec![1, 7, 22], 30, 3);
    round(&mut p);
    check("topk+auxk (30 rows)", &c, &p);
}

#[test]
fn batch_topk_and_matryoshka() {
    let (c, mut p) = make(
        SaeKind::BatchTopK { k: 4 },
        SaeObjective::default(),
        vec![],
        8,
        4,
    );
    round(&mut p);
    check("batchtopk", &c, &p);
    let obj = SaeObjective {
        prefixes: vec![5, 12, 25, 40],
        aux: Some(AuxK {
            k_aux: 3,
            coefficient: 0.25,
        }),
        ..SaeObjective::default()
    };
    let (c, mut p) = make(SaeKind::BatchTopK { k: 4 }, obj, vec![0, 9, 30, 31], 8, 5);
    round(&mut p);
    check("matryoshka batchtopk + auxk", &c, &p);
}

#[test]
fn jump_relu_parameters_and_straight_through_threshold() {
    let obj = SaeObjective {
        sparsity: 0.2,
        bandwidth: 0.3,
        ..SaeObjective::default()
    };
    let (c, mut p) = make(SaeKind::JumpRelu, obj, vec![], 9, 6);
    round(&mut p);
    check("jumprelu", &c, &p);

    // ∂L/∂θ_j = Σ_b K((pre − θ)/ε) (−(θ/ε) ∂L/∂z_bj − λ/(Bε)), with ∂L/∂z from
    // finite differences of the reconstruction loss in the codes.
    let (g, _) = analytic(&c, &p);
    let (pre, active) = forward(&c, &p);
    let mut z = vec![vec![0.0; c.m]; c.x.len()];
    for (b, a) in active.iter().enumerate() {
        for &j in a {
            z[b][j] = pre[b][j];
        }
    }
    let (eps, lambda, rows) = (0.3f64, 0.2f64, c.x.len() as f64);
    let mut in_window = 0;
    for j in 0..c.m {
        let th = p.theta[j];
        let mut want = 0.0;
        for b in 0..c.x.len() {
            if (pre[b][j] - th).abs() < 0.5 * eps {
                in_window += 1;
                let h = 1e-6;
                let mut zu = z.clone();
                zu[b][j] += h;
                let mut zd = z.clone();
                zd[b][j] -= h;
                let dz = (recon_loss(&c, &p, &zu) - recon_loss(&c, &p, &zd)) / (2.0 * h);
                want += -(th / eps) * dz - lambda / (rows * eps);
            }
        }
        assert!(
            (g.threshold[j] as f64 - want).abs() <= 1e-3 * want.abs().max(0.1),
            "latent {j}: ∂L/∂θ {} vs definition {want}",
            g.threshold[j]
        );
    }
    assert!(in_window > 20, "only {in_window} entries in the window");
}
