//! Trains a DrSAE on MNIST and reports its test error: the crate's main job.
//!
//! ```text
//! cargo run --release --example mnist                       # bundled sample, < 3 min on 2 cores
//! cargo run --release --example mnist -- --data ../shared/data/mnist --time-budget 300
//! # the paper's 1.08 % (BENCHMARKS.md: 1.05-1.19 % over eight seeds, mean 1.10 %, ~13 min on 2 cores):
//! cargo run --release --example mnist -- --data ../shared/data/mnist --epochs-unsup 5 \
//!     --epochs-sup 100 --lr 2e-3 --batch 50 --average 0.9999
//! # 200 units, T = 2, the paper's 1.49 % (1.37-1.64 % over six seeds, mean 1.52 %): momentum
//! cargo run --release --example mnist -- --data ../shared/data/mnist --hidden 200 --iters 2 \
//!     --epochs-unsup 5 --epochs-sup 200 --optimizer momentum --lr 2e-2 --batch 50 --average 0.999
//! ```
//! Options: `--data DIR` `--hidden N` `--iters T` `--batch B` `--epochs-unsup E1`
//! `--epochs-sup E2` `--time-budget SECS` `--optimizer {adam,sgd,momentum}` `--lr η`
//! `--optimizer-unsup NAME` `--lr-unsup η` (phase 1's rule and rate, if different)
//! `--schedule {cosine,inverse,constant}` `--lambda λ` (L1 weight, 0.09) `--reconstruction W`
//! (5) `--classification W` (1; the loss weights of the authors' code) `--patience P` `--val N` `--seed S`
//! `--classifier-lr F` `--no-unrolled-lr-scaling` `--average β` (judge and return the
//! exponential moving average of the phase-2 parameters, decay β per step, e.g. 0.999)
//! `--e-max M` (bound on the norm of E's rows; default the authors' code's 1.25/T, the
//! paper's is 1.25/(T − 1)) `--checkpoint-every STEPS` (writes
//! `checkpoint.safetensors` into `--out DIR` every STEPS steps and at every epoch end)
//! `--resume DIR` (continues from `DIR/checkpoint.safetensors`, keeps checkpointing there;
//! pass the same settings) `--stop-after-steps N` (checkpoint and stop, for testing).
//! `--threads P` `--out DIR`.
//!
//! Progress goes to stderr every epoch. With `--out DIR`: `model.safetensors`,
//! `decoder.png`, `encoder.png`, `angles.png` (histogram of the encoder–decoder angles over
//! [0, π/2], ticks every 0.1 rad; blue part-units < 0.5 rad, red categorical units > 0.7 rad),
//! `angles.csv`, `curve.csv`.
//! Last stdout line: `{"test_error", "val_error", "best_epoch", "seconds", "samples_per_s",
//! "part_units", "categorical_units", "data", "test_examples", "crate_version",
//! "git_commit", "simd", "cpu", "threads", "config": {every training setting}}` (errors in
//! percent); the log's first line carries the same provenance and settings.

mod common;

use common::{die, Args, Json, Progress};
use drsae::prelude::*;
use drsae::train::CHECKPOINT_FILE;
use std::time::Instant;

fn main() {
    let args = Args::parse(&["no-unrolled-lr-scaling"]);
    common::threads(&args);
    let data_dir = args
        .str("data")
        .unwrap_or_else(|| "data/mnist-sample".into());
    let budget: Option<f64> = args.opt("time-budget");
    let mut params = Drsae::params();
    // The bundled sample's defaults: a short run (the library's are 10 + 100 epochs). Under
    // a time budget without epoch counts, the run fills the budget.
    let (unsup, sup) = (args.opt("epochs-unsup"), args.opt("epochs-sup"));
    match (unsup, budget) {
        (Some(e), _) => params = params.epochs_unsup(e),
        (None, None) => params = params.epochs_unsup(3),
        (None, Some(_)) => {}
    }
    match (sup, budget) {
        (Some(e), _) => params = params.epochs_sup(e),
        (None, None) => params = params.epochs_sup(25),
        (None, Some(_)) => {}
    }
    if let Some(b) = budget {
        params = params.time_budget(b);
    }
    if let Some(v) = args.opt("hidden") {
        params = params.hidden(v);
    }
    if let Some(v) = args.opt("iters") {
        params = params.steps(v);
    }
    if let Some(v) = args.opt("batch") {
        params = params.batch(v);
    }
    let lr: Option<f32> = args.opt("lr");
    if let Some(o) = args.str("optimizer") {
        let o = o.parse::<Optimizer>().unwrap_or_else(|e| die(e));
        params = params.optimizer(o);
        if o == Optimizer::Sgd && lr.is_none() {
            // The paper's plain SGD: η = 5e-3 decayed as η/(1 + 5e-6 k).
            params = params.lr(5e-3).schedule(Schedule::Inverse { rate: 5e-6 });
        }
    }
    if let Some(v) = lr {
        params = params.lr(v);
    }
    let unsup_opt = args
        .str("optimizer-unsup")
        .map(|o| o.parse::<Optimizer>().unwrap_or_else(|e| die(e)));
    let unsup_lr: Option<f32> = args.opt("lr-unsup");
    if unsup_opt.is_some() || unsup_lr.is_some() {
        let cfg = params.clone().check().unwrap_or_else(|e| die(e)).config();
        params = params.unsup_optimizer((
            unsup_opt.unwrap_or(cfg.optimizer),
            unsup_lr.unwrap_or(cfg.lr),
        ));
    }
    if let Some(s) = args.str("schedule") {
        params = params.schedule(s.parse().unwrap_or_else(|e| die(e)));
    }
    let paper = LossWeights::paper();
    params = params.weights(LossWeights {
        sparsity: args.get("lambda", paper.sparsity),
        reconstruction: args.get("reconstruction", paper.reconstruction),
        classification: args.get("classification", paper.classification),
    });
    if let Some(v) = args.opt("patience") {
        params = params.patience(v);
    }
    if let Some(v) = args.opt("classifier-lr") {
        params = params.classifier_lr(v);
    }
    if args.flag("no-unrolled-lr-scaling") {
        params = params.unrolled_lr_scaling(false);
    }
    if let Some(v) = args.opt("seed") {
        params = params.seed(v);
    }
    if let Some(v) = args.opt("average") {
        params = params.average(v);
    }
    if let Some(v) = args.opt("e-max") {
        params = params.e_max(v);
    }
    if let Some(v) = args.opt("val") {
        params = params.validation(Validation::Last(v));
    }
    let out = common::out_dir(&args);
    let checkpoint_every: Option<u64> = args.opt("checkpoint-every");
    let resume: Option<String> = args.str("resume");
    if let Some(r) = &resume {
        if !std::path::Path::new(r).join(CHECKPOINT_FILE).is_file() {
            die(format!("--resume {r}: no {CHECKPOINT_FILE} there"));
        }
        params = params.checkpoint_dir(r).resume(true);
    } else if checkpoint_every.is_some() {
        match &out {
            Some(dir) => params = params.checkpoint_dir(dir),
            None => {
                die("--checkpoint-every needs --out DIR (or --resume DIR) to write checkpoints to")
            }
        }
    }
    if let Some(every) = checkpoint_every {
        params = params.checkpoint_every(every);
    }
    if let Some(s) = args.opt("stop-after-steps") {
        params = params.stop_after_steps(s);
    }
    args.finish();
    let params = params.check().unwrap_or_else(|e| die(e));
    let cfg = params.config();
    let config: Vec<(String, String)> = cfg
        .fields()
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    let provenance = common::provenance();

    let t0 = Instant::now();
    let mnist = Mnist::load(&data_dir).unwrap_or_else(|e| die(e));
    // Checked before the banner so that a bad --val is the one line on stderr.
    if let Validation::Last(v) = params.validation() {
        if v == 0 || v >= mnist.train.len() {
            die(format!(
                "--val {v}: need 1 ≤ --val < {} (the training images)",
                mnist.train.len()
            ));
        }
    }
    let settings: Vec<String> = provenance
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .chain(config.iter().map(|(k, v)| format!("{k}={v}")))
        .collect();
    eprintln!(
        "DrSAE on {} train (validation {:?}) / {} test from {data_dir}; {}",
        mnist.train.len(),
        params.validation(),
        mnist.test.len(),
        settings.join(" ")
    );
    let progress = Progress::new("mnist");
    let model = params
        .fit_with(&mnist.train, |r| {
            progress.report(cfg.overall_progress(r), 1.0, &r.to_string());
        })
        .unwrap_or_else(|e| die(e));
    let report = model.report().expect("a fitted model has a report");
    let accuracy = model
        .score(&mnist.test.images, &mnist.test.labels)
        .unwrap_or_else(|e| die(e));
    let test_error = 100.0 * (1.0 - accuracy);
    let angles = model.encoder_decoder_angles();
    let (part, categorical) = Drsae::unit_kinds(&angles);
    eprintln!("best epoch {} (val {:.2}%), test error {:.2}%, part-units {part}, categorical-units {categorical}", report.best_epoch, report.best_val_error, test_error);
    if let Some(dir) = &out {
        common::make_out_dir(dir);
        write_outputs(
            dir,
            &model,
            &angles,
            &report.history,
            mnist.train.rows,
            mnist.train.cols,
        )
        .unwrap_or_else(|e| die(e));
        eprintln!("wrote model and pictures to {}", dir.display());
    }
    Json::new()
        .num("test_error", test_error)
        .num("val_error", report.best_val_error)
        .num("best_epoch", report.best_epoch as f64)
        .num("seconds", t0.elapsed().as_secs_f64())
        .num("samples_per_s", report.samples_per_s)
        .num("part_units", part as f64)
        .num("categorical_units", categorical as f64)
        .str("data", &data_dir)
        .num("test_examples", mnist.test.len() as f64)
        .strs(&provenance)
        .object("config", &config)
        .print();
}

fn write_outputs(
    dir: &std::path::Path,
    fitted: &Drsae,
    angles: &[f32],
    history: &[EpochReport],
    rows: usize,
    cols: usize,
) -> Result<(), String> {
    let e = |e: std::io::Error| e.to_string();
    fitted
        .save(dir.join("model.safetensors"))
        .map_err(|e| e.to_string())?;
    let model = fitted.network();
    let n = model.hidden();
    let dt = model.d().transposed();
    let cols_grid = (n as f64).sqrt().ceil() as usize;
    let dec: Vec<&[f32]> = (0..n).map(|j| dt.row(j)).collect();
    common::write_tiles_png(&dir.join("decoder.png"), &dec, rows, cols, cols_grid).map_err(e)?;
    let enc: Vec<&[f32]> = (0..n).map(|j| model.e().row(j)).collect();
    common::write_tiles_png(&dir.join("encoder.png"), &enc, rows, cols, cols_grid).map_err(e)?;
    // Angle histogram: 32 bins over [0, π/2].
    let bins = 32;
    let width = std::f32::consts::FRAC_PI_2 / bins as f32;
    let mut counts = vec![0usize; bins];
    for &a in angles {
        counts[((a / width) as usize).min(bins - 1)] += 1;
    }
    let mut csv = String::from("unit,angle_rad\n");
    for (i, a) in angles.iter().enumerate() {
        csv.push_str(&format!("{i},{a}\n"));
    }
    drsae::io::write_atomic(dir.join("angles.csv"), csv.as_bytes()).map_err(|e| e.to_string())?;
    // From the trainer's history, which after --resume also holds the epochs run before it.
    drsae::io::write_atomic(dir.join("curve.csv"), EpochReport::csv(history).as_bytes())
        .map_err(|e| e.to_string())?;
    // Bars above an axis with a tick every 0.1 rad (long ones at 0.5, 1.0, 1.5 rad).
    let (bw, h, axis) = (10usize, 200usize, 10usize);
    let w = bins * bw;
    let maxc = counts.iter().copied().max().unwrap_or(1).max(1);
    let mut px = vec![255u8; w * (h + axis) * 3];
    px[h * w * 3..(h + 1) * w * 3].fill(0);
    for k in 0..=15 {
        let x = (((k as f32 * 0.1 / width) * bw as f32).round() as usize).min(w - 1);
        let len = if k % 5 == 0 { axis } else { axis / 3 };
        for y in h..h + len {
            px[(y * w + x) * 3..][..3].fill(0);
        }
    }
    for (b, &c) in counts.iter().enumerate() {
        let bar = c * (h - 1) / maxc;
        let centre = (b as f32 + 0.5) * width;
        let colour = if centre < drsae::estimators::PART_UNIT_MAX_ANGLE {
            [40, 90, 200]
        } else if centre > drsae::estimators::CATEGORICAL_UNIT_MIN_ANGLE {
            [200, 60, 40]
        } else {
            [120, 120, 120]
        };
        for y in h - bar..h {
            for x in b * bw + 1..(b + 1) * bw {
                px[(y * w + x) * 3..][..3].copy_from_slice(&colour);
            }
        }
    }
    common::write_png_rgb(&dir.join("angles.png"), w, h + axis, &px).map_err(e)?;
    Ok(())
}
