//! Peak memory of the file readers (results/fuzz_2026-12-03/memory.md).
//!
//! `load_rss gen DIR` writes one valid file per reader into DIR; `load_rss load KIND PATH`
//! loads one (in its own process, so that `/usr/bin/time -v` reports the reader's peak RSS)
//! and prints the file's size and the size of what was loaded. KIND is one of `idx`, `pgm`,
//! `npy`, `safetensors` (single-tensor activations) and `model` (a DrSAE model file).
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
            eprintln!("usage: load_rss gen DIR | load idx|pgm|npy|safetensors|model PATH");
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
    Ok(())
}

fn load(kind: &str, path: &Path) -> R {
    let file = std::fs::metadata(path)?.len();
    let loaded: usize = match kind {
        "idx" => drsae::data::read_idx_images(path)?.pixels.len(),
        "pgm" => drsae::data::read_pgm(path)?.pixels.len() * 4,
        "npy" | "safetensors" => drsae::io::read_matrix(path, u64::MAX)?.2.len() * 4,
        "model" => {
            let (net, _) = drsae::io::load_drsae(path)?;
            4 * ([&net.d, &net.e, &net.s, &net.c]
                .iter()
                .map(|m| m.as_slice().len())
                .sum::<usize>()
                + net.b.len())
        }
        _ => {
            eprintln!("unknown kind {kind}");
            std::process::exit(2)
        }
    };
    println!("{kind}: file {file} bytes, loaded {loaded} bytes");
    Ok(())
}
