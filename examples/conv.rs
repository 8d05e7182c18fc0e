//! Stacked convolutional group-sparse auto-encoders on MNIST, then a linear classifier.
//!
//! ```text
//! cargo run --release --example conv -- [--data data/mnist-sample] [--maps 16] [--maps2 32]
//!     [--kernel 5] [--pool 2] [--lambda 0.05] [--lambda2 0.05] [--train-images 20000]
//!     [--epochs 30] [--time-budget 600] [--seed 0] [--threads P] [--out DIR]
//! ```
//! Layer 1: `--maps` maps of `--kernel`² filters on 28 × 28 images (valid convolution →
//! ReLU → per-map gain), decoded by the full convolution, group sparsity = L2 pooling over
//! `--pool`² windows (stride `--pool`) of each map, reconstruction weighted by the border
//! coverage. Its decoder is then dropped and its L2-pooled outputs (scaled to unit RMS)
//! train layer 2 (`--maps2` maps) the same way. The two encoders with their pooling form a
//! 2-layer feature extractor; a softmax classifier on its standardised output gives the
//! test error. The same architecture with random filters (the initialisation, untrained)
//! gives `random_filters_test_error`. Each layer trains for `--epochs` passes over the
//! `--train-images` first training images (or until its share of the budget is spent). The
//! classifier's L2 weight decay (1e-4, 1e-3 or 1e-2) is chosen on a validation split (the
//! last sixth of the training images, at most 10,000) before it is retrained on all of them.
//!
//! Invariance: on 1,000 test images shifted by ±1 and ±2 pixels (horizontally and
//! vertically) and rotated by ±5°, the mean relative change `‖f(Tx) − f(x)‖ / ‖f(x)‖` of
//! layer 1's L2-pooled features (`pooled_*`) and of its unpooled codes (`unpooled_*`), for
//! the trained and (`random_*`) the random filters.
//!
//! The time budget is split: 25% layer 1, 25% layer 2, 15% for each net's classifiers;
//! feature extraction runs outside it. With `--out DIR`: `layer1_filters.png` (decoder kernels),
//! `layer1_encoder.png`, `layer2_filters.png` (one row per layer-2 map, one 5×5 tile per
//! input map).
//! Last stdout line: `{"test_error", "random_filters_test_error", "pooled_shift_change",
//! "unpooled_shift_change", "seconds", ...}` (errors in percent).

mod common;

use common::{die, Args, Json, Progress};
use drsae::data::{rotate_image, shift_image, LabelledImages, Mnist, Standardizer};
use drsae::kernels::{ConvShape, Groups};
use drsae::linalg::Mat;
use drsae::models::{ConvAe, ConvAeWorkspace, EncoderForm, Softmax};
use drsae::train::{train_group_ae, train_softmax, GroupAeConfig, SoftmaxConfig};
use drsae::ParamGuard;
use rand::SeedableRng;
use std::time::Instant;

/// One layer: encoder and its pooling groups.
struct Layer {
    model: ConvAe,
    groups: Groups,
}

/// A stack of layers; inputs of layer 2 are layer 1's pooled outputs times `scale`.
struct Stack {
    layers: Vec<Layer>,
    scale: f32,
}

impl Stack {
    /// Pooled outputs of the first `depth` layers for every row of `x`, in chunks.
    fn features(&self, x: &Mat, depth: usize) -> Mat {
        let chunk = 256;
        let width = self.layers[depth - 1].groups.len();
        let mut out = Mat::zeros(x.nrows(), width);
        let mut ws = ConvAeWorkspace::default();
        for start in (0..x.nrows()).step_by(chunk) {
            let end = (start + chunk).min(x.nrows());
            let mut h = x.row_range(start, end).to_owned();
            for (i, layer) in self.layers[..depth].iter().enumerate() {
                if i > 0 {
                    h.as_mut_slice().iter_mut().for_each(|v| *v *= self.scale);
                }
                h = layer.model.pooled(&h, &layer.groups, &mut ws);
            }
            for (r, row) in h.rows().enumerate() {
                out.row_mut(start + r).copy_from_slice(row);
            }
        }
        out
    }
}

fn rms(x: &Mat) -> f32 {
    let s: f64 = x.as_slice().iter().map(|v| (*v as f64).powi(2)).sum();
    ((s / x.as_slice().len().max(1) as f64).sqrt() as f32).max(1e-12)
}

fn main() {
    let args = Args::parse(&[]);
    common::threads(&args);
    let dir = args
        .str("data")
        .unwrap_or_else(|| "data/mnist-sample".into());
    // One set of defaults: the estimator's (ConvolutionalParams documents them).
    let defaults = drsae::Convolutional::params()
        .check()
        .expect("the defaults are valid");
    let family = defaults.config();
    let maps1: usize = args.get("maps", defaults.maps());
    let maps2: usize = args.get("maps2", 32);
    let kernel: usize = args.get("kernel", defaults.kernel());
    let pool: usize = args.get("pool", defaults.pool());
    let lambda: f32 = args.get("lambda", family.lambda);
    let lambda2: f32 = args.get("lambda2", lambda);
    let budget: f64 = args.get("time-budget", 600.0);
    let seed: u64 = args.get("seed", 0);
    let lr: f32 = args.get("lr", family.lr);
    let train_images: usize = args.get("train-images", 20000);
    let epochs: usize = args.get("epochs", family.epochs);
    let out = common::out_dir(&args);
    args.finish();
    if maps1 == 0
        || maps2 == 0
        || train_images == 0
        || epochs == 0
        || !(budget > 0.0 && budget.is_finite())
    {
        die("need --maps, --maps2, --train-images, --epochs ≥ 1 and a finite --time-budget > 0");
    }
    // Per image: maps × positions codes (positions ≤ the 28 × 28 pixels of MNIST).
    common::check_floats("--maps codes per image", &[maps1, 28 * 28, 32]);
    common::check_floats(
        "--maps2 filters of --maps × --kernel²",
        &[maps2, maps1, kernel, kernel],
    );
    let t0 = Instant::now();
    let mnist = Mnist::load(&dir).unwrap_or_else(|e| die(e));
    let (side_h, side_w) = (mnist.train.rows, mnist.train.cols);
    let shape1 = ConvShape::new(side_h, side_w, 1, kernel).unwrap_or_else(|e| die(e));
    let groups1 = Groups::spatial_pools(shape1.out_h(), shape1.out_w(), maps1, pool, pool, 1)
        .unwrap_or_else(|e| die(format!("layer 1: {e}")));
    let (ph1, pw1) = Groups::pooled_size(shape1.out_h(), shape1.out_w(), pool, pool);
    let shape2 = ConvShape::new(ph1, pw1, maps1, kernel)
        .unwrap_or_else(|e| die(format!("layer 2 on the {ph1}×{pw1} pooled maps: {e}")));
    let groups2 = Groups::spatial_pools(shape2.out_h(), shape2.out_w(), maps2, pool, pool, 1)
        .unwrap_or_else(|e| die(format!("layer 2: {e}")));
    let (ph2, pw2) = Groups::pooled_size(shape2.out_h(), shape2.out_w(), pool, pool);
    eprintln!(
        "conv: {} training / {} test images from {dir}; layer 1 {maps1}×{kernel}² → {}×{} pooled {ph1}×{pw1}; layer 2 {maps2}×{kernel}²×{maps1} → {}×{} pooled {ph2}×{pw2} = {} features; budget {budget} s",
        mnist.train.len(),
        mnist.test.len(),
        shape1.out_h(),
        shape1.out_w(),
        shape2.out_h(),
        shape2.out_w(),
        groups2.len()
    );
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let subset = mnist
        .train
        .images
        .row_range(0, train_images.min(mnist.train.len()))
        .to_owned();

    // Random-filter twin: the same initialisation procedure, another seed, never trained.
    let mut rng_random = rand::rngs::StdRng::seed_from_u64(seed ^ 0x005e_ed0f_4a4d);
    let random = Stack {
        layers: vec![
            Layer {
                model: ConvAe::init(shape1, maps1, EncoderForm::Relu, &mut rng_random),
                groups: groups1.clone(),
            },
            Layer {
                model: ConvAe::init(shape2, maps2, EncoderForm::Relu, &mut rng_random),
                groups: groups2.clone(),
            },
        ],
        scale: 1.0,
    };

    // Each layer trains on its own input for a quarter of the budget.
    let train_layer = |name: &str, model: &mut ConvAe, data: &Mat, groups: &Groups, lambda: f32| {
        let progress = Progress::new("conv");
        let cfg = GroupAeConfig {
            lambda,
            batch: family.batch,
            epochs,
            lr,
            time_budget: Some(0.25 * budget),
            seed,
            ..Default::default()
        };
        let report = train_group_ae(model, data, groups, &cfg, |e, l, s| {
            progress.report(
                s,
                0.25 * budget,
                &format!("{name} epoch {e}: {}", common::group_loss_summary(l, 3)),
            )
        })
        .unwrap_or_else(|e| die(e));
        eprintln!(
            "{name}: {} epochs, {:.0} images/s",
            report.epochs, report.examples_per_s
        );
        report
    };

    // Layer 1.
    let mut l1 = ConvAe::init(shape1, maps1, EncoderForm::Relu, &mut rng);
    let report1 = train_layer("layer 1", &mut l1, &subset, &groups1, lambda);

    // Layer 2 on layer 1's pooled outputs, scaled to unit RMS.
    let mut stack = Stack {
        layers: vec![Layer {
            model: l1,
            groups: groups1.clone(),
        }],
        scale: 1.0,
    };
    let mut h1 = stack.features(&subset, 1);
    stack.scale = 1.0 / rms(&h1);
    h1.as_mut_slice().iter_mut().for_each(|v| *v *= stack.scale);
    let mut l2 = ConvAe::init(shape2, maps2, EncoderForm::Relu, &mut rng);
    let report2 = train_layer("layer 2", &mut l2, &h1, &groups2, lambda2);
    drop(h1);
    stack.layers.push(Layer {
        model: l2,
        groups: groups2.clone(),
    });
    let mut random = random;
    random.scale = 1.0 / rms(&random.features(&subset, 1));

    // Classifiers: the L2 weight decay is chosen on a validation split (the last sixth of
    // the training images, at most 10,000), then the classifier is retrained on all of them.
    let classify = |net: &Stack, name: &str| -> (f64, f64, f64, f32) {
        let t = Instant::now();
        let mut ftrain = net.features(&mnist.train.images, 2);
        let mut ftest = net.features(&mnist.test.images, 2);
        eprintln!(
            "{name}: features of {} images in {:.1} s",
            ftrain.nrows() + ftest.nrows(),
            t.elapsed().as_secs_f64()
        );
        let st = Standardizer::fit(&ftrain, 1e-3);
        st.apply(&mut ftrain);
        st.apply(&mut ftest);
        let labels = &mnist.train.labels;
        let n = ftrain.nrows();
        let v = (n / 6).min(10_000);
        let fit = ftrain.row_range(0, n - v).to_owned();
        let val = ftrain.row_range(n - v, n).to_owned();
        let train_clf = |x: &drsae::linalg::Mat, y: &[u8], wd: f32, share: f64| -> Softmax {
            let mut clf = Softmax::new(x.ncols(), 10);
            let scfg = SoftmaxConfig {
                epochs: 30,
                batch: 100,
                lr: 1e-3,
                weight_decay: wd,
                seed,
                time_budget: Some(share * budget),
            };
            train_softmax(&mut clf, x, y, &scfg, |_, _, _| {}).unwrap_or_else(|e| die(e));
            clf
        };
        let p = Progress::new("conv");
        let mut best = (f64::MAX, 0.0f32);
        let decays = [1e-4f32, 1e-3, 1e-2];
        for (k, &wd) in decays.iter().enumerate() {
            let clf = train_clf(&fit, &labels[..n - v], wd, 0.03);
            let err = clf.error_percent(&val, &labels[n - v..]);
            p.report(
                (k + 1) as f64,
                decays.len() as f64 + 1.0,
                &format!("{name} classifier, weight decay {wd:e}: validation error {err:.2}%"),
            );
            if err <= best.0 {
                best = (err, wd);
            }
        }
        let clf = train_clf(&ftrain, labels, best.1, 0.06);
        let train_err = clf.error_percent(&ftrain, labels);
        let test_err = clf.error_percent(&ftest, &mnist.test.labels);
        eprintln!(
            "{name}: weight decay {:e} (validation error {:.2}%), training error {train_err:.2}%, test error {test_err:.2}%",
            best.1, best.0
        );
        (test_err, train_err, best.0, best.1)
    };
    let (test_error, train_error, val_error, wd) = classify(&stack, "pre-trained");
    let (random_error, random_train_error, random_val_error, random_wd) =
        classify(&random, "random filters");

    // Invariance of layer 1.
    let inv = invariance(&stack.layers[0], &mnist.test, side_h, side_w);
    let rinv = invariance(&random.layers[0], &mnist.test, side_h, side_w);
    eprintln!(
        "invariance (relative change, layer 1): shifts pooled {:.3} vs unpooled {:.3} (random filters {:.3} vs {:.3}); ±5° rotations pooled {:.3} vs unpooled {:.3}",
        inv.0, inv.1, rinv.0, rinv.1, inv.2, inv.3
    );
    if let Some(dir) = &out {
        common::make_out_dir(dir);
        write_filters(dir, &stack, maps1, maps2, kernel).unwrap_or_else(|e| die(e));
        eprintln!(
            "wrote layer1_filters.png, layer1_encoder.png, layer2_filters.png to {}",
            dir.display()
        );
    }
    Json::new()
        .num("test_error", test_error)
        .num("random_filters_test_error", random_error)
        .num("pooled_shift_change", inv.0)
        .num("unpooled_shift_change", inv.1)
        .num("random_pooled_shift_change", rinv.0)
        .num("random_unpooled_shift_change", rinv.1)
        .num("pooled_rotation_change", inv.2)
        .num("unpooled_rotation_change", inv.3)
        .num("random_pooled_rotation_change", rinv.2)
        .num("random_unpooled_rotation_change", rinv.3)
        .num("train_error", train_error)
        .num("val_error", val_error)
        .num("weight_decay", wd as f64)
        .num("random_filters_val_error", random_val_error)
        .num("random_filters_weight_decay", random_wd as f64)
        .num("random_filters_train_error", random_train_error)
        .num("layer1_images_per_s", report1.examples_per_s)
        .num("layer2_images_per_s", report2.examples_per_s)
        .num("seconds", t0.elapsed().as_secs_f64())
        .print();
}

/// Mean relative change of (pooled, unpooled) layer-1 outputs under shifts, then under
/// rotations: `(pooled_shift, unpooled_shift, pooled_rot, unpooled_rot)`.
fn invariance(layer: &Layer, test: &LabelledImages, h: usize, w: usize) -> (f64, f64, f64, f64) {
    let n = test.len().min(1000);
    let x = test.images.row_range(0, n).to_owned();
    let shifts: Vec<(isize, isize)> = [-2, -1, 1, 2]
        .iter()
        .flat_map(|&d| [(d, 0), (0, d)])
        .collect();
    let mut ws = ConvAeWorkspace::default();
    let base_pooled = layer.model.pooled(&x, &layer.groups, &mut ws);
    let base_codes = Mat::from_vec(
        n,
        layer.groups.n_units(),
        layer.model.codes(&ws).as_slice().to_vec(),
    );
    let change = |tx: &Mat, ws: &mut ConvAeWorkspace| -> (f64, f64) {
        let pooled = layer.model.pooled(tx, &layer.groups, ws);
        let codes = layer.model.codes(ws).as_slice();
        let per = layer.groups.n_units();
        let (mut p, mut u) = (0.0, 0.0);
        for i in 0..n {
            p += rel(pooled.row(i), base_pooled.row(i));
            u += rel(&codes[i * per..(i + 1) * per], base_codes.row(i));
        }
        (p / n as f64, u / n as f64)
    };
    let transformed = |f: &dyn Fn(&[f32]) -> Vec<f32>| -> Mat {
        let mut t = Mat::zeros(n, h * w);
        for i in 0..n {
            t.row_mut(i).copy_from_slice(&f(x.row(i)));
        }
        t
    };
    let (mut ps, mut us) = (0.0, 0.0);
    for &(dy, dx) in &shifts {
        let (p, u) = change(&transformed(&|img| shift_image(img, h, w, dy, dx)), &mut ws);
        ps += p;
        us += u;
    }
    let (mut pr, mut ur) = (0.0, 0.0);
    for deg in [-5.0f32, 5.0] {
        let (p, u) = change(&transformed(&|img| rotate_image(img, h, w, deg)), &mut ws);
        pr += p;
        ur += u;
    }
    let k = shifts.len() as f64;
    (ps / k, us / k, pr / 2.0, ur / 2.0)
}

/// `‖a − b‖ / ‖b‖` (0 when both are 0).
fn rel(a: &[f32], b: &[f32]) -> f64 {
    let d: f64 = a.iter().zip(b).map(|(x, y)| ((x - y) as f64).powi(2)).sum();
    let n: f64 = b.iter().map(|y| (*y as f64).powi(2)).sum();
    if n > 0.0 {
        (d / n).sqrt()
    } else if d > 0.0 {
        1.0
    } else {
        0.0
    }
}

fn write_filters(
    dir: &std::path::Path,
    stack: &Stack,
    maps1: usize,
    maps2: usize,
    k: usize,
) -> std::io::Result<()> {
    let l1 = &stack.layers[0].model;
    let dec: Vec<Vec<f32>> = (0..maps1).map(|m| l1.decoder_kernel(m)).collect();
    let enc: Vec<Vec<f32>> = (0..maps1).map(|m| l1.encoder_filter(m)).collect();
    let cols = (maps1 as f64).sqrt().ceil() as usize;
    common::write_tiles_png_zoom(
        &dir.join("layer1_filters.png"),
        &dec.iter().map(|t| &t[..]).collect::<Vec<_>>(),
        k,
        k,
        cols,
        6,
    )?;
    common::write_tiles_png_zoom(
        &dir.join("layer1_encoder.png"),
        &enc.iter().map(|t| &t[..]).collect::<Vec<_>>(),
        k,
        k,
        cols,
        6,
    )?;
    // Layer 2: kernel (a, b, c) at index (a·k + b)·maps1 + c; one tile per (map2, c).
    let l2 = &stack.layers[1].model;
    let mut per_channel = Vec::with_capacity(maps2 * maps1);
    for m in 0..maps2 {
        let kern = l2.decoder_kernel(m);
        for c in 0..maps1 {
            per_channel.push(
                (0..k * k)
                    .map(|ab| kern[ab * maps1 + c])
                    .collect::<Vec<f32>>(),
            );
        }
    }
    common::write_tiles_png_zoom(
        &dir.join("layer2_filters.png"),
        &per_channel.iter().map(|t| &t[..]).collect::<Vec<_>>(),
        k,
        k,
        maps1,
        3,
    )
}
