#![allow(clippy::needless_range_loop)]
//! Group-sparse auto-encoder gradients against finite differences of an f64 forward pass,
//! for every group shape and both encoder forms.

use drsae::kernels::Groups;
use drsae::linalg::Mat;
use drsae::models::{EncoderForm, GroupAe, GroupAeParts, GroupAeWorkspace};
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
                    * match m.form() {
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
            let mut parts = GroupAe::init(p, groups.n_units(), form, &mut rng).into_parts();
            for (b, g) in parts.bias.iter_mut().zip(parts.gain.iter_mut()) {
                *b = rng.gen_range(-0.3..0.3);
                *g = rng.gen_range(0.5..1.5);
            }
            let model = GroupAe::from_parts(parts).unwrap();
            let x = Mat::random(batch, p, rand_distr::StandardNormal, &mut rng);
            let lambda = 0.3;
            let mut ws = GroupAeWorkspace::default();
            let loss = model.forward(&x, groups, &mut ws);
            let mut g = model.zero_grads();
            model.backward(&x, groups, lambda, &mut ws, &mut g);
            let to64 = |v: &[f32]| v.iter().map(|&a| a as f64).collect::<Vec<f64>>();
            let (w, b, gn, d) = (
                to64(model.w().as_slice()),
                to64(model.bias()),
                to64(model.gain()),
                to64(model.dec().as_slice()),
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

#[test]
fn psd_gradients_at_fixed_codes_and_inference_lowers_the_energy() {
    let (p, batch, alpha, lambda) = (6, 4, 0.7f32, 0.2f32);
    let groups = Groups::grid(3, 3, 2, 1, None).unwrap();
    for form in [EncoderForm::Relu, EncoderForm::Tanh] {
        let mut rng = rand::rngs::StdRng::seed_from_u64(9);
        let mut parts = GroupAe::init(p, 9, form, &mut rng).into_parts();
        for b in parts.bias.iter_mut() {
            *b = rng.gen_range(0.0..0.3);
        }
        let model = GroupAe::from_parts(parts).unwrap();
        let x = Mat::random(batch, p, rand_distr::StandardNormal, &mut rng);
        let mut ws = GroupAeWorkspace::default();
        let mut g = model.zero_grads();
        let lip = drsae::solvers::largest_eigenvalue(&{
            let mut gram = Mat::zeros(9, 9);
            drsae::linalg::gemm(
                1.0,
                model.dec().t(),
                model.dec().view(),
                0.0,
                gram.view_mut(),
            );
            gram
        });
        let energy = |z: &Mat, f: &Mat| -> f64 {
            let mut e = 0.0;
            for i in 0..batch {
                for r in 0..p {
                    let v = x[(i, r)] as f64
                        - (0..9)
                            .map(|j| model.dec()[(r, j)] as f64 * z[(i, j)] as f64)
                            .sum::<f64>();
                    e += 0.5 * v * v;
                }
                let mut norms = vec![0.0; groups.len()];
                e += lambda as f64 * groups.value(z.row(i), &mut norms) as f64;
                e += 0.5
                    * alpha as f64
                    * (0..9)
                        .map(|j| ((z[(i, j)] - f[(i, j)]) as f64).powi(2))
                        .sum::<f64>();
            }
            e
        };
        model.forward(&x, &groups, &mut ws);
        let f = model.codes(&ws).clone();
        model.psd_step(&x, &groups, lambda, alpha, 30, lip, &mut ws, &mut g);
        let zstar = model.psd_codes(&ws).clone();
        assert!(
            energy(&zstar, &f) < energy(&f, &f),
            "{form:?}: inference did not lower the energy"
        );
        // Finite differences of ½‖x − D z*‖² + ½α‖z* − F(x)‖² (batch mean) at fixed z*.
        let obj = |m: &GroupAe| -> f64 {
            let mut w2 = GroupAeWorkspace::default();
            m.forward(&x, &groups, &mut w2);
            let fx = m.codes(&w2);
            let mut e = 0.0;
            for i in 0..batch {
                for r in 0..p {
                    let v = x[(i, r)] as f64
                        - (0..9)
                            .map(|j| m.dec()[(r, j)] as f64 * zstar[(i, j)] as f64)
                            .sum::<f64>();
                    e += 0.5 * v * v;
                }
                e += 0.5
                    * alpha as f64
                    * (0..9)
                        .map(|j| ((zstar[(i, j)] - fx[(i, j)]) as f64).powi(2))
                        .sum::<f64>();
            }
            e / batch as f64
        };
        // f32 forward: use a larger step and a looser bound than the f64 tests.
        let h = 1e-3f32;
        let check = |name: &str, ours: &[f32], get: &dyn Fn(&mut GroupAeParts) -> &mut [f32]| {
            let gmax = ours.iter().fold(0.0f32, |a, &v| a.max(v.abs()));
            for idx in 0..ours.len() {
                let moved = |delta: f32| {
                    let mut q = model.clone().into_parts();
                    get(&mut q)[idx] += delta;
                    GroupAe::from_parts(q).unwrap()
                };
                let (mp, mm) = (moved(h), moved(-h));
                let fd = (obj(&mp) - obj(&mm)) / (2.0 * h as f64);
                let tol = 2e-2 * fd.abs().max(0.05 * gmax as f64).max(1e-4);
                assert!(
                    (ours[idx] as f64 - fd).abs() <= tol,
                    "{form:?} PSD ∂/∂{name}[{idx}]: ours {} fd {fd}",
                    ours[idx]
                );
            }
        };
        check("W", g.w.as_slice(), &|m| m.w.as_mut_slice());
        check("bias", &g.bias, &|m| &mut m.bias[..]);
        check("gain", &g.gain, &|m| &mut m.gain[..]);
        check("D", g.dec.as_slice(), &|m| m.dec.as_mut_slice());
    }
}

/// The ReLU encoder's 8-wide pass (taken when the unit count is a multiple of 8: 16 and 144
/// here, the examples' sizes, where the tests above use 9) at every SIMD level the machine
/// has: gradients against finite differences of the f64 forward pass, and codes, loss and
/// gradients against the scalar pass, reached by adding a 17th / 145th unit that is never
/// active (zero filter, negative bias) in a singleton group of its own.
#[test]
fn eight_wide_relu_encoder_matches_finite_differences_and_the_scalar_pass() {
    use drsae::simd::{self, Level};
    let (p, batch, lambda) = (6, 5, 0.3f32);
    let levels: Vec<Level> = Level::ALL
        .into_iter()
        .filter(|l| l.is_supported())
        .collect();
    assert!(levels.contains(&Level::Portable));
    for &level in &levels {
        simd::force(level).unwrap();
        for (n, side) in [(16, 4), (144, 12)] {
            let shapes = [
                ("pairs", Groups::disjoint(n, 2).unwrap()),
                ("grid", Groups::grid(side, side, 2, 1, Some(1.0)).unwrap()),
            ];
            for (name, groups) in &shapes {
                let what = format!("{level:?}, {n} units, {name}");
                let mut rng = rand::rngs::StdRng::seed_from_u64(n as u64);
                let mut parts = GroupAe::init(p, n, EncoderForm::Relu, &mut rng).into_parts();
                for (b, g) in parts.bias.iter_mut().zip(parts.gain.iter_mut()) {
                    *b = rng.gen_range(-0.3..0.3);
                    *g = rng.gen_range(0.5..1.5);
                }
                let model = GroupAe::from_parts(parts).unwrap();
                let x = Mat::random(batch, p, rand_distr::StandardNormal, &mut rng);
                let mut ws = GroupAeWorkspace::default();
                let loss = model.forward(&x, groups, &mut ws);
                let codes = model.codes(&ws).clone();
                let active = codes.as_slice().iter().filter(|v| **v > 0.0).count();
                assert!(
                    active > codes.as_slice().len() / 5 && active < codes.as_slice().len(),
                    "{what}: {active} active codes (the test needs both kinds)"
                );
                let mut g = model.zero_grads();
                model.backward(&x, groups, lambda, &mut ws, &mut g);

                // Finite differences (every 3rd entry of the large tensors at 144 units).
                let to64 = |v: &[f32]| v.iter().map(|&a| a as f64).collect::<Vec<f64>>();
                let (w, b, gn, d) = (
                    to64(model.w().as_slice()),
                    to64(model.bias()),
                    to64(model.gain()),
                    to64(model.dec().as_slice()),
                );
                let lam = lambda as f64;
                let f0 = loss64(&model, &w, &b, &gn, &d, &x, groups, lam);
                assert!(
                    (f0 - loss.mean(lambda)).abs() < 1e-4 * f0.max(1.0),
                    "{what}: forward {f0} vs {}",
                    loss.mean(lambda)
                );
                let stride = if n > 16 { 3 } else { 1 };
                let h = 1e-6;
                for (tname, ours, base) in [
                    ("W", g.w.as_slice(), &w),
                    ("bias", &g.bias[..], &b),
                    ("gain", &g.gain[..], &gn),
                    ("D", g.dec.as_slice(), &d),
                ] {
                    let gmax = ours.iter().fold(0.0f64, |a, &v| a.max((v as f64).abs()));
                    for idx in (0..ours.len()).step_by(stride) {
                        let eval = |delta: f64| {
                            let mut q = base.clone();
                            q[idx] += delta;
                            match tname {
                                "W" => loss64(&model, &q, &b, &gn, &d, &x, groups, lam),
                                "bias" => loss64(&model, &w, &q, &gn, &d, &x, groups, lam),
                                "gain" => loss64(&model, &w, &b, &q, &d, &x, groups, lam),
                                _ => loss64(&model, &w, &b, &gn, &q, &x, groups, lam),
                            }
                        };
                        let fd = (eval(h) - eval(-h)) / (2.0 * h);
                        let tol = 2e-3 * fd.abs().max(1e-2 * gmax).max(1e-7);
                        assert!(
                            (ours[idx] as f64 - fd).abs() <= tol,
                            "{what} ∂/∂{tname}[{idx}]: ours {} fd {fd}",
                            ours[idx]
                        );
                    }
                }

                // The scalar pass: one more unit, never active, alone in its group.
                let np = n + 1;
                let mut padded = GroupAe::init(p, np, EncoderForm::Relu, &mut rng).into_parts();
                for j in 0..np {
                    for k in 0..p {
                        padded.w[(j, k)] = if j < n { model.w()[(j, k)] } else { 0.0 };
                        padded.dec[(k, j)] = if j < n { model.dec()[(k, j)] } else { 0.0 };
                    }
                    padded.bias[j] = if j < n { model.bias()[j] } else { -1.0 };
                    padded.gain[j] = if j < n { model.gain()[j] } else { 1.0 };
                }
                let padded = GroupAe::from_parts(padded).unwrap();
                let mut lists: Vec<Vec<(usize, f32)>> = (0..groups.len())
                    .map(|k| {
                        let (mm, ww) = groups.group(k);
                        mm.iter()
                            .map(|&j| j as usize)
                            .zip(ww.iter().copied())
                            .collect()
                    })
                    .collect();
                lists.push(vec![(n, 1.0)]);
                let pgroups = Groups::from_lists(np, lists).unwrap();
                let mut pws = GroupAeWorkspace::default();
                let ploss = padded.forward(&x, &pgroups, &mut pws);
                let pcodes = padded.codes(&pws).clone();
                let mut pg = padded.zero_grads();
                padded.backward(&x, &pgroups, lambda, &mut pws, &mut pg);
                let close = |a: f32, b: f32, scale: f32| (a - b).abs() <= 1e-5 * scale.max(1e-3);
                assert!(
                    close(
                        ploss.mean(lambda) as f32,
                        loss.mean(lambda) as f32,
                        f0 as f32
                    ),
                    "{what}: loss {} (scalar) vs {}",
                    ploss.mean(lambda),
                    loss.mean(lambda)
                );
                let cmax = codes.as_slice().iter().fold(0.0f32, |a, v| a.max(v.abs()));
                for i in 0..batch {
                    assert_eq!(pcodes[(i, n)], 0.0);
                    for j in 0..n {
                        assert!(
                            close(codes[(i, j)], pcodes[(i, j)], cmax),
                            "{what}: code ({i}, {j}) {} vs scalar {}",
                            codes[(i, j)],
                            pcodes[(i, j)]
                        );
                    }
                }
                let pairs: [(&str, Vec<f32>, Vec<f32>); 4] = [
                    (
                        "W",
                        g.w.as_slice().to_vec(),
                        pg.w.as_slice()[..n * p].to_vec(),
                    ),
                    ("bias", g.bias.clone(), pg.bias[..n].to_vec()),
                    ("gain", g.gain.clone(), pg.gain[..n].to_vec()),
                    (
                        "D",
                        g.dec.as_slice().to_vec(),
                        (0..p)
                            .flat_map(|k| (0..n).map(move |j| (k, j)))
                            .map(|(k, j)| pg.dec[(k, j)])
                            .collect(),
                    ),
                ];
                for (tname, ours, scalar) in &pairs {
                    let gmax = ours.iter().fold(0.0f32, |a, v| a.max(v.abs()));
                    for (idx, (a, s)) in ours.iter().zip(scalar).enumerate() {
                        assert!(
                            close(*a, *s, gmax),
                            "{what} ∂/∂{tname}[{idx}]: {a} vs scalar {s}"
                        );
                    }
                }
            }
        }
    }
    simd::force(*levels.last().unwrap()).unwrap();
}

/// ReLU(NaN) = NaN on every encoder path: the dense model's 8-wide pass (8 and 16 units)
/// and scalar pass (9 units), and the convolutional model's fused encoder, full vectors of
/// 8 maps and the tail of 3. A row without NaN is unaffected.
#[test]
fn relu_of_nan_is_nan_on_every_encoder_path() {
    use drsae::kernels::ConvShape;
    use drsae::models::{ConvAe, ConvAeWorkspace};
    let p = 6;
    for n in [8, 9, 16] {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let model = GroupAe::init(p, n, EncoderForm::Relu, &mut rng);
        let mut x = Mat::random(2, p, rand_distr::StandardNormal, &mut rng);
        x[(0, 2)] = f32::NAN;
        let groups = Groups::disjoint(n, 1).unwrap();
        let mut ws = GroupAeWorkspace::default();
        model.forward(&x, &groups, &mut ws);
        let z = model.codes(&ws);
        assert!(
            z.row(0).iter().all(|v| v.is_nan()),
            "{n} units: ReLU(NaN) gave {:?}",
            z.row(0)
        );
        assert!(z.row(1).iter().all(|v| v.is_finite() && *v >= 0.0));
    }
    let shape = ConvShape::new(5, 5, 1, 3).unwrap();
    for maps in [3, 8] {
        let mut rng = rand::rngs::StdRng::seed_from_u64(2);
        let model = ConvAe::init(shape, maps, EncoderForm::Relu, &mut rng);
        let mut x = Mat::random(2, shape.image_len(), rand_distr::StandardNormal, &mut rng);
        x[(0, 0)] = f32::NAN; // the top-left pixel: only output position (0, 0) sees it
        let mut ws = ConvAeWorkspace::default();
        let z = model.encode(&x, &mut ws);
        let row0 = z.row(0);
        assert!(
            row0[..maps].iter().all(|v| v.is_nan()),
            "{maps} maps: ReLU(NaN) gave {:?}",
            &row0[..maps]
        );
        assert!(row0[maps..].iter().all(|v| v.is_finite()));
        assert!(z.row(1).iter().all(|v| v.is_finite()));
    }
}
