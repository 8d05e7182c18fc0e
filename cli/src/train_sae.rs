//! `drsae train sae`: a modern sparse auto-encoder (TopK, BatchTopK, JumpReLU, ReLU,
//! Matryoshka) on activation shards, written as a SAELens directory (and a sparsify one for
//! TopK). Defaults are the library's (`SaeParams`).

use crate::progress::Progress;
use clap::Args;
use drsae::data::Shards;
use drsae::prelude::*;
use drsae::train::SaeConfig;
use std::path::PathBuf;

fn defaults() -> SaeConfig {
    SaeConfig::default()
}

/// Flags of `drsae train sae`.
#[derive(Args, Debug)]
pub struct SaeArgs {
    /// Activation files: 2-D float32 `.npy` or single-tensor `.safetensors`, rows are vectors
    /// (streamed in shuffled chunks; memory stays bounded whatever their size).
    #[arg(required = true)]
    data: Vec<PathBuf>,
    /// Architecture: topk, batchtopk, jumprelu or relu (SAELens's "standard").
    #[arg(long, default_value = "topk")]
    kind: String,
    /// Active latents per row (TopK, BatchTopK).
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u64).range(1..=16777216))]
    k: u64,
    /// Latents.
    #[arg(long, default_value_t = defaults().d_sae as u64, value_parser = clap::value_parser!(u64).range(1..=16777216))]
    d_sae: u64,
    /// Rows per step.
    #[arg(long, default_value_t = defaults().batch as u64, value_parser = clap::value_parser!(u64).range(1..=1048576))]
    batch: u64,
    /// Training rows in all.
    #[arg(long, default_value_t = defaults().samples, value_parser = clap::value_parser!(u64).range(1..))]
    samples: u64,
    /// Adam's learning rate.
    #[arg(long, default_value_t = defaults().lr)]
    lr: f32,
    /// Steps of linear learning-rate warm-up.
    #[arg(long, default_value_t = defaults().lr_warmup)]
    lr_warmup: u64,
    /// Final steps of linear learning-rate decay to 0.
    #[arg(long, default_value_t = defaults().lr_decay)]
    lr_decay: u64,
    /// λ: ReLU's decoder-norm-weighted L1 or JumpReLU's L0.
    #[arg(long, default_value_t = defaults().sparsity)]
    sparsity: f32,
    /// Steps of λ warm-up.
    #[arg(long, default_value_t = defaults().sparsity_warmup)]
    sparsity_warmup: u64,
    /// No AuxK dead-latent loss.
    #[arg(long)]
    no_aux: bool,
    /// AuxK coefficient α.
    #[arg(long, default_value_t = 1.0 / 32.0)]
    aux_coefficient: f32,
    /// AuxK latents per row [default: d_in / 2].
    #[arg(long, default_value_t = 0)]
    k_aux: u64,
    /// Samples without firing after which a latent is dead.
    #[arg(long, default_value_t = defaults().dead_after, value_parser = clap::value_parser!(u64).range(1..))]
    dead_after: u64,
    /// Matryoshka prefix sizes, comma-separated, ascending, the last = --d-sae.
    #[arg(long, value_delimiter = ',')]
    prefixes: Vec<usize>,
    /// Rows read per chunk of a shard.
    #[arg(long, default_value_t = 4096, value_parser = clap::value_parser!(u64).range(1..=16777216))]
    chunk_rows: u64,
    /// Chunks shuffled together in memory.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..=4096))]
    buffer_chunks: u64,
    /// Seed of initialisation and data order.
    #[arg(long, default_value_t = defaults().seed)]
    seed: u64,
    /// Directory of checkpoint.safetensors (written every --checkpoint-every steps, or at
    /// every progress report when that is 0).
    #[arg(long)]
    checkpoint_dir: Option<PathBuf>,
    /// Steps between checkpoints (0: at every progress report, 100 per run).
    #[arg(long, default_value_t = 0)]
    checkpoint_every: u64,
    /// Continue from the checkpoint in --checkpoint-dir (give the same data, seed and
    /// settings as the interrupted run).
    #[arg(long)]
    resume: bool,
    /// Output directory: SAELens files (cfg.json, sae_weights.safetensors,
    /// sparsity.safetensors), `sparsify/` for TopK, curve.csv, density.csv, density.png, result.json.
    #[arg(long)]
    out: Option<PathBuf>,
}

fn kind(args: &SaeArgs) -> Result<SaeKind, String> {
    let k = args.k as usize;
    Ok(match args.kind.as_str() {
        "topk" => SaeKind::TopK { k },
        "batchtopk" => SaeKind::BatchTopK { k },
        "jumprelu" => SaeKind::JumpRelu,
        "relu" | "standard" => SaeKind::Relu,
        other => {
            return Err(format!(
                "--kind `{other}` is not one of topk, batchtopk, jumprelu, relu"
            ))
        }
    })
}

pub fn train_sae(args: &SaeArgs, quiet: bool) -> Result<serde_json::Value, String> {
    let mut p = Sae::params()
        .kind(kind(args)?)
        .d_sae(args.d_sae as usize)
        .batch(args.batch as usize)
        .samples(args.samples)
        .lr(args.lr)
        .lr_warmup(args.lr_warmup)
        .lr_decay(args.lr_decay)
        .sparsity(args.sparsity)
        .sparsity_warmup(args.sparsity_warmup)
        .dead_after(args.dead_after)
        .prefixes(args.prefixes.clone())
        .seed(args.seed)
        .aux((!args.no_aux).then_some((args.aux_coefficient, args.k_aux as usize)));
    let steps = args.samples.div_ceil(args.batch);
    p = p.log_every((steps / 100).max(1));
    if let Some(dir) = &args.checkpoint_dir {
        p = p
            .checkpoint_dir(dir)
            .checkpoint_every(args.checkpoint_every)
            .resume(args.resume);
    } else if args.resume || args.checkpoint_every > 0 {
        return Err("--resume and --checkpoint-every need --checkpoint-dir".into());
    }
    let params = p.check().map_err(|e| e.to_string())?;
    let mut source = Shards::open(
        &args.data,
        args.chunk_rows as usize,
        args.buffer_chunks as usize,
        args.seed,
    )
    .map_err(|e| e.to_string())?;
    let progress = Progress::new("sae", quiet);
    let mut curve = String::from(drsae::train::SaeReport::CSV_HEADER);
    curve.push('\n');
    let start = std::time::Instant::now();
    let sae = params
        .fit_source_with(&mut source, |r| {
            progress.report(r.step as f64 / steps.max(1) as f64, &r.to_string());
            curve.push_str(&r.csv_row());
            curve.push('\n');
        })
        .map_err(|e| e.to_string())?;
    progress.finish();
    let r = sae.report();
    let json = serde_json::json!({
        "kind": sae.network().kind().name(),
        "d_in": sae.network().d_in(),
        "d_sae": sae.network().d_sae(),
        "mse": r.mse,
        "fvu": r.fvu,
        "l0": r.l0,
        "dead_fraction": r.dead_fraction,
        "dense_fraction": r.dense_fraction,
        "l2_ratio": r.l2_ratio,
        "input_scale": sae.input_scale(),
        "seconds": start.elapsed().as_secs_f64(),
        "samples_per_s": args.samples as f64 / start.elapsed().as_secs_f64(),
        "crate_version": env!("CARGO_PKG_VERSION"),
        "simd": drsae::simd_width(),
        "threads": drsae::linalg::gemm_threads(),
        "config": format!("{:?}", sae.config()),
    });
    if let Some(dir) = &args.out {
        // Drawn before anything is written, so that a failure leaves nothing behind.
        let density_png = density_histogram(&r.density)?;
        sae.save_saelens(dir).map_err(|e| e.to_string())?;
        if let SaeKind::TopK { .. } = sae.network().kind() {
            sae.save_sparsify(dir.join("sparsify"))
                .map_err(|e| e.to_string())?;
        }
        let w = |name: &str, text: &str| {
            drsae::io::write_atomic(dir.join(name), text.as_bytes()).map_err(|e| e.to_string())
        };
        w("curve.csv", &curve)?;
        let mut density = String::from("latent,density\n");
        for (j, d) in r.density.iter().enumerate() {
            density.push_str(&format!("{j},{d}\n"));
        }
        w("density.csv", &density)?;
        drsae::io::write_atomic(dir.join("density.png"), &density_png)
            .map_err(|e| e.to_string())?;
        w(
            "result.json",
            &format!("{}\n", crate::output::with_provenance(json.clone())),
        )?;
    }
    Ok(json)
}

/// The histogram of log10 feature density (the fraction of rows on which each latent
/// fires); never-firing latents are counted in the leftmost bin.
fn density_histogram(density: &[f32]) -> Result<Vec<u8>, String> {
    let floor = -8.0f64;
    let logs: Vec<f64> = density
        .iter()
        .map(|&d| {
            if d > 0.0 {
                (d as f64).log10().max(floor)
            } else {
                floor
            }
        })
        .collect();
    let lo = logs
        .iter()
        .copied()
        .fold(0.0f64, f64::min)
        .floor()
        .min(-1.0);
    let dead = density.iter().filter(|&&d| d <= 0.0).count();
    crate::plots::histogram(
        "SAE: feature density",
        "log10(fraction of rows on which the latent fires)",
        "latents",
        &logs,
        50,
        (lo, 0.0),
        &format!(
            "{} latents ({dead} never fire, leftmost bin)",
            density.len()
        ),
        &[],
    )
}
