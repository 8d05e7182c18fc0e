//! Modern sparse auto-encoders: training throughput, and the synthetic ground-truth
//! benchmark.
//!
//! ```text
//! cargo run --release --example sae -- throughput [--d-in 768] [--d-sae 16384] [--k 32]
//!     [--batch 4096] [--steps 5] [--no-aux] [--threads N]
//! cargo run --release --example sae -- synthetic [--kind topk|batchtopk|relu|jumprelu]
//!     [--rows 200000] [--epochs 5] [--d-sae 4096] [--k 16] [--no-aux] [--seed 0]
//!     [--data-seed 0] [--write-data DIR] [--lr 4e-4] [--batch 1024]
//! ```
//! cargo run --release --example sae -- interop-write OUT     (then scripts/sae/check_with_peers.py)
//! cargo run --release --example sae -- interop-read DIR saelens|sparsify
//! ```
//! Each prints one JSON line (stdout) with its full configuration and provenance.

mod common;

use common::{die, Args, Json};
use drsae::data::{recovery, InMemory, Synthetic, SyntheticSpec};
use drsae::linalg::{gemm, Mat};
use drsae::models::{AuxK, SaeGrads, SaeKind, SaeNetwork, SaeObjective, SaeWorkspace};
use drsae::train::{train_sae, DecoderNorm, SaeConfig};
use rand::SeedableRng;
use std::time::Instant;

fn kind(name: &str, k: usize) -> SaeKind {
    match name {
        "topk" => SaeKind::TopK { k },
        "batchtopk" => SaeKind::BatchTopK { k },
        "relu" | "standard" => SaeKind::Relu,
        "jumprelu" => SaeKind::JumpRelu,
        _ => die(format!(
            "--kind `{name}` is not one of topk, batchtopk, relu, jumprelu"
        )),
    }
}

fn throughput(args: &Args) {
    common::threads(args);
    let d: usize = args.get("d-in", 768);
    let m: usize = args.get("d-sae", 16384);
    let k: usize = args.get("k", 32);
    let batch: usize = args.get("batch", 4096);
    let steps: usize = args.get("steps", 5);
    let no_aux = args.flag("no-aux");
    let kind_name = args.str("kind").unwrap_or_else(|| "topk".into());
    args.finish_positional(1);
    if d == 0 || m == 0 || k == 0 || k > m || batch == 0 || steps == 0 {
        die("sizes must be positive and k ≤ d-sae");
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let net = SaeNetwork::init(kind(&kind_name, k), d, m, 1.0, 0.001, &mut rng);
    let x = Mat::random(batch, d, rand_distr::StandardNormal, &mut rng);
    // Half the latents dead (a fixed random half, as scripts/sae/saelens_topk_throughput.py
    // does for SAELens): AuxK takes k_aux = d/2 per row at scale 1.
    let dead: Vec<u32> = if no_aux {
        vec![]
    } else {
        use rand::seq::SliceRandom;
        let mut all: Vec<u32> = (0..m as u32).collect();
        all.shuffle(&mut rng);
        let mut half = all[..m / 2].to_vec();
        half.sort_unstable();
        half
    };
    let obj = SaeObjective {
        aux: (!no_aux).then_some(AuxK {
            k_aux: d / 2,
            coefficient: 1.0 / 32.0,
        }),
        ..SaeObjective::default()
    };
    let mut ws = SaeWorkspace::default();
    let mut g = SaeGrads::zeros(&net);
    // The one-GEMM bound, measured in the same run.
    let mut pre = Mat::zeros(batch, m);
    let t = Instant::now();
    gemm(1.0, x.view(), net.w_enc().t(), 0.0, pre.view_mut());
    let _ = t;
    let t = Instant::now();
    let reps = 2;
    for _ in 0..reps {
        gemm(1.0, x.view(), net.w_enc().t(), 0.0, pre.view_mut());
    }
    let gemm_s = t.elapsed().as_secs_f64() / reps as f64;
    net.loss_and_gradient(x.view(), &obj, &dead, &mut ws, &mut g);
    let mut opt = drsae::train::OptimizerState::new(
        drsae::train::Optimizer::adam(),
        &net.tensors()
            .iter()
            .map(|(_, t)| t.len())
            .collect::<Vec<_>>()[..4],
    );
    let mut net = net;
    // One untimed update first: the moment buffers' pages are touched once, not per step.
    {
        let [we, be, wd, bd, _] = net.tensors_mut();
        opt.update(
            0.0,
            &mut [
                (we, g.w_enc.as_slice(), 1.0),
                (be, &g.b_enc, 1.0),
                (wd, g.w_dec.as_slice(), 1.0),
                (bd, &g.b_dec, 1.0),
            ],
        );
    }
    let t = Instant::now();
    let mut grad_s = 0.0;
    for _ in 0..steps {
        let t0 = Instant::now();
        net.loss_and_gradient(x.view(), &obj, &dead, &mut ws, &mut g);
        grad_s += t0.elapsed().as_secs_f64();
        let [we, be, wd, bd, _] = net.tensors_mut();
        opt.update(
            1e-4,
            &mut [
                (we, g.w_enc.as_slice(), 1.0),
                (be, &g.b_enc, 1.0),
                (wd, g.w_dec.as_slice(), 1.0),
                (bd, &g.b_dec, 1.0),
            ],
        );
    }
    let step_s = t.elapsed().as_secs_f64() / steps as f64;
    let tokens = batch as f64 / step_s;
    let bound = batch as f64 / gemm_s;
    eprintln!(
        "step {:.3}s (gradient {:.3}s, Adam {:.3}s), encoder GEMM {:.3}s ({:.0} GFLOP/s): {:.0} tokens/s, {:.2} of the one-GEMM bound {:.0}",
        step_s,
        grad_s / steps as f64,
        step_s - grad_s / steps as f64,
        gemm_s,
        2.0 * (batch * d * m) as f64 / gemm_s / 1e9,
        tokens,
        tokens / bound,
        bound
    );
    let mut fields = common::provenance();
    fields.push(("kind", kind_name));
    Json::new()
        .str("bench", "sae_throughput")
        .strs(&fields)
        .num("d_in", d as f64)
        .num("d_sae", m as f64)
        .num("k", k as f64)
        .num("batch", batch as f64)
        .num("aux", (!no_aux) as u8 as f64)
        .num("k_aux", if no_aux { 0.0 } else { (d / 2) as f64 })
        .num("steps", steps as f64)
        .num("step_seconds", step_s)
        .num("gradient_seconds", grad_s / steps as f64)
        .num("encoder_gemm_seconds", gemm_s)
        .num("tokens_per_second", tokens)
        .num("one_gemm_bound_tokens_per_second", bound)
        .num("fraction_of_bound", tokens / bound)
        .print();
}

fn synthetic(args: &Args) {
    common::threads(args);
    let kind_name = args.str("kind").unwrap_or_else(|| "topk".into());
    let rows: usize = args.get("rows", 200_000);
    let epochs: u64 = args.get("epochs", 5);
    let m: usize = args.get("d-sae", 4096);
    let k: usize = args.get("k", 16);
    let no_aux = args.flag("no-aux");
    let seed: u64 = args.get("seed", 0);
    let data_seed: u64 = args.get("data-seed", 0);
    let lr: f32 = args.get("lr", 4e-4);
    let batch: usize = args.get("batch", 1024);
    let sparsity: f32 = args.get("sparsity", 1.0);
    let write = args.str("write-data");
    args.finish_positional(1);
    let spec = SyntheticSpec {
        mean_l0: k as f64,
        seed: data_seed,
        ..SyntheticSpec::default()
    };
    let mut gen = Synthetic::new(spec.clone()).unwrap_or_else(|e| die(e));
    let data = gen.sample(rows);
    if let Some(dir) = &write {
        let dir = std::path::Path::new(dir);
        std::fs::create_dir_all(dir).unwrap_or_else(|e| die(e));
        let f = gen.features();
        drsae::io::write_npy(dir.join("activations.npy"), data.as_slice(), rows, spec.d)
            .unwrap_or_else(|e| die(e));
        drsae::io::write_npy(
            dir.join("true_features.npy"),
            f.as_slice(),
            f.nrows(),
            f.ncols(),
        )
        .unwrap_or_else(|e| die(e));
        let l0 = gen.probabilities().iter().sum::<f64>();
        let meta = format!(
            "{{\"d\": {}, \"features\": {}, \"mean_l0\": {}, \"expected_l0\": {l0}, \"alpha\": {}, \"correlated_pairs\": {}, \"correlation\": {}, \"seed\": {}, \"rows\": {rows}, \"generator\": \"drsae::data::Synthetic\"}}\n",
            spec.d, spec.features, spec.mean_l0, spec.alpha, spec.correlated_pairs, spec.correlation, spec.seed
        );
        drsae::io::write_atomic(dir.join("meta.json"), meta.as_bytes()).unwrap_or_else(|e| die(e));
    }
    let kind = kind(&kind_name, k);
    let config = SaeConfig {
        kind,
        d_sae: m,
        lr,
        batch,
        samples: epochs * rows as u64,
        aux: (!no_aux).then_some(AuxK {
            k_aux: 0,
            coefficient: 1.0 / 32.0,
        }),
        dead_after: (rows as u64).min(1_000_000) / 4,
        decoder: match kind {
            SaeKind::Relu | SaeKind::JumpRelu => DecoderNorm::Free,
            _ => DecoderNorm::Unit,
        },
        sparsity,
        seed,
        log_every: (rows / batch).max(1) as u64,
        lr_decay: (epochs * rows as u64 / batch as u64) / 5,
        ..SaeConfig::default()
    };
    let mut source = InMemory::new(data.view(), seed).unwrap_or_else(|e| die(e));
    let t = Instant::now();
    let trained =
        train_sae(&config, &mut source, &mut |r| eprintln!("{r}")).unwrap_or_else(|e| die(e));
    let secs = t.elapsed().as_secs_f64();
    let rec = recovery(gen.features(), trained.network.w_dec());
    let r = &trained.report;
    eprintln!(
        "{kind_name}: mean max cosine {:.4}, recovered ≥0.9: {:.1}%, dead {:.2}%, L0 {:.1}, fvu {:.4} in {secs:.0}s",
        rec.mean_max_cosine,
        100.0 * rec.recovered_09,
        100.0 * r.dead_fraction,
        r.l0,
        r.fvu
    );
    let mut fields = common::provenance();
    fields.push(("kind", kind_name.clone()));
    fields.push(("config", format!("{config:?}").replace('"', "'")));
    Json::new()
        .str("bench", "sae_synthetic")
        .strs(&fields)
        .num("rows", rows as f64)
        .num("epochs", epochs as f64)
        .num("d", spec.d as f64)
        .num("true_features", spec.features as f64)
        .num("true_mean_l0", spec.mean_l0)
        .num("alpha", spec.alpha)
        .num("correlated_pairs", spec.correlated_pairs as f64)
        .num("correlation", spec.correlation)
        .num("data_seed", data_seed as f64)
        .num("seed", seed as f64)
        .num("d_sae", m as f64)
        .num("k", k as f64)
        .num("aux", (!no_aux) as u8 as f64)
        .num("mean_max_cosine", rec.mean_max_cosine)
        .num("recovered_0_9", rec.recovered_09)
        .num("mean_max_cosine_learned", rec.mean_max_cosine_learned)
        .num("dead_fraction", r.dead_fraction)
        .num("dense_fraction", r.dense_fraction)
        .num("l0", r.l0)
        .num("fvu", r.fvu)
        .num("mse", r.mse)
        .num("l2_ratio", r.l2_ratio)
        .num("seconds", secs)
        .num("tokens_per_second", config.samples as f64 / secs)
        .print();
}

/// Trains a small SAE of each architecture and writes, for each, SAELens's directory (and
/// sparsify's for TopK) with `inputs.npy`, `recon.npy` and `codes.npy` (dense) for
/// `scripts/sae/check_with_peers.py`.
fn interop_write(args: &Args) {
    common::threads(args);
    let out = std::path::PathBuf::from(
        args.positional
            .get(1)
            .cloned()
            .unwrap_or_else(|| die("usage: sae interop-write OUT")),
    );
    args.finish_positional(2);
    let spec = SyntheticSpec {
        d: 64,
        features: 256,
        mean_l0: 6.0,
        correlated_pairs: 16,
        ..SyntheticSpec::default()
    };
    let mut gen = Synthetic::new(spec).unwrap_or_else(|e| die(e));
    let train = gen.sample(20_000);
    let inputs = gen.sample(100);
    for (name, kind) in [
        ("standard", SaeKind::Relu),
        ("topk", SaeKind::TopK { k: 8 }),
        ("batchtopk", SaeKind::BatchTopK { k: 8 }),
        ("jumprelu", SaeKind::JumpRelu),
    ] {
        let sae = drsae::Sae::params()
            .kind(kind)
            .d_sae(256)
            .batch(512)
            .samples(60_000)
            .lr(2e-3)
            .fit(&train)
            .unwrap_or_else(|e| die(e));
        let recon = sae.reconstruct(&inputs).unwrap_or_else(|e| die(e));
        let codes = sae.encode(&inputs).unwrap_or_else(|e| die(e)).to_dense();
        // Codes in raw units: the model's codes are those of the scaled input, and folding
        // the scale into W_dec (÷s) leaves z unchanged, so they compare as they are.
        let mut dirs = vec![(out.join(name), false)];
        if let SaeKind::TopK { .. } = kind {
            dirs.push((out.join("sparsify_topk"), true));
        }
        for (dir, sparsify) in dirs {
            if sparsify {
                sae.save_sparsify(&dir).unwrap_or_else(|e| die(e));
            } else {
                sae.save_saelens(&dir).unwrap_or_else(|e| die(e));
            }
            let w = |f: &str, m: &Mat| {
                drsae::io::write_npy(dir.join(f), m.as_slice(), m.nrows(), m.ncols())
                    .unwrap_or_else(|e| die(e))
            };
            w("inputs.npy", &inputs);
            w("recon.npy", &recon);
            w("codes.npy", &codes);
            eprintln!("wrote {}", dir.display());
        }
    }
}

/// Loads a peer-written directory (`saelens` or `sparsify`), runs it on `inputs.npy` and
/// compares with the peer's `recon.npy`: prints the maximum row-relative error as JSON.
fn interop_read(args: &Args) {
    let dir = std::path::PathBuf::from(
        args.positional
            .get(1)
            .cloned()
            .unwrap_or_else(|| die("usage: sae interop-read DIR saelens|sparsify")),
    );
    let kind = args
        .positional
        .get(2)
        .cloned()
        .unwrap_or_else(|| "saelens".into());
    args.finish_positional(3);
    let sae = match kind.as_str() {
        "saelens" => drsae::Sae::load_saelens(&dir),
        "sparsify" => drsae::Sae::load_sparsify(&dir),
        _ => die("KIND is saelens or sparsify"),
    }
    .unwrap_or_else(|e| die(e));
    let inputs_path = if dir.join("inputs.npy").exists() {
        dir.join("inputs.npy")
    } else {
        dir.parent().unwrap_or(&dir).join("inputs.npy")
    };
    let read = |p: &std::path::Path| {
        let (r, c, v) = drsae::io::read_matrix(p, 1 << 28).unwrap_or_else(|e| die(e));
        Mat::from_vec(r, c, v)
    };
    let x = read(&inputs_path);
    let want = read(&dir.join("recon.npy"));
    let got = sae.reconstruct(&x).unwrap_or_else(|e| die(e));
    let mut worst = 0.0f64;
    for (g, w) in got.rows().zip(want.rows()) {
        let num: f64 = g
            .iter()
            .zip(w)
            .map(|(a, b)| ((a - b) as f64).powi(2))
            .sum::<f64>()
            .sqrt();
        let den: f64 = w
            .iter()
            .map(|&b| (b as f64).powi(2))
            .sum::<f64>()
            .sqrt()
            .max(1e-12);
        worst = worst.max(num / den);
    }
    Json::new()
        .str("bench", "sae_interop_read")
        .str("dir", &dir.display().to_string())
        .str("kind", &kind)
        .str("architecture", sae.network().kind().name())
        .num("rows", x.nrows() as f64)
        .num("recon_max_rel_err", worst)
        .print();
}

fn main() {
    let args = Args::parse(&["no-aux"]);
    match args.positional.first().map(String::as_str) {
        Some("throughput") => throughput(&args),
        Some("synthetic") => synthetic(&args),
        Some("interop-write") => interop_write(&args),
        Some("interop-read") => interop_read(&args),
        _ => die("usage: sae throughput|synthetic [options] (see the file's header)"),
    }
}
