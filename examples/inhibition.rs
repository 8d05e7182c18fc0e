//! Structured sparse coding by lateral inhibition on natural-image patches (or MNIST).
//!
//! ```text
//! cargo run --release --example inhibition -- --structure {tree,grid,learned}
//!     [--data ../shared/data/natural | --data DIR_WITH_MNIST_IDX] [--lambda 0.1]
//!     [--inhibition 1.0] [--radius 1] [--radius-start R] [--grid 8] [--patch 8] [--patches 20000] [--zca]
//!     [--zca-eps 0.1] [--inference cd|ista] [--lr 0.05] [--lr-end η] [--time-budget 60 | --epochs N]
//!     [--seed 0] [--threads P]
//!     [--out DIR]
//! ```
//! tree: units are the nodes of a 3-ary tree of depth 4 (40 units), S_ij = `--inhibition`
//! unless one is an ancestor of the other. grid: `--grid` × `--grid` units, S_ij = 0 within
//! `--radius` (wrapping); `--radius-start R` trains with radius R, R − 1, …, `--radius` in
//! equal shares of the budget (a shrinking neighbourhood, as in Kohonen maps), with the
//! dictionary's learning rate moving geometrically from `--lr` to `--lr-end` over them.
//! `--epochs N` trains N epochs per stage instead of sharing a time budget: the same seed and
//! settings then give the same model whatever the machine's load. The
//! topographic grid map (BENCHMARKS.md: neighbour/random orientation ratio 0.34–0.38, orientation
//! domains visible in `dictionary.png`) has one unit per input dimension, as the group-sparse
//! map does: `--structure grid --grid 12 --patch 12 --zca --lambda 0.05 --inhibition 5
//! --radius-start 4 --radius 2 --lr 1.2 --lr-end 0.15 --epochs 60`. `--zca` whitens the
//! (contrast-normalised) inputs. learned: 64 units, S learned by projected gradient ascent (fixed total,
//! 0 ≤ S_ij ≤ 4× its initial value).
//! With `--out DIR`: `dictionary.png` (tree layout, root at the top, or grid) and `s.png`.
//! Last stdout line: `{"energy", "mean_nnz", "path_fraction", "seconds", ...}` where energy
//! is the mean per held-out example, path_fraction (tree) the fraction of held-out codes
//! whose active units lie on one root-to-leaf path, plus `reconstruction_error`
//! (Σ‖x − Wz‖²/Σ‖x‖²), `lasso_reconstruction_error` (the exact lasso with the same
//! dictionary at the same mean number of non-zeros), and for grid the orientation metrics,
//! for learned `s_rarity_correlation` (correlation of S_ij with 1 − co-activation rate).

mod common;

use common::{die, Args, Json, Progress};
use drsae::analysis::{Boundary, OrientationMap};
use drsae::data::{
    contrast_normalize_rows, read_pgm_dir, remove_row_means, sample_patches, Mnist, Zca,
};
use drsae::linalg::Mat;
use drsae::models::{grid_inhibition, tree_inhibition, tree_related};
use drsae::solvers::{exact, inhibited_codes, Dictionary, LassoOptions};
use drsae::train::{train_inhibition, InhibitionConfig, InhibitionInference, InhibitionModel};
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::time::Instant;

const BRANCHING: usize = 3;
const DEPTH: usize = 4;
const GRID: usize = 8;

fn rel_reconstruction(w: &Mat, x: &Mat, z: &Mat) -> f64 {
    let mut r = x.clone();
    drsae::linalg::gemm(-1.0, z.view(), w.t(), 1.0, r.view_mut());
    let num: f64 = r.as_slice().iter().map(|v| (*v as f64).powi(2)).sum();
    let den: f64 = x.as_slice().iter().map(|v| (*v as f64).powi(2)).sum();
    num / den.max(1e-30)
}

/// `count` examples, one per row (MNIST images or natural-image patches), with their side;
/// means removed, contrast-normalised and optionally ZCA-whitened with `zca_eps`. Stops with
/// an error when there are fewer than `held_out` + 100 of them.
fn load_inputs(
    dir: &str,
    patch: usize,
    count: usize,
    held_out: usize,
    zca_eps: Option<f32>,
    rng: &mut StdRng,
) -> (Mat, usize) {
    let is_mnist = ["train-images-idx3-ubyte", "train-images-idx3-ubyte.gz"]
        .iter()
        .any(|f| std::path::Path::new(dir).join(f).is_file());
    let (mut x, side) = if is_mnist {
        let m = Mnist::load(dir).unwrap_or_else(|e| die(e));
        let rows = m.train.rows;
        (m.train.take(count).images, rows)
    } else {
        let images = read_pgm_dir(dir).unwrap_or_else(|e| die(e));
        (
            sample_patches(&images, patch, count, rng).unwrap_or_else(|e| die(e)),
            patch,
        )
    };
    if x.nrows() < held_out + 100 {
        die(format!(
            "need more than {} inputs, have {}",
            held_out + 100,
            x.nrows()
        ));
    }
    remove_row_means(&mut x);
    contrast_normalize_rows(&mut x, 0.05);
    if let Some(eps) = zca_eps {
        Zca::fit(&x, eps).apply(&mut x);
    }
    (x, side)
}

/// `n` unit-norm atoms copied from random training inputs (skipping flat inputs, which are
/// zero after contrast normalisation).
fn initial_dictionary(train: &Mat, n: usize, rng: &mut StdRng) -> Mat {
    let mut init_rows: Vec<usize> = Vec::with_capacity(n);
    while init_rows.len() < n {
        let r = rand::Rng::gen_range(rng, 0..train.nrows());
        if drsae::linalg::norm(train.row(r)) > 1e-3 {
            init_rows.push(r);
        }
    }
    let mut atoms = Mat::zeros(n, train.ncols());
    drsae::data::gather_rows(train, &init_rows, &mut atoms);
    Dictionary::from_unit_rows(&atoms)
        .unwrap_or_else(|e| die(e))
        .atoms()
        .clone()
}

/// Relative reconstruction error of the unstructured lasso with dictionary `w` on `x`, its λ
/// bisected so that its mean number of non-zeros matches `nnz`.
fn lasso_at_same_nnz(w: &Mat, x: &Mat, nnz: f64) -> f64 {
    let dict = Dictionary::new(w.clone()).unwrap_or_else(|e| die(e));
    let (mut lo, mut hi) = (1e-4f32.ln(), 10f32.ln());
    let mut rec = f64::NAN;
    for _ in 0..25 {
        let mid = 0.5 * (lo + hi);
        let mut z = Mat::zeros(x.nrows(), w.ncols());
        let st = exact(&dict, x, &mut z, &LassoOptions::new(mid.exp())).unwrap_or_else(|e| die(e));
        rec = rel_reconstruction(w, x, &z);
        if st.mean_nnz > nnz {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    rec
}

fn main() {
    let args = Args::parse(&["zca"]);
    common::threads(&args);
    let structure = args.str("structure").unwrap_or_else(|| "tree".into());
    let dir = args
        .str("data")
        .unwrap_or_else(|| "../shared/data/natural".into());
    let lambda: f32 = args.get("lambda", 0.1);
    let inhibition: f32 = args.get("inhibition", 1.0);
    let radius: usize = args.get("radius", 1);
    let radius_start: usize = args.get("radius-start", radius);
    let grid: usize = args.get("grid", GRID);
    let zca = args.flag("zca");
    let inference = match args.get::<String>("inference", "cd".into()).as_str() {
        "cd" => InhibitionInference::CoordinateDescent,
        "ista" => InhibitionInference::Ista,
        other => die(format!("--inference {other}: expected cd or ista")),
    };
    let zca_eps: f32 = args.get("zca-eps", 0.1);
    if grid < 2 {
        die("--grid must be ≥ 2");
    }
    if radius_start < radius {
        die("--radius-start must be ≥ --radius");
    }
    if !(zca_eps.is_finite() && zca_eps > 0.0) {
        die("--zca-eps must be finite and > 0");
    }
    let patch: usize = args.get("patch", 8);
    let count: usize = args.get("patches", 20000);
    let budget: Option<f64> = args.opt("time-budget");
    // A fixed number of epochs per stage instead of the time budget: the same seed and
    // settings then give the same model on any machine and under any load.
    let epochs: Option<usize> = args.opt("epochs");
    if epochs == Some(0) {
        die("--epochs must be ≥ 1");
    }
    if epochs.is_some() && budget.is_some() {
        die("--epochs and --time-budget exclude each other: give one");
    }
    let budget = budget.unwrap_or(60.0);
    let seed: u64 = args.get("seed", 0);
    let lr_w: f32 = args.get("lr", InhibitionConfig::default().lr_w);
    let lr_end: f32 = args.get("lr-end", lr_w);
    if !(lr_w.is_finite() && lr_w > 0.0 && lr_end.is_finite() && lr_end > 0.0) {
        die("--lr and --lr-end must be finite and > 0");
    }
    let out = common::out_dir(&args);
    args.finish();
    common::check_floats("--patches of --patch² values", &[count, patch, patch]);
    common::check_floats(
        "the --grid² units' inhibition matrix",
        &[grid, grid, grid, grid],
    );
    let t0 = Instant::now();
    let mut rng = StdRng::seed_from_u64(seed);
    let held_out = 2000;
    let (x, side) = load_inputs(
        &dir,
        patch,
        count + held_out,
        held_out,
        zca.then_some(zca_eps),
        &mut rng,
    );
    let n_train = x.nrows() - held_out;
    let (train, test) = (
        x.row_range(0, n_train).to_owned(),
        x.row_range(n_train, x.nrows()).to_owned(),
    );
    let m = x.ncols();
    let (s, mask, lr_s, n) = match structure.as_str() {
        "tree" => {
            let s = tree_inhibition(BRANCHING, DEPTH, inhibition).unwrap_or_else(|e| die(e));
            let n = s.nrows();
            (s, None, 0.0, n)
        }
        "grid" => (
            grid_inhibition(grid, grid, radius, inhibition).unwrap_or_else(|e| die(e)),
            None,
            0.0,
            grid * grid,
        ),
        "learned" => {
            let n = 64;
            let s = Mat::from_fn(n, n, |i, j| if i == j { 0.0 } else { 0.25 * inhibition });
            (s, None, 0.05, n)
        }
        other => die(format!(
            "--structure {other}: expected tree, grid or learned"
        )),
    };
    let w = initial_dictionary(&train, n, &mut rng);
    let mut model = InhibitionModel { w, s, mask };
    let beta = if structure == "learned" {
        inhibition
    } else {
        f32::MAX
    };
    let cfg = InhibitionConfig {
        lambda,
        lr_w,
        lr_s,
        beta,
        // Without --epochs, each stage runs until its share of the time budget is spent.
        epochs: epochs.unwrap_or(usize::MAX),
        inference,
        seed,
        ..Default::default()
    };
    let length = match epochs {
        Some(e) => format!("{e} epochs per stage"),
        None => format!("{budget} s"),
    };
    eprintln!("inhibition ({structure}): {n_train} inputs of {m} values from {dir}, {n} units, λ = {lambda}, {length}");
    let progress = Progress::new("inhibition");
    // Grid: the uninhibited neighbourhood shrinks from `--radius-start` to `--radius` in
    // equal shares of the budget, as a Kohonen map's neighbourhood does (the last share
    // trains with the final S).
    let radii: Vec<usize> = if structure == "grid" {
        (radius..=radius_start).rev().collect()
    } else {
        vec![radius]
    };
    let share = budget / radii.len() as f64;
    // Progress in seconds (time budget) or in epochs (--epochs).
    let (unit, total) = match epochs {
        Some(e) => (e as f64, (e * radii.len()) as f64),
        None => (share, budget),
    };
    for (stage, &r) in radii.iter().enumerate() {
        if structure == "grid" {
            model.s = grid_inhibition(grid, grid, r, inhibition).unwrap_or_else(|e| die(e));
        }
        let done = stage as f64 * unit;
        // The rate moves geometrically from --lr to --lr-end over the stages.
        let f = if radii.len() > 1 {
            stage as f32 / (radii.len() - 1) as f32
        } else {
            0.0
        };
        let cfg = InhibitionConfig {
            lr_w: lr_w * (lr_end / lr_w).powf(f),
            time_budget: epochs.is_none().then_some(share),
            seed: seed.wrapping_add(stage as u64),
            ..cfg.clone()
        };
        train_inhibition(&mut model, &train, &cfg, |epoch, st, secs| {
            let progressed = if epochs.is_some() { epoch as f64 } else { secs };
            progress.report(
                done + progressed,
                total,
                &format!(
                    "{}epoch {epoch}: energy/example {:.4}, nnz {:.2}, sweeps {:.1}",
                    if radii.len() > 1 {
                        format!("radius {r}, ")
                    } else {
                        String::new()
                    },
                    st.energy / n_train as f64,
                    st.mean_nnz,
                    st.sweeps
                ),
            );
        })
        .unwrap_or_else(|e| die(e));
    }
    // Held-out evaluation.
    let mut z = Mat::zeros(held_out, n);
    let st = inhibited_codes(&model.w, &model.s, &test, &mut z, lambda, 200, 1e-4)
        .unwrap_or_else(|e| die(e));
    let rec = rel_reconstruction(&model.w, &test, &z);
    let lasso_rec = lasso_at_same_nnz(&model.w, &test, st.mean_nnz);
    let mut json = Json::new()
        .num("energy", st.energy / held_out as f64)
        .num("mean_nnz", st.mean_nnz);
    let path_fraction = if structure == "tree" {
        path_fraction(&z)
    } else {
        f64::NAN
    };
    json = json
        .num("path_fraction", path_fraction)
        .num("reconstruction_error", rec)
        .num("lasso_reconstruction_error", lasso_rec);
    eprintln!("held out: energy {:.4}/example, nnz {:.2}, relative reconstruction {rec:.4} (lasso at the same nnz: {lasso_rec:.4}), path fraction {path_fraction:.3}", st.energy / held_out as f64, st.mean_nnz);
    let filters: Vec<Vec<f32>> = (0..n)
        .map(|j| (0..m).map(|i| model.w[(i, j)]).collect())
        .collect();
    if structure == "grid" {
        let map = OrientationMap::measure(&filters, side, grid, grid, Boundary::Wrap);
        let (ratio, pinwheels) = (map.neighbor_ratio, map.pinwheels);
        eprintln!(
            "grid map: neighbour/random orientation difference {ratio:.3}, {pinwheels} pinwheels"
        );
        json = json
            .num("neighbor_orientation_ratio", ratio)
            .num("pinwheels", pinwheels as f64);
    }
    if structure == "learned" {
        let corr = rarity_correlation(&model.s, &z);
        eprintln!("learned S: correlation of S_ij with co-activation rarity {corr:.3}");
        json = json.num("s_rarity_correlation", corr);
    }
    if let Some(dir) = &out {
        common::make_out_dir(dir);
        // Tree layout (root at the top), the grid, or rows of 8.
        let layout = match structure.as_str() {
            "tree" => None,
            "grid" => Some(grid),
            _ => Some(8),
        };
        write_pictures(dir, &filters, side, layout, &model.s);
    }
    json.num("seconds", t0.elapsed().as_secs_f64()).print();
}

/// Fraction of codes (rows of `z`) whose active units all lie on one root-to-leaf path of
/// the tree.
fn path_fraction(z: &Mat) -> f64 {
    let on_path = z.rows().filter(|row| {
        let act: Vec<usize> = (0..row.len()).filter(|&j| row[j] != 0.0).collect();
        act.iter()
            .all(|&a| act.iter().all(|&b| tree_related(BRANCHING, a, b)))
    });
    on_path.count() as f64 / z.nrows() as f64
}

/// Pearson correlation of S_ij with 1 − (fraction of the codes `z` where units i and j are
/// both active), over the pairs i > j.
fn rarity_correlation(s: &Mat, z: &Mat) -> f64 {
    let n = s.nrows();
    let act: Vec<Vec<bool>> = z
        .rows()
        .map(|r| r.iter().map(|v| *v != 0.0).collect())
        .collect();
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for i in 0..n {
        for j in 0..i {
            let co = act.iter().filter(|r| r[i] && r[j]).count() as f64 / z.nrows() as f64;
            a.push(s[(i, j)] as f64);
            b.push(1.0 - co);
        }
    }
    pearson(&a, &b)
}

/// `dictionary.png` (the tree layout when `per_row` is `None`, else `per_row` tiles a row)
/// and `s.png` (dark = strong inhibition) in `dir`.
fn write_pictures(
    dir: &std::path::Path,
    filters: &[Vec<f32>],
    side: usize,
    per_row: Option<usize>,
    s: &Mat,
) {
    let tiles: Vec<&[f32]> = filters.iter().map(|f| &f[..]).collect();
    let path = dir.join("dictionary.png");
    match per_row {
        None => {
            let nodes: Vec<Option<&[f32]>> = tiles.iter().map(|t| Some(*t)).collect();
            common::write_tree_png(&path, &nodes, side, BRANCHING, DEPTH)
        }
        Some(k) => common::write_tiles_png(&path, &tiles, side, side, k),
    }
    .unwrap_or_else(|e| die(e));
    let smax = s.as_slice().iter().cloned().fold(1e-12f32, f32::max);
    let px: Vec<u8> = s
        .as_slice()
        .iter()
        .map(|v| (255.0 * (1.0 - v / smax)) as u8)
        .collect();
    let n = s.nrows();
    common::write_png_gray(&dir.join("s.png"), n, n, &px).unwrap_or_else(|e| die(e));
    eprintln!(
        "wrote dictionary.png and s.png (dark = strong inhibition) to {}",
        dir.display()
    );
}

fn pearson(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len() as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let cov: f64 = a.iter().zip(b).map(|(x, y)| (x - ma) * (y - mb)).sum();
    let va: f64 = a.iter().map(|x| (x - ma).powi(2)).sum();
    let vb: f64 = b.iter().map(|y| (y - mb).powi(2)).sum();
    cov / (va * vb).sqrt().max(1e-30)
}
