//! `drsae train topographic|pinwheel`: the dense and locally-connected group-sparse
//! estimators ([`GroupSparse`], [`LocallyConnected`]) as flags, their defaults read from the
//! library; the helpers `drsae train conv` shares.

use crate::inputs;
use crate::output::{loss_csv, msg, relative_error, tiles_png, tree_png, zoom_for, Outputs};
use crate::plots;
use crate::progress::fit_observed;
use clap::{Args, ValueEnum};
use drsae::analysis::{Boundary, OrientationMap};
use drsae::data::Preprocessor;
use drsae::estimators::{GroupSparseValidParams, LocallyConnectedValidParams, StartStage};
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
    /// `None`: the library's default, or the whole budget under a time budget alone.
    epochs: Option<u64>,
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
            .lr(f.lr)
            .seed(f.seed);
        if let Some(e) = f.epochs {
            p = p.epochs(e as usize);
        }
        if let Some(t) = f.time_budget {
            p = p.time_budget(t);
        }
        p
    }};
}

/// The groups of `drsae train topographic`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Groups {
    /// Overlapping square pools on a wrap-around grid of units: a topographic map.
    Grid,
    /// Every subtree of a complete tree of units (hierarchical sparsity); afterwards the
    /// branches rarely active on held-out patches are pruned.
    Tree,
}

/// Flags of `drsae train topographic`; each default is the library's (`GroupSparseParams`).
#[derive(Args, Debug)]
pub struct TopographicArgs {
    /// Images to cut patches from (an MNIST IDX directory, a directory of PGM/PNG/JPEG
    /// files, one image) or a `.npy` matrix of patches (rows of patch² values).
    #[arg(long, default_value = "data/mnist-sample")]
    data: PathBuf,
    /// The groups: pools on a grid (--grid, --pool) or the subtrees of a tree (--branching,
    /// --depth).
    #[arg(long, value_enum, default_value_t = Groups::Grid)]
    groups: Groups,
    /// Tree: children per node.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=64))]
    branching: u64,
    /// Tree: levels.
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u64).range(1..=16))]
    depth: u64,
    /// Tree: prune every branch whose subtree is active (non-zero group norm) on fewer than
    /// this fraction of the held-out patches.
    #[arg(long, default_value_t = 0.02)]
    prune_threshold: f64,
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
    #[arg(long, help = crate::train::epochs_help("the patches", topo().config().epochs), value_parser = clap::value_parser!(u64).range(1..=16_777_216))]
    epochs: Option<u64>,
    /// Adam's base learning rate (cosine decay).
    #[arg(long, default_value_t = topo().config().lr)]
    lr: f32,
    /// Wall-clock seconds of training (ends earlier after --epochs, if given).
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
    /// Grid: share of the epochs and the time budget given to a first stage with wider
    /// pools (--pool-start) and a weaker group term (--lambda-start), in (0, 1); 0: one
    /// stage.
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
    /// Directory for model.safetensors, filters.png and orientation.png (grid) or tree.png
    /// and tree_pruned.png (tree), loss.png, loss.csv, result.json (created; written only
    /// on success).
    #[arg(long)]
    out: Option<PathBuf>,
}

impl TopographicArgs {
    /// The first training stage: none when --start-share is 0 or the groups are a tree.
    fn start_stage(&self) -> Option<StartStage> {
        let default = StartStage::widening(self.grid as usize, self.pool as usize, self.lambda);
        (self.start_share != 0.0 && self.groups == Groups::Grid).then(|| StartStage {
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
pub(crate) fn write_map_outputs(
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
pub(crate) fn fit_reporting<T>(
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
    if !(0.0..=1.0).contains(&a.prune_threshold) {
        return Err(format!(
            "--prune-threshold {}: must be in [0, 1]",
            a.prune_threshold
        ));
    }
    let layout = match a.groups {
        Groups::Grid => GroupLayout::Grid {
            side: a.grid as usize,
            pool: a.pool as usize,
            sigma: a.sigma,
        },
        Groups::Tree => GroupLayout::Tree {
            branching: a.branching as usize,
            depth: a.depth as usize,
        },
    };
    let params = apply_group_flags!(GroupSparse::params(), flags)
        .layout(layout)
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
    let norms = model.group_norms(&test).map_err(msg)?;
    let active = mean_active(&norms);
    if a.groups == Groups::Tree {
        return pruned_tree(a, &model, &test, &prepared, &norms, rec, active, start);
    }
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

/// `--groups tree`: prunes every branch whose subtree is active on fewer than
/// --prune-threshold of the held-out patches (group k is the subtree rooted at node k) and
/// reports the reconstruction before and after; `--out` also gets tree.png and
/// tree_pruned.png (the filters laid out by the tree, pruned branches blank).
#[allow(clippy::too_many_arguments)]
fn pruned_tree(
    a: &TopographicArgs,
    model: &GroupSparse,
    test: &Mat,
    prepared: &Mat,
    norms: &Mat,
    rec: f64,
    active: f64,
    start: std::time::Instant,
) -> Result<serde_json::Value, String> {
    let (branching, depth) = (a.branching as usize, a.depth as usize);
    let n = model.hidden();
    let rates: Vec<f64> = (0..norms.ncols())
        .map(|k| {
            let on = norms.rows().filter(|r| r[k] > 0.0).count();
            on as f64 / norms.nrows().max(1) as f64
        })
        .collect();
    let keep = drsae::kernels::prune_tree(branching, &rates, a.prune_threshold);
    let kept = keep.iter().filter(|k| **k).count();
    let mut z = model.encode(test).map_err(msg)?;
    for row in z.rows_mut() {
        for (v, k) in row.iter_mut().zip(&keep) {
            if !k {
                *v = 0.0;
            }
        }
    }
    let mut pruned = Mat::zeros(z.nrows(), model.input_dim());
    drsae::linalg::gemm(
        1.0,
        z.view(),
        model.model().dec().t(),
        0.0,
        pruned.view_mut(),
    );
    let report = model.report().expect("a fitted model has a report");
    let json = serde_json::json!({
        "tree_units": n,
        "pruned_tree_units": kept,
        "reconstruction_error": rec,
        "pruned_reconstruction_error": relative_error(prepared, &pruned),
        "mean_active_groups": active,
        "seconds": start.elapsed().as_secs_f64(),
        "patches_per_s": report.examples_per_s,
    });
    if let Some(dir) = &a.out {
        let patch = a.patch as usize;
        let filters: Vec<Vec<f32>> = (0..n).map(|j| model.model().filter(j)).collect();
        let all: Vec<Option<&[f32]>> = filters.iter().map(|f| Some(&f[..])).collect();
        let kept: Vec<Option<&[f32]>> = filters
            .iter()
            .zip(&keep)
            .map(|(f, k)| k.then_some(&f[..]))
            .collect();
        let mut out = Outputs::default();
        out.add("model.safetensors", model.to_bytes().map_err(msg)?);
        out.add("tree.png", tree_png(&all, patch, branching, depth)?);
        out.add("tree_pruned.png", tree_png(&kept, patch, branching, depth)?);
        write_map_outputs(out, dir, report, "Tree groups", None, &json)?;
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
    #[arg(long, help = crate::train::epochs_help("the windows", local().config().epochs), value_parser = clap::value_parser!(u64).range(1..=16_777_216))]
    epochs: Option<u64>,
    /// Adam's base learning rate (cosine decay).
    #[arg(long, default_value_t = local().config().lr)]
    lr: f32,
    /// Wall-clock seconds of training (ends earlier after --epochs, if given).
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
