//! Pins of trained weights: every trainer, run on a tiny problem with a fixed seed, must give
//! bit-for-bit the model it gave when these checksums were recorded (before the training
//! loops were refactored onto one skeleton). A change of arithmetic that is meant must update
//! the pins and say why in its commit.
//!
//! The checksums depend on the SIMD level (the kernels round differently), so they are
//! recorded per level; on a level without a recorded pin the test prints its checksums and
//! checks only that two runs agree.

use drsae::kernels::{ConvShape, Groups};
use drsae::linalg::Mat;
use drsae::models::{ConvAe, EncoderForm, GroupAe, Lista};
use drsae::simd::Level;
use drsae::solvers::Dictionary;
use drsae::train::{
    train_drsae, train_group_ae, train_inhibition, train_lista, DrsaeConfig, GroupAeConfig,
    InhibitionConfig, InhibitionModel, ListaConfig, Split,
};
use rand::SeedableRng;

/// FNV-1a over the bit patterns of every value.
fn checksum<'a>(parts: impl IntoIterator<Item = &'a [f32]>) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for v in part {
            for b in v.to_bits().to_le_bytes() {
                h ^= b as u64;
                h = h.wrapping_mul(0x0100_0000_01b3);
            }
        }
    }
    h
}

fn data(rows: usize, cols: usize, seed: u64) -> Mat {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    Mat::random(rows, cols, rand_distr::Uniform::new(0.0f32, 1.0), &mut rng)
}

fn drsae_pin() -> u64 {
    let mnist = drsae::data::Mnist::load("data/mnist-sample").unwrap();
    let mut x = mnist.train.images.row_range(0, 600).to_owned();
    drsae::data::normalize_rows_l2(&mut x);
    let y = &mnist.train.labels[..600];
    let (train_x, val_x) = (
        x.row_range(0, 500).to_owned(),
        x.row_range(500, 600).to_owned(),
    );
    let cfg = DrsaeConfig {
        hidden: 16,
        steps: 3,
        batch: 50,
        epochs_unsup: 1,
        epochs_sup: 2,
        average: Some(0.9),
        seed: 7,
        ..DrsaeConfig::default()
    };
    let split = Split {
        train_x: &train_x,
        train_y: &y[..500],
        val_x: &val_x,
        val_y: &y[500..],
    };
    let out = train_drsae(&cfg, split, |_| {}).unwrap();
    let m = &out.model;
    checksum([
        m.e().as_slice(),
        m.s().as_slice(),
        m.b(),
        m.d().as_slice(),
        m.c().as_slice(),
    ])
}

fn lista_pin() -> u64 {
    let x = data(300, 12, 1);
    let dict = Dictionary::from_unit_rows(&data(10, 12, 2)).unwrap();
    let mut z = Mat::zeros(300, 10);
    drsae::solvers::exact(&dict, &x, &mut z, &drsae::solvers::LassoOptions::new(0.2)).unwrap();
    let mut lista = Lista::from_ista(&dict, 0.2, 2);
    let cfg = ListaConfig {
        epochs: 3,
        batch: 32,
        seed: 3,
        ..ListaConfig::default()
    };
    train_lista(&mut lista, &x, &z, &cfg).unwrap();
    checksum([lista.we().as_slice(), lista.s().as_slice(), lista.theta()])
}

fn group_ae_pin(psd: bool) -> u64 {
    let x = data(400, 16, 4);
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    let mut model = GroupAe::init(16, 9, EncoderForm::Relu, &mut rng);
    let groups = Groups::grid(3, 3, 2, 1, None).unwrap();
    let cfg = GroupAeConfig {
        lambda: 0.1,
        batch: 40,
        epochs: 3,
        seed: 6,
        psd: psd.then_some((0.5, 5)),
        ..GroupAeConfig::default()
    };
    train_group_ae(&mut model, &x, &groups, &cfg, |_, _, _| {}).unwrap();
    checksum([
        model.w().as_slice(),
        model.bias(),
        model.gain(),
        model.dec().as_slice(),
    ])
}

fn conv_pin() -> u64 {
    let shape = ConvShape::new(10, 10, 1, 3).unwrap();
    let x = data(48, shape.image_len(), 8);
    let mut rng = rand::rngs::StdRng::seed_from_u64(9);
    let mut model = ConvAe::init(shape, 3, EncoderForm::Relu, &mut rng);
    let groups = Groups::spatial_pools(shape.out_h(), shape.out_w(), 3, 2, 2, 1).unwrap();
    let cfg = GroupAeConfig {
        lambda: 0.05,
        batch: 12,
        epochs: 2,
        seed: 10,
        ..GroupAeConfig::default()
    };
    train_group_ae(&mut model, &x, &groups, &cfg, |_, _, _| {}).unwrap();
    checksum([
        model.filters().as_slice(),
        model.bias(),
        model.gain(),
        model.dec().as_slice(),
    ])
}

fn inhibition_pin() -> u64 {
    let x = data(200, 12, 11);
    let w = Dictionary::from_unit_rows(&data(7, 12, 12))
        .unwrap()
        .atoms()
        .clone();
    let s = drsae::models::tree_inhibition(2, 3, 0.5).unwrap();
    let mut model = InhibitionModel::new(w, s, None).unwrap();
    let cfg = InhibitionConfig {
        epochs: 2,
        batch: 25,
        sweeps: 10,
        lr_s: 0.0,
        seed: 13,
        ..InhibitionConfig::default()
    };
    train_inhibition(&mut model, &x, &cfg, |_, _, _| {}).unwrap();
    checksum([model.w().as_slice(), model.s().as_slice()])
}

fn all_pins() -> Vec<(&'static str, u64)> {
    vec![
        ("drsae", drsae_pin()),
        ("lista", lista_pin()),
        ("group_ae", group_ae_pin(false)),
        ("group_ae_psd", group_ae_pin(true)),
        ("conv_ae", conv_pin()),
        ("inhibition", inhibition_pin()),
    ]
}

/// Checksums recorded at each SIMD level on an AVX-512 machine with this repository's
/// build flags (`.cargo/config.toml`); matrixmultiply picks its own kernels from the CPU, so
/// other machines compare two runs only.
fn recorded(level: Level) -> Option<Vec<(&'static str, u64)>> {
    if !drsae::simd::available().contains(&Level::Avx512) {
        return None;
    }
    let pins = |p: [u64; 6]| {
        let names = [
            "drsae",
            "lista",
            "group_ae",
            "group_ae_psd",
            "conv_ae",
            "inhibition",
        ];
        Some(names.into_iter().zip(p).collect())
    };
    match level {
        // DrSAE and LISTA changed at this level when the packed AVX-512 sgemm
        // (`linalg::packed_gemm`) replaced matrixmultiply for their unit-stride products: the
        // same products summed in another order (a few ulps per element), nothing else.
        Level::Avx512 => pins([
            0xb5e8e6e9a23046fd,
            0x033dc11ba24bfdc9,
            0xd931e79ec492f138,
            0x479a37aae31aaec6,
            0xb046bec538453488,
            0x3ece5a06b1f240ca,
        ]),
        Level::Avx2Fma | Level::Portable => pins([
            0x95801b5b9ea9f6c8,
            0xf6ca618deb54d129,
            0xd931e79ec492f138,
            0x20ed492744e713c,
            0x496767b1fd623c42,
            0x6dba8f9b2a6fbb8,
        ]),
        _ => None,
    }
}

#[test]
fn the_same_seed_gives_the_same_weights_as_before() {
    for level in drsae::simd::available() {
        drsae::simd::force(level).unwrap();
        let got = all_pins();
        eprintln!("training pins at {level}: {got:x?}");
        match recorded(level) {
            Some(want) => assert_eq!(got, want, "trained weights changed at {level}"),
            None => assert_eq!(got, all_pins(), "two runs disagree at {level}"),
        }
    }
}
