//! Peak memory of the file readers (results/fuzz_2026-12-03/memory.md).
//!
//! `load_rss gen DIR` writes one valid file per reader into DIR; `load_rss load KIND PATH`
//! loads one (in its own process, so that `/usr/bin/time -v` reports the reader's peak RSS)
//! and prints the file's size and the size of what was loaded. KIND is one of `idx`, `pgm`
//! (binary or ASCII), `npy`, `safetensors` (single-tensor activations), `model` (a DrSAE
//! model file), `saelens` and `sparsify` (SAE directories), and `checkpoint-drsae` /
//! `checkpoint-sae` (a checkpoint's directory).
use drsae::linalg::Mat;
use rand::{Rng, SeedableRng};
use std::io::Write;
use std::path::Path;

type R = Result<(), Box<dyn std::error::Error>>;

fn main() -> R {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["gen", dir] => generate(Path::new(dir)),
        ["load", kind, path] => load(kind, Path::new(path)),
        _ => {
            eprintln!(
                "usage: load_rss gen DIR | load idx|pgm|npy|safetensors|model|saelens|sparsify|\
                 checkpoint-drsae|checkpoint-sae PATH"
            );
            std::process::exit(2)
        }
    }
}

fn generate(dir: &Path) -> R {
    std::fs::create_dir_all(dir)?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    // IDX3, gzip: 60,000 images of 28×28 (the MNIST training set's size), pixels that
    // compress about as well as MNIST's (mostly zeros, some noise).
    let (n, side) = (60_000u32, 28u32);
    let mut raw = Vec::with_capacity(16 + (n * side * side) as usize);
    raw.extend_from_slice(&[0, 0, 8, 3]);
    for d in [n, side, side] {
        raw.extend_from_slice(&d.to_be_bytes());
    }
    for _ in 0..n * side * side {
        raw.push(if rng.gen_bool(0.2) { rng.gen() } else { 0 });
    }
    let p = dir.join("images-idx3-ubyte.gz");
    let f = std::fs::File::create(&p)?;
    let mut gz = flate2::write::GzEncoder::new(f, flate2::Compression::default());
    gz.write_all(&raw)?;
    gz.finish()?;
    // PGM, binary 8-bit, 4096×4096.
    let mut pgm = b"P5\n4096 4096\n255\n".to_vec();
    pgm.extend((0..4096 * 4096).map(|_| rng.gen::<u8>()));
    drsae::io::write_atomic(dir.join("image.pgm"), &pgm)?;
    // Activations: 4096 rows of 4096 f32 (64 MiB), as .npy and as .safetensors.
    let (rows, cols) = (4096, 4096);
    let data: Vec<f32> = (0..rows * cols).map(|_| rng.gen_range(-1.0..1.0)).collect();
    drsae::io::write_npy(dir.join("acts.npy"), &data, rows, cols)?;
    let bytes: Vec<u8> = data.iter().flat_map(|v| v.to_le_bytes()).collect();
    let view =
        safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![rows, cols], &bytes)
            .expect("tensor view");
    let st = safetensors::serialize([("activations", view)], &None).expect("serialize");
    drsae::io::write_atomic(dir.join("acts.safetensors"), &st)?;
    // A DrSAE model of 1024 inputs, 2048 units, 10 classes (about 8.4 M floats).
    let x = Mat::from_fn(64, 1024, |_, _| rng.gen_range(0.0..1.0));
    let net = drsae::models::DrsaeNetwork::init(&x, 2048, 10, 11, &mut rng);
    drsae::io::save_drsae(
        &net,
        &drsae::models::LossWeights::paper(),
        &[],
        dir.join("model.safetensors"),
    )?;
    // PGM, ASCII (P2) 8-bit 2048×2048: about 3.7 bytes of text per pixel.
    let mut text = String::from("P2\n2048 2048\n255\n");
    for i in 0..2048 * 2048 {
        text.push_str(&rng.gen::<u8>().to_string());
        text.push(if i % 16 == 15 { '\n' } else { ' ' });
    }
    drsae::io::write_atomic(dir.join("ascii.pgm"), text.as_bytes())?;
    // A TopK SAE of 1024 inputs and 16,384 latents (2 × 16.8 M floats), in SAELens's and
    // sparsify's layouts.
    let sae = drsae::models::SaeNetwork::init(
        drsae::models::SaeKind::TopK { k: 32 },
        1024,
        16_384,
        1.0,
        0.0,
        &mut rng,
    );
    drsae::io::save_saelens(dir.join("saelens"), &sae, 1.0, None)?;
    drsae::io::save_sparsify(dir.join("sparsify"), &sae, 1.0)?;
    // Checkpoints, written by the trainers themselves: a DrSAE of 1024 inputs and 1024 units
    // in phase 2 with Adam and a parameter average, stopped after 3 steps; a TopK SAE of
    // 1024 inputs and 8192 latents with Adam, stopped after 2 steps.
    let images = Mat::from_fn(480, 1024, |_, _| rng.gen_range(0.0..1.0));
    let data = drsae::data::LabelledImages {
        labels: (0..480).map(|i| (i % 10) as u8).collect(),
        images,
        rows: 32,
        cols: 32,
    };
    let stopped = drsae::estimators::Drsae::params()
        .hidden(1024)
        .epochs_unsup(0)
        .epochs_sup(1)
        .batch(80)
        .average(0.999)
        .validation(drsae::estimators::Validation::Last(80))
        .checkpoint_dir(dir.join("checkpoint_drsae"))
        .stop_after_steps(3)
        .fit(&data);
    expect_interrupted(stopped.map(|_| ()))?;
    let acts = Mat::from_fn(1024, 1024, |_, _| rng.gen_range(-1.0..1.0));
    let stopped = drsae::estimators::Sae::params()
        .d_sae(8192)
        .batch(256)
        .samples(256 * 4)
        .checkpoint_dir(dir.join("checkpoint_sae"))
        .stop_after_steps(2)
        .fit(&acts);
    expect_interrupted(stopped.map(|_| ()))?;
    Ok(())
}

/// A training run stopped by `stop_after_steps` after writing its checkpoint.
fn expect_interrupted(r: drsae::Result<()>) -> R {
    match r {
        Err(drsae::Error::Interrupted { .. }) => Ok(()),
        Err(e) => Err(e.into()),
        Ok(()) => Err("the run was expected to stop early".into()),
    }
}

fn load(kind: &str, path: &Path) -> R {
    // A directory's size is the sum of its regular files'.
    let file = if path.is_dir() {
        std::fs::read_dir(path)?
            .map(|e| Ok(e?.metadata()?.len()))
            .sum::<std::io::Result<u64>>()?
    } else {
        std::fs::metadata(path)?.len()
    };
    let loaded: usize = match kind {
        "idx" => drsae::data::read_idx_images(path)?.pixels.len(),
        "pgm" => drsae::data::read_pgm(path)?.pixels.len() * 4,
        "npy" | "safetensors" => drsae::io::read_matrix(path, u64::MAX)?.2.len() * 4,
        "model" => {
            let (net, _) = drsae::io::load_drsae(path)?;
            4 * ([net.d(), net.e(), net.s(), net.c()]
                .iter()
                .map(|m| m.as_slice().len())
                .sum::<usize>()
                + net.b().len())
        }
        "saelens" => tensor_bytes(&drsae::io::load_saelens(path)?),
        "sparsify" => tensor_bytes(&drsae::io::load_sparsify(path)?),
        "checkpoint-drsae" => drsae::fuzzing::load_checkpoint(path, "drsae")?,
        "checkpoint-sae" => drsae::fuzzing::load_checkpoint(path, "sae")?,
        _ => {
            eprintln!("unknown kind {kind}");
            std::process::exit(2)
        }
    };
    println!("{kind}: file {file} bytes, loaded {loaded} bytes");
    Ok(())
}

/// Bytes of an SAE's tensors.
fn tensor_bytes(net: &drsae::models::SaeNetwork) -> usize {
    4 * (net.w_enc().as_slice().len()
        + net.w_dec().as_slice().len()
        + net.b_enc().len()
        + net.b_dec().len()
        + net.threshold().len())
}
