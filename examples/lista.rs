//! LISTA against FISTA and CoD: code-prediction error as a function of the iteration count.
//!
//! ```text
//! cargo run --release --example lista -- [--data DIR] [--natural DIR] [--atoms 100]
//!     [--lambda-mnist 0.5] [--lambda-natural 0.5] [--train 5000] [--test 1000] [--epochs 30]
//!     [--max-iters 10] [--seed 0] [--threads P] [--out DIR]
//! ```
//! For each data set (MNIST from `--data`; natural-image patches from `--natural`, default
//! `../shared/data/natural` when it exists) the dictionary is `--atoms` training inputs
//! scaled to unit norm, the targets are the exact lasso codes (the `exact` solver), and for
//! T = 1..=max-iters a LISTA with T iterations is trained (initialised from ISTA) and
//! compared on held-out inputs with FISTA and CoD run for T + 1 and 10·(T + 1) iterations
//! (same computation: LISTA applies T + 1 shrinks with T products by S). The error is
//! `Σ‖z − z*‖² / Σ‖z*‖²`. Also reported: how many FISTA iterations reach LISTA's error.
//! With `--out DIR`: `lista.csv` and `lista_<dataset>.png` (log error vs T).
//! Last stdout line: per data set `<name>_lista_T<max>`, `<name>_fista_T<max>`,
//! `<name>_fista_iters_to_match_T<max>` and `seconds`.

mod common;

use common::{die, Args, Json, Progress};
use drsae::data::{contrast_normalize_rows, read_pgm_dir, remove_row_means, sample_patches, Mnist};
use drsae::estimators::ListaComparison;
use drsae::linalg::Mat;
use drsae::{Lasso, ListaEncoder, ParamGuard};
use rand::SeedableRng;
use std::time::Instant;

/// The LISTA estimator's training defaults (ListaParams documents them): one set of
/// defaults.
fn lista_defaults() -> drsae::train::ListaConfig {
    drsae::ListaEncoder::params()
        .check()
        .expect("the defaults are valid")
        .config()
        .clone()
}

struct Rows {
    name: &'static str,
    table: Vec<[f64; 6]>,
    fista_match: Vec<f64>,
}

/// The comparison on one data set ([`drsae::ListaValidParams::compare_solvers`]).
#[allow(clippy::too_many_arguments)]
fn run(
    name: &'static str,
    inputs: Mat,
    atoms: usize,
    lambda: f32,
    n_train: usize,
    n_test: usize,
    epochs: usize,
    max_iters: usize,
    seed: u64,
    progress: &Progress,
) -> Rows {
    let need = atoms + n_train + n_test;
    if inputs.nrows() < need {
        die(format!(
            "{name}: need {need} inputs, have {}",
            inputs.nrows()
        ));
    }
    let exact = Lasso::params()
        .lambda(lambda)
        .unit_atoms(true)
        .fit(&inputs.row_range(0, atoms).to_owned())
        .unwrap_or_else(|e| die(e));
    let xtr = inputs.row_range(atoms, atoms + n_train).to_owned();
    let xte = inputs.row_range(atoms + n_train, need).to_owned();
    let (_, st) = exact.solve(&xte).unwrap_or_else(|e| die(e));
    eprintln!(
        "{name}: {atoms} atoms, λ = {lambda}, exact codes have {:.1} non-zeros on average",
        st.mean_nnz
    );
    let params = ListaEncoder::params()
        .epochs(epochs)
        .seed(seed)
        .check()
        .unwrap_or_else(|e| die(e));
    let comparison = params
        .compare_solvers(&exact, &xtr, &xte, max_iters, |r, _| {
            let (t, matched) = (r.iters, matched(r));
            progress.report(t as f64, max_iters as f64, &format!("{name} T={t}: LISTA {:.4}, FISTA {:.4} / 10x {:.4}, CoD {:.4} / 10x {:.4}; FISTA needs {matched} iterations", r.lista, r.fista, r.fista_10x, r.cod, r.cod_10x));
        })
        .unwrap_or_else(|e| die(e));
    Rows {
        name,
        table: comparison
            .iter()
            .map(|r| {
                [
                    r.iters as f64,
                    r.lista,
                    r.fista,
                    r.fista_10x,
                    r.cod,
                    r.cod_10x,
                ]
            })
            .collect(),
        fista_match: comparison.iter().map(matched).collect(),
    }
}

/// The fewest FISTA iterations reaching LISTA's error, NaN when none did.
fn matched(r: &ListaComparison) -> f64 {
    r.fista_iters_to_match.map_or(f64::NAN, |k| k as f64)
}

fn main() {
    let args = Args::parse(&[]);
    common::threads(&args);
    let data = args
        .str("data")
        .unwrap_or_else(|| "data/mnist-sample".into());
    let natural = args.str("natural").or_else(|| {
        std::path::Path::new("../shared/data/natural")
            .is_dir()
            .then(|| "../shared/data/natural".to_string())
    });
    let atoms: usize = args.get("atoms", 100);
    let lam_m: f32 = args.get("lambda-mnist", 0.5);
    let lam_n: f32 = args.get("lambda-natural", 0.5);
    let n_train: usize = args.get("train", 5000);
    let n_test: usize = args.get("test", 1000);
    let epochs: usize = args.get("epochs", lista_defaults().epochs);
    let max_iters: usize = args.get("max-iters", 10);
    let seed: u64 = args.get("seed", 0);
    let out = common::out_dir(&args);
    args.finish();
    if atoms == 0 || n_train == 0 || n_test == 0 || epochs == 0 || max_iters == 0 {
        die("--atoms, --train, --test, --epochs and --max-iters must be ≥ 1");
    }
    let t0 = Instant::now();
    let progress = Progress::new("lista");
    let mnist = Mnist::load(&data).unwrap_or_else(|e| die(e));
    let mut sets = vec![run(
        "mnist",
        mnist.train.images,
        atoms,
        lam_m,
        n_train,
        n_test,
        epochs,
        max_iters,
        seed,
        &progress,
    )];
    if let Some(dir) = natural {
        let images = read_pgm_dir(&dir).unwrap_or_else(|e| die(e));
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut patches = sample_patches(&images, 10, atoms + n_train + n_test, &mut rng)
            .unwrap_or_else(|e| die(e));
        remove_row_means(&mut patches);
        contrast_normalize_rows(&mut patches, 0.05);
        sets.push(run(
            "natural", patches, atoms, lam_n, n_train, n_test, epochs, max_iters, seed, &progress,
        ));
    }
    let mut json = Json::new();
    let mut csv =
        String::from("dataset,T,lista,fista,fista_10x,cod,cod_10x,fista_iters_to_match_lista\n");
    for s in &sets {
        for (row, m) in s.table.iter().zip(&s.fista_match) {
            csv.push_str(&format!(
                "{},{},{},{},{},{},{},{}\n",
                s.name, row[0], row[1], row[2], row[3], row[4], row[5], m
            ));
        }
        let last = s.table.last().unwrap();
        json = json
            .num(&format!("{}_lista_T{max_iters}", s.name), last[1])
            .num(&format!("{}_fista_T{max_iters}", s.name), last[2])
            .num(&format!("{}_fista_10x_T{max_iters}", s.name), last[3])
            .num(
                &format!("{}_fista_iters_to_match_T{max_iters}", s.name),
                *s.fista_match.last().unwrap(),
            );
        if let Some(dir) = &out {
            common::make_out_dir(dir);
            let series = |k: usize| s.table.iter().map(|r| (r[0], r[k])).collect::<Vec<_>>();
            let (l, f, f10, c, c10) = (series(1), series(2), series(3), series(4), series(5));
            let plot = common::log_plot(&[
                (&l, [220, 30, 30]),
                (&f, [30, 60, 200]),
                (&f10, [140, 160, 240]),
                (&c, [20, 150, 40]),
                (&c10, [140, 220, 150]),
            ]);
            plot.save(&dir.join(format!("lista_{}.png", s.name)))
                .unwrap_or_else(|e| die(e));
        }
    }
    if let Some(dir) = &out {
        common::make_out_dir(dir);
        drsae::io::write_atomic(dir.join("lista.csv"), csv.as_bytes()).unwrap_or_else(|e| die(e));
        eprintln!("wrote lista.csv and plots (red LISTA, blue FISTA, light blue FISTA 10x, green CoD, light green CoD 10x) to {}", dir.display());
    }
    json.num("seconds", t0.elapsed().as_secs_f64()).print();
}
