#![allow(clippy::needless_range_loop)]
//! DrSAE training through the public API: the loss goes down, runs are reproducible,
//! model files round-trip, bad settings and diverging runs give typed errors.

use drsae::data::{normalize_rows_l2, Mnist};
use drsae::io::{drsae_from_bytes, drsae_to_bytes, load_drsae, save_drsae};
use drsae::linalg::Mat;
use drsae::models::{DrsaeWorkspace, LossWeights};
use drsae::train::{train_drsae, DrsaeConfig, Split};
use drsae::Error;

fn sample(n_train: usize, n_val: usize) -> (Mat, Vec<u8>, Mat, Vec<u8>) {
    let m = Mnist::load("data/mnist-sample").expect("bundled sample");
    let train = m.train.take(n_train + n_val);
    let (mut tr, mut va) = train.split_last(n_val);
    normalize_rows_l2(&mut tr.images);
    normalize_rows_l2(&mut va.images);
    (tr.images, tr.labels, va.images, va.labels)
}

fn split_of<'a>(tx: &'a Mat, ty: &'a [u8], vx: &'a Mat, vy: &'a [u8]) -> Split<'a> {
    Split {
        train_x: tx,
        train_y: ty,
        val_x: vx,
        val_y: vy,
    }
}

fn small_config() -> DrsaeConfig {
    DrsaeConfig {
        hidden: 32,
        steps: 4,
        batch: 20,
        epochs_unsup: 1,
        epochs_sup: 3,
        lr: 3e-3,
        seed: 7,
        ..Default::default()
    }
}

#[test]
fn training_learns_and_is_reproducible() {
    let (tx, ty, vx, vy) = sample(1000, 300);
    let split = split_of(&tx, &ty, &vx, &vy);
    let mut reports = Vec::new();
    let a = train_drsae(&small_config(), split, |r| reports.push(r.clone())).unwrap();
    assert_eq!(reports.len(), 4);
    let sup: Vec<_> = reports.iter().filter(|r| r.phase == 2).collect();
    assert!(
        sup.last().unwrap().loss < sup[0].loss,
        "loss did not go down: {reports:?}"
    );
    assert!(
        a.best_val_error < 60.0,
        "validation error {} is no better than chance",
        a.best_val_error
    );
    let b = train_drsae(&small_config(), split, |_| {}).unwrap();
    assert!(
        a.model == b.model,
        "same seed and settings gave different models"
    );
    let c = train_drsae(
        &DrsaeConfig {
            seed: 8,
            ..small_config()
        },
        split,
        |_| {},
    )
    .unwrap();
    assert!(a.model != c.model);
}

#[test]
fn model_file_round_trips() {
    let (tx, ty, vx, vy) = sample(200, 100);
    let split = split_of(&tx, &ty, &vx, &vy);
    let cfg = DrsaeConfig {
        epochs_sup: 1,
        ..small_config()
    };
    let out = train_drsae(&cfg, split, |_| {}).unwrap();
    let dir = std::env::temp_dir().join(format!("drsae-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("model.safetensors");
    save_drsae(&out.model, &LossWeights::paper(), &[], &path).unwrap();
    let (loaded, meta) = load_drsae(&path).unwrap();
    assert_eq!(meta["steps"], "4");
    assert!(loaded == out.model);
    let (p1, e1) = out.model.evaluate(&vx, &vy, 64);
    let (p2, e2) = loaded.evaluate(&vx, &vy, 64);
    assert_eq!((p1, e1), (p2, e2));
    assert_eq!(out.model.encode(&vx, 50), loaded.encode(&vx, 50));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn hostile_model_files_are_errors() {
    let (tx, ty, vx, vy) = sample(100, 50);
    let split = split_of(&tx, &ty, &vx, &vy);
    let out = train_drsae(
        &DrsaeConfig {
            epochs_sup: 1,
            epochs_unsup: 0,
            ..small_config()
        },
        split,
        |_| {},
    )
    .unwrap();
    let bytes = drsae_to_bytes(&out.model, &LossWeights::paper(), &[]).unwrap();
    for cut in [0, 7, 8, 20, bytes.len() / 2, bytes.len() - 1] {
        assert!(
            matches!(drsae_from_bytes(&bytes[..cut]), Err(Error::Format { .. })),
            "truncated at {cut}"
        );
    }
    // Header length forged to claim far more than the file holds.
    let mut forged = bytes.clone();
    forged[..8].copy_from_slice(&(u64::MAX / 2).to_le_bytes());
    assert!(matches!(
        drsae_from_bytes(&forged),
        Err(Error::Format { .. })
    ));
    // Shapes that disagree with each other.
    let (mut t, meta) = drsae::io::tensors_from_bytes(&bytes).unwrap();
    let b = t.get_mut("b").expect("tensor b");
    b.0[0] += 1;
    b.1.push(0.0);
    let named: Vec<_> = t
        .iter()
        .map(|(k, (s, v))| (k.clone(), s.clone(), &v[..]))
        .collect();
    let bytes = drsae::io::tensors_to_bytes(&named, meta).unwrap();
    let e = drsae_from_bytes(&bytes).unwrap_err().to_string();
    assert!(e.contains("inconsistent shapes"), "{e}");
    // Metadata that disagrees: steps = 0.
    let bytes =
        drsae_to_bytes(&out.model, &LossWeights::paper(), &[("steps", "0".into())]).unwrap();
    assert!(drsae_from_bytes(&bytes)
        .unwrap_err()
        .to_string()
        .contains("steps"));
}

#[test]
fn bad_settings_and_divergence_are_typed_errors() {
    let (tx, ty, vx, vy) = sample(100, 50);
    let split = split_of(&tx, &ty, &vx, &vy);
    for (cfg, name) in [
        (
            DrsaeConfig {
                batch: 0,
                ..small_config()
            },
            "batch",
        ),
        (
            DrsaeConfig {
                lr: f32::NAN,
                ..small_config()
            },
            "lr",
        ),
        (
            DrsaeConfig {
                hidden: 0,
                ..small_config()
            },
            "hidden",
        ),
        // Sizes the model file could not hold, or that overflow, refused by the trainer
        // itself (not only by the estimator) before anything is allocated.
        (
            DrsaeConfig {
                hidden: 1 << 40,
                ..small_config()
            },
            "hidden",
        ),
        (
            DrsaeConfig {
                steps: drsae::train::MAX_STEPS + 1,
                ..small_config()
            },
            "steps",
        ),
        (
            DrsaeConfig {
                batch: usize::MAX,
                ..small_config()
            },
            "batch",
        ),
        (
            DrsaeConfig {
                time_budget: Some(-1.0),
                ..small_config()
            },
            "time_budget",
        ),
        (
            DrsaeConfig {
                unsup_optimizer: Some((drsae::train::Optimizer::Sgd, 0.0)),
                ..small_config()
            },
            "unsup_optimizer",
        ),
    ] {
        match train_drsae(&cfg, split, |_| {}) {
            Err(Error::InvalidParameter { name: n, .. }) => assert_eq!(n, name),
            other => panic!("{name}: {other:?}"),
        }
    }
    // An absurd learning rate is refused before training...
    let cfg = DrsaeConfig {
        lr: 1e30,
        optimizer: drsae::train::Optimizer::Sgd,
        ..small_config()
    };
    match train_drsae(&cfg, split, |_| {}) {
        Err(Error::InvalidParameter { name, .. }) => assert_eq!(name, "lr"),
        other => panic!(
            "expected lr refused, got {:?}",
            other.map(|o| o.best_val_error)
        ),
    }
    // ...and the largest accepted rate and weights drive the loss to infinity: a typed
    // error naming the step.
    let cfg = DrsaeConfig {
        lr: drsae::train::MAX_LR,
        weights: LossWeights {
            reconstruction: drsae::train::MAX_WEIGHT,
            sparsity: 0.0,
            classification: drsae::train::MAX_WEIGHT,
        },
        optimizer: drsae::train::Optimizer::Sgd,
        ..small_config()
    };
    match train_drsae(&cfg, split, |_| {}) {
        Err(Error::Diverged { step, .. }) => assert!(step < 100),
        other => panic!(
            "expected divergence, got {:?}",
            other.map(|o| o.best_val_error)
        ),
    }
    let mut bad = tx.clone();
    bad[(3, 5)] = f32::NAN;
    let split = Split {
        train_x: &bad,
        train_y: &ty,
        val_x: &vx,
        val_y: &vy,
    };
    match train_drsae(&small_config(), split, |_| {}) {
        Err(Error::NonFiniteInput { index, .. }) => assert_eq!(index, 3 * 784 + 5),
        other => panic!("{other:?}"),
    }
}

#[test]
fn forward_is_batch_size_independent() {
    let (tx, ty, vx, vy) = sample(200, 50);
    let split = split_of(&tx, &ty, &vx, &vy);
    let out = train_drsae(
        &DrsaeConfig {
            epochs_sup: 1,
            ..small_config()
        },
        split,
        |_| {},
    )
    .unwrap();
    let a = out.model.encode(&vx, 1);
    let b = out.model.encode(&vx, 50);
    assert!(a.max_abs_diff(&b) < 1e-5);
    let mut ws = DrsaeWorkspace::default();
    let loss = out.model.forward(&vx, Some(&vy), &mut ws);
    assert_eq!(loss.count, 50);
}

#[test]
fn interrupted_and_resumed_run_gives_the_same_model_bytes() {
    use drsae::train::{train_drsae_with, Checkpointing, Optimizer};
    let (tx, ty, vx, vy) = sample(300, 100);
    let split = split_of(&tx, &ty, &vx, &vy);
    // 15 steps per epoch, 1 + 3 epochs: interrupt mid-epoch in phase 1 and in phase 2.
    for (optimizer, average, stops) in [
        (Optimizer::adam(), None, vec![7u64, 26, 40]),
        (Optimizer::Momentum { momentum: 0.9 }, None, vec![15, 31]),
        (Optimizer::adam(), Some(0.9), vec![19, 37]),
    ] {
        let cfg = DrsaeConfig {
            optimizer,
            average,
            ..small_config()
        };
        let reference = train_drsae(&cfg, split, |_| {}).unwrap();
        let dir =
            std::env::temp_dir().join(format!("drsae-resume-{}-{}", std::process::id(), stops[0]));
        let _ = std::fs::remove_dir_all(&dir);
        for (i, &stop) in stops.iter().enumerate() {
            let ck = Checkpointing {
                dir: Some(dir.clone()),
                every_steps: 4,
                resume: i > 0,
                stop_after_steps: Some(stop),
            };
            match train_drsae_with(&cfg, split, &ck, |_| {}) {
                Err(Error::Interrupted { step }) => assert_eq!(step, stop),
                other => panic!(
                    "expected an interruption at {stop}, got {:?}",
                    other.map(|o| o.best_epoch)
                ),
            }
        }
        let ck = Checkpointing {
            dir: Some(dir.clone()),
            every_steps: 4,
            resume: true,
            stop_after_steps: None,
        };
        let resumed = train_drsae_with(&cfg, split, &ck, |_| {}).unwrap();
        if average.is_some() {
            // The returned model is the average: its validation error is the reported one.
            let (_, e) = resumed.model.evaluate(&vx, &vy, 500);
            assert_eq!(e, resumed.best_val_error);
            let plain = DrsaeConfig {
                average: None,
                ..cfg.clone()
            };
            let plain = train_drsae(&plain, split, |_| {}).unwrap();
            assert!(plain.model != resumed.model, "averaging changed nothing");
            let bad = DrsaeConfig {
                average: Some(1.0),
                ..cfg.clone()
            };
            assert!(matches!(
                train_drsae(&bad, split, |_| {}),
                Err(Error::InvalidParameter {
                    name: "average",
                    ..
                })
            ));
        }
        let a = drsae_to_bytes(&reference.model, &LossWeights::paper(), &[]).unwrap();
        let b = drsae_to_bytes(&resumed.model, &LossWeights::paper(), &[]).unwrap();
        assert!(
            a == b,
            "{optimizer:?} (average {average:?}): resumed model differs\n{:?}\n{:?}",
            reference
                .history
                .iter()
                .map(|r| (r.phase, r.epoch, r.loss))
                .collect::<Vec<_>>(),
            resumed
                .history
                .iter()
                .map(|r| (r.phase, r.epoch, r.loss))
                .collect::<Vec<_>>()
        );
        assert_eq!(reference.best_epoch, resumed.best_epoch);
        assert_eq!(reference.history.len(), resumed.history.len());
        for (x, y) in reference.history.iter().zip(&resumed.history) {
            assert_eq!(
                (x.phase, x.epoch, x.loss, x.val_error),
                (y.phase, y.epoch, y.loss, y.val_error)
            );
        }
        // A checkpoint from another configuration is refused.
        let other = DrsaeConfig {
            lr: 1e-2,
            ..cfg.clone()
        };
        assert!(matches!(
            train_drsae_with(&other, split, &ck, |_| {}),
            Err(Error::InvalidParameter { name: "resume", .. })
        ));
        std::fs::remove_dir_all(&dir).ok();
    }
}

#[test]
fn minibatch_10_sgd_and_adam_do_not_depend_on_the_thread_count() {
    // Shapes large enough that every GEMM and fused rank update of the step is split over
    // threads (784 inputs, 256 units), minibatch 10 (the few-row kernels).
    use drsae::linalg::set_gemm_threads;
    use drsae::train::Optimizer;
    let (tx, ty, vx, vy) = sample(200, 50);
    let split = split_of(&tx, &ty, &vx, &vy);
    for optimizer in [Optimizer::Sgd, Optimizer::adam()] {
        let cfg = DrsaeConfig {
            hidden: 256,
            steps: 3,
            batch: 10,
            epochs_unsup: 1,
            epochs_sup: 1,
            optimizer,
            lr: 1e-3,
            seed: 3,
            ..Default::default()
        };
        let models: Vec<_> = [1, 2, 3]
            .into_iter()
            .map(|threads| {
                set_gemm_threads(threads);
                train_drsae(&cfg, split, |_| {}).unwrap().model
            })
            .collect();
        set_gemm_threads(std::thread::available_parallelism().map_or(1, |n| n.get()));
        assert!(models[0] == models[1], "{optimizer:?}: 1 vs 2 threads");
        assert!(models[0] == models[2], "{optimizer:?}: 1 vs 3 threads");
    }
}

#[test]
fn a_phase_1_optimizer_applies_to_phase_1_only() {
    use drsae::train::Optimizer;
    let (tx, ty, vx, vy) = sample(200, 50);
    let split = split_of(&tx, &ty, &vx, &vy);
    let base = small_config();
    let plain = train_drsae(&base, split, |_| {}).unwrap();
    // Naming phase 2's own rule and rate for phase 1 changes nothing.
    let same = DrsaeConfig {
        unsup_optimizer: Some((base.optimizer, base.lr)),
        ..small_config()
    };
    assert!(train_drsae(&same, split, |_| {}).unwrap().model == plain.model);
    // A different phase-1 rule gives a different model...
    let sgd = DrsaeConfig {
        unsup_optimizer: Some((Optimizer::Sgd, 1e-2)),
        ..small_config()
    };
    assert!(train_drsae(&sgd, split, |_| {}).unwrap().model != plain.model);
    // ...an absurd phase-1 rate is refused...
    let refused = DrsaeConfig {
        unsup_optimizer: Some((Optimizer::Sgd, 1e30)),
        ..small_config()
    };
    match train_drsae(&refused, split, |_| {}) {
        Err(Error::InvalidParameter { name, .. }) => assert_eq!(name, "unsup_optimizer"),
        other => panic!(
            "expected the rate refused, got {:?}",
            other.map(|o| o.best_val_error)
        ),
    }
    // ...and the largest accepted one (with the largest reconstruction weight) wrecks the
    // run within phase 1's 10 steps, while without a phase 1 it is never used.
    let absurd = DrsaeConfig {
        unsup_optimizer: Some((Optimizer::Sgd, drsae::train::MAX_LR)),
        weights: LossWeights {
            reconstruction: drsae::train::MAX_WEIGHT,
            ..LossWeights::paper()
        },
        ..small_config()
    };
    match train_drsae(&absurd, split, |_| {}) {
        Err(Error::Diverged { step, .. }) => assert!(step < 10, "step {step}"),
        // Or phase 1's steps silence every unit: the first epoch of phase 2 (steps 10..20)
        // then finds them dead.
        Err(Error::Collapsed { step, .. }) => assert!(step <= 20, "step {step}"),
        other => panic!(
            "expected divergence or collapse from phase 1, got {:?}",
            other.map(|o| o.best_val_error)
        ),
    }
    let no_phase_1 = DrsaeConfig {
        epochs_unsup: 0,
        ..absurd
    };
    assert!(train_drsae(&no_phase_1, split, |_| {}).is_ok());
}

#[test]
fn a_network_silent_for_a_whole_epoch_is_a_collapse_error() {
    // All-zero inputs: E x = 0 and the positive bias keep every unit at zero, so no gradient
    // flows and the network can never wake up.
    let (_, ty, vx, vy) = sample(200, 50);
    let zeros = Mat::zeros(200, vx.ncols());
    let split = split_of(&zeros, &ty, &vx, &vy);
    match train_drsae(&small_config(), split, |_| {}) {
        Err(
            e @ Error::Collapsed {
                phase: 1, epoch: 1, ..
            },
        ) => {
            assert!(e.to_string().contains("lower the learning rate"), "{e}")
        }
        other => panic!(
            "expected a collapse in phase 1, got {:?}",
            other.map(|o| o.best_val_error)
        ),
    }
    let no_phase_1 = DrsaeConfig {
        epochs_unsup: 0,
        ..small_config()
    };
    match train_drsae(&no_phase_1, split, |_| {}) {
        Err(Error::Collapsed {
            phase: 2,
            epoch: 1,
            step,
        }) => assert_eq!(step, 10),
        other => panic!(
            "expected a collapse in phase 2, got {:?}",
            other.map(|o| o.best_val_error)
        ),
    }
    // The real data trains (the same settings, the check does not fire).
    let (tx, ty, vx, vy) = sample(200, 50);
    assert!(train_drsae(&small_config(), split_of(&tx, &ty, &vx, &vy), |_| {}).is_ok());
}

/// A run for the early-stopping tests: a constant learning rate (so a shorter run is the
/// prefix of a longer one) high enough that the validation error goes up again.
fn early_stopping_config(epochs_sup: usize, patience: Option<usize>) -> DrsaeConfig {
    DrsaeConfig {
        hidden: 16,
        steps: 2,
        batch: 10,
        epochs_unsup: 1,
        epochs_sup,
        lr: 2e-2,
        schedule: drsae::train::Schedule::Constant,
        patience,
        seed: 3,
        ..Default::default()
    }
}

/// Phase-2 validation errors of a run's history.
fn phase2_errors(history: &[drsae::train::EpochReport]) -> Vec<f64> {
    history
        .iter()
        .filter(|r| r.phase == 2)
        .map(|r| r.val_error)
        .collect()
}

#[test]
fn early_stopping_returns_the_best_validation_epoch_and_patience_stops_the_run() {
    let (tx, ty, vx, vy) = sample(200, 60);
    let split = split_of(&tx, &ty, &vx, &vy);
    let epochs = 8;
    let full = train_drsae(&early_stopping_config(epochs, None), split, |_| {}).unwrap();
    let errors = phase2_errors(&full.history);
    assert_eq!(errors.len(), epochs);
    // The best epoch is the first with the lowest validation error...
    let best = errors.iter().cloned().fold(f64::INFINITY, f64::min);
    let first_best = errors.iter().position(|e| *e == best).unwrap() + 1;
    assert_eq!(full.best_val_error, best, "{errors:?}");
    assert_eq!(full.best_epoch, first_best, "{errors:?}");
    // ...not the last (else this test could not tell the best model from the last one).
    assert!(
        *errors.last().unwrap() > best,
        "the last epoch is the best: {errors:?}"
    );
    // The returned model is that epoch's: it scores the best error on the validation set,
    // and it is bit for bit the last model of the same run stopped after that epoch.
    let (_, val) = full.model.evaluate(&vx, &vy, 500);
    assert_eq!(val, best);
    let short = train_drsae(&early_stopping_config(first_best, None), split, |_| {}).unwrap();
    assert!(
        short.model == full.model,
        "the returned model is not epoch {first_best}'s"
    );
    // Patience p: the run stops after p epochs in a row without a lower error.
    let mut stopped_any = false;
    for p in [1, 2] {
        let mut since = 0;
        let mut best_so_far = f64::INFINITY;
        let mut expected = epochs;
        for (i, e) in errors.iter().enumerate() {
            if *e < best_so_far {
                best_so_far = *e;
                since = 0;
            } else {
                since += 1;
                if since >= p {
                    expected = i + 1;
                    break;
                }
            }
        }
        stopped_any |= expected < epochs;
        let run = train_drsae(&early_stopping_config(epochs, Some(p)), split, |_| {}).unwrap();
        let got = phase2_errors(&run.history);
        assert_eq!(
            got,
            errors[..expected],
            "patience {p}: stopped after {} epochs, expected {expected} ({errors:?})",
            got.len()
        );
        let e = errors[..expected]
            .iter()
            .cloned()
            .fold(f64::INFINITY, f64::min);
        assert_eq!(run.best_val_error, e);
    }
    assert!(stopped_any, "patience never stopped the run: {errors:?}");
}

/// Adam against the update written out by hand in f64: m ← β₁m + (1−β₁)g,
/// v ← β₂v + (1−β₂)g², p ← p − η·mult·m̂/(√v̂ + ε) with m̂ = m/(1−β₁ᵗ), v̂ = v/(1−β₂ᵗ).
/// The first step moves every entry by η·mult·sign(g) (up to ε): without the bias
/// correction it would move by η·mult·(0.1/√0.001) ≈ 3.16·η·mult.
#[test]
fn adam_follows_the_hand_computed_sequence_with_bias_correction() {
    use drsae::train::{Optimizer, OptimizerState};
    let (beta1, beta2, eps) = (0.9f32, 0.999f32, 1e-8f32);
    let mut st = OptimizerState::new(Optimizer::Adam { beta1, beta2, eps }, &[3, 1]);
    let (lr, mult) = (0.01f32, [1.0f32, 0.5]);
    let mut a = vec![1.0f32, -2.0, 0.5];
    let mut b = vec![3.0f32];
    let grads: [([f32; 3], [f32; 1]); 4] = [
        ([0.5, -1.0, 2.0], [4.0]),
        ([0.25, 1.0, -2.0], [0.0]),
        ([-1.0, 0.0, 1.0], [-4.0]),
        ([2.0, 3.0, -0.5], [1.0]),
    ];
    let (b1, b2, e64) = (beta1 as f64, beta2 as f64, eps as f64);
    let mut want: Vec<Vec<f64>> = vec![vec![1.0, -2.0, 0.5], vec![3.0]];
    let mut m = vec![vec![0.0f64; 3], vec![0.0]];
    let mut v = m.clone();
    for (t, (ga, gb)) in grads.iter().enumerate() {
        st.update(
            lr,
            &mut [(&mut a, &ga[..], mult[0]), (&mut b, &gb[..], mult[1])],
        );
        let t = t as i32 + 1;
        for (k, g) in [&ga[..], &gb[..]].iter().enumerate() {
            for (i, &gi) in g.iter().enumerate() {
                let gi = gi as f64;
                m[k][i] = b1 * m[k][i] + (1.0 - b1) * gi;
                v[k][i] = b2 * v[k][i] + (1.0 - b2) * gi * gi;
                let mhat = m[k][i] / (1.0 - b1.powi(t));
                let vhat = v[k][i] / (1.0 - b2.powi(t));
                want[k][i] -= lr as f64 * mult[k] as f64 * mhat / (vhat.sqrt() + e64);
            }
        }
        for (got, w) in [&a[..], &b[..]].iter().zip(&want) {
            for (g, w) in got.iter().zip(w) {
                assert!(
                    (*g as f64 - w).abs() < 1e-6,
                    "step {t}: {got:?} vs hand-computed {w:?}"
                );
            }
        }
        if t == 1 {
            // The bias-corrected first step: η·mult·sign(g) exactly, up to ε.
            let first = [1.0 - 0.01, -2.0 + 0.01, 0.5 - 0.01];
            for (g, f) in a.iter().zip(first) {
                assert!((g - f).abs() < 1e-6, "first step {a:?}");
            }
            assert!((b[0] - (3.0 - 0.005)).abs() < 1e-6, "first step {b:?}");
        }
    }
    assert_eq!(st.step, 4);
    let (first, second) = st.moments();
    for k in 0..2 {
        for i in 0..first[k].len() {
            assert!((first[k][i] as f64 - m[k][i]).abs() < 1e-6);
            assert!((second[k][i] as f64 - v[k][i]).abs() < 1e-6);
        }
    }
}
