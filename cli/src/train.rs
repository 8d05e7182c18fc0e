//! `drsae train ...`: the estimators' parameters as flags, their defaults read from the
//! library (never repeated here).

use crate::progress::Progress;
use clap::{Args, Subcommand};
use drsae::prelude::*;
use drsae::train::DrsaeConfig;
use std::path::PathBuf;

#[derive(Subcommand, Debug)]
pub enum TrainCommand {
    /// A Discriminative Recurrent Sparse Auto-Encoder on MNIST IDX files.
    Drsae(DrsaeArgs),
    /// A modern sparse auto-encoder (TopK, BatchTopK, JumpReLU, ReLU, Matryoshka) on
    /// activation files, written in SAELens's format.
    Sae(crate::train_sae::SaeArgs),
    /// LISTA encoders with T = 1..=max-iters, compared with FISTA and CoD.
    Lista(crate::train_lista::ListaArgs),
    /// A topographic map: a group-sparse auto-encoder with pools on a grid of units.
    Topographic(crate::train_groups::TopographicArgs),
    /// Structured sparse coding by lateral inhibition (tree, grid or learned).
    Inhibition(crate::train_inhibition::InhibitionArgs),
    /// Convolutional group-sparse auto-encoders on MNIST (one layer, or two stacked), then a
    /// linear classifier.
    Conv(crate::train_conv::ConvArgs),
    /// A pinwheel map: a locally-connected group-sparse auto-encoder on image windows.
    Pinwheel(crate::train_groups::PinwheelArgs),
}

fn defaults() -> DrsaeConfig {
    DrsaeConfig::default()
}

/// The rate and schedule of the paper's SGD, what `--optimizer sgd` defaults to.
fn paper() -> DrsaeConfig {
    DrsaeConfig::paper()
}

fn lr_help() -> String {
    format!(
        "Base learning rate [default: {}; with --optimizer sgd the paper's {}]",
        defaults().lr,
        paper().lr
    )
}

/// The help of a family's `--epochs`: its library default, and what a budget alone does.
pub(crate) fn epochs_help(over: &str, default: usize) -> String {
    format!(
        "Passes over {over} [default: {default}; under --time-budget without --epochs, as \
         many as the budget allows, the schedule following the time]"
    )
}

fn schedule_help() -> String {
    format!(
        "Learning-rate schedule: cosine, inverse or constant [default: {}; with --optimizer \
         sgd the paper's {}]",
        schedule_name(defaults().schedule),
        schedule_name(paper().schedule)
    )
}

/// The command-line name of a schedule.
fn schedule_name(s: Schedule) -> String {
    match s {
        Schedule::Constant => "constant".into(),
        Schedule::Inverse { rate } => format!("inverse (rate {rate})"),
        Schedule::Cosine { floor } => format!("cosine (floor {floor})"),
    }
}

/// Flags of `drsae train drsae`; each default is the library's (`DrsaeParams`).
#[derive(Args, Debug)]
pub struct DrsaeArgs {
    /// Directory of MNIST's four IDX files (gzip or raw).
    #[arg(long, default_value = "data/mnist-sample")]
    data: PathBuf,
    /// Code units n.
    #[arg(long, default_value_t = defaults().hidden as u64, value_parser = clap::value_parser!(u64).range(1..=32768))]
    hidden: u64,
    /// Encoder steps T.
    #[arg(long, alias = "iters", default_value_t = defaults().steps as u64, value_parser = clap::value_parser!(u64).range(1..=10000))]
    steps: u64,
    /// Minibatch size.
    #[arg(long, default_value_t = defaults().batch as u64, value_parser = clap::value_parser!(u64).range(1..=1048576))]
    batch: u64,
    /// Phase-1 (unsupervised) epochs [default: 10].
    #[arg(long)]
    epochs_unsup: Option<usize>,
    /// Phase-2 epochs [default: 100; under --time-budget, until the budget ends].
    #[arg(long)]
    epochs_sup: Option<usize>,
    /// Wall-clock seconds for both phases; without epoch counts the run fills it.
    #[arg(long)]
    time_budget: Option<f64>,
    /// Update rule: adam, momentum or sgd.
    #[arg(long, default_value = "adam")]
    optimizer: String,
    /// Base learning rate.
    #[arg(long, help = lr_help())]
    lr: Option<f32>,
    /// Learning-rate schedule: cosine, inverse or constant.
    #[arg(long, help = schedule_help())]
    schedule: Option<String>,
    /// Phase 1's own update rule (adam, momentum or sgd) [default: --optimizer's].
    #[arg(long)]
    optimizer_unsup: Option<String>,
    /// Phase 1's own base learning rate [default: --lr].
    #[arg(long)]
    lr_unsup: Option<f32>,
    /// Learning-rate multiplier of the classifier.
    #[arg(long, default_value_t = defaults().classifier_lr)]
    classifier_lr: f32,
    /// Do not divide E's and b's rates by T and S's by T − 1 (the paper's rule).
    #[arg(long)]
    no_unrolled_lr_scaling: bool,
    /// L1 weight λ.
    #[arg(long, default_value_t = defaults().weights.sparsity)]
    lambda: f32,
    /// Reconstruction weight.
    #[arg(long, default_value_t = defaults().weights.reconstruction)]
    reconstruction: f32,
    /// Classification weight.
    #[arg(long, default_value_t = defaults().weights.classification)]
    classification: f32,
    /// Decay β of the parameter average that is validated and returned, in (0, 1).
    #[arg(long)]
    average: Option<f32>,
    /// Bound on ‖E_i‖ [default: 1.25/T].
    #[arg(long)]
    e_max: Option<f32>,
    /// Stop phase 2 after this many epochs without a better validation error.
    #[arg(long)]
    patience: Option<usize>,
    /// Held-out validation examples [default: 10,000 of 60,000, else the last sixth].
    #[arg(long)]
    val: Option<usize>,
    /// Seed of initialisation and shuffling.
    #[arg(long, default_value_t = defaults().seed)]
    seed: u64,
    /// Directory of checkpoint.safetensors, written at every epoch end (and every
    /// --checkpoint-every steps).
    #[arg(long)]
    checkpoint_dir: Option<PathBuf>,
    /// Also checkpoint every this many steps (0: at epoch ends only).
    #[arg(long, default_value_t = 0)]
    checkpoint_every: u64,
    /// Continue from the checkpoint in --checkpoint-dir (give the same data, seed and
    /// settings as the interrupted run).
    #[arg(long)]
    resume: bool,
    /// Checkpoint and stop (exit 2) after this many steps: for tests of resumption.
    #[arg(long, hide = true)]
    stop_after_steps: Option<u64>,
    /// Directory for model.safetensors, curve.csv, curves.png (loss and errors per epoch),
    /// angles.png and angles.csv (encoder–decoder angles), decoder.png and encoder.png (the
    /// filters), result.json (created; written only on success).
    #[arg(long)]
    out: Option<PathBuf>,
}

impl DrsaeArgs {
    fn params(&self) -> Result<DrsaeParams, String> {
        let optimizer = self
            .optimizer
            .parse::<Optimizer>()
            .map_err(|e| e.to_string())?;
        // Plain SGD without a rate or schedule: the paper's (DrsaeConfig::paper).
        let base = if optimizer == Optimizer::Sgd {
            paper()
        } else {
            defaults()
        };
        let schedule = match &self.schedule {
            Some(s) => s.parse::<Schedule>().map_err(|e| e.to_string())?,
            None => base.schedule,
        };
        let lr = self.lr.unwrap_or(base.lr);
        let mut p = Drsae::params()
            .hidden(self.hidden as usize)
            .steps(self.steps as usize)
            .batch(self.batch as usize)
            .optimizer(optimizer)
            .lr(lr)
            .schedule(schedule)
            .weights(LossWeights {
                reconstruction: self.reconstruction,
                sparsity: self.lambda,
                classification: self.classification,
            })
            .classifier_lr(self.classifier_lr)
            .unrolled_lr_scaling(!self.no_unrolled_lr_scaling)
            .seed(self.seed);
        if self.optimizer_unsup.is_some() || self.lr_unsup.is_some() {
            let unsup = match &self.optimizer_unsup {
                Some(o) => o.parse::<Optimizer>().map_err(|e| e.to_string())?,
                None => optimizer,
            };
            p = p.unsup_optimizer((unsup, self.lr_unsup.unwrap_or(lr)));
        }
        if let Some(dir) = &self.checkpoint_dir {
            p = p
                .checkpoint_dir(dir)
                .checkpoint_every(self.checkpoint_every)
                .resume(self.resume);
            if let Some(s) = self.stop_after_steps {
                p = p.stop_after_steps(s);
            }
        } else if self.resume || self.checkpoint_every > 0 || self.stop_after_steps.is_some() {
            return Err("--resume and --checkpoint-every need --checkpoint-dir".into());
        }
        if let Some(e) = self.epochs_unsup {
            p = p.epochs_unsup(e);
        }
        if let Some(e) = self.epochs_sup {
            p = p.epochs_sup(e);
        }
        if let Some(t) = self.time_budget {
            p = p.time_budget(t);
        }
        if let Some(b) = self.average {
            p = p.average(b);
        }
        if let Some(e) = self.e_max {
            p = p.e_max(e);
        }
        if let Some(k) = self.patience {
            p = p.patience(k);
        }
        if let Some(v) = self.val {
            p = p.validation(Validation::Last(v));
        }
        Ok(p)
    }
}

pub fn run(cmd: TrainCommand, quiet: bool) -> Result<serde_json::Value, String> {
    match cmd {
        TrainCommand::Drsae(args) => train_drsae(&args, quiet),
        TrainCommand::Sae(args) => crate::train_sae::train_sae(&args, quiet),
        TrainCommand::Lista(args) => crate::train_lista::train_lista(&args, quiet),
        TrainCommand::Topographic(args) => crate::train_groups::topographic(&args, quiet),
        TrainCommand::Inhibition(args) => crate::train_inhibition::inhibition(&args, quiet),
        TrainCommand::Conv(args) => crate::train_conv::train_conv(&args, quiet),
        TrainCommand::Pinwheel(args) => crate::train_groups::pinwheel(&args, quiet),
    }
}

fn train_drsae(args: &DrsaeArgs, quiet: bool) -> Result<serde_json::Value, String> {
    let params = args.params()?.check().map_err(|e| e.to_string())?;
    let cfg = params.config();
    let start = std::time::Instant::now();
    let mnist = Mnist::load(&args.data).map_err(|e| e.to_string())?;
    let progress = Progress::new("drsae", quiet);
    let model = params
        .fit_with(&mnist.train, |r| {
            progress.report(cfg.overall_progress(r), &r.to_string());
        })
        .map_err(|e| e.to_string())?;
    progress.finish();
    let report = model.report().expect("a fitted model has a report").clone();
    let accuracy = model
        .score(&mnist.test.images, &mnist.test.labels)
        .map_err(|e| e.to_string())?;
    let (part_units, categorical_units) = Drsae::unit_kinds(&model.encoder_decoder_angles());
    let config: serde_json::Map<String, serde_json::Value> = cfg
        .fields()
        .into_iter()
        .map(|(k, v)| (k.to_string(), serde_json::Value::String(v)))
        .collect();
    let json = serde_json::json!({
        "test_error": 100.0 * (1.0 - accuracy),
        "val_error": report.best_val_error,
        "best_epoch": report.best_epoch,
        "seconds": start.elapsed().as_secs_f64(),
        "samples_per_s": report.samples_per_s,
        "part_units": part_units,
        "categorical_units": categorical_units,
        "data": args.data.display().to_string(),
        "crate_version": env!("CARGO_PKG_VERSION"),
        "simd": drsae::simd_width(),
        "threads": drsae::linalg::gemm_threads(),
        "config": config,
    });
    if let Some(dir) = &args.out {
        let history: Vec<crate::plots::DrsaeEpoch> = report
            .history
            .iter()
            .enumerate()
            .map(|(i, r)| ((i + 1) as f64, r.loss, r.train_error, r.val_error, r.phase))
            .collect();
        let mut out = crate::output::Outputs::default();
        out.add(
            "model.safetensors",
            model.to_bytes().map_err(|e| e.to_string())?,
        );
        out.add("curve.csv", drsae::train::EpochReport::csv(&report.history));
        out.add(
            "curves.png",
            crate::plots::training_curves(&history, "DrSAE")?,
        );
        out.add("angles.png", angle_histogram(&model)?);
        let mut angles = String::from("unit,angle_rad\n");
        for (i, a) in model.encoder_decoder_angles().iter().enumerate() {
            angles.push_str(&format!("{i},{a}\n"));
        }
        out.add("angles.csv", angles);
        // The decoder's columns and the encoder's rows as images, one tile per unit.
        let net = model.network();
        let (h, w) = (mnist.train.rows, mnist.train.cols);
        let cols = (net.hidden() as f64).sqrt().ceil() as usize;
        let dt = net.d().transposed();
        let decoder: Vec<Vec<f32>> = dt.rows().map(<[f32]>::to_vec).collect();
        let encoder: Vec<Vec<f32>> = net.e().rows().map(<[f32]>::to_vec).collect();
        let zoom = crate::output::zoom_for(cols, w);
        out.add(
            "decoder.png",
            crate::output::tiles_png(&decoder, h, w, cols, zoom)?,
        );
        out.add(
            "encoder.png",
            crate::output::tiles_png(&encoder, h, w, cols, zoom)?,
        );
        out.json(&json);
        out.write(Some(dir))?;
    }
    Ok(json)
}

/// The histogram of the angles between each unit's encoder row and decoder column, with
/// the part-unit and categorical-unit thresholds.
fn angle_histogram(model: &Drsae) -> Result<Vec<u8>, String> {
    use drsae::estimators::{CATEGORICAL_UNIT_MIN_ANGLE, PART_UNIT_MAX_ANGLE};
    let angles: Vec<f64> = model
        .encoder_decoder_angles()
        .iter()
        .map(|&a| a as f64)
        .collect();
    let (part, categorical) = Drsae::unit_kinds(&model.encoder_decoder_angles());
    let hi = angles
        .iter()
        .copied()
        .fold(std::f64::consts::FRAC_PI_2, f64::max);
    crate::plots::histogram(
        "DrSAE: angle between each unit's encoder row and decoder column",
        "angle (radians)",
        "units",
        &angles,
        40,
        (0.0, hi),
        &format!("{} units", angles.len()),
        &[
            (
                PART_UNIT_MAX_ANGLE as f64,
                format!("part-units: angle < {PART_UNIT_MAX_ANGLE} ({part})"),
            ),
            (
                CATEGORICAL_UNIT_MIN_ANGLE as f64,
                format!("categorical units: angle > {CATEGORICAL_UNIT_MIN_ANGLE} ({categorical})"),
            ),
        ],
    )
}
