//! `drsae train lista` (LISTA against FISTA and CoD: the code-prediction error as a function
//! of the iteration count) and `drsae lasso` (batch lasso codes), over the [`Lasso`] and
//! [`ListaEncoder`] estimators, their defaults read from the library.

use crate::inputs;
use crate::output::{msg, Outputs};
use crate::plots::{self, Series};
use crate::progress::Progress;
use clap::{Args, ValueEnum};
use drsae::estimators::{LassoValidParams, ListaComparison, ListaValidParams};
use drsae::prelude::*;
use std::path::PathBuf;

fn lista() -> ListaValidParams {
    ListaEncoder::params()
        .check()
        .expect("the defaults are valid")
}
fn lasso() -> LassoValidParams {
    Lasso::params().check().expect("the defaults are valid")
}

/// A lasso solver.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum SolverArg {
    /// ISTA.
    Ista,
    /// FISTA.
    Fista,
    /// Coordinate descent.
    Cod,
    /// The exact active-set solver.
    Exact,
}

impl From<SolverArg> for Solver {
    fn from(s: SolverArg) -> Solver {
        match s {
            SolverArg::Ista => Solver::Ista,
            SolverArg::Fista => Solver::Fista,
            SolverArg::Cod => Solver::Cod,
            SolverArg::Exact => Solver::Exact,
        }
    }
}

impl From<Solver> for SolverArg {
    fn from(s: Solver) -> SolverArg {
        match s {
            Solver::Ista => SolverArg::Ista,
            Solver::Fista => SolverArg::Fista,
            Solver::Cod => SolverArg::Cod,
            _ => SolverArg::Exact,
        }
    }
}

/// Flags of `drsae train lista`; the training defaults are the library's (`ListaParams`).
#[derive(Args, Debug)]
pub struct ListaArgs {
    /// An MNIST IDX directory (its training images), or images to cut patches from (a
    /// directory of PGM/PNG/JPEG files), or a `.npy` matrix of inputs.
    #[arg(long, default_value = "data/mnist-sample")]
    data: PathBuf,
    /// Patch side when --data holds natural images.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(2..=64))]
    patch: u64,
    /// Dictionary atoms: the first inputs, scaled to unit norm.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=65536))]
    atoms: u64,
    /// L1 weight λ of the lasso whose exact codes LISTA learns to predict.
    #[arg(long, default_value_t = 0.5)]
    lambda: f32,
    /// Training inputs.
    #[arg(long, default_value_t = 5_000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    train: u64,
    /// Held-out inputs.
    #[arg(long, default_value_t = 1_000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    test: u64,
    /// Epochs of each LISTA.
    #[arg(long, default_value_t = lista().config().epochs as u64, value_parser = clap::value_parser!(u64).range(1..=16_777_216))]
    epochs: u64,
    /// Minibatch size.
    #[arg(long, default_value_t = lista().config().batch as u64, value_parser = clap::value_parser!(u64).range(1..=1_048_576))]
    batch: u64,
    /// Base learning rate.
    #[arg(long, default_value_t = lista().config().lr)]
    lr: f32,
    /// LISTAs with T = 1..=max-iters iterations are trained and compared.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=1000))]
    max_iters: u64,
    /// Seed (LISTA T trains with seed ^ T).
    #[arg(long, default_value_t = lista().config().seed)]
    seed: u64,
    /// Directory for model.safetensors (the LISTA with T = max-iters), lista.csv,
    /// lista.png, result.json (created; written only on success).
    #[arg(long)]
    out: Option<PathBuf>,
}

/// The fewest FISTA iterations reaching LISTA's error, NaN when none did.
fn matched(r: &ListaComparison) -> f64 {
    r.fista_iters_to_match.map_or(f64::NAN, |k| k as f64)
}

/// The inputs of `lista`/`lasso`: MNIST training images, or mean-removed,
/// contrast-normalised patches of natural images, or a `.npy` matrix; with the data set's
/// name.
fn load(
    path: &std::path::Path,
    patch: usize,
    count: usize,
    seed: u64,
) -> Result<(Mat, &'static str), String> {
    let is_npy = path.extension().is_some_and(|e| e == "npy");
    if is_npy {
        let m = inputs::read_rows(&[path.to_path_buf()], npy_width(path)?)?;
        return Ok((m, "npy"));
    }
    if path.is_dir() && Mnist::load(path).is_ok() {
        let m = Mnist::load(path).map_err(msg)?;
        return Ok((m.train.images, "mnist"));
    }
    let mut x = inputs::patches(path, patch, count, seed)?;
    drsae::data::remove_row_means(&mut x);
    drsae::data::contrast_normalize_rows(&mut x, 0.05);
    Ok((x, "natural"))
}

/// The row length of a 2-D `.npy` file.
fn npy_width(path: &std::path::Path) -> Result<usize, String> {
    let bytes = drsae::io::read_regular_file(path, 4 << 30).map_err(msg)?;
    let npy = npyz::NpyFile::new(&bytes[..]).map_err(|e| format!("{}: {e}", path.display()))?;
    match npy.shape() {
        [_, c] => Ok(*c as usize),
        [c] => Ok(*c as usize),
        s => Err(format!(
            "{}: shape {s:?}; expected 1-D or 2-D",
            path.display()
        )),
    }
}

pub fn train_lista(a: &ListaArgs, quiet: bool) -> Result<serde_json::Value, String> {
    // Check the settings before any data is read.
    ListaEncoder::params()
        .epochs(a.epochs as usize)
        .batch(a.batch as usize)
        .lr(a.lr)
        .check()
        .map_err(msg)?;
    Lasso::params().lambda(a.lambda).check().map_err(msg)?;
    let start = std::time::Instant::now();
    let (atoms, n_train, n_test) = (a.atoms as usize, a.train as usize, a.test as usize);
    let need = atoms + n_train + n_test;
    let (inputs, name) = load(&a.data, a.patch as usize, need, a.seed)?;
    if inputs.nrows() < need {
        return Err(format!(
            "{}: {need} inputs needed (--atoms + --train + --test), {} there",
            a.data.display(),
            inputs.nrows()
        ));
    }
    let dict = inputs.row_range(0, atoms).to_owned();
    let xtr = inputs.row_range(atoms, atoms + n_train).to_owned();
    let xte = inputs.row_range(atoms + n_train, need).to_owned();
    let exact = Lasso::params()
        .lambda(a.lambda)
        .solver(Solver::Exact)
        .unit_atoms(true)
        .max_iters(1000)
        .tol(1e-7)
        .fit(&dict)
        .map_err(msg)?;
    let progress = Progress::new("lista", quiet);
    let max = a.max_iters as usize;
    let mut last = None;
    let rows = ListaEncoder::params()
        .epochs(a.epochs as usize)
        .batch(a.batch as usize)
        .lr(a.lr)
        .seed(a.seed)
        .check()
        .map_err(msg)?
        .compare_solvers(&exact, &xtr, &xte, max, |r, model| {
            progress.report(
                r.iters as f64 / max as f64,
                &format!(
                    "T={}: LISTA {:.4}, FISTA {:.4} / 10x {:.4}, CoD {:.4} / 10x {:.4}; FISTA needs {} iterations",
                    r.iters, r.lista, r.fista, r.fista_10x, r.cod, r.cod_10x, matched(r)
                ),
            );
            last = Some(model);
        })
        .map_err(msg)?;
    progress.finish();
    let table: Vec<[f64; 7]> = rows
        .iter()
        .map(|r| {
            [
                r.iters as f64,
                r.lista,
                r.fista,
                r.fista_10x,
                r.cod,
                r.cod_10x,
                matched(r),
            ]
        })
        .collect();
    let model = last.expect("max_iters ≥ 1");
    let r = table.last().expect("max_iters ≥ 1");
    let num = |v: f64| {
        if v.is_finite() {
            serde_json::Value::from(v)
        } else {
            serde_json::Value::Null
        }
    };
    let mut json = serde_json::Map::new();
    json.insert(format!("{name}_lista_T{max}"), num(r[1]));
    json.insert(format!("{name}_fista_T{max}"), num(r[2]));
    json.insert(format!("{name}_fista_10x_T{max}"), num(r[3]));
    json.insert(format!("{name}_fista_iters_to_match_T{max}"), num(r[6]));
    json.insert("seconds".into(), start.elapsed().as_secs_f64().into());
    let json = serde_json::Value::Object(json);
    if let Some(dir) = &a.out {
        let mut csv = String::from(
            "dataset,T,lista,fista,fista_10x,cod,cod_10x,fista_iters_to_match_lista\n",
        );
        for row in &table {
            csv.push_str(&format!(
                "{name},{},{},{},{},{},{},{}\n",
                row[0], row[1], row[2], row[3], row[4], row[5], row[6]
            ));
        }
        let series = |k: usize, label: &str| {
            Series::new(label, table.iter().map(|r| (r[0], r[k])).collect())
        };
        let plot = plots::line_plot(
            &format!(
                "Code prediction error on held-out {name} inputs (λ = {})",
                a.lambda
            ),
            "T (LISTA iterations; the solvers run T + 1 or 10·(T + 1))",
            "Σ‖z − z*‖² / Σ‖z*‖²",
            &[
                series(1, "LISTA (T)"),
                series(2, "FISTA (T + 1)"),
                series(3, "FISTA (10·(T + 1))"),
                series(4, "CoD (T + 1)"),
                series(5, "CoD (10·(T + 1))"),
            ],
            true,
        )?;
        let mut out = Outputs::default();
        out.add("model.safetensors", model.to_bytes().map_err(msg)?);
        out.add("lista.csv", csv);
        out.add("lista.png", plot);
        out.json(&json);
        out.write(Some(dir))?;
    }
    Ok(json)
}

/// Flags of `drsae lasso`; each default is the library's (`LassoParams`).
#[derive(Args, Debug)]
pub struct LassoArgs {
    /// An MNIST IDX directory (atoms: its first training images; inputs: its first test
    /// images), or a `.npy` matrix (atoms: its first rows; inputs: the rows after them).
    #[arg(long, default_value = "data/mnist-sample")]
    data: PathBuf,
    /// Dictionary atoms, each scaled to unit norm.
    #[arg(long, default_value_t = 400, value_parser = clap::value_parser!(u64).range(1..=65536))]
    atoms: u64,
    /// Inputs to encode.
    #[arg(long, short, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    n: u64,
    /// L1 weight λ.
    #[arg(long, default_value_t = lasso().options().lambda)]
    lambda: f32,
    /// Solver.
    #[arg(long, value_enum, default_value_t = SolverArg::from(lasso().solver()))]
    solver: SolverArg,
    /// Iteration cap.
    #[arg(long, default_value_t = lasso().options().max_iters as u64, value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    iters: u64,
    /// Stopping tolerance.
    #[arg(long, default_value_t = lasso().options().tol)]
    tol: f64,
    /// Non-negative codes.
    #[arg(long)]
    non_negative: bool,
    /// Directory for codes.npy (inputs × atoms, f32) and result.json (created; written only
    /// on success).
    #[arg(long)]
    out: Option<PathBuf>,
}

pub fn lasso_codes(a: &LassoArgs) -> Result<serde_json::Value, String> {
    let params = Lasso::params()
        .lambda(a.lambda)
        .solver(a.solver.into())
        .max_iters(a.iters as usize)
        .tol(a.tol)
        .non_negative(a.non_negative)
        .unit_atoms(true);
    params.check_ref().map_err(msg)?;
    let (atoms, n) = (a.atoms as usize, a.n as usize);
    let (dict, x) = if a.data.extension().is_some_and(|e| e == "npy") {
        let m = inputs::read_rows(std::slice::from_ref(&a.data), npy_width(&a.data)?)?;
        if m.nrows() < atoms + n {
            return Err(format!(
                "{}: {} rows, --atoms + --n = {} needed",
                a.data.display(),
                m.nrows(),
                atoms + n
            ));
        }
        (
            m.row_range(0, atoms).to_owned(),
            m.row_range(atoms, atoms + n).to_owned(),
        )
    } else {
        let m = Mnist::load(&a.data).map_err(msg)?;
        if atoms > m.train.len() || n > m.test.len() {
            return Err(format!(
                "--atoms must be in 1..={} and --n in 1..={}",
                m.train.len(),
                m.test.len()
            ));
        }
        (
            m.train.images.row_range(0, atoms).to_owned(),
            m.test.images.row_range(0, n).to_owned(),
        )
    };
    let model = params.fit(&dict).map_err(msg)?;
    let t = std::time::Instant::now();
    let (z, stats) = model.solve(&x).map_err(msg)?;
    let ms = t.elapsed().as_secs_f64() * 1e3;
    let json = serde_json::json!({
        "solver": format!("{:?}", Solver::from(a.solver)).to_lowercase(),
        "ms": ms,
        "objective": stats.objective,
        "duality_gap": stats.duality_gap,
        "mean_nnz": stats.mean_nnz,
        "iterations": stats.iterations,
    });
    if let Some(dir) = &a.out {
        let mut out = Outputs::default();
        out.add("codes.npy", inputs::npy_bytes(&z)?);
        out.json(&json);
        out.write(Some(dir))?;
    }
    Ok(json)
}
