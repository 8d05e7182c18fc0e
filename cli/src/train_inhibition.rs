//! `drsae train inhibition`: structured sparse coding by lateral inhibition ([`Inhibition`])
//! as flags, its defaults read from the library.

use crate::inputs;
use crate::output::{msg, png, relative_error, tiles_png, tree_png, zoom_for, Outputs};
use crate::plots::{self, Series};
use crate::progress::fit_observed;
use clap::{Args, ValueEnum};
use drsae::analysis::{Boundary, OrientationMap};
use drsae::data::Preprocessor;
use drsae::estimators::InhibitionValidParams;
use drsae::linalg::gemm;
use drsae::prelude::*;
use std::path::PathBuf;

fn defaults() -> InhibitionValidParams {
    Inhibition::params()
        .check()
        .expect("the defaults are valid")
}
fn tree() -> (usize, usize) {
    match defaults().structure() {
        InhibitionStructure::Tree { branching, depth } => (branching, depth),
        _ => (3, 4),
    }
}

/// Which units inhibit each other.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Structure {
    /// Nodes of a complete tree: S_ij = --inhibition unless one is an ancestor of the other.
    Tree,
    /// A wrap-around grid: S_ij = 0 within --radius, --inhibition beyond.
    Grid,
    /// --units units, S learned by projected gradient ascent.
    Learned,
}

/// Inference of the codes.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Inference {
    /// Coordinate descent.
    Cd,
    /// ISTA.
    Ista,
}

/// Flags of `drsae train inhibition`; each default is the library's (`InhibitionParams`).
#[derive(Args, Debug)]
pub struct InhibitionArgs {
    /// Images to cut patches from (an MNIST IDX directory, a directory of PGM/PNG/JPEG
    /// files, one image) or a `.npy` matrix of patches (rows of patch² values).
    #[arg(long, default_value = "data/mnist-sample")]
    data: PathBuf,
    /// Structure of the inhibition matrix S.
    #[arg(long, value_enum, default_value_t = Structure::Tree)]
    structure: Structure,
    /// Tree: children per node.
    #[arg(long, default_value_t = tree().0 as u64, value_parser = clap::value_parser!(u64).range(1..=64))]
    branching: u64,
    /// Tree: levels.
    #[arg(long, default_value_t = tree().1 as u64, value_parser = clap::value_parser!(u64).range(1..=16))]
    depth: u64,
    /// Grid: side of the square grid of units.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u64).range(2..=128))]
    grid: u64,
    /// Grid: radius of the uninhibited neighbourhood.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(0..=64))]
    radius: u64,
    /// Grid: train in stages with radius --radius-start, one less, ..., --radius (a
    /// shrinking neighbourhood, as in Kohonen maps), each stage --epochs epochs (or an equal
    /// share of --time-budget), continuing the dictionary [default: --radius, one stage].
    #[arg(long, value_parser = clap::value_parser!(u64).range(0..=64))]
    radius_start: Option<u64>,
    /// Learned: units.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=16384))]
    units: u64,
    /// Inhibition strength (S's value; the bound of the learned S).
    #[arg(long, default_value_t = defaults().inhibition())]
    inhibition: f32,
    /// L1 weight λ.
    #[arg(long, default_value_t = defaults().config().lambda)]
    lambda: f32,
    /// Patch side in pixels.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u64).range(2..=64))]
    patch: u64,
    /// Training patches.
    #[arg(long, default_value_t = 20_000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    patches: u64,
    /// Held-out patches.
    #[arg(long, default_value_t = 2_000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    held_out: u64,
    /// Minibatch size.
    #[arg(long, default_value_t = defaults().config().batch as u64, value_parser = clap::value_parser!(u64).range(1..=1_048_576))]
    batch: u64,
    /// Learning rate of the dictionary.
    #[arg(long, default_value_t = defaults().config().lr_w)]
    lr: f32,
    /// Grid stages: the dictionary's rate of the last stage, reached geometrically from
    /// --lr over the stages [default: --lr].
    #[arg(long)]
    lr_end: Option<f32>,
    /// Learning rate of the learned S.
    #[arg(long, default_value_t = defaults().config().lr_s)]
    lr_s: f32,
    /// Inference sweeps per example.
    #[arg(long, default_value_t = defaults().config().sweeps as u64, value_parser = clap::value_parser!(u64).range(1..=1_048_576))]
    sweeps: u64,
    /// Inference method.
    #[arg(long, value_enum, default_value_t = Inference::Cd)]
    inference: Inference,
    #[arg(long, help = crate::train::epochs_help("the patches (per stage with --radius-start)", defaults().config().epochs), value_parser = clap::value_parser!(u64).range(1..=16_777_216))]
    epochs: Option<u64>,
    /// Wall-clock seconds of training, shared equally by the stages (ends earlier after
    /// --epochs, if given).
    #[arg(long)]
    time_budget: Option<f64>,
    /// ZCA-whiten the (contrast-normalised) inputs with this regulariser.
    #[arg(long)]
    zca: Option<f32>,
    /// Seed of sampling, initialisation and shuffling.
    #[arg(long, default_value_t = defaults().config().seed)]
    seed: u64,
    /// Directory for model.safetensors, dictionary.png, s.png, energy.png, result.json
    /// (created; written only on success).
    #[arg(long)]
    out: Option<PathBuf>,
}

pub fn inhibition(a: &InhibitionArgs, quiet: bool) -> Result<serde_json::Value, String> {
    let structure = match a.structure {
        Structure::Tree => InhibitionStructure::Tree {
            branching: a.branching as usize,
            depth: a.depth as usize,
        },
        Structure::Grid => InhibitionStructure::Grid {
            side: a.grid as usize,
            radius: a.radius as usize,
        },
        Structure::Learned => InhibitionStructure::Learned {
            units: a.units as usize,
        },
    };
    let mut p = Inhibition::params()
        .structure(structure)
        .inhibition(a.inhibition)
        .lambda(a.lambda)
        .batch(a.batch as usize)
        .lr(a.lr)
        .lr_s(a.lr_s)
        .sweeps(a.sweeps as usize)
        .inference(match a.inference {
            Inference::Cd => InhibitionInference::CoordinateDescent,
            Inference::Ista => InhibitionInference::Ista,
        })
        .seed(a.seed)
        .preprocessing(Preprocessor::Contrast { floor: 0.05 })
        .zca(a.zca);
    if let Some(e) = a.epochs {
        p = p.epochs(e as usize);
    }
    if let Some(t) = a.time_budget {
        p = p.time_budget(t);
    }
    // Grid stages: the radii from --radius-start down to --radius.
    let radii: Vec<usize> = match (structure, a.radius_start) {
        (_, None) => vec![a.radius as usize],
        (InhibitionStructure::Grid { radius, .. }, Some(r)) if r as usize >= radius => {
            (radius..=r as usize).rev().collect()
        }
        (InhibitionStructure::Grid { .. }, Some(r)) => {
            return Err(format!(
                "--radius-start {r}: must be ≥ --radius {}",
                a.radius
            ))
        }
        _ => return Err("--radius-start needs --structure grid".into()),
    };
    let lr_end = a.lr_end.unwrap_or(a.lr);
    if !(lr_end > 0.0 && lr_end.is_finite()) {
        return Err(format!("--lr-end {lr_end}: must be finite and > 0"));
    }
    if radii.len() > 1 {
        p = p.radius_schedule(RadiusSchedule {
            start: radii[0],
            lr_end,
        });
    }
    let params = p.check().map_err(msg)?;
    let start = std::time::Instant::now();
    let patch = a.patch as usize;
    let (count, held) = (a.patches as usize, a.held_out as usize);
    let x = inputs::patches(&a.data, patch, count + held, a.seed)?;
    let (train, test) = (
        x.row_range(0, count).to_owned(),
        x.row_range(count, count + held).to_owned(),
    );
    let cfg = params.config();
    // With a radius schedule the epochs count on across the stages.
    let first = fit_observed(
        "inhibition",
        quiet,
        cfg.epochs.saturating_mul(radii.len()),
        cfg.time_budget,
        |epoch, energy, secs| {
            format!(
                "epoch {epoch}: energy/example {:.4}, {secs:.0} s",
                energy / count as f64
            )
        },
        |f| params.fit_with(&train, f),
    )
    .map_err(msg)?;
    let model = first;
    let energies = model.energies().to_vec();
    let mut prepared = test.clone();
    model.preprocessing().apply(&mut prepared);
    let (w, s) = (model.dictionary(), model.inhibition());
    let n = model.hidden();
    let mut z = Mat::zeros(held, n);
    let st = drsae::solvers::inhibited_codes(w, s, &prepared, &mut z, a.lambda, 200, 1e-4)
        .map_err(msg)?;
    let rec = relative_error(&prepared, &reconstruct(w, &z));
    let lasso_rec = lasso_at_same_nnz(w, &prepared, st.mean_nnz)?;
    let path_fraction = match structure {
        InhibitionStructure::Tree { branching, .. } => path_fraction(&z, branching),
        _ => f64::NAN,
    };
    let mut json = serde_json::json!({
        "energy": st.energy / held as f64,
        "mean_nnz": st.mean_nnz,
        "path_fraction": if path_fraction.is_nan() { serde_json::Value::Null } else { path_fraction.into() },
        "reconstruction_error": rec,
        "lasso_reconstruction_error": lasso_rec,
    });
    let m = model.input_dim();
    let filters: Vec<Vec<f32>> = (0..n)
        .map(|j| (0..m).map(|i| w[(i, j)]).collect())
        .collect();
    if let InhibitionStructure::Grid { side, .. } = structure {
        let map = OrientationMap::measure(&filters, patch, side, side, Boundary::Wrap);
        json["neighbor_orientation_ratio"] = map.neighbor_ratio.into();
        json["pinwheels"] = map.pinwheels.into();
    }
    if let InhibitionStructure::Learned { .. } = structure {
        json["s_rarity_correlation"] = rarity_correlation(s, &z).into();
    }
    json["seconds"] = start.elapsed().as_secs_f64().into();
    if let Some(dir) = &a.out {
        let cols = match structure {
            InhibitionStructure::Grid { side, .. } => side,
            _ => (n as f64).sqrt().ceil() as usize,
        };
        let mut out = Outputs::default();
        out.add("model.safetensors", model.to_bytes().map_err(msg)?);
        let dictionary = match structure {
            // The tree's layout: root at the top, each node over its children.
            InhibitionStructure::Tree { branching, depth } => {
                let nodes: Vec<Option<&[f32]>> = filters.iter().map(|f| Some(&f[..])).collect();
                tree_png(&nodes, patch, branching, depth)?
            }
            _ => tiles_png(&filters, patch, patch, cols, zoom_for(cols, patch))?,
        };
        out.add("dictionary.png", dictionary);
        let smax = s.as_slice().iter().cloned().fold(1e-12f32, f32::max);
        let px: Vec<u8> = s
            .as_slice()
            .iter()
            .map(|v| (255.0 * (1.0 - v / smax)) as u8)
            .collect();
        out.add("s.png", png(n, n, 1, &px)?);
        let pts = energies
            .iter()
            .enumerate()
            .map(|(i, &e)| ((i + 1) as f64, e / count as f64))
            .collect();
        out.add(
            "energy.png",
            plots::line_plot(
                "Lateral inhibition: training energy",
                "epoch",
                "energy per example",
                &[Series::new("training energy", pts)],
                false,
            )?,
        );
        out.json(&json);
        out.write(Some(dir))?;
    }
    Ok(json)
}

/// Pearson correlation of S_ij with 1 − (the fraction of the codes `z` where units i and j
/// are both active), over the pairs i > j: how far a learned S inhibits the pairs that
/// rarely fire together.
fn rarity_correlation(s: &Mat, z: &Mat) -> f64 {
    let n = s.nrows();
    let active: Vec<Vec<bool>> = z
        .rows()
        .map(|r| r.iter().map(|v| *v != 0.0).collect())
        .collect();
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for i in 0..n {
        for j in 0..i {
            let both = active.iter().filter(|r| r[i] && r[j]).count();
            a.push(s[(i, j)] as f64);
            b.push(1.0 - both as f64 / z.nrows().max(1) as f64);
        }
    }
    let k = a.len().max(1) as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / k, b.iter().sum::<f64>() / k);
    let cov: f64 = a.iter().zip(&b).map(|(x, y)| (x - ma) * (y - mb)).sum();
    let va: f64 = a.iter().map(|x| (x - ma).powi(2)).sum();
    let vb: f64 = b.iter().map(|y| (y - mb).powi(2)).sum();
    cov / (va * vb).sqrt().max(1e-30)
}

/// `z Wᵀ`.
fn reconstruct(w: &Mat, z: &Mat) -> Mat {
    let mut r = Mat::zeros(z.nrows(), w.nrows());
    gemm(1.0, z.view(), w.t(), 0.0, r.view_mut());
    r
}

/// Fraction of codes whose active units all lie on one root-to-leaf path of the tree.
fn path_fraction(z: &Mat, branching: usize) -> f64 {
    let on_path = z.rows().filter(|row| {
        let act: Vec<usize> = (0..row.len()).filter(|&j| row[j] != 0.0).collect();
        act.iter().all(|&a| {
            act.iter()
                .all(|&b| drsae::models::tree_related(branching, a, b))
        })
    });
    on_path.count() as f64 / z.nrows().max(1) as f64
}

/// Relative reconstruction error of the exact lasso with dictionary `w` (columns = atoms)
/// on `x`, its λ bisected so that its mean number of non-zeros matches `nnz`.
fn lasso_at_same_nnz(w: &Mat, x: &Mat, nnz: f64) -> Result<f64, String> {
    let atoms = w.transposed();
    let (mut lo, mut hi) = (1e-4f32.ln(), 10f32.ln());
    let mut rec = f64::NAN;
    for _ in 0..25 {
        let mid = 0.5 * (lo + hi);
        let lasso = Lasso::params()
            .lambda(mid.exp())
            .solver(Solver::Exact)
            .fit(&atoms)
            .map_err(msg)?;
        let (z, st) = lasso.solve(x).map_err(msg)?;
        rec = relative_error(x, &reconstruct(w, &z));
        if st.mean_nnz > nnz {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Ok(rec)
}
