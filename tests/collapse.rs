//! Collapse detection in every trainer with a ReLU-like encoder: an epoch in which every
//! code unit is silent on every example and no parameter receives a gradient ends the run
//! with `Error::Collapsed` instead of training a dead model to the end (DrSAE's own test is
//! in `drsae_training.rs`).

use drsae::kernels::{ConvShape, Groups};
use drsae::linalg::Mat;
use drsae::models::{ConvAe, EncoderForm, GroupAe, Lista};
use drsae::solvers::Dictionary;
use drsae::train::{train_group_ae, train_lista, GroupAeConfig, ListaConfig};
use drsae::Error;
use rand::SeedableRng;

fn data(rows: usize, cols: usize, seed: u64) -> Mat {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    Mat::random(rows, cols, rand_distr::Uniform::new(0.0f32, 1.0), &mut rng)
}

fn collapsed_at_epoch_1(r: drsae::Result<impl std::fmt::Debug>) {
    match r {
        Err(Error::Collapsed {
            epoch: 1, phase: 1, ..
        }) => {}
        other => panic!("expected a collapse in epoch 1, got {other:?}"),
    }
}

#[test]
fn dead_group_autoencoders_are_reported() {
    let x = data(120, 16, 1);
    let mut rng = rand::rngs::StdRng::seed_from_u64(2);
    let mut parts = GroupAe::init(16, 8, EncoderForm::Relu, &mut rng).into_parts();
    parts.bias.iter_mut().for_each(|b| *b = -1e3); // every ReLU off on every input
    let mut dense = GroupAe::from_parts(parts).unwrap();
    let groups = Groups::disjoint(8, 2).unwrap();
    let cfg = GroupAeConfig {
        epochs: 5,
        batch: 30,
        ..GroupAeConfig::default()
    };
    collapsed_at_epoch_1(train_group_ae(&mut dense, &x, &groups, &cfg, |_, _, _| {}));

    let shape = ConvShape::new(6, 6, 1, 3).unwrap();
    let images = data(24, shape.image_len(), 3);
    let mut parts = ConvAe::init(shape, 2, EncoderForm::Relu, &mut rng).into_parts();
    parts.bias.iter_mut().for_each(|b| *b = -1e3);
    let mut conv = ConvAe::from_parts(parts).unwrap();
    let pools = Groups::spatial_pools(4, 4, 2, 2, 2, 1).unwrap();
    let cfg = GroupAeConfig {
        epochs: 3,
        batch: 8,
        ..GroupAeConfig::default()
    };
    collapsed_at_epoch_1(train_group_ae(
        &mut conv,
        &images,
        &pools,
        &cfg,
        |_, _, _| {},
    ));

    // Silent codes with live pre-activations (zero gains) can recover: no error.
    let mut parts = GroupAe::init(16, 8, EncoderForm::Relu, &mut rng).into_parts();
    parts.gain.iter_mut().for_each(|g| *g = 0.0);
    let mut gainless = GroupAe::from_parts(parts).unwrap();
    let cfg = GroupAeConfig {
        epochs: 2,
        batch: 30,
        ..GroupAeConfig::default()
    };
    train_group_ae(&mut gainless, &x, &groups, &cfg, |_, _, _| {}).unwrap();
}

#[test]
fn a_dead_lista_is_reported() {
    let x = data(100, 10, 4);
    let dict = Dictionary::from_unit_rows(&data(6, 10, 5)).unwrap();
    let mut parts = Lista::from_ista(&dict, 0.1, 2).into_parts();
    parts.theta.iter_mut().for_each(|t| *t = 1e6); // every shrink gives zero
    let mut lista = Lista::from_parts(parts).unwrap();
    let targets = Mat::from_fn(100, 6, |i, j| ((i + j) % 3) as f32 * 0.1);
    let cfg = ListaConfig {
        epochs: 4,
        batch: 25,
        ..ListaConfig::default()
    };
    collapsed_at_epoch_1(train_lista(&mut lista.clone(), &x, &targets, &cfg));
    // All-zero targets met exactly are not a collapse.
    train_lista(&mut lista, &x, &Mat::zeros(100, 6), &cfg).unwrap();
}

#[test]
fn a_silent_relu_sae_is_reported() {
    use drsae::models::SaeKind;
    use drsae::train::BDecInit;
    use drsae::Sae;
    // Identical rows and a decoder bias started at their mean: every pre-activation is
    // b_enc = 0, every ReLU latent is silent on every sample and no gradient reaches the
    // encoder (one pass over the 512 rows: 8 steps of 64).
    let x = Mat::from_fn(512, 8, |_, j| 0.25 + j as f32 * 0.1);
    let p = Sae::params()
        .kind(SaeKind::Relu)
        .d_sae(16)
        .batch(64)
        .samples(4096)
        .b_dec_init(BDecInit::Mean);
    match p.fit(&x).map(|_| ()) {
        Err(Error::Collapsed {
            step: 8,
            phase: 1,
            epoch: 1,
        }) => {}
        other => panic!("expected a collapse after one pass (step 8), got {other:?}"),
    }
    // The same settings on varied rows train.
    p.fit(&data(512, 8, 7)).unwrap();
}
