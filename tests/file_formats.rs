//! The files drsae writes for other tools keep their exact bytes, and files written by
//! other tools read back: SAELens and sparsify directories compared with fixtures captured
//! from earlier builds (tests/fixtures/json_io/), and safetensors files written by Python's
//! `safetensors.numpy` (tests/fixtures/python/).

use drsae::linalg::Mat;
use drsae::models::{SaeKind, SaeNetwork};
use std::path::{Path, PathBuf};

const FIXTURES: &str = "tests/fixtures/json_io";

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("drsae-files-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// The small network each fixture was written from (4 latents, 2 inputs).
fn network(kind: SaeKind) -> SaeNetwork {
    let (m, d) = (4, 2);
    SaeNetwork::from_parts(
        kind,
        Mat::from_fn(m, d, |i, j| (i + j) as f32 * 0.1),
        vec![0.0; m],
        Mat::from_fn(m, d, |i, j| (i * j) as f32 * 0.1 + 0.5),
        vec![0.1; d],
        vec![0.0; m],
        true,
    )
    .unwrap()
}

/// Every file of `fixture` equals the file of the same name in `written`, and nothing else
/// was written.
fn same_files(written: &Path, fixture: &Path) {
    let names = |d: &Path| {
        let mut v: Vec<String> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    assert_eq!(names(written), names(fixture), "{}", fixture.display());
    for name in names(fixture) {
        let (a, b) = (
            std::fs::read(written.join(&name)).unwrap(),
            std::fs::read(fixture.join(&name)).unwrap(),
        );
        assert!(
            a == b,
            "{} differs from the fixture:\n{}\n---\n{}",
            written.join(&name).display(),
            String::from_utf8_lossy(&a),
            String::from_utf8_lossy(&b)
        );
    }
}

#[test]
fn saelens_and_sparsify_files_keep_their_bytes() {
    for (name, kind) in [
        ("relu", SaeKind::Relu),
        ("topk", SaeKind::TopK { k: 2 }),
        ("jump", SaeKind::JumpRelu),
    ] {
        let net = network(kind);
        let dir = tmp(name);
        drsae::io::save_saelens(&dir, &net, 2.0, Some(&[0.5; 4])).unwrap();
        same_files(&dir, &Path::new(FIXTURES).join(name));
        // And the fixture loads as the network written (scale 2 folded in).
        let back = drsae::io::load_saelens(Path::new(FIXTURES).join(name)).unwrap();
        assert_eq!(back.kind(), net.kind());
        assert_eq!(back.b_enc(), net.b_enc());
        let _ = std::fs::remove_dir_all(&dir);
    }
    let net = network(SaeKind::TopK { k: 2 });
    let dir = tmp("sparsify");
    drsae::io::save_sparsify(&dir, &net, 1.0).unwrap();
    same_files(&dir, &Path::new(FIXTURES).join("sparsify"));
    let back = drsae::io::load_sparsify(Path::new(FIXTURES).join("sparsify")).unwrap();
    assert_eq!(back.w_enc(), net.w_enc());
    assert_eq!(back.w_dec(), net.w_dec());
    let _ = std::fs::remove_dir_all(&dir);
}

/// An F32 file with metadata (escapes, UTF-8) and an empty tensor, written by Python's
/// `safetensors.numpy.save_file` (tests/fixtures/python/make.py).
#[test]
fn a_python_written_safetensors_file_reads() {
    let bytes = std::fs::read("tests/fixtures/python/f32_with_metadata.safetensors").unwrap();
    let (tensors, meta) = drsae::io::tensors_from_bytes(&bytes).unwrap();
    assert_eq!(tensors.len(), 3);
    assert_eq!(
        tensors["weight"],
        (vec![2, 3], vec![-1.0, -0.5, 0.0, 0.5, 1.0, 1.5])
    );
    assert_eq!(tensors["bias"], (vec![3], vec![1e-7, -3.25, 1e30]));
    assert_eq!(tensors["empty"], (vec![0, 4], vec![]));
    assert_eq!(meta.len(), 2);
    assert_eq!(meta["format"], "pt");
    assert_eq!(meta["note"], "caf\u{e9} \"quoted\"\n");
}

/// A file with an F16 tensor is refused, naming the tensor and its dtype.
#[test]
fn a_python_written_f16_tensor_is_refused() {
    let bytes = std::fs::read("tests/fixtures/python/f16.safetensors").unwrap();
    let e = drsae::io::tensors_from_bytes(&bytes).unwrap_err().to_string();
    assert!(e.contains("tensor `half` is F16, expected F32"), "{e}");
}
