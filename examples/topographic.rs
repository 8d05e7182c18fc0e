//! Topographic map from natural-image patches with a group-sparse auto-encoder whose
//! groups are overlapping square pools on a wrap-around grid of units.
//!
//! ```text
//! cargo run --release --example topographic -- [--data ../shared/data/natural] [--grid 12]
//!     [--pool 3] [--patch 12] [--lambda 0.3] [--pool-start 5] [--lambda-start 0.12]
//!     [--start-share 0.7] [--patches 50000] [--form relu|tanh] [--sigma S] [--lr 2e-3]
//!     [--zca-eps 0.1] [--no-zca] [--lcn SIGMA] [--time-budget 120] [--seed 0]
//!     [--threads P] [--out DIR]
//! ```
//! Patches are mean-removed, contrast-normalised and ZCA-whitened (`--zca-eps` is the
//! regulariser added to the covariance eigenvalues). Training runs in two stages: for
//! `--start-share` of the budget with wide pools (`--pool-start`, default `--pool` + 2) and
//! a weak group term (`--lambda-start`, default 0.4 λ), so that the map orders quickly,
//! then with the final pools and λ, whose sparsity makes the filters localised edges — a
//! shrinking neighbourhood, as in Kohonen maps (`--start-share 0`: one stage). Measured:
//! with one unit per input dimension (12 × 12 patches, 12 × 12 units) the filters are
//! localised oriented edges and bars; over-complete maps (8 × 8 patches, 16 × 16 units) or
//! weaker sparsity give gratings; wide pools alone order the map but give gratings, the
//! final pools alone give edges but a weak map.
//! `--no-zca` skips the whitening; `--lcn SIGMA` replaces it by local contrast
//! normalisation of the whole images (Gaussian σ in pixels).
//! `--sigma` weights each pool member by a Gaussian of its distance to the pool's centre.
//! `--psd ALPHA` trains PSD-style (20 inference steps from the encoder's prediction per
//! patch, then one step on D and the encoder) instead of as a plain auto-encoder.
//!
//! `--groups tree [--branching 3] [--depth 6] [--prune-threshold 0.02]` (then `--patch`
//! defaults to 8 and `--lambda` to 0.8): the groups are every subtree of a complete tree of
//! units (hierarchical sparsity) instead of pools on a grid; after training, every branch whose subtree is active (non-zero group norm) on
//! fewer than the threshold fraction of held-out patches is pruned. Writes `tree.png` and
//! `tree_pruned.png` (filters laid out by the tree, pruned branches blank); last stdout
//! line `{"tree_units", "pruned_tree_units", "reconstruction_error",
//! "pruned_reconstruction_error", "mean_active_groups", "seconds", "patches_per_s"}`.
//!
//! With `--out DIR`: `filters.png` (decoder filters at their grid positions) and
//! `orientation.png` (each unit's preferred orientation as a hue, brightness = selectivity).
//! Last stdout line: `{"neighbor_orientation_ratio", "pinwheels", "reconstruction_error",
//! "mean_active_groups", "seconds", "patches_per_s"}`; `reconstruction_error` is
//! `Σ‖x − Dz‖² / Σ‖x‖²` on held-out patches, `patches_per_s` the last stage's rate.

mod common;

use common::{die, Args, Json, Progress};
use drsae::analysis::{Boundary, OrientationMap};
use drsae::data::{
    contrast_normalize_rows, local_contrast_normalize, read_pgm_dir, remove_row_means,
    sample_patches, Zca,
};
use drsae::kernels::Groups;
use drsae::models::{EncoderForm, GroupAe, GroupAeWorkspace};
use drsae::train::{train_group_ae, GroupAeConfig};
use drsae::ParamGuard;
use rand::SeedableRng;
use std::time::Instant;

fn main() {
    let args = Args::parse(&["zca", "no-zca"]);
    common::threads(&args);
    let dir = args
        .str("data")
        .unwrap_or_else(|| "../shared/data/natural".into());
    let tree = match args.get::<String>("groups", "grid".into()).as_str() {
        "grid" => None,
        "tree" => Some(TreeMode {
            branching: args.get("branching", 3),
            depth: args.get("depth", 6),
            threshold: args.get("prune-threshold", 0.02),
        }),
        g => die(format!("--groups {g}: expected grid or tree")),
    };
    // One set of defaults: the estimator's (GroupSparseParams documents them).
    let defaults = drsae::GroupSparse::params()
        .check()
        .expect("the defaults are valid");
    let (default_grid, default_pool) = match defaults.layout() {
        drsae::estimators::GroupLayout::Grid { side, pool, .. } => (side, pool),
        other => die(format!("unexpected default layout {other:?}")),
    };
    let family = defaults.config();
    let grid: usize = args.get("grid", default_grid);
    let pool: usize = args.get("pool", default_pool);
    // Tree mode: a tree larger than needed (364 units for 64-value patches) and a strong
    // group term, so that whole branches fall silent and can be pruned.
    let patch: usize = args.get("patch", if tree.is_some() { 8 } else { 12 });
    let lambda: f32 = args.get("lambda", if tree.is_some() { 0.8 } else { family.lambda });
    // The first stage's defaults are the library's (StartStage::widening).
    let widening = drsae::estimators::StartStage::widening(grid, pool, lambda);
    let pool_start: usize = args.get("pool-start", widening.pool);
    let lambda_start: f32 = args.get("lambda-start", widening.lambda);
    let start_share: f64 = args.get("start-share", widening.share);
    let count: usize = args.get("patches", 50000);
    let form = match args.get::<String>("form", "relu".into()).as_str() {
        "relu" => EncoderForm::Relu,
        "tanh" => EncoderForm::Tanh,
        f => die(format!("--form {f}: expected relu or tanh")),
    };
    let lcn: Option<f32> = args.opt("lcn");
    // ZCA by default (measured: localised edges); `--lcn` replaces it, `--no-zca` drops it.
    let zca = args.flag("zca") || (!args.flag("no-zca") && lcn.is_none());
    let zca_eps: f32 = args.get("zca-eps", defaults.zca().unwrap_or(0.1));
    if !(zca_eps.is_finite() && zca_eps > 0.0) {
        die("--zca-eps must be finite and > 0");
    }
    let budget: f64 = args.get("time-budget", 120.0);
    let seed: u64 = args.get("seed", 0);
    let lr: f32 = args.get("lr", family.lr);
    let sigma: Option<f32> = args.opt("sigma");
    let psd: Option<f32> = args.opt("psd");
    let out = common::out_dir(&args);
    args.finish();
    if grid < 2 || pool == 0 || pool > grid || patch < 2 || count < 100 {
        die("need --grid ≥ 2, 1 ≤ --pool ≤ --grid, --patch ≥ 2 and --patches ≥ 100");
    }
    common::check_floats("--patches of --patch² values", &[count, patch, patch]);
    common::check_floats(
        "--grid² units of --patch² weights",
        &[grid, grid, patch, patch],
    );
    if pool_start == 0 || pool_start > grid || !(0.0..1.0).contains(&start_share) {
        die("need 1 ≤ --pool-start ≤ --grid and 0 ≤ --start-share < 1");
    }
    if let Some(t) = &tree {
        if !(0.0..=1.0).contains(&t.threshold) {
            die("--prune-threshold must be in [0, 1]");
        }
        // a bad --branching / --depth is reported before any data is read
        if t.units() > 4096 {
            die("--groups tree: at most 4,096 units (--branching, --depth)");
        }
    }
    let t0 = Instant::now();
    let mut images = read_pgm_dir(&dir).unwrap_or_else(|e| die(e));
    if let Some(sigma) = lcn {
        images = images
            .iter()
            .map(|im| local_contrast_normalize(im, sigma).unwrap_or_else(|e| die(e)))
            .collect();
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let held_out = 2000;
    let mut x =
        sample_patches(&images, patch, count + held_out, &mut rng).unwrap_or_else(|e| die(e));
    remove_row_means(&mut x);
    contrast_normalize_rows(&mut x, 0.05);
    if zca {
        let w = Zca::fit(&x, zca_eps);
        w.apply(&mut x);
    }
    let (train, test) = (
        x.row_range(0, count).to_owned(),
        x.row_range(count, count + held_out).to_owned(),
    );
    let base = GroupAeConfig {
        lambda,
        batch: family.batch,
        epochs: 10_000,
        lr,
        time_budget: Some(budget),
        seed,
        psd: psd.map(|a| (a, 20)),
        ..Default::default()
    };
    if let Some(t) = tree {
        let cfg = base;
        let m = patch * patch;
        return t.run(
            &train,
            &test,
            patch,
            GroupAe::init(m, t.units(), form, &mut rng),
            &cfg,
            &out,
            t0,
        );
    }
    let n = grid * grid;
    let groups = Groups::grid(grid, grid, pool, 1, sigma).unwrap_or_else(|e| die(e));
    let mut model = GroupAe::init(patch * patch, n, form, &mut rng);
    // With `--pool-start`/`--lambda-start`, a first stage (`--start-share` of the budget)
    // trains with wider pools (or another λ): the map orders quickly with wide pools, then
    // the final pools and λ sharpen the filters (a shrinking neighbourhood, as in Kohonen
    // maps).
    let stages = if start_share > 0.0 {
        vec![
            (pool_start, lambda_start, start_share * budget),
            (pool, lambda, (1.0 - start_share) * budget),
        ]
    } else {
        vec![(pool, lambda, budget)]
    };
    eprintln!("topographic: {count} {patch}×{patch} patches from {} images (ZCA {zca}, LCN {lcn:?}), {grid}×{grid} units, stages (pool, λ, seconds) {stages:?}", images.len());
    let progress = Progress::new("topographic");
    let mut report = None;
    let mut done = 0.0;
    for &(p, lam, secs) in &stages {
        let stage_groups = Groups::grid(grid, grid, p, 1, sigma).unwrap_or_else(|e| die(e));
        let cfg = GroupAeConfig {
            lambda: lam,
            time_budget: Some(secs),
            ..base.clone()
        };
        let r = train_group_ae(&mut model, &train, &stage_groups, &cfg, |epoch, l, t| {
            if epoch % 5 == 1 {
                progress.report(
                    done + t,
                    budget,
                    &format!(
                        "pool {p}, λ {lam}, epoch {epoch}: {}",
                        common::group_loss_summary(l, 4)
                    ),
                );
            }
        })
        .unwrap_or_else(|e| die(e));
        done += secs;
        report = Some(r);
    }
    let report = report.expect("at least one stage");
    // Held-out reconstruction and activity.
    let mut ws = GroupAeWorkspace::default();
    let l = model.forward(&test, &groups, &mut ws);
    let energy: f64 = test.as_slice().iter().map(|v| (*v as f64).powi(2)).sum();
    let rec_error = 2.0 * l.reconstruction / energy;
    // Orientation map.
    let filters: Vec<Vec<f32>> = (0..n).map(|j| model.filter(j)).collect();
    let map = OrientationMap::measure(&filters, patch, grid, grid, Boundary::Wrap);
    let (ratio, pinwheels) = (map.neighbor_ratio, map.pinwheels);
    eprintln!("map: neighbour/random orientation difference {ratio:.3}, {pinwheels} pinwheels; held-out relative reconstruction error {rec_error:.4}; {:.0} patches/s", report.examples_per_s);
    if let Some(dir) = &out {
        common::make_out_dir(dir);
        let tiles: Vec<&[f32]> = filters.iter().map(|f| &f[..]).collect();
        common::write_tiles_png_zoom(&dir.join("filters.png"), &tiles, patch, patch, grid, 4)
            .unwrap_or_else(|e| die(e));
        common::write_orientation_png(&dir.join("orientation.png"), &map.orientations, grid)
            .unwrap_or_else(|e| die(e));
        eprintln!("wrote filters.png and orientation.png to {}", dir.display());
    }
    Json::new()
        .num("neighbor_orientation_ratio", ratio)
        .num("pinwheels", pinwheels as f64)
        .num("reconstruction_error", rec_error)
        .num("mean_active_groups", l.active_groups)
        .num("seconds", t0.elapsed().as_secs_f64())
        .num("patches_per_s", report.examples_per_s)
        .print();
}

/// `--groups tree`: every subtree of a complete tree of units is a group; after training,
/// the branches whose subtree is active on fewer than `threshold` of the held-out patches
/// are pruned.
struct TreeMode {
    branching: usize,
    depth: usize,
    threshold: f64,
}

impl TreeMode {
    fn units(&self) -> usize {
        Groups::tree(self.branching, self.depth)
            .unwrap_or_else(|e| die(e))
            .n_units()
    }

    /// Trains, prunes, reports; writes `tree.png` (all units) and `tree_pruned.png`.
    #[allow(clippy::too_many_arguments)]
    fn run(
        &self,
        train: &drsae::linalg::Mat,
        test: &drsae::linalg::Mat,
        patch: usize,
        mut model: GroupAe,
        cfg: &GroupAeConfig,
        out: &Option<std::path::PathBuf>,
        t0: Instant,
    ) {
        let groups = Groups::tree(self.branching, self.depth).unwrap_or_else(|e| die(e));
        let n = groups.n_units();
        let budget = cfg.time_budget.unwrap_or(0.0);
        eprintln!(
            "topographic (tree): {} {patch}×{patch} patches, {}-ary tree of depth {} = {n} units, λ = {}, {budget} s",
            train.nrows(),
            self.branching,
            self.depth,
            cfg.lambda
        );
        let progress = Progress::new("topographic");
        let report = train_group_ae(&mut model, train, &groups, cfg, |epoch, l, t| {
            if epoch % 5 == 1 {
                let msg = format!("epoch {epoch}: {}", common::group_loss_summary(l, 4));
                progress.report(t, budget, &msg);
            }
        })
        .unwrap_or_else(|e| die(e));
        let mut ws = GroupAeWorkspace::default();
        let l = model.forward(test, &groups, &mut ws);
        let mut z = model.codes(&ws).clone();
        let before = relative_error(&model, test, &z);
        // Group k is the subtree rooted at node k (breadth-first numbering, `Groups::tree`).
        let mut active = vec![0usize; n];
        let mut norms = vec![0.0; groups.len()];
        for row in z.rows() {
            groups.norms(row, &mut norms);
            for (a, v) in active.iter_mut().zip(&norms) {
                *a += usize::from(*v > 0.0);
            }
        }
        let rates: Vec<f64> = active
            .iter()
            .map(|a| *a as f64 / test.nrows() as f64)
            .collect();
        // Activity of the subtrees, level by level (lowest and median rate).
        let (mut lo, mut level) = (0, 0);
        while lo < n {
            let hi = (lo + self.branching.pow(level as u32)).min(n);
            let mut sorted = rates[lo..hi].to_vec();
            sorted.sort_by(f64::total_cmp);
            eprintln!(
                "level {level}: {} subtrees active on {:.2} % (lowest) / {:.2} % (median) of held-out patches",
                hi - lo,
                100.0 * sorted[0],
                100.0 * sorted[sorted.len() / 2]
            );
            (lo, level) = (hi, level + 1);
        }
        let keep = drsae::kernels::prune_tree(self.branching, &rates, self.threshold);
        let kept = keep.iter().filter(|k| **k).count();
        for row in z.rows_mut() {
            for (v, k) in row.iter_mut().zip(&keep) {
                if !k {
                    *v = 0.0;
                }
            }
        }
        let after = relative_error(&model, test, &z);
        eprintln!(
            "tree: {n} units, {kept} after pruning the branches active on < {:.1} % of held-out patches; relative reconstruction error {before:.4} before, {after:.4} after",
            100.0 * self.threshold
        );
        if let Some(dir) = out {
            common::make_out_dir(dir);
            let filters: Vec<Vec<f32>> = (0..n).map(|j| model.filter(j)).collect();
            let all: Vec<Option<&[f32]>> = filters.iter().map(|f| Some(&f[..])).collect();
            let pruned: Vec<Option<&[f32]>> = filters
                .iter()
                .zip(&keep)
                .map(|(f, k)| k.then_some(&f[..]))
                .collect();
            let (b, d) = (self.branching, self.depth);
            common::write_tree_png(&dir.join("tree.png"), &all, patch, b, d)
                .unwrap_or_else(|e| die(e));
            common::write_tree_png(&dir.join("tree_pruned.png"), &pruned, patch, b, d)
                .unwrap_or_else(|e| die(e));
            eprintln!("wrote tree.png and tree_pruned.png to {}", dir.display());
        }
        Json::new()
            .num("tree_units", n as f64)
            .num("pruned_tree_units", kept as f64)
            .num("reconstruction_error", before)
            .num("pruned_reconstruction_error", after)
            .num("mean_active_groups", l.active_groups)
            .num("seconds", t0.elapsed().as_secs_f64())
            .num("patches_per_s", report.examples_per_s)
            .print();
    }
}

/// `Σ‖x − Dz‖² / Σ‖x‖²` for codes z (one example per row).
fn relative_error(model: &GroupAe, x: &drsae::linalg::Mat, z: &drsae::linalg::Mat) -> f64 {
    let mut r = x.clone();
    drsae::linalg::gemm(-1.0, z.view(), model.dec.t(), 1.0, r.view_mut());
    let num: f64 = r.as_slice().iter().map(|v| (*v as f64).powi(2)).sum();
    let den: f64 = x.as_slice().iter().map(|v| (*v as f64).powi(2)).sum();
    num / den.max(1e-30)
}
