//! `drsae train topographic|pinwheel|conv`: the group-sparse estimators ([`GroupSparse`],
//! [`LocallyConnected`], [`Convolutional`]) as flags, their defaults read from the library.

use crate::inputs;
use crate::output::{loss_csv, msg, relative_error, tiles_png, zoom_for, Outputs};
use crate::plots;
use crate::progress::fit_observed;
use clap::{Args, ValueEnum};
use drsae::analysis::{Boundary, OrientationMap};
use drsae::data::Preprocessor;
use drsae::estimators::{
    ConvolutionalValidParams, GroupSparseValidParams, LocallyConnectedValidParams, StartStage,
};
use drsae::models::LocalSheet;
use drsae::prelude::*;
use drsae::train::GroupAeConfig;
use std::path::{Path, PathBuf};

fn topo() -> GroupSparseValidParams {
    GroupSparse::params()
        .check()
        .expect("the defaults are valid")
}
fn topo_grid() -> (usize, usize) {
    match topo().layout() {
        GroupLayout::Grid { side, pool, .. } => (side, pool),
        _ => (12, 3),
    }
}
fn local() -> LocallyConnectedValidParams {
    LocallyConnected::params()
        .check()
        .expect("the defaults are valid")
}
fn conv() -> ConvolutionalValidParams {
    Convolutional::params()
        .check()
        .expect("the defaults are valid")
}

/// The encoder non-linearity.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Form {
    /// ReLU with a per-unit gain.
    Relu,
    /// tanh with a per-unit gain.
    Tanh,
}

impl From<Form> for EncoderForm {
    fn from(f: Form) -> EncoderForm {
        match f {
            Form::Relu => EncoderForm::Relu,
            Form::Tanh => EncoderForm::Tanh,
        }
    }
}

/// The training options shared by the group-sparse families (defaults differ by family, so
/// each subcommand declares its own flags and hands them over here).
struct GroupFlags {
    lambda: f32,
    batch: u64,
    epochs: u64,
    lr: f32,
    time_budget: Option<f64>,
    seed: u64,
}

macro_rules! apply_group_flags {
    ($p:expr, $f:expr) => {{
        let f: &GroupFlags = &$f;
        let mut p = $p
            .lambda(f.lambda)
            .batch(f.batch as usize)
            .epochs(f.epochs as usize)
            .lr(f.lr)
            .seed(f.seed);
        if let Some(t) = f.time_budget {
            p = p.time_budget(t);
        }
        p
    }};
}

/// Flags of `drsae train topographic`; each default is the library's (`GroupSparseParams`).
#[derive(Args, Debug)]
pub struct TopographicArgs {
    /// Images to cut patches from (an MNIST IDX directory, a directory of PGM/PNG/JPEG
    /// files, one image) or a `.npy` matrix of patches (rows of patch² values).
    #[arg(long, default_value = "data/mnist-sample")]
    data: PathBuf,
    /// Side of the (wrap-around) square grid of units.
    #[arg(long, default_value_t = topo_grid().0 as u64, value_parser = clap::value_parser!(u64).range(2..=256))]
    grid: u64,
    /// Side of the overlapping square pools of units (the groups).
    #[arg(long, default_value_t = topo_grid().1 as u64, value_parser = clap::value_parser!(u64).range(1..=256))]
    pool: u64,
    /// Gaussian σ weighting each pool member by its distance to the pool's centre.
    #[arg(long)]
    sigma: Option<f32>,
    /// Patch side in pixels (one unit per input value with the default grid).
    #[arg(long, default_value_t = 12, value_parser = clap::value_parser!(u64).range(2..=64))]
    patch: u64,
    /// Training patches.
    #[arg(long, default_value_t = 50_000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    patches: u64,
    /// Held-out patches (reconstruction error, active groups).
    #[arg(long, default_value_t = 2_000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    held_out: u64,
    /// Weight λ of the group term.
    #[arg(long, default_value_t = topo().config().lambda)]
    lambda: f32,
    /// Minibatch size.
    #[arg(long, default_value_t = topo().config().batch as u64, value_parser = clap::value_parser!(u64).range(1..=1_048_576))]
    batch: u64,
    /// Passes over the patches (a maximum under --time-budget).
    #[arg(long, default_value_t = topo().config().epochs as u64, value_parser = clap::value_parser!(u64).range(1..=16_777_216))]
    epochs: u64,
    /// Adam's base learning rate (cosine decay).
    #[arg(long, default_value_t = topo().config().lr)]
    lr: f32,
    /// Wall-clock seconds of training (ends earlier after --epochs).
    #[arg(long)]
    time_budget: Option<f64>,
    /// Encoder non-linearity.
    #[arg(long, value_enum, default_value_t = Form::Relu)]
    form: Form,
    /// ZCA regulariser (added to the covariance eigenvalues).
    #[arg(long, default_value_t = topo().zca().unwrap_or(0.1))]
    zca_eps: f32,
    /// No ZCA whitening (mean removal and contrast normalisation only).
    #[arg(long)]
    no_zca: bool,
    /// Share of the epochs and the time budget given to a first stage with wider pools
    /// (--pool-start) and a weaker group term (--lambda-start), in (0, 1); 0: one stage.
    #[arg(long, default_value_t = topo().start_stage().map_or(0.0, |s| s.share))]
    start_share: f64,
    /// Pool side of the first stage (default with --start-share: the library's
    /// `StartStage::widening`, --pool + 2 at most --grid).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=256))]
    pool_start: Option<u64>,
    /// λ of the first stage (default with --start-share: `StartStage::widening`'s, 0.4 ×
    /// --lambda).
    #[arg(long)]
    lambda_start: Option<f32>,
    /// Seed of sampling, initialisation and shuffling.
    #[arg(long, default_value_t = topo().config().seed)]
    seed: u64,
    /// Directory for model.safetensors, filters.png, orientation.png, loss.png, loss.csv,
    /// result.json (created; written only on success).
    #[arg(long)]
    out: Option<PathBuf>,
}

impl TopographicArgs {
    /// The first training stage: none when --start-share is 0.
    fn start_stage(&self) -> Option<StartStage> {
        let default = StartStage::widening(self.grid as usize, self.pool as usize, self.lambda);
        (self.start_share != 0.0).then(|| StartStage {
            pool: self.pool_start.map_or(default.pool, |p| p as usize),
            lambda: self.lambda_start.unwrap_or(default.lambda),
            share: self.start_share,
        })
    }
}

/// The tail every group-sparse subcommand's `--out` shares: `orientation.png` (with `map`,
/// a `side × side` orientation map), `loss.png` and `loss.csv` (the training loss per
/// epoch), `result.json`; then writes them and what `out` already holds into `dir`.
/// `title` names the model in the plots' titles.
fn write_map_outputs(
    mut out: Outputs,
    dir: &Path,
    report: &GroupFitReport,
    title: &str,
    map: Option<(&OrientationMap, usize)>,
    json: &serde_json::Value,
) -> Result<(), String> {
    if let Some((map, side)) = map {
        out.add(
            "orientation.png",
            plots::orientation_map(
                &map.orientations,
                side,
                side,
                &format!("{title}: preferred orientations"),
            )?,
        );
    }
    out.add(
        "loss.png",
        plots::loss_curve(&report.losses, &format!("{title}: training loss"))?,
    );
    out.add("loss.csv", loss_csv(&report.losses));
    out.json(json);
    out.write(Some(dir))
}

/// Runs `fit` with a `label` progress reporter, one "epoch E: loss L, S s" a epoch.
fn fit_reporting<T>(
    label: &str,
    quiet: bool,
    cfg: &GroupAeConfig,
    fit: impl FnOnce(&mut dyn FnMut(usize, f64, f64)) -> drsae::Result<T>,
) -> Result<T, String> {
    fit_observed(
        label,
        quiet,
        cfg.epochs,
        cfg.time_budget,
        |epoch, loss, secs| format!("epoch {epoch}: loss {loss:.5}, {secs:.0} s"),
        fit,
    )
    .map_err(msg)
}

/// Mean number of non-zero entries per row.
fn mean_active(m: &Mat) -> f64 {
    m.as_slice().iter().filter(|v| **v > 0.0).count() as f64 / m.nrows().max(1) as f64
}

pub fn topographic(a: &TopographicArgs, quiet: bool) -> Result<serde_json::Value, String> {
    let flags = GroupFlags {
        lambda: a.lambda,
        batch: a.batch,
        epochs: a.epochs,
        lr: a.lr,
        time_budget: a.time_budget,
        seed: a.seed,
    };
    let params = apply_group_flags!(GroupSparse::params(), flags)
        .layout(GroupLayout::Grid {
            side: a.grid as usize,
            pool: a.pool as usize,
            sigma: a.sigma,
        })
        .form(a.form.into())
        .preprocessing(Preprocessor::Contrast { floor: 0.05 })
        .zca((!a.no_zca).then_some(a.zca_eps))
        .start_stage(a.start_stage())
        .check()
        .map_err(msg)?;
    let start = std::time::Instant::now();
    let patch = a.patch as usize;
    let (count, held) = (a.patches as usize, a.held_out as usize);
    let x = inputs::patches(&a.data, patch, count + held, a.seed)?;
    let (train, test) = (
        x.row_range(0, count).to_owned(),
        x.row_range(count, count + held).to_owned(),
    );
    let model = fit_reporting("topographic", quiet, &params.config(), |f| {
        params.fit_with(&train, f)
    })?;
    let report = model.report().expect("a fitted model has a report").clone();
    let mut prepared = test.clone();
    model.preprocessing().apply(&mut prepared);
    let rec = relative_error(&prepared, &model.reconstruct(&test).map_err(msg)?);
    let active = mean_active(&model.group_norms(&test).map_err(msg)?);
    let map = model
        .orientation_map()
        .ok_or("the orientation map needs square patches and a grid layout")?;
    let json = serde_json::json!({
        "neighbor_orientation_ratio": map.neighbor_ratio,
        "pinwheels": map.pinwheels,
        "reconstruction_error": rec,
        "mean_active_groups": active,
        "seconds": start.elapsed().as_secs_f64(),
        "patches_per_s": report.examples_per_s,
    });
    if let Some(dir) = &a.out {
        let grid = a.grid as usize;
        let mut out = Outputs::default();
        out.add("model.safetensors", model.to_bytes().map_err(msg)?);
        let filters: Vec<Vec<f32>> = (0..model.hidden())
            .map(|j| model.model().filter(j))
            .collect();
        out.add(
            "filters.png",
            tiles_png(&filters, patch, patch, grid, zoom_for(grid, patch))?,
        );
        write_map_outputs(
            out,
            dir,
            &report,
            "Topographic map",
            Some((&map, grid)),
            &json,
        )?;
    }
    Ok(json)
}

/// Flags of `drsae train pinwheel`; each default is the library's
/// (`LocallyConnectedParams`).
#[derive(Args, Debug)]
pub struct PinwheelArgs {
    /// Images to cut windows from (an MNIST IDX directory, a directory of PGM/PNG/JPEG
    /// files, one image) or a `.npy` matrix of windows (rows of side² values).
    #[arg(long, default_value = "data/mnist-sample")]
    data: PathBuf,
    /// Receptive-field positions per side.
    #[arg(long, default_value_t = local().sheet().grid as u64, value_parser = clap::value_parser!(u64).range(1..=64))]
    grid: u64,
    /// Units per position and side (each position holds block × block units).
    #[arg(long, default_value_t = local().sheet().block as u64, value_parser = clap::value_parser!(u64).range(1..=64))]
    block: u64,
    /// Pixels between neighbouring positions.
    #[arg(long, default_value_t = local().sheet().stride as u64, value_parser = clap::value_parser!(u64).range(1..=256))]
    stride: u64,
    /// Side of each unit's own filter.
    #[arg(long, default_value_t = local().sheet().kernel as u64, value_parser = clap::value_parser!(u64).range(2..=256))]
    kernel: u64,
    /// Side of the pools on the sheet (the groups).
    #[arg(long, default_value_t = local().pool() as u64, value_parser = clap::value_parser!(u64).range(1..=4096))]
    pool: u64,
    /// Training windows.
    #[arg(long, default_value_t = 20_000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    windows: u64,
    /// Held-out windows.
    #[arg(long, default_value_t = 1_000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    held_out: u64,
    /// Local contrast normalisation of the whole images first (Gaussian σ in pixels; 0: none).
    #[arg(long, default_value_t = 2.0)]
    lcn: f32,
    /// Weight λ of the group term.
    #[arg(long, default_value_t = local().config().lambda)]
    lambda: f32,
    /// Minibatch size.
    #[arg(long, default_value_t = local().config().batch as u64, value_parser = clap::value_parser!(u64).range(1..=1_048_576))]
    batch: u64,
    /// Passes over the windows (a maximum under --time-budget).
    #[arg(long, default_value_t = local().config().epochs as u64, value_parser = clap::value_parser!(u64).range(1..=16_777_216))]
    epochs: u64,
    /// Adam's base learning rate (cosine decay).
    #[arg(long, default_value_t = local().config().lr)]
    lr: f32,
    /// Wall-clock seconds of training (ends earlier after --epochs).
    #[arg(long)]
    time_budget: Option<f64>,
    /// Seed of sampling, initialisation and shuffling.
    #[arg(long, default_value_t = local().config().seed)]
    seed: u64,
    /// Directory for model.safetensors, filters.png, orientation.png, loss.png, loss.csv,
    /// result.json (created; written only on success).
    #[arg(long)]
    out: Option<PathBuf>,
}

pub fn pinwheel(a: &PinwheelArgs, quiet: bool) -> Result<serde_json::Value, String> {
    let sheet = LocalSheet::new(
        a.grid as usize,
        a.block as usize,
        a.stride as usize,
        a.kernel as usize,
    )
    .map_err(msg)?;
    let flags = GroupFlags {
        lambda: a.lambda,
        batch: a.batch,
        epochs: a.epochs,
        lr: a.lr,
        time_budget: a.time_budget,
        seed: a.seed,
    };
    let params = apply_group_flags!(LocallyConnected::params(), flags)
        .sheet(sheet)
        .pool(a.pool as usize)
        .check()
        .map_err(msg)?;
    if !(a.lcn >= 0.0 && a.lcn.is_finite()) {
        return Err(format!(
            "--lcn {}: must be finite and ≥ 0",
            drsae::Compact(a.lcn)
        ));
    }
    let start = std::time::Instant::now();
    let side = sheet.image();
    let (count, held) = (a.windows as usize, a.held_out as usize);
    let x = if a.data.extension().is_some_and(|e| e == "npy") || a.lcn == 0.0 {
        inputs::patches(&a.data, side, count + held, a.seed)?
    } else {
        use rand::SeedableRng;
        let images: Vec<_> = inputs::read_images(&a.data)?
            .iter()
            .map(|im| drsae::data::local_contrast_normalize(im, a.lcn))
            .collect::<Result<_, _>>()
            .map_err(msg)?;
        let mut rng = rand::rngs::StdRng::seed_from_u64(a.seed);
        drsae::data::sample_patches(&images, side, count + held, &mut rng)
            .map_err(|e| format!("{}: {e}", a.data.display()))?
    };
    let (train, test) = (
        x.row_range(0, count).to_owned(),
        x.row_range(count, count + held).to_owned(),
    );
    let model = fit_reporting("pinwheel", quiet, &params.config(), |f| {
        params.fit_with(&train, f)
    })?;
    let report = model.report().expect("a fitted model has a report").clone();
    let mut prepared = test.clone();
    model.preprocessing().apply(&mut prepared);
    let rec = relative_error(&prepared, &model.reconstruct(&test).map_err(msg)?);
    let active = mean_active(&model.group_norms(&test).map_err(msg)?);
    let units = sheet.side();
    let kernel = sheet.kernel;
    let filters: Vec<Vec<f32>> = (0..model.hidden())
        .map(|j| sheet.window(&model.model().filter(j), j))
        .collect();
    let map = OrientationMap::measure(&filters, kernel, units, units, Boundary::Open);
    let json = serde_json::json!({
        "pinwheels": map.pinwheels,
        "neighbor_orientation_ratio": map.neighbor_ratio,
        "reconstruction_error": rec,
        "mean_active_groups": active,
        "windows_per_s": report.examples_per_s,
        "seconds": start.elapsed().as_secs_f64(),
    });
    if let Some(dir) = &a.out {
        let mut out = Outputs::default();
        out.add("model.safetensors", model.to_bytes().map_err(msg)?);
        out.add(
            "filters.png",
            tiles_png(&filters, kernel, kernel, units, zoom_for(units, kernel))?,
        );
        write_map_outputs(
            out,
            dir,
            &report,
            "Pinwheel map",
            Some((&map, units)),
            &json,
        )?;
    }
    Ok(json)
}

/// Flags of `drsae train conv`; each default is the library's (`ConvolutionalParams`).
#[derive(Args, Debug)]
pub struct ConvArgs {
    /// Directory of MNIST's IDX files (gzip or raw).
    #[arg(long, default_value = "data/mnist-sample")]
    data: PathBuf,
    /// Feature maps.
    #[arg(long, default_value_t = conv().maps() as u64, value_parser = clap::value_parser!(u64).range(1..=4096))]
    maps: u64,
    /// Side of the convolution kernels.
    #[arg(long, default_value_t = conv().kernel() as u64, value_parser = clap::value_parser!(u64).range(1..=4096))]
    kernel: u64,
    /// Side of the L2-pooling windows (stride = side) of each map: the groups.
    #[arg(long, default_value_t = conv().pool() as u64, value_parser = clap::value_parser!(u64).range(1..=4096))]
    pool: u64,
    /// Training images used by the auto-encoder (the first ones); the classifier uses all.
    #[arg(long, default_value_t = 20_000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    train_images: u64,
    /// Weight λ of the group term.
    #[arg(long, default_value_t = conv().config().lambda)]
    lambda: f32,
    /// Minibatch size.
    #[arg(long, default_value_t = conv().config().batch as u64, value_parser = clap::value_parser!(u64).range(1..=1_048_576))]
    batch: u64,
    /// Passes over the images (a maximum under --time-budget).
    #[arg(long, default_value_t = conv().config().epochs as u64, value_parser = clap::value_parser!(u64).range(1..=16_777_216))]
    epochs: u64,
    /// Adam's base learning rate (cosine decay).
    #[arg(long, default_value_t = conv().config().lr)]
    lr: f32,
    /// Wall-clock seconds of auto-encoder training (ends earlier after --epochs).
    #[arg(long)]
    time_budget: Option<f64>,
    /// Epochs of the softmax classifier on the standardised pooled features.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    classifier_epochs: u64,
    /// Seed of initialisation and shuffling.
    #[arg(long, default_value_t = conv().config().seed)]
    seed: u64,
    /// Directory for model.safetensors, filters.png, encoder.png, loss.png, loss.csv,
    /// result.json (created; written only on success).
    #[arg(long)]
    out: Option<PathBuf>,
}

pub fn conv_layer(a: &ConvArgs, quiet: bool) -> Result<serde_json::Value, String> {
    let flags = GroupFlags {
        lambda: a.lambda,
        batch: a.batch,
        epochs: a.epochs,
        lr: a.lr,
        time_budget: a.time_budget,
        seed: a.seed,
    };
    let mnist = Mnist::load(&a.data).map_err(msg)?;
    let (h, w) = (mnist.train.rows, mnist.train.cols);
    let params = apply_group_flags!(Convolutional::params(), flags)
        .image((h, w, 1))
        .maps(a.maps as usize)
        .kernel(a.kernel as usize)
        .pool(a.pool as usize)
        .check()
        .map_err(msg)?;
    let start = std::time::Instant::now();
    let n = (a.train_images as usize).min(mnist.train.len());
    let subset = mnist.train.images.row_range(0, n).to_owned();
    let model = fit_reporting("conv", quiet, &params.config(), |f| {
        params.fit_with(&subset, f)
    })?;
    let report = model.report().expect("a fitted model has a report").clone();
    // A linear classifier on the standardised pooled features.
    let mut ftrain = model.pooled(&mnist.train.images).map_err(msg)?;
    let mut ftest = model.pooled(&mnist.test.images).map_err(msg)?;
    let st = drsae::data::Standardizer::fit(&ftrain, 1e-3);
    st.apply(&mut ftrain);
    st.apply(&mut ftest);
    let mut clf = drsae::models::Softmax::new(ftrain.ncols(), 10);
    let scfg = drsae::train::SoftmaxConfig {
        epochs: a.classifier_epochs as usize,
        batch: 100,
        lr: 1e-3,
        weight_decay: 1e-3,
        seed: a.seed,
        time_budget: None,
    };
    drsae::train::train_softmax(&mut clf, &ftrain, &mnist.train.labels, &scfg, |_, _, _| {})
        .map_err(msg)?;
    let train_error = clf.error_percent(&ftrain, &mnist.train.labels);
    let test_error = clf.error_percent(&ftest, &mnist.test.labels);
    // Invariance: relative change of pooled and unpooled codes under ±1, ±2 pixel shifts.
    let k = mnist.test.len().min(1000);
    let x = mnist.test.images.row_range(0, k).to_owned();
    let (base_p, base_u) = (
        model.pooled(&x).map_err(msg)?,
        model.encode(&x).map_err(msg)?,
    );
    let (mut ps, mut us, mut shifts) = (0.0, 0.0, 0.0);
    for (dy, dx) in [-2isize, -1, 1, 2].iter().flat_map(|&d| [(d, 0), (0, d)]) {
        let mut t = Mat::zeros(k, h * w);
        for i in 0..k {
            t.row_mut(i)
                .copy_from_slice(&drsae::data::shift_image(x.row(i), h, w, dy, dx));
        }
        ps += mean_relative_change(&model.pooled(&t).map_err(msg)?, &base_p);
        us += mean_relative_change(&model.encode(&t).map_err(msg)?, &base_u);
        shifts += 1.0;
    }
    let json = serde_json::json!({
        "test_error": test_error,
        "train_error": train_error,
        "pooled_shift_change": ps / shifts,
        "unpooled_shift_change": us / shifts,
        "layer1_images_per_s": report.examples_per_s,
        "seconds": start.elapsed().as_secs_f64(),
    });
    if let Some(dir) = &a.out {
        let kernel = a.kernel as usize;
        let maps = a.maps as usize;
        let cols = (maps as f64).sqrt().ceil() as usize;
        let dec: Vec<Vec<f32>> = (0..maps).map(|m| model.model().decoder_kernel(m)).collect();
        let enc: Vec<Vec<f32>> = (0..maps).map(|m| model.model().encoder_filter(m)).collect();
        let mut out = Outputs::default();
        out.add("model.safetensors", model.to_bytes().map_err(msg)?);
        out.add("filters.png", tiles_png(&dec, kernel, kernel, cols, 6)?);
        out.add("encoder.png", tiles_png(&enc, kernel, kernel, cols, 6)?);
        write_map_outputs(out, dir, &report, "Convolutional auto-encoder", None, &json)?;
    }
    Ok(json)
}

/// Mean over rows of `‖a − b‖ / ‖b‖` (0 when both are 0, 1 when only `b` is).
fn mean_relative_change(a: &Mat, b: &Mat) -> f64 {
    let mut total = 0.0;
    for i in 0..b.nrows() {
        let (ra, rb) = (a.row(i), b.row(i));
        let d: f64 = ra
            .iter()
            .zip(rb)
            .map(|(x, y)| ((x - y) as f64).powi(2))
            .sum();
        let n: f64 = rb.iter().map(|y| (*y as f64).powi(2)).sum();
        total += if n > 0.0 {
            (d / n).sqrt()
        } else if d > 0.0 {
            1.0
        } else {
            0.0
        };
    }
    total / b.nrows().max(1) as f64
}
