//! `drsae train conv`: convolutional group-sparse auto-encoders ([`Convolutional`]) on
//! MNIST, one layer or two stacked, then a linear classifier on the pooled features; with
//! `--random-baseline` the same architecture with random (untrained) filters beside it.

use crate::output::{msg, tiles_png, Outputs};
use crate::train_groups::{fit_reporting, write_map_outputs};
use clap::Args;
use drsae::data::{rotate_image, shift_image, Standardizer};
use drsae::estimators::ConvolutionalValidParams;
use drsae::kernels::{ConvShape, Groups};
use drsae::models::{ConvAe, ConvAeWorkspace, Softmax};
use drsae::prelude::*;
use drsae::train::{train_softmax, SoftmaxConfig};
use rand::SeedableRng;
use std::path::PathBuf;

fn defaults() -> ConvolutionalValidParams {
    Convolutional::params()
        .check()
        .expect("the defaults are valid")
}

/// The L2 weight decays the classifier chooses from on a validation split.
const WEIGHT_DECAYS: [f32; 3] = [1e-4, 1e-3, 1e-2];
/// Test images whose features are shifted and rotated for the invariance measures.
const INVARIANCE_IMAGES: usize = 1000;
/// The random-filter baseline's initialisation seed: `--seed` XOR this.
const RANDOM_SEED: u64 = 0x005e_ed0f_4a4d;

/// Flags of `drsae train conv`; each default is the library's (`ConvolutionalParams`).
#[derive(Args, Debug)]
pub struct ConvArgs {
    /// Directory of MNIST's IDX files (gzip or raw).
    #[arg(long, default_value = "data/mnist-sample")]
    data: PathBuf,
    /// Feature maps.
    #[arg(long, default_value_t = defaults().maps() as u64, value_parser = clap::value_parser!(u64).range(1..=4096))]
    maps: u64,
    /// Side of the convolution kernels.
    #[arg(long, default_value_t = defaults().kernel() as u64, value_parser = clap::value_parser!(u64).range(1..=4096))]
    kernel: u64,
    /// Side of the L2-pooling windows (stride = side) of each map: the groups.
    #[arg(long, default_value_t = defaults().pool() as u64, value_parser = clap::value_parser!(u64).range(1..=4096))]
    pool: u64,
    /// A second layer of this many maps, trained on the first's pooled maps (scaled to unit
    /// RMS); the classifier then reads its pooled features [default: one layer].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=4096))]
    maps2: Option<u64>,
    /// Weight λ of the second layer's group term [default: --lambda].
    #[arg(long, requires = "maps2")]
    lambda2: Option<f32>,
    /// Also the same layers with random filters (the initialisation, untrained) and their
    /// classifier: the random_* figures.
    #[arg(long)]
    random_baseline: bool,
    /// Training images used by the auto-encoders (the first ones); the classifier uses all.
    #[arg(long, default_value_t = 20_000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    train_images: u64,
    /// Weight λ of the group term.
    #[arg(long, default_value_t = defaults().config().lambda)]
    lambda: f32,
    /// Minibatch size.
    #[arg(long, default_value_t = defaults().config().batch as u64, value_parser = clap::value_parser!(u64).range(1..=1_048_576))]
    batch: u64,
    #[arg(long, help = crate::train::epochs_help("the images of each layer", defaults().config().epochs), value_parser = clap::value_parser!(u64).range(1..=16_777_216))]
    epochs: Option<u64>,
    /// Adam's base learning rate (cosine decay).
    #[arg(long, default_value_t = defaults().config().lr)]
    lr: f32,
    /// Wall-clock seconds of each layer's auto-encoder training (ends earlier after
    /// --epochs, if given).
    #[arg(long)]
    time_budget: Option<f64>,
    /// Epochs of the softmax classifier on the standardised pooled features (its L2 weight
    /// decay, 1e-4, 1e-3 or 1e-2, is chosen on the last sixth of the training images, at
    /// most 10,000, before it is retrained on all of them).
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    classifier_epochs: u64,
    /// Seed of initialisation and shuffling.
    #[arg(long, default_value_t = defaults().config().seed)]
    seed: u64,
    /// Directory for model.safetensors (layer 1), filters.png, encoder.png, layer2.safetensors
    /// and layer2_filters.png (with --maps2; one row of tiles per map, one tile per input
    /// map), loss.png, loss.csv, result.json (created; written only on success).
    #[arg(long)]
    out: Option<PathBuf>,
}

impl ConvArgs {
    /// The estimator of one layer on `image` inputs with `maps` maps and weight `lambda`.
    fn params(
        &self,
        image: (usize, usize, usize),
        maps: usize,
        lambda: f32,
    ) -> Result<ConvolutionalValidParams, String> {
        let mut p = Convolutional::params()
            .image(image)
            .maps(maps)
            .kernel(self.kernel as usize)
            .pool(self.pool as usize)
            .lambda(lambda)
            .batch(self.batch as usize)
            .lr(self.lr)
            .seed(self.seed);
        if let Some(e) = self.epochs {
            p = p.epochs(e as usize);
        }
        if let Some(t) = self.time_budget {
            p = p.time_budget(t);
        }
        p.check().map_err(msg)
    }
}

/// Encoders with their pooling groups; layer i > 0 reads the pooled maps of layer i − 1
/// times `scale`.
struct Stack<'a> {
    layers: Vec<(&'a ConvAe, &'a Groups)>,
    scale: f32,
}

impl Stack<'_> {
    /// The pooled outputs of the first `depth` layers for every row of `x`.
    fn features(&self, x: &Mat, depth: usize) -> Mat {
        let chunk = 256;
        let mut out = Mat::zeros(x.nrows(), self.layers[depth - 1].1.len());
        let mut ws = ConvAeWorkspace::default();
        for start in (0..x.nrows()).step_by(chunk) {
            let end = (start + chunk).min(x.nrows());
            let mut h = x.row_range(start, end).to_owned();
            for (i, (model, groups)) in self.layers[..depth].iter().enumerate() {
                if i > 0 {
                    h.as_mut_slice().iter_mut().for_each(|v| *v *= self.scale);
                }
                h = model.pooled(&h, groups, &mut ws);
            }
            for (r, row) in h.rows().enumerate() {
                out.row_mut(start + r).copy_from_slice(row);
            }
        }
        out
    }
}

/// The root mean square of `x`'s values (at least 1e-12).
fn rms(x: &Mat) -> f32 {
    let s: f64 = x.as_slice().iter().map(|v| (*v as f64).powi(2)).sum();
    ((s / x.as_slice().len().max(1) as f64).sqrt() as f32).max(1e-12)
}

/// What the classifier on a stack's features gave: test, training and validation error
/// (percent) and the chosen weight decay.
struct Classified {
    test: f64,
    train: f64,
    val: f64,
    weight_decay: f32,
}

/// A softmax classifier on the standardised features of `net` (all `depth` layers): the
/// weight decay chosen on the last sixth of the training images (at most 10,000), then
/// retrained on all of them.
fn classify(
    net: &Stack,
    depth: usize,
    mnist: &Mnist,
    epochs: usize,
    seed: u64,
) -> Result<Classified, String> {
    let mut ftrain = net.features(&mnist.train.images, depth);
    let mut ftest = net.features(&mnist.test.images, depth);
    let st = Standardizer::fit(&ftrain, 1e-3);
    st.apply(&mut ftrain);
    st.apply(&mut ftest);
    let labels = &mnist.train.labels;
    let n = ftrain.nrows();
    let v = (n / 6).min(10_000);
    let fit = ftrain.row_range(0, n - v).to_owned();
    let val = ftrain.row_range(n - v, n).to_owned();
    let train = |x: &Mat, y: &[u8], weight_decay: f32| {
        let mut clf = Softmax::new(x.ncols(), 10);
        let cfg = SoftmaxConfig {
            epochs,
            batch: 100,
            lr: 1e-3,
            weight_decay,
            seed,
            time_budget: None,
        };
        train_softmax(&mut clf, x, y, &cfg, |_, _, _| {}).map_err(msg)?;
        Ok::<_, String>(clf)
    };
    let mut best = (f64::MAX, WEIGHT_DECAYS[0]);
    for wd in WEIGHT_DECAYS {
        let err = train(&fit, &labels[..n - v], wd)?.error_percent(&val, &labels[n - v..]);
        if err <= best.0 {
            best = (err, wd);
        }
    }
    let clf = train(&ftrain, labels, best.1)?;
    Ok(Classified {
        test: clf.error_percent(&ftest, &mnist.test.labels),
        train: clf.error_percent(&ftrain, labels),
        val: best.0,
        weight_decay: best.1,
    })
}

/// `‖a − b‖ / ‖b‖` (0 when both are 0, 1 when only `b` is).
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

/// The mean relative change of one layer's (pooled, unpooled) outputs on the first
/// [`INVARIANCE_IMAGES`] test images under shifts of ±1 and ±2 pixels (each axis), then
/// under ±5° rotations: `(pooled shift, unpooled shift, pooled rotation, unpooled rotation)`.
fn invariance(model: &ConvAe, groups: &Groups, test: &Mat, h: usize, w: usize) -> [f64; 4] {
    let n = test.nrows().min(INVARIANCE_IMAGES);
    let x = test.row_range(0, n).to_owned();
    let mut ws = ConvAeWorkspace::default();
    let per = groups.n_units();
    let base_pooled = model.pooled(&x, groups, &mut ws);
    let base_codes = model.codes(&ws).as_slice().to_vec();
    let mut change = |f: &dyn Fn(&[f32]) -> Vec<f32>| {
        let mut t = Mat::zeros(n, h * w);
        for i in 0..n {
            t.row_mut(i).copy_from_slice(&f(x.row(i)));
        }
        let pooled = model.pooled(&t, groups, &mut ws);
        let codes = model.codes(&ws).as_slice();
        let (mut p, mut u) = (0.0, 0.0);
        for i in 0..n {
            p += rel(pooled.row(i), base_pooled.row(i));
            let range = i * per..(i + 1) * per;
            u += rel(&codes[range.clone()], &base_codes[range]);
        }
        (p / n as f64, u / n as f64)
    };
    let shifts: Vec<(isize, isize)> = [-2, -1, 1, 2]
        .iter()
        .flat_map(|&d| [(d, 0), (0, d)])
        .collect();
    let (mut ps, mut us) = (0.0, 0.0);
    for &(dy, dx) in &shifts {
        let (p, u) = change(&|img| shift_image(img, h, w, dy, dx));
        ps += p;
        us += u;
    }
    let (mut pr, mut ur) = (0.0, 0.0);
    for deg in [-5.0f32, 5.0] {
        let (p, u) = change(&|img| rotate_image(img, h, w, deg));
        pr += p;
        ur += u;
    }
    let k = shifts.len() as f64;
    [ps / k, us / k, pr / 2.0, ur / 2.0]
}

/// A finite number as JSON, `null` otherwise.
fn num(v: f64) -> serde_json::Value {
    if v.is_finite() {
        v.into()
    } else {
        serde_json::Value::Null
    }
}

pub fn train_conv(a: &ConvArgs, quiet: bool) -> Result<serde_json::Value, String> {
    let mnist = Mnist::load(&a.data).map_err(msg)?;
    let (h, w) = (mnist.train.rows, mnist.train.cols);
    let (maps, kernel, pool) = (a.maps as usize, a.kernel as usize, a.pool as usize);
    let first = a.params((h, w, 1), maps, a.lambda)?;
    // Layer 2's shape follows from layer 1's pooled maps: checked before any training.
    let shape1 = ConvShape::new(h, w, 1, kernel).map_err(msg)?;
    let (ph, pw) = Groups::pooled_size(shape1.out_h(), shape1.out_w(), pool, pool);
    let second = match a.maps2 {
        Some(m2) => Some(
            a.params((ph, pw, maps), m2 as usize, a.lambda2.unwrap_or(a.lambda))
                .map_err(|e| format!("layer 2 on the {ph}×{pw}×{maps} pooled maps: {e}"))?,
        ),
        None => None,
    };
    let start = std::time::Instant::now();
    let n = (a.train_images as usize).min(mnist.train.len());
    let subset = mnist.train.images.row_range(0, n).to_owned();
    let layer1 = fit_reporting("conv layer 1", quiet, &first.config(), |f| {
        first.fit_with(&subset, f)
    })?;
    let mut stack = Stack {
        layers: vec![(layer1.model(), layer1.groups())],
        scale: 1.0,
    };
    let layer2 = match &second {
        Some(params) => {
            let mut h1 = stack.features(&subset, 1);
            stack.scale = 1.0 / rms(&h1);
            h1.as_mut_slice().iter_mut().for_each(|v| *v *= stack.scale);
            let fitted = fit_reporting("conv layer 2", quiet, &params.config(), |f| {
                params.fit_with(&h1, f)
            })?;
            Some(fitted)
        }
        None => None,
    };
    if let Some(l2) = &layer2 {
        stack.layers.push((l2.model(), l2.groups()));
    }
    let depth = stack.layers.len();
    let epochs = a.classifier_epochs as usize;
    let trained = classify(&stack, depth, &mnist, epochs, a.seed)?;
    let inv = invariance(layer1.model(), layer1.groups(), &mnist.test.images, h, w);
    let report = layer1
        .report()
        .expect("a fitted model has a report")
        .clone();
    let mut json = serde_json::json!({
        "test_error": num(trained.test),
        "train_error": num(trained.train),
        "val_error": num(trained.val),
        "weight_decay": trained.weight_decay,
        "pooled_shift_change": inv[0],
        "unpooled_shift_change": inv[1],
        "pooled_rotation_change": inv[2],
        "unpooled_rotation_change": inv[3],
        "layer1_images_per_s": report.examples_per_s,
    });
    if let (Some(l2), Some(m2)) = (&layer2, a.maps2) {
        let r2 = l2.report().expect("a fitted model has a report");
        json["layer2_images_per_s"] = r2.examples_per_s.into();
        json["layer2_maps"] = m2.into();
        json["layer2_input_scale"] = stack.scale.into();
    }
    if a.random_baseline {
        // The same initialisation procedure (the estimator's ReLU encoder) with another
        // seed, never trained.
        let mut rng = rand::rngs::StdRng::seed_from_u64(a.seed ^ RANDOM_SEED);
        let groups1 = layer1.groups().clone();
        let random1 = ConvAe::init(shape1, maps, EncoderForm::Relu, &mut rng);
        let random2 = match (&layer2, a.maps2) {
            (Some(l2), Some(m2)) => {
                let shape2 = ConvShape::new(ph, pw, maps, kernel).map_err(msg)?;
                let model = ConvAe::init(shape2, m2 as usize, EncoderForm::Relu, &mut rng);
                Some((model, l2.groups().clone()))
            }
            _ => None,
        };
        let mut random = Stack {
            layers: vec![(&random1, &groups1)],
            scale: 1.0,
        };
        if let Some((model, groups)) = &random2 {
            random.scale = 1.0 / rms(&random.features(&subset, 1));
            random.layers.push((model, groups));
        }
        let c = classify(&random, depth, &mnist, epochs, a.seed)?;
        let rinv = invariance(&random1, &groups1, &mnist.test.images, h, w);
        json["random_filters_test_error"] = num(c.test);
        json["random_filters_train_error"] = num(c.train);
        json["random_filters_val_error"] = num(c.val);
        json["random_filters_weight_decay"] = c.weight_decay.into();
        json["random_pooled_shift_change"] = rinv[0].into();
        json["random_unpooled_shift_change"] = rinv[1].into();
        json["random_pooled_rotation_change"] = rinv[2].into();
        json["random_unpooled_rotation_change"] = rinv[3].into();
    }
    json["seconds"] = start.elapsed().as_secs_f64().into();
    if let Some(dir) = &a.out {
        let cols = (maps as f64).sqrt().ceil() as usize;
        let l1 = layer1.model();
        let dec: Vec<Vec<f32>> = (0..maps).map(|m| l1.decoder_kernel(m)).collect();
        let enc: Vec<Vec<f32>> = (0..maps).map(|m| l1.encoder_filter(m)).collect();
        let mut out = Outputs::default();
        out.add("model.safetensors", layer1.to_bytes().map_err(msg)?);
        out.add("filters.png", tiles_png(&dec, kernel, kernel, cols, 6)?);
        out.add("encoder.png", tiles_png(&enc, kernel, kernel, cols, 6)?);
        if let (Some(l2), Some(m2)) = (&layer2, a.maps2) {
            // Kernel (a, b, c) at index (a·k + b)·maps + c: one tile per (map, channel c).
            let mut tiles = Vec::with_capacity(m2 as usize * maps);
            for m in 0..m2 as usize {
                let k = l2.model().decoder_kernel(m);
                for c in 0..maps {
                    tiles.push((0..kernel * kernel).map(|ab| k[ab * maps + c]).collect());
                }
            }
            out.add("layer2.safetensors", l2.to_bytes().map_err(msg)?);
            out.add(
                "layer2_filters.png",
                tiles_png(&tiles, kernel, kernel, maps, 3)?,
            );
        }
        write_map_outputs(out, dir, &report, "Convolutional auto-encoder", None, &json)?;
    }
    Ok(json)
}
