//! Orientation maps with pinwheels from a locally-connected group-sparse auto-encoder
//! trained at image level on natural images (Gregor & LeCun, arXiv 1006.0448).
//!
//! ```text
//! cargo run --release --example pinwheel -- [--data ../shared/data/natural] [--grid 3]
//!     [--block 8] [--stride 4] [--kernel 12] [--pool 3] [--lambda 0.1] [--windows 20000]
//!     [--lcn 2] [--weights coverage|uniform] [--lr 2e-3] [--time-budget 120] [--seed 0]
//!     [--threads P] [--out DIR]
//! ```
//! The images are locally contrast-normalised (Gaussian σ = `--lcn` pixels), then cut into
//! `S × S` windows, `S = (grid − 1)·stride + kernel`. Receptive fields sit on a
//! `grid × grid` lattice `stride` pixels apart, and each position holds a `block × block`
//! patch of units, so the units form a `grid·block` square sheet (see `LocalSheet`). Every
//! unit has its own `kernel × kernel` filter (no weight sharing), in the encoder (ReLU +
//! gain) and in the decoder. The
//! group term pools overlapping `pool × pool` neighbourhoods of units on the sheet (no
//! wrap-around: the sheet has edges; every window overlapping the sheet is a group, clipped,
//! so each unit is in `pool²` groups — see `Groups::sheet_pools`); the reconstruction error
//! of a pixel is weighted by how many units see it.
//!
//! The metrics are those of the `topographic` example on the open sheet: each unit's
//! preferred orientation from the power spectrum of its decoder filter, the mean
//! orientation difference between sheet neighbours over that between random pairs
//! (`neighbor_orientation_ratio`, random ≈ 1), and `pinwheels`.
//! With `--out DIR`: `filters.png` (every unit's filter at its sheet position) and
//! `orientation.png` (hue = orientation, brightness = selectivity).
//! Last stdout line: `{"pinwheels", "neighbor_orientation_ratio", "seconds",
//! "reconstruction_error", "windows_per_s"}`.

mod common;

use common::{die, Args, Json, Progress};
use drsae::analysis::{Boundary, OrientationMap};
use drsae::data::{local_contrast_normalize, read_pgm_dir, sample_patches};
use drsae::kernels::Groups;
use drsae::models::{support_coverage, EncoderForm, GroupAe, GroupAeWorkspace, LocalSheet};
use drsae::train::{train_group_ae, GroupAeConfig};
use drsae::ParamGuard;
use rand::SeedableRng;
use std::time::Instant;

fn main() {
    let args = Args::parse(&[]);
    common::threads(&args);
    let dir = args
        .str("data")
        .unwrap_or_else(|| "../shared/data/natural".into());
    // One set of defaults: the estimator's (LocallyConnectedParams documents them).
    let defaults = drsae::LocallyConnected::params()
        .check()
        .expect("the defaults are valid");
    let (sheet0, family) = (defaults.sheet(), defaults.config());
    let grid: usize = args.get("grid", sheet0.grid);
    let block: usize = args.get("block", sheet0.block);
    let stride: usize = args.get("stride", sheet0.stride);
    let kernel: usize = args.get("kernel", sheet0.kernel);
    let pool: usize = args.get("pool", defaults.pool());
    let lambda: f32 = args.get("lambda", family.lambda);
    let count: usize = args.get("windows", 20000);
    let lcn: f32 = args.get("lcn", 2.0);
    let weighting: String = args.get("weights", "coverage".to_string());
    let lr: f32 = args.get("lr", family.lr);
    let budget: f64 = args.get("time-budget", 120.0);
    let seed: u64 = args.get("seed", 0);
    let out = common::out_dir(&args);
    args.finish();
    if grid < 1
        || block < 1
        || grid * block < 2
        || stride == 0
        || kernel < 2
        || pool == 0
        || pool > grid * block
        || count < 100
    {
        die("need --grid, --block ≥ 1 with --grid·--block ≥ 2, --stride ≥ 1, --kernel ≥ 2, 1 ≤ --pool ≤ --grid·--block and --windows ≥ 100");
    }
    if !(budget > 0.0 && budget.is_finite()) {
        die("--time-budget must be finite and > 0");
    }
    let units = grid * block;
    common::check_floats(
        "--grid·--block units with --kernel² filters",
        &[units, units, kernel, kernel],
    );
    let window = stride.saturating_mul(grid).saturating_add(kernel);
    common::check_floats("--windows of their side²", &[count, window, window]);
    let t0 = Instant::now();
    let sheet = LocalSheet::new(grid, block, stride, kernel).unwrap_or_else(|e| die(e));
    let side = sheet.image();
    let units = sheet.side();
    let images = read_pgm_dir(&dir).unwrap_or_else(|e| die(e));
    let images: Vec<_> = images
        .iter()
        .map(|im| local_contrast_normalize(im, lcn).unwrap_or_else(|e| die(e)))
        .collect();
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let held_out = 1000;
    let x = sample_patches(&images, side, count + held_out, &mut rng).unwrap_or_else(|e| die(e));
    let (train, test) = (
        x.row_range(0, count).to_owned(),
        x.row_range(count, count + held_out).to_owned(),
    );
    let support = sheet.support();
    let weights = match weighting.as_str() {
        "coverage" => support_coverage(&support),
        "uniform" => vec![1.0; side * side],
        w => die(format!("--weights {w}: expected coverage or uniform")),
    };
    let n = sheet.units();
    let groups = Groups::sheet_pools(units, units, pool).unwrap_or_else(|e| die(e));
    let mut model = GroupAe::init(side * side, n, EncoderForm::Relu, &mut rng)
        .with_support(support)
        .and_then(|m| m.with_recon_weights(weights))
        .unwrap_or_else(|e| die(e));
    eprintln!(
        "pinwheel: {count} {side}×{side} windows from {} images (LCN σ = {lcn}), {units}×{units} units ({block}×{block} per position) with {kernel}×{kernel} local filters every {stride} px, {pool}×{pool} pools, λ = {lambda}, {budget} s",
        images.len()
    );
    let progress = Progress::new("pinwheel");
    let cfg = GroupAeConfig {
        lambda,
        batch: family.batch,
        epochs: 10_000,
        lr,
        time_budget: Some(budget),
        seed,
        ..Default::default()
    };
    let report = train_group_ae(&mut model, &train, &groups, &cfg, |epoch, l, secs| {
        progress.report(
            secs,
            budget,
            &format!("epoch {epoch}: {}", common::group_loss_summary(l, 3)),
        );
    })
    .unwrap_or_else(|e| die(e));
    let mut ws = GroupAeWorkspace::default();
    let l = model.forward(&test, &groups, &mut ws);
    // Weighted reconstruction error relative to the weighted energy.
    let w = model.recon_weights.as_ref().unwrap();
    let energy: f64 = test
        .rows()
        .map(|r| {
            r.iter()
                .zip(w)
                .map(|(v, w)| (*w as f64) * (*v as f64).powi(2))
                .sum::<f64>()
        })
        .sum();
    let rec_error = 2.0 * l.reconstruction / energy;
    let filters: Vec<Vec<f32>> = (0..n).map(|j| sheet.window(&model.filter(j), j)).collect();
    let map = OrientationMap::measure(&filters, kernel, units, units, Boundary::Open);
    let (ratio, pinwheels) = (map.neighbor_ratio, map.pinwheels);
    eprintln!(
        "map: neighbour/random orientation difference {ratio:.3}, {pinwheels} pinwheels; held-out relative reconstruction error {rec_error:.4}; mean active groups {:.1} of {}; {:.0} windows/s",
        l.active_groups,
        groups.len(),
        report.examples_per_s
    );
    if let Some(dir) = &out {
        common::make_out_dir(dir);
        let tiles: Vec<&[f32]> = filters.iter().map(|f| &f[..]).collect();
        common::write_tiles_png_zoom(&dir.join("filters.png"), &tiles, kernel, kernel, units, 2)
            .unwrap_or_else(|e| die(e));
        common::write_orientation_png(&dir.join("orientation.png"), &map.orientations, units)
            .unwrap_or_else(|e| die(e));
        eprintln!("wrote filters.png and orientation.png to {}", dir.display());
    }
    Json::new()
        .num("pinwheels", pinwheels as f64)
        .num("neighbor_orientation_ratio", ratio)
        .num("reconstruction_error", rec_error)
        .num("mean_active_groups", l.active_groups)
        .num("windows_per_s", report.examples_per_s)
        .num("seconds", t0.elapsed().as_secs_f64())
        .print();
}
