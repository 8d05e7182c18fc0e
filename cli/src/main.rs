//! `drsae`: the command line of the drsae crate — a thin layer over the library's
//! estimators. Every subcommand prints progress on stderr, a JSON object as its last stdout
//! line, and on bad input one `error: ...` line on stderr with exit code 2 (nothing written).

mod inputs;
mod models;
mod output;
mod plots;
mod progress;
mod reproduce;
mod train;
mod train_conv;
mod train_groups;
mod train_inhibition;
mod train_lista;
mod train_sae;

use clap::{Parser, Subcommand};
use drsae::prelude::*;
use std::path::{Path, PathBuf};

/// Sparse auto-encoders of LeCun's group: train, encode, classify, inspect.
#[derive(Parser, Debug)]
#[command(name = "drsae", version, about, long_about = None)]
struct Cli {
    /// GEMM threads (default: every core).
    #[arg(long, global = true, value_parser = clap::value_parser!(u64).range(1..=1024))]
    threads: Option<u64>,
    /// No progress on stderr.
    #[arg(long, short, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Train a model.
    #[command(subcommand)]
    Train(Box<train::TrainCommand>),
    /// Lasso codes of inputs over a dictionary of training inputs (codes.npy, result.json).
    Lasso(train_lista::LassoArgs),
    /// Codes of inputs (`.npy` rows, PNG/JPEG images, or an MNIST IDX directory) → `.npy`.
    Encode {
        /// Model file written by `drsae train` (any family), its output directory, or a
        /// SAELens directory.
        #[arg(long)]
        model: PathBuf,
        /// Inputs: a `.npy` matrix (f32, f64 or u8 — u8 divided by 255), images, or a
        /// directory of MNIST IDX files (its test images).
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
        /// Where to write the codes (`.npy`, f32, rows × units).
        #[arg(long, short)]
        output: PathBuf,
    },
    /// Classes of inputs (as `encode`).
    Predict {
        /// Model file written by `drsae train drsae`.
        #[arg(long)]
        model: PathBuf,
        /// Inputs (as `encode`).
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
    },
    /// Run a configuration documented in BENCHMARKS.md (flags after `--` override it).
    Reproduce {
        /// The configuration.
        #[arg(value_enum)]
        preset: reproduce::Preset,
        /// Print the resolved command and every setting, run nothing.
        #[arg(long)]
        dry_run: bool,
        /// Flags of the preset's `drsae` subcommand replacing the preset's (after `--`).
        #[arg(last = true)]
        overrides: Vec<String>,
    },
    /// A model file's kind, shapes, preprocessing and metadata.
    Inspect {
        /// Model file (any family), its output directory, or a SAELens directory.
        model: PathBuf,
    },
}

/// Prints `error: ...` on stderr and exits with status 2.
fn die(msg: impl std::fmt::Display) -> ! {
    eprintln!("error: {msg}");
    std::process::exit(2)
}

fn main() {
    let result = run(Cli::parse());
    match result {
        Ok(json) => {
            use std::io::Write;
            // A closed pipe (`drsae ... | head`) is not an error worth a panic.
            let json = output::with_provenance(json);
            let _ = writeln!(std::io::stdout(), "{json}");
        }
        Err(e) => die(e),
    }
}

fn run(cli: Cli) -> Result<serde_json::Value, String> {
    if let Some(t) = cli.threads {
        drsae::linalg::set_gemm_threads(t as usize);
    }
    Ok(match cli.command {
        Command::Train(cmd) => train::run(*cmd, cli.quiet)?,
        Command::Lasso(args) => train_lista::lasso_codes(&args)?,
        Command::Encode {
            model,
            inputs,
            output,
        } => encode(&model, &inputs, &output)?,
        Command::Predict { model, inputs } => predict(&model, &inputs)?,
        Command::Inspect { model } => inspect(&model)?,
        Command::Reproduce {
            preset,
            dry_run,
            overrides,
        } => {
            let args = reproduce::resolve(preset, &overrides);
            let (_, note) = preset.command();
            let argv = std::iter::once("drsae".to_string()).chain(args.iter().cloned());
            // Bad overrides get clap's message and exit code 2, as on any command line.
            let mut resolved = Cli::try_parse_from(argv).unwrap_or_else(|e| e.exit());
            resolved.quiet |= cli.quiet;
            if resolved.threads.is_none() {
                resolved.threads = cli.threads;
            }
            let command = format!("drsae {}", args.join(" "));
            if dry_run {
                eprintln!("{:#?}", resolved.command);
                serde_json::json!({
                    "preset": preset.name(),
                    "command": command,
                    "note": note,
                    "settings": format!("{:?}", resolved.command),
                })
            } else {
                eprintln!("{command}\n({note})");
                return run(resolved);
            }
        }
    })
}

fn encode(model: &Path, inputs: &[PathBuf], output: &Path) -> Result<serde_json::Value, String> {
    let model = models::AnyModel::load(model)?;
    let x = inputs::read_rows(inputs, model.input_dim())?;
    let codes = model.encode(&x)?;
    inputs::write_npy(output, &codes)?;
    let active = codes.as_slice().iter().filter(|&&z| z != 0.0).count();
    Ok(serde_json::json!({
        "kind": model.kind(),
        "rows": codes.nrows(),
        "units": codes.ncols(),
        "mean_active_units": active as f64 / codes.nrows().max(1) as f64,
        "output": output.display().to_string(),
    }))
}

fn predict(model: &Path, inputs: &[PathBuf]) -> Result<serde_json::Value, String> {
    let model = Drsae::load(models::model_file(model)).map_err(|e| e.to_string())?;
    let x = inputs::read_rows(inputs, model.input_dim())?;
    let classes = model.predict(&x).map_err(|e| e.to_string())?;
    let proba = model.predict_proba(&x).map_err(|e| e.to_string())?;
    let confidence: Vec<f32> = classes
        .iter()
        .enumerate()
        .map(|(i, &c)| proba.row(i)[c as usize])
        .collect();
    Ok(serde_json::json!({ "classes": classes, "probability": confidence }))
}

fn inspect(path: &Path) -> Result<serde_json::Value, String> {
    // Validates the whole model, not only its header.
    let model = models::AnyModel::load(path)?;
    let file = models::model_file(path);
    let bytes = drsae::io::read_regular_file(&file, drsae::io::MAX_MODEL_FILE_BYTES)
        .map_err(|e| e.to_string())?;
    let (tensors, meta) =
        drsae::io::tensors_from_bytes(&bytes).map_err(|e| format!("{}: {e}", file.display()))?;
    let mut shapes: Vec<(String, Vec<usize>)> = tensors
        .into_iter()
        .map(|(name, (shape, _))| (name, shape))
        .collect();
    shapes.sort();
    let mut meta: serde_json::Map<String, serde_json::Value> = meta
        .into_iter()
        .map(|(k, v)| (k, serde_json::Value::String(v)))
        .collect();
    if let models::AnyModel::Sae(_) = model {
        // SAELens keeps the settings in cfg.json beside the weights.
        let cfg = std::fs::read_to_string(path.join("cfg.json")).map_err(|e| e.to_string())?;
        if let Ok(serde_json::Value::Object(cfg)) = serde_json::from_str(&cfg) {
            meta.extend(cfg);
        }
    }
    let meta: std::collections::BTreeMap<_, _> = meta.into_iter().collect();
    Ok(serde_json::json!({
        "file": file.display().to_string(),
        "kind": model.kind(),
        "input_dim": model.input_dim(),
        "units": model.units(),
        "preprocessing": model.preprocessing(),
        "tensors": shapes.into_iter().map(|(n, s)| (n, serde_json::json!(s))).collect::<serde_json::Map<_, _>>(),
        "metadata": meta,
    }))
}
