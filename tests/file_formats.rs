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
    let e = drsae::io::tensors_from_bytes(&bytes)
        .unwrap_err()
        .to_string();
    assert!(e.contains("tensor `half` is F16, expected F32"), "{e}");
}

/// On random headers near the format (tensors in any order, offsets that tile the data or
/// nearly, dtypes, shapes, metadata of every JSON kind, extra members, data a little short
/// or long), drsae's reader accepts a file exactly when the `safetensors` crate does and
/// every tensor is F32, and then reads the same tensors and metadata.
#[test]
fn the_safetensors_reader_agrees_with_the_reference_crate() {
    use rand::{Rng, SeedableRng};
    use safetensors::SafeTensors;
    let mut rng = rand_chacha::ChaCha12Rng::seed_from_u64(17);
    let (mut accepted, mut refused) = (0, 0);
    for _ in 0..20_000 {
        let count = rng.gen_range(0..4);
        let mut at = 0usize;
        let mut entries = Vec::new();
        for i in 0..count {
            let (dtype, size) =
                [("F32", 4), ("F32", 4), ("F16", 2), ("U8", 1), ("Q4", 1)][rng.gen_range(0..5)];
            let shape: Vec<usize> = (0..rng.gen_range(0..3))
                .map(|_| rng.gen_range(0..4))
                .collect();
            let bytes = shape.iter().product::<usize>() * size;
            let mut start = at;
            let mut end = at + bytes;
            match rng.gen_range(0..12) {
                0 => start += 1,
                1 => end += 4,
                2 => end = end.saturating_sub(1),
                3 => std::mem::swap(&mut start, &mut end),
                _ => {}
            }
            at = end;
            let shape_text = match rng.gen_range(0..20) {
                0 => "[1.0]".to_string(),
                1 => "[-1]".to_string(),
                2 => "[18446744073709551615, 18446744073709551615]".to_string(),
                _ => format!("{shape:?}").replace(' ', ""),
            };
            let offsets = match rng.gen_range(0..30) {
                0 => format!("[{start}]"),
                1 => format!("[{start},{end},{end}]"),
                _ => format!("[{start},{end}]"),
            };
            let extra = if rng.gen_range(0..10) == 0 {
                ",\"x\":[{}]"
            } else {
                ""
            };
            let entry = match rng.gen_range(0..40) {
                0 => "[]".to_string(),
                1 => format!("{{\"shape\":{shape_text},\"data_offsets\":{offsets}}}"),
                _ => format!(
                    "{{\"dtype\":\"{dtype}\",\"shape\":{shape_text},\"data_offsets\":{offsets}{extra}}}"
                ),
            };
            entries.push(format!("\"t{i}\":{entry}"));
        }
        let meta = match rng.gen_range(0..8) {
            0 => Some("null"),
            1 => Some("{\"a\":\"1\",\"b\":\"x\\ny\"}"),
            2 => Some("{\"a\":1}"),
            3 => Some("\"s\""),
            4 => Some("{}"),
            _ => None,
        };
        if let Some(m) = meta {
            let at = rng.gen_range(0..=entries.len());
            entries.insert(at, format!("\"__metadata__\":{m}"));
        }
        // Tensors in any order (the format sorts them by offset).
        for i in (1..entries.len()).rev() {
            entries.swap(i, rng.gen_range(0..=i));
        }
        let mut header = format!("{{{}}}", entries.join(","));
        (0..rng.gen_range(0..9)).for_each(|_| header.push(' '));
        let mut data_len = at;
        match rng.gen_range(0..10) {
            0 => data_len += 1,
            1 => data_len = data_len.saturating_sub(1),
            _ => {}
        }
        let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
        bytes.extend_from_slice(header.as_bytes());
        bytes.extend((0..data_len).map(|i| (i % 64) as u8)); // finite f32 values
        let reference = SafeTensors::deserialize(&bytes);
        let ours = drsae::io::tensors_from_bytes(&bytes);
        match (&reference, &ours) {
            (Ok(r), Ok((tensors, meta))) => {
                assert_eq!(r.len(), tensors.len(), "{header}");
                for (name, view) in r.tensors() {
                    let (shape, values) = &tensors[&name];
                    assert_eq!(view.shape(), &shape[..], "{header}");
                    let want: Vec<f32> = view
                        .data()
                        .chunks_exact(4)
                        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                        .collect();
                    assert_eq!(values, &want, "{header}");
                }
                let (n, m) = SafeTensors::read_metadata(&bytes).unwrap();
                assert_eq!(n, header.len());
                assert_eq!(m.metadata().clone().unwrap_or_default(), *meta, "{header}");
                accepted += 1;
            }
            (Ok(r), Err(e)) => {
                let all_f32 = r
                    .tensors()
                    .iter()
                    .all(|(_, v)| v.dtype() == safetensors::Dtype::F32);
                assert!(!all_f32, "{header}: refused ({e}), the reference reads it");
                assert!(e.to_string().contains(", expected F32"), "{e}");
                refused += 1;
            }
            (Err(r), Ok(_)) => panic!("{header}: accepted, the reference refuses ({r:?})"),
            (Err(_), Err(_)) => refused += 1,
        }
    }
    assert!(accepted > 2000 && refused > 2000, "{accepted} / {refused}");
}
