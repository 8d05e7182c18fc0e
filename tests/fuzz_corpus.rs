#![allow(clippy::needless_range_loop)]
//! Replays the fuzz targets' seed corpora and saved regressions (fuzz/seeds/<target>/,
//! fuzz/regressions/<target>/) on the stable toolchain, through the same invariant
//! functions the cargo-fuzz targets call.

use std::path::Path;

fn replay(target: &str, check: fn(&[u8])) {
    let mut count = 0;
    for dir in ["fuzz/seeds", "fuzz/regressions"] {
        let d = Path::new(dir).join(target);
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
            {
                continue;
            }
            let bytes = std::fs::read(&p).unwrap();
            let r = std::panic::catch_unwind(|| check(&bytes));
            assert!(r.is_ok(), "{target}: {} broke an invariant", p.display());
            count += 1;
        }
    }
    assert!(count > 0, "no corpus for {target}");
}

#[test]
fn idx_corpus() {
    replay("idx", drsae::fuzzing::idx);
}

#[test]
fn pgm_corpus() {
    replay("pgm", drsae::fuzzing::pgm);
}

#[test]
fn json_corpus() {
    replay("json", drsae::fuzzing::json);
}

#[test]
fn model_file_corpus() {
    replay("model_file", drsae::fuzzing::model_file);
}

#[test]
fn kernels_corpus() {
    replay("kernels", drsae::fuzzing::kernels);
}

#[test]
fn layouts_corpus() {
    replay("layouts", drsae::fuzzing::layouts);
}

#[test]
fn checkpoint_corpus() {
    replay("checkpoint", drsae::fuzzing::checkpoint);
    // The seed is a real checkpoint (phase 2, with an averaged model): it must parse.
    let seed = std::fs::read("fuzz/seeds/checkpoint/drsae_with_average").unwrap();
    assert!(drsae::fuzzing::checkpoint_parses(&seed));
}

#[test]
fn mnist_dir_corpus() {
    replay("mnist_dir", drsae::fuzzing::mnist_dir);
    // The valid seeds load (so the target reaches past the file checks).
    for name in ["valid", "valid_gz"] {
        let bytes = std::fs::read(format!("fuzz/seeds/mnist_dir/{name}")).unwrap();
        assert!(
            mnist_dir_loads(&bytes),
            "seed mnist_dir/{name} does not load"
        );
    }
}

/// Whether [`drsae::fuzzing::mnist_dir`]'s input loads (the same split, checked here).
fn mnist_dir_loads(bytes: &[u8]) -> bool {
    let dir = std::env::temp_dir().join(format!("drsae-corpus-mnist-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (flags, mut rest) = bytes.split_first().unwrap();
    let mut lens = [0usize; 3];
    for l in &mut lens {
        *l = u32::from_le_bytes(rest[..4].try_into().unwrap()) as usize;
        rest = &rest[4..];
    }
    for (i, name) in drsae::fuzzing::MNIST_NAMES.iter().enumerate() {
        let n = if i < 3 { lens[i] } else { rest.len() };
        let gz = if flags & (1 << i) != 0 { ".gz" } else { "" };
        std::fs::write(dir.join(format!("{name}{gz}")), &rest[..n]).unwrap();
        rest = &rest[n..];
    }
    let ok = drsae::data::Mnist::load(&dir).is_ok();
    let _ = std::fs::remove_dir_all(&dir);
    ok
}

#[test]
fn resume_corpus() {
    replay("resume", drsae::fuzzing::resume);
    // The real checkpoints resume and finish the run.
    for name in ["phase1_step2", "phase2_step6"] {
        let bytes = std::fs::read(format!("fuzz/seeds/resume/{name}")).unwrap();
        assert!(
            drsae::fuzzing::resume_finishes(&bytes),
            "seed resume/{name} does not resume"
        );
    }
}

#[test]
fn model_load_corpus() {
    replay("model_load", drsae::fuzzing::model_load);
    for name in ["estimator", "good"] {
        let bytes = std::fs::read(format!("fuzz/seeds/model_load/{name}")).unwrap();
        assert!(
            drsae::fuzzing::model_loads(&bytes),
            "seed model_load/{name} does not load"
        );
    }
}

/// Regenerates the seeds of the file-layer targets (mnist_dir, resume, model_load):
/// `cargo test --test fuzz_corpus regenerate_file_layer_seeds -- --ignored`.
#[test]
#[ignore]
fn regenerate_file_layer_seeds() {
    use drsae::data::idx::encode_idx;
    use std::io::Write;
    let gzip = |b: &[u8]| {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        e.write_all(b).unwrap();
        e.finish().unwrap()
    };
    let put = |target: &str, name: &str, bytes: &[u8]| {
        let d = Path::new("fuzz/seeds").join(target);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join(name), bytes).unwrap();
    };
    // MNIST directories: 6 training and 3 test images of 4×4.
    let pixels = |n: usize| -> Vec<u8> { (0..n * 16).map(|i| (i * 37 % 256) as u8).collect() };
    let train_img = encode_idx(&[6, 4, 4], &pixels(6));
    let train_lab = encode_idx(&[6], &[0, 1, 2, 3, 4, 9]);
    let test_img = encode_idx(&[3, 4, 4], &pixels(3));
    let test_lab = encode_idx(&[3], &[5, 6, 7]);
    let plain = [&train_img[..], &train_lab, &test_img, &test_lab];
    put(
        "mnist_dir",
        "valid",
        &drsae::fuzzing::mnist_dir_input(plain, [false; 4]),
    );
    let gz = [
        gzip(&train_img),
        gzip(&train_lab),
        gzip(&test_img),
        gzip(&test_lab),
    ];
    put(
        "mnist_dir",
        "valid_gz",
        &drsae::fuzzing::mnist_dir_input([&gz[0], &gz[1], &gz[2], &gz[3]], [true; 4]),
    );
    let short_lab = encode_idx(&[2], &[0, 1]);
    put(
        "mnist_dir",
        "count_mismatch",
        &drsae::fuzzing::mnist_dir_input(
            [&train_img, &train_lab, &test_img, &short_lab],
            [false; 4],
        ),
    );
    let other_img = encode_idx(&[3, 2, 8], &pixels(3));
    put(
        "mnist_dir",
        "shape_mismatch",
        &drsae::fuzzing::mnist_dir_input(
            [&train_img, &train_lab, &other_img, &test_lab],
            [false; 4],
        ),
    );
    // Resumed runs: real checkpoints in phase 1 (step 2 of 4) and phase 2 (step 6 of 12).
    let run = drsae::fuzzing::ResumeRun::new();
    put("resume", "phase1_step2", &run.checkpoint(2));
    put("resume", "phase2_step6", &run.checkpoint(6));
    // Model files: one written by the estimator (preprocessing and settings in the
    // metadata) and the model_file target's seeds.
    let data = drsae::data::Mnist::load("data/mnist-sample")
        .unwrap()
        .train
        .take(60);
    let model = drsae::Drsae::params()
        .hidden(4)
        .steps(2)
        .batch(10)
        .epochs_unsup(1)
        .epochs_sup(1)
        .fit(&data)
        .unwrap();
    put("model_load", "estimator", &model.to_bytes().unwrap());
    for e in std::fs::read_dir("fuzz/seeds/model_file")
        .unwrap()
        .flatten()
    {
        let name = e.file_name().to_string_lossy().to_string();
        put("model_load", &name, &std::fs::read(e.path()).unwrap());
    }
}
