#![allow(clippy::needless_range_loop)]
//! LISTA: the ISTA correspondence and the hand-derived gradients.

use drsae::linalg::Mat;
use drsae::models::{Lista, ListaWorkspace};
use drsae::solvers::{ista, Dictionary, LassoOptions};
use rand::{Rng, SeedableRng};

fn dict(m: usize, n: usize, seed: u64) -> Dictionary {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    Dictionary::from_unit_rows(&Mat::random(n, m, rand_distr::StandardNormal, &mut rng)).unwrap()
}

#[test]
fn initialisation_is_ista() {
    let d = dict(12, 20, 1);
    let mut rng = rand::rngs::StdRng::seed_from_u64(2);
    let x = Mat::random(5, 12, rand_distr::StandardNormal, &mut rng);
    for iters in [0, 1, 4] {
        let lista = Lista::from_ista(&d, 0.3, iters);
        let z = lista.encode(&x);
        let mut zi = Mat::zeros(5, 20);
        ista(
            &d,
            &x,
            &mut zi,
            &LassoOptions::new(0.3).max_iters(iters + 1).tol(0.0),
        )
        .unwrap();
        assert!(
            z.max_abs_diff(&zi) < 1e-4,
            "T = {iters}: {}",
            z.max_abs_diff(&zi)
        );
    }
}

/// f64 reference of the LISTA loss.
fn loss64(we: &[f64], s: &[f64], th: &[f64], x: &Mat, target: &Mat, n: usize, iters: usize) -> f64 {
    let m = x.ncols();
    let mut total = 0.0;
    for i in 0..x.nrows() {
        let b: Vec<f64> = (0..n)
            .map(|j| (0..m).map(|k| we[j * m + k] * x[(i, k)] as f64).sum())
            .collect();
        let shrink = |v: f64, t: f64| v.signum() * (v.abs() - t).max(0.0);
        let mut z: Vec<f64> = (0..n).map(|j| shrink(b[j], th[j])).collect();
        for _ in 0..iters {
            z = (0..n)
                .map(|j| {
                    shrink(
                        b[j] + (0..n).map(|k| s[j * n + k] * z[k]).sum::<f64>(),
                        th[j],
                    )
                })
                .collect();
        }
        total += (0..n)
            .map(|j| 0.5 * (z[j] - target[(i, j)] as f64).powi(2))
            .sum::<f64>();
    }
    total / x.nrows() as f64
}

#[test]
fn gradients_match_finite_differences() {
    let (m, n, iters, batch) = (6, 5, 3, 4);
    let d = dict(m, n, 3);
    let mut rng = rand::rngs::StdRng::seed_from_u64(4);
    let mut parts = Lista::from_ista(&d, 0.2, iters).into_parts();
    for v in parts
        .we
        .as_mut_slice()
        .iter_mut()
        .chain(parts.s.as_mut_slice())
    {
        *v += rng.gen_range(-0.2..0.2);
    }
    for t in &mut parts.theta {
        *t = rng.gen_range(0.2..0.8);
    }
    let lista = Lista::from_parts(parts).unwrap();
    let x = Mat::random(batch, m, rand_distr::StandardNormal, &mut rng);
    let target = Mat::random(batch, n, rand_distr::Uniform::new(-0.5f32, 0.5), &mut rng);
    let mut ws = ListaWorkspace::default();
    lista.forward(&x, &mut ws);
    let mut g = lista.zero_grads();
    let loss = lista.backward(&x, &target, &mut ws, &mut g);
    let codes = ws.codes(batch, iters).to_owned();
    let nz = codes.as_slice().iter().filter(|v| **v != 0.0).count();
    assert!(
        nz > 0 && nz < batch * n,
        "want active and inactive units, got {nz}"
    );
    let to64 = |v: &[f32]| v.iter().map(|&x| x as f64).collect::<Vec<f64>>();
    let (we, s, th) = (
        to64(lista.we().as_slice()),
        to64(lista.s().as_slice()),
        to64(lista.theta()),
    );
    let f0 = loss64(&we, &s, &th, &x, &target, n, iters);
    assert!((f0 - loss).abs() < 1e-5 * f0.max(1.0));
    let h = 1e-6;
    for (name, ours, base) in [
        ("We", g.we.as_slice(), &we),
        ("S", g.s.as_slice(), &s),
        ("theta", &g.theta[..], &th),
    ] {
        let gmax = ours.iter().fold(0.0f64, |a, &v| a.max((v as f64).abs()));
        for idx in 0..ours.len() {
            let eval = |delta: f64| {
                let mut p = base.clone();
                p[idx] += delta;
                match name {
                    "We" => loss64(&p, &s, &th, &x, &target, n, iters),
                    "S" => loss64(&we, &p, &th, &x, &target, n, iters),
                    _ => loss64(&we, &s, &p, &x, &target, n, iters),
                }
            };
            let fd = (eval(h) - eval(-h)) / (2.0 * h);
            let tol = 2e-3 * fd.abs().max(1e-2 * gmax).max(1e-7);
            assert!(
                (ours[idx] as f64 - fd).abs() <= tol,
                "∂/∂{name}[{idx}]: ours {} fd {fd}",
                ours[idx]
            );
        }
    }
}

#[test]
fn training_beats_the_ista_initialisation() {
    use drsae::solvers::exact;
    use drsae::train::{train_lista, ListaConfig};
    let d = dict(16, 24, 5);
    let mut rng = rand::rngs::StdRng::seed_from_u64(6);
    let x = Mat::random(400, 16, rand_distr::StandardNormal, &mut rng);
    let mut z = Mat::zeros(400, 24);
    exact(&d, &x, &mut z, &LassoOptions::new(0.5)).unwrap();
    let mut lista = Lista::from_ista(&d, 0.5, 2);
    let before = lista.encode(&x).max_abs_diff(&z);
    let err = |m: &Lista| {
        let p = m.encode(&x);
        p.as_slice()
            .iter()
            .zip(z.as_slice())
            .map(|(a, b)| ((a - b) as f64).powi(2))
            .sum::<f64>()
    };
    let e0 = err(&lista);
    let losses = train_lista(
        &mut lista,
        &x,
        &z,
        &ListaConfig {
            epochs: 30,
            batch: 20,
            lr: 3e-3,
            ..Default::default()
        },
    )
    .unwrap();
    let e1 = err(&lista);
    assert!(
        e1 < 0.5 * e0,
        "trained error {e1} vs ISTA init {e0} (max diff before {before}); losses {losses:?}"
    );
}

#[test]
fn interrupted_and_resumed_training_matches_for_lista_group_ae_and_inhibition() {
    use drsae::kernels::Groups;
    use drsae::models::{tree_inhibition, EncoderForm, GroupAe};
    use drsae::solvers::exact;
    use drsae::train::*;
    let dir = std::env::temp_dir().join(format!("drsae-loops-{}", std::process::id()));
    let ck = |stop: Option<u64>, resume: bool| Checkpointing {
        dir: Some(dir.clone()),
        every_steps: 3,
        resume,
        stop_after_steps: stop,
    };
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let x = Mat::random(120, 12, rand_distr::StandardNormal, &mut rng);

    // LISTA (Adam moments in the checkpoint).
    let d = dict(12, 16, 8);
    let mut z = Mat::zeros(120, 16);
    exact(&d, &x, &mut z, &LassoOptions::new(0.4)).unwrap();
    let cfg = ListaConfig {
        epochs: 4,
        batch: 25,
        ..Default::default()
    };
    let mut reference = Lista::from_ista(&d, 0.4, 2);
    let losses = train_lista(&mut reference, &x, &z, &cfg).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let mut a = Lista::from_ista(&d, 0.4, 2);
    assert!(matches!(
        train_lista_with(&mut a, &x, &z, &cfg, &ck(Some(7), false)),
        Err(drsae::Error::Interrupted { step: 7 })
    ));
    let mut b = Lista::from_ista(&d, 0.4, 2);
    let resumed = train_lista_with(&mut b, &x, &z, &cfg, &ck(None, true)).unwrap();
    assert!(b == reference, "LISTA differs after resume");
    assert_eq!(losses, resumed);

    // Group-sparse auto-encoder.
    let groups = Groups::grid(4, 4, 2, 1, None).unwrap();
    let gcfg = GroupAeConfig {
        epochs: 3,
        batch: 30,
        lambda: 0.2,
        ..Default::default()
    };
    let init = GroupAe::init(
        12,
        16,
        EncoderForm::Relu,
        &mut rand::rngs::StdRng::seed_from_u64(1),
    );
    let mut reference = init.clone();
    train_group_ae(&mut reference, &x, &groups, &gcfg, |_, _, _| {}).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let mut a = init.clone();
    assert!(train_group_ae_with(
        &mut a,
        &x,
        &groups,
        &gcfg,
        &ck(Some(5), false),
        |_, _, _| {}
    )
    .is_err());
    let mut b = init.clone();
    train_group_ae_with(&mut b, &x, &groups, &gcfg, &ck(None, true), |_, _, _| {}).unwrap();
    assert!(b == reference, "group AE differs after resume");

    // Inhibition with learned S.
    let s0 = tree_inhibition(3, 2, 0.2).unwrap();
    let w0 = dict(12, 4, 9).atoms().clone();
    let icfg = InhibitionConfig {
        epochs: 3,
        batch: 30,
        lr_s: 0.05,
        beta: 0.5,
        ..Default::default()
    };
    let mut reference = InhibitionModel::new(w0.clone(), s0.clone(), None).unwrap();
    train_inhibition(&mut reference, &x, &icfg, |_, _, _| {}).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let mut a = InhibitionModel::new(w0.clone(), s0.clone(), None).unwrap();
    assert!(train_inhibition_with(&mut a, &x, &icfg, &ck(Some(4), false), |_, _, _| {}).is_err());
    let mut b = InhibitionModel::new(w0, s0, None).unwrap();
    train_inhibition_with(&mut b, &x, &icfg, &ck(None, true), |_, _, _| {}).unwrap();
    assert!(b == reference, "inhibition model differs after resume");
    std::fs::remove_dir_all(&dir).ok();
}

/// A trainer called directly (not through an estimator) refuses checkpoint settings that
/// need a directory it was not given, instead of silently training from scratch.
#[test]
fn a_direct_trainer_call_refuses_resume_without_a_directory() {
    use drsae::train::{train_lista_with, Checkpointing, ListaConfig};
    let d = dict(8, 12, 3);
    let mut rng = rand::rngs::StdRng::seed_from_u64(2);
    let x = Mat::random(20, 8, rand_distr::StandardNormal, &mut rng);
    let z = Mat::zeros(20, 12);
    let mut lista = Lista::from_ista(&d, 0.5, 2);
    for ckpt in [
        Checkpointing {
            resume: true,
            ..Default::default()
        },
        Checkpointing {
            every_steps: 5,
            ..Default::default()
        },
        Checkpointing {
            stop_after_steps: Some(3),
            ..Default::default()
        },
    ] {
        let before = lista.clone();
        match train_lista_with(&mut lista, &x, &z, &ListaConfig::default(), &ckpt) {
            Err(drsae::Error::InvalidParameter { name, .. }) => assert_eq!(name, "checkpoint_dir"),
            other => panic!("{ckpt:?}: {other:?}"),
        }
        assert!(lista == before, "the model changed before the refusal");
    }
}

/// `Lista::from_parts` gives back the network `into_parts` took apart, and refuses parts
/// that break its shapes or θ ≥ 0.
#[test]
fn lista_parts_round_trip_and_are_checked() {
    let lista = Lista::from_ista(&dict(8, 12, 3), 0.5, 2);
    assert!(Lista::from_parts(lista.clone().into_parts()).unwrap() == lista);
    let mut p = lista.clone().into_parts();
    p.theta[3] = -0.1;
    assert!(matches!(
        Lista::from_parts(p),
        Err(drsae::Error::Format { .. })
    ));
    let mut p = lista.clone().into_parts();
    p.theta.pop();
    assert!(matches!(
        Lista::from_parts(p),
        Err(drsae::Error::Format { .. })
    ));
    let mut p = lista.into_parts();
    p.iters = 0;
    assert!(Lista::from_parts(p).is_err());
}
