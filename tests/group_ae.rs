//! Group-sparse auto-encoder gradients against finite differences of an f64 forward pass,
//! for every group shape and both encoder forms.

use drsae::kernels::Groups;
use drsae::linalg::Mat;
use drsae::models::{EncoderForm, GroupAe, GroupAeWorkspace};
use rand::{Rng, SeedableRng};

fn loss64(
    m: &GroupAe,
    w: &[f64],
    bias: &[f64],
    gain: &[f64],
    dec: &[f64],
    x: &Mat,
    groups: &Groups,
    lambda: f64,
) -> f64 {
    let (n, p) = (m.hidden(), x.ncols());
    let mut total = 0.0;
    for i in 0..x.nrows() {
        let z: Vec<f64> = (0..n)
            .map(|j| {
                let u = (0..p).map(|k| w[j * p + k] * x[(i, k)] as f64).sum::<f64>() + bias[j];
                gain[j]
                    * match m.form {
                        EncoderForm::Relu => u.max(0.0),
                        EncoderForm::Tanh => u.tanh(),
                    }
            })
            .collect();
        let rec: f64 = (0..p)
            .map(|r| {
                (x[(i, r)] as f64 - (0..n).map(|j| dec[r * n + j] * z[j]).sum::<f64>()).powi(2)
            })
            .sum();
        let psi: f64 = (0..groups.len())
            .map(|k| {
                let (mm, ww) = groups.group(k);
                mm.iter()
                    .zip(ww)
                    .map(|(&j, &wt)| wt as f64 * z[j as usize].powi(2))
                    .sum::<f64>()
                    .sqrt()
            })
            .sum();
        total += 0.5 * rec + lambda * psi;
    }
    total / x.nrows() as f64
}

#[test]
fn gradients_for_every_group_shape_and_form() {
    let (p, batch) = (6, 4);
    let shapes = [
        ("blocks", Groups::disjoint(9, 3).unwrap()),
        ("grid", Groups::grid(3, 3, 2, 1, Some(1.0)).unwrap()),
        ("tree", Groups::tree(2, 3).unwrap()),
        ("singletons", Groups::disjoint(9, 1).unwrap()),
    ];
    for form in [EncoderForm::Relu, EncoderForm::Tanh] {
        for (name, groups) in &shapes {
            let mut rng = rand::rngs::StdRng::seed_from_u64(3);
            let mut model = GroupAe::init(p, groups.n_units(), form, &mut rng);
            for (b, g) in model.bias.iter_mut().zip(model.gain.iter_mut()) {
                *b = rng.gen_range(-0.3..0.3);
                *g = rng.gen_range(0.5..1.5);
            }
            let x = Mat::random(batch, p, rand_distr::StandardNormal, &mut rng);
            let lambda = 0.3;
            let mut ws = GroupAeWorkspace::default();
            let loss = model.forward(&x, groups, &mut ws);
            let mut g = model.zero_grads();
            model.backward(&x, groups, lambda, &mut ws, &mut g);
            let to64 = |v: &[f32]| v.iter().map(|&a| a as f64).collect::<Vec<f64>>();
            let (w, b, gn, d) = (
                to64(model.w.as_slice()),
                to64(&model.bias),
                to64(&model.gain),
                to64(model.dec.as_slice()),
            );
            let f0 = loss64(&model, &w, &b, &gn, &d, &x, groups, lambda as f64);
            assert!(
                (f0 - loss.mean(lambda)).abs() < 1e-4 * f0.max(1.0),
                "{name}: forward {f0} vs {}",
                loss.mean(lambda)
            );
            let h = 1e-6;
            for (tname, ours, base) in [
                ("W", g.w.as_slice(), &w),
                ("bias", &g.bias[..], &b),
                ("gain", &g.gain[..], &gn),
                ("D", g.dec.as_slice(), &d),
            ] {
                let gmax = ours.iter().fold(0.0f64, |a, &v| a.max((v as f64).abs()));
                for idx in 0..ours.len() {
                    let eval = |delta: f64| {
                        let mut q = base.clone();
                        q[idx] += delta;
                        match tname {
                            "W" => loss64(&model, &q, &b, &gn, &d, &x, groups, lambda as f64),
                            "bias" => loss64(&model, &w, &q, &gn, &d, &x, groups, lambda as f64),
                            "gain" => loss64(&model, &w, &b, &q, &d, &x, groups, lambda as f64),
                            _ => loss64(&model, &w, &b, &gn, &q, &x, groups, lambda as f64),
                        }
                    };
                    let fd = (eval(h) - eval(-h)) / (2.0 * h);
                    let tol = 2e-3 * fd.abs().max(1e-2 * gmax).max(1e-7);
                    assert!(
                        (ours[idx] as f64 - fd).abs() <= tol,
                        "{form:?} {name} ∂/∂{tname}[{idx}]: ours {} fd {fd}",
                        ours[idx]
                    );
                }
            }
        }
    }
}
