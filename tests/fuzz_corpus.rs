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
