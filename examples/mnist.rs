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
//! "part_units", "categorical_units"}` (errors in percent).

mod common;

use common::{die, Args, Json, Progress};
use drsae::data::{normalize_rows_l2, Mnist};
use drsae::models::Drsae;
use drsae::train::{
    train_drsae_with, Checkpointing, DrsaeConfig, EpochReport, Optimizer, Schedule, Split,
};
use std::io::Write;
use std::time::Instant;

fn main() {
    let args = Args::parse(&["no-unrolled-lr-scaling"]);
    let threads = common::threads(&args);
    let data_dir = args
        .str("data")
        .unwrap_or_else(|| "data/mnist-sample".into());
    let mut cfg = DrsaeConfig {
        epochs_unsup: 3,
        epochs_sup: 25,
        ..DrsaeConfig::default()
    };
    cfg.hidden = args.get("hidden", cfg.hidden);
    cfg.steps = args.get("iters", cfg.steps);
    cfg.batch = args.get("batch", cfg.batch);
    cfg.epochs_unsup = args.get("epochs-unsup", cfg.epochs_unsup);
    cfg.epochs_sup = args.get("epochs-sup", cfg.epochs_sup);
    cfg.time_budget = args.opt("time-budget");
    if let Some(o) = args.str("optimizer") {
        cfg.optimizer = o.parse::<Optimizer>().unwrap_or_else(|e| die(e));
        if cfg.optimizer == Optimizer::Sgd && args.str("lr").is_none() {
            cfg.lr = 5e-3;
            cfg.schedule = Schedule::Inverse { rate: 5e-6 };
        }
    }
    cfg.lr = args.get("lr", cfg.lr);
    let unsup_opt = args
        .str("optimizer-unsup")
        .map(|o| o.parse::<Optimizer>().unwrap_or_else(|e| die(e)));
    let unsup_lr: Option<f32> = args.opt("lr-unsup");
    if unsup_opt.is_some() || unsup_lr.is_some() {
        cfg.unsup_optimizer = Some((
            unsup_opt.unwrap_or(cfg.optimizer),
            unsup_lr.unwrap_or(cfg.lr),
        ));
    }
    if let Some(s) = args.str("schedule") {
        cfg.schedule = s.parse().unwrap_or_else(|e| die(e));
    }
    cfg.weights.sparsity = args.get("lambda", cfg.weights.sparsity);
    cfg.weights.reconstruction = args.get("reconstruction", cfg.weights.reconstruction);
    cfg.weights.classification = args.get("classification", cfg.weights.classification);
    cfg.patience = args.opt("patience");
    cfg.classifier_lr = args.get("classifier-lr", cfg.classifier_lr);
    if args.flag("no-unrolled-lr-scaling") {
        cfg.unrolled_lr_scaling = false;
    }
    cfg.seed = args.get("seed", cfg.seed);
    cfg.average = args.opt("average");
    cfg.e_max = args.opt("e-max");
    let val_n: Option<usize> = args.opt("val");
    let out = common::out_dir(&args);
    let checkpoint_every: Option<u64> = args.opt("checkpoint-every");
    let resume: Option<String> = args.str("resume");
    let ckpt = Checkpointing {
        dir: resume
            .as_ref()
            .map(std::path::PathBuf::from)
            .or_else(|| checkpoint_every.and(out.clone())),
        every_steps: checkpoint_every.unwrap_or(0),
        resume: resume.is_some(),
        stop_after_steps: args.opt("stop-after-steps"),
    };
    if checkpoint_every.is_some() && ckpt.dir.is_none() {
        die("--checkpoint-every needs --out DIR (or --resume DIR) to write checkpoints to");
    }
    if let Some(r) = &resume {
        if !std::path::Path::new(r)
            .join(drsae::train::CHECKPOINT_FILE)
            .is_file()
        {
            die(format!(
                "--resume {r}: no {} there",
                drsae::train::CHECKPOINT_FILE
            ));
        }
    }
    args.finish();
    cfg.check().unwrap_or_else(|e| die(e));

    let t0 = Instant::now();
    let mnist = Mnist::load(&data_dir).unwrap_or_else(|e| die(e));
    let n_train = mnist.train.len();
    let val_n = val_n.unwrap_or(if n_train >= 60000 { 10000 } else { n_train / 6 });
    if val_n == 0 || val_n >= n_train {
        die(format!("--val must be in 1..{n_train}"));
    }
    let (mut train, mut val) = mnist.train.split_last(val_n);
    let mut test = mnist.test;
    for set in [&mut train, &mut val, &mut test] {
        normalize_rows_l2(&mut set.images);
    }
    let phase_1 = cfg
        .unsup_optimizer
        .map(|(o, lr)| format!(" (phase 1: {o:?}, lr {lr})"))
        .unwrap_or_default();
    eprintln!(
        "DrSAE {}-{}^{}-10 on {} train / {} val / {} test from {data_dir}; {:?}, lr {}{phase_1}, batch {}, {} threads, simd {}",
        train.images.ncols(), cfg.hidden, cfg.steps, train.len(), val.len(), test.len(), cfg.optimizer, cfg.lr, cfg.batch, threads, drsae::simd_width()
    );
    let progress = Progress::new("mnist");
    let total_epochs = (cfg.epochs_unsup + cfg.epochs_sup) as f64;
    let split = Split {
        train_x: &train.images,
        train_y: &train.labels,
        val_x: &val.images,
        val_y: &val.labels,
    };
    let outcome = train_drsae_with(&cfg, split, &ckpt, |r| {
        let done = if r.phase == 1 {
            r.progress * cfg.epochs_unsup as f64
        } else {
            cfg.epochs_unsup as f64 + r.progress * cfg.epochs_sup as f64
        };
        let done = match cfg.time_budget {
            Some(b) => r.seconds / b,
            None => done / total_epochs,
        };
        progress.report(
            done,
            1.0,
            &format!(
                "phase {} epoch {:3}: loss {:.4} rec {:.4}{} {:.0} samples/s",
                r.phase,
                r.epoch,
                r.loss,
                r.reconstruction,
                // Phase 1 trains no classifier: its errors would mean nothing.
                if r.phase == 2 {
                    format!(
                        " train err {:.2}% val err {:.2}%",
                        r.train_error, r.val_error
                    )
                } else {
                    String::new()
                },
                r.samples_per_s
            ),
        );
    })
    .unwrap_or_else(|e| die(e));
    let model = &outcome.model;
    let (_, test_error) = model.evaluate(&test.images, &test.labels, 500);
    let angles = model.encoder_decoder_angles();
    let part = angles.iter().filter(|&&a| a < 0.5).count();
    let categorical = angles.iter().filter(|&&a| a > 0.7).count();
    eprintln!("best epoch {} (val {:.2}%), test error {:.2}%, part-units {part}, categorical-units {categorical}", outcome.best_epoch, outcome.best_val_error, test_error);
    if let Some(dir) = &out {
        write_outputs(
            dir,
            model,
            &cfg,
            &angles,
            &outcome.history,
            train.rows,
            train.cols,
        )
        .unwrap_or_else(|e| die(e));
        eprintln!("wrote model and pictures to {}", dir.display());
    }
    Json::new()
        .num("test_error", test_error)
        .num("val_error", outcome.best_val_error)
        .num("best_epoch", outcome.best_epoch as f64)
        .num("seconds", t0.elapsed().as_secs_f64())
        .num("samples_per_s", outcome.samples_per_s)
        .num("part_units", part as f64)
        .num("categorical_units", categorical as f64)
        .print();
}

fn write_outputs(
    dir: &std::path::Path,
    model: &Drsae,
    cfg: &DrsaeConfig,
    angles: &[f32],
    history: &[EpochReport],
    rows: usize,
    cols: usize,
) -> Result<(), String> {
    let e = |e: std::io::Error| e.to_string();
    drsae::io::save_drsae(
        model,
        &cfg.weights,
        &[("seed", cfg.seed.to_string())],
        dir.join("model.safetensors"),
    )
    .map_err(|e| e.to_string())?;
    let n = model.hidden();
    let dt = model.d.transposed();
    let cols_grid = (n as f64).sqrt().ceil() as usize;
    let dec: Vec<&[f32]> = (0..n).map(|j| dt.row(j)).collect();
    common::write_tiles_png(&dir.join("decoder.png"), &dec, rows, cols, cols_grid).map_err(e)?;
    let enc: Vec<&[f32]> = (0..n).map(|j| model.e.row(j)).collect();
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
    std::fs::File::create(dir.join("angles.csv"))
        .and_then(|mut f| f.write_all(csv.as_bytes()))
        .map_err(e)?;
    // From the trainer's history, which after --resume also holds the epochs run before it.
    let mut curve = String::from(
        "phase,epoch,loss,reconstruction,train_error,val_error,samples_per_s,seconds\n",
    );
    for r in history {
        curve.push_str(&format!(
            "{},{},{},{},{},{},{},{}\n",
            r.phase,
            r.epoch,
            r.loss,
            r.reconstruction,
            r.train_error,
            r.val_error,
            r.samples_per_s,
            r.seconds
        ));
    }
    std::fs::File::create(dir.join("curve.csv"))
        .and_then(|mut f| f.write_all(curve.as_bytes()))
        .map_err(e)?;
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
        let colour = if centre < 0.5 {
            [40, 90, 200]
        } else if centre > 0.7 {
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
