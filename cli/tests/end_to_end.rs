//! `drsae train drsae`, then `encode` on a `.npy`, `predict` on a PNG and `inspect`, end to
//! end through the binary; bad input gives one line and exit code 2.

mod common;

use common::{drsae, ok};
use std::process::Command;

fn fails(c: &mut Command) -> String {
    let out = c.output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.trim().lines().count() <= 3, "{err}");
    err
}

#[test]
fn train_encode_predict_inspect() {
    let dir = std::env::temp_dir().join(format!("drsae-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let out = dir.join("run");
    let j = ok(drsae()
        .args([
            "train",
            "drsae",
            "--hidden",
            "16",
            "--steps",
            "2",
            "--epochs-unsup",
            "1",
            "--epochs-sup",
            "2",
            "--quiet",
            "--out",
        ])
        .arg(&out));
    assert!(j["test_error"].as_f64().unwrap() < 90.0);
    assert_eq!(j["config"]["hidden"], "16");
    let model = out.join("model.safetensors");
    for (png, size) in [("curves.png", (800, 1000)), ("angles.png", (800, 500))] {
        let img = image::open(out.join(png)).unwrap();
        assert_eq!((img.width(), img.height()), size, "{png}");
    }
    // A .npy of two raw rows (u8 pixels).
    let mut npy = Vec::new();
    let header = "{'descr': '|u1', 'fortran_order': False, 'shape': (2, 784), }";
    let pad = 64 - (10 + header.len() + 1) % 64;
    npy.extend_from_slice(b"\x93NUMPY\x01\x00");
    npy.extend_from_slice(&((header.len() + pad + 1) as u16).to_le_bytes());
    npy.extend_from_slice(header.as_bytes());
    npy.extend(std::iter::repeat(b' ').take(pad));
    npy.push(b'\n');
    npy.extend((0..2 * 784).map(|i| (i % 251) as u8));
    std::fs::write(dir.join("x.npy"), &npy).unwrap();
    let codes = dir.join("codes.npy");
    let j = ok(drsae()
        .args(["encode", "--model"])
        .arg(&model)
        .arg(dir.join("x.npy"))
        .arg("-o")
        .arg(&codes));
    assert_eq!(
        (j["rows"].as_u64(), j["units"].as_u64()),
        (Some(2), Some(16))
    );
    assert!(std::fs::read(&codes).unwrap().starts_with(b"\x93NUMPY"));
    // A 28 × 28 PNG digit.
    let img = image::GrayImage::from_fn(28, 28, |x, y| {
        image::Luma([if (10..18).contains(&x) && y > 4 {
            255
        } else {
            0
        }])
    });
    img.save(dir.join("digit.png")).unwrap();
    let j = ok(drsae()
        .args(["predict", "--model"])
        .arg(&model)
        .arg(dir.join("digit.png")));
    assert!(j["classes"][0].as_u64().unwrap() < 10);
    let j = ok(drsae().arg("inspect").arg(&model));
    assert_eq!(j["kind"], "drsae");
    assert_eq!(j["tensors"]["E"], serde_json::json!([16, 784]));
    assert_eq!(j["preprocessing"], "unit_l2");
    // Bad input: one line, exit 2, nothing written.
    let small = image::GrayImage::new(5, 5);
    small.save(dir.join("small.png")).unwrap();
    fails(
        drsae()
            .args(["encode", "--model"])
            .arg(&model)
            .arg(dir.join("small.png"))
            .arg("-o")
            .arg(dir.join("never.npy")),
    );
    assert!(!dir.join("never.npy").exists());
    // An .npy whose shape's product overflows 64 bits (npyz panicked on it).
    let header = "{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904, 4611686018427387904), }";
    let pad = 64 - (10 + header.len() + 1) % 64;
    let mut overflow = b"\x93NUMPY\x01\x00".to_vec();
    overflow.extend_from_slice(&((header.len() + pad + 1) as u16).to_le_bytes());
    overflow.extend_from_slice(header.as_bytes());
    overflow.extend(std::iter::repeat(b' ').take(pad));
    overflow.push(b'\n');
    overflow.extend_from_slice(&[0; 64]);
    std::fs::write(dir.join("overflow.npy"), &overflow).unwrap();
    let err = fails(
        drsae()
            .args(["encode", "--model"])
            .arg(&model)
            .arg(dir.join("overflow.npy"))
            .arg("-o")
            .arg(dir.join("never.npy")),
    );
    assert!(err.contains("overflows"), "{err}");
    // A decompression bomb: 8192 × 8192 zero pixels in a PNG of about 70 kB, refused from
    // its header (it used to be decoded first: 328 MB).
    let bomb = image::GrayImage::new(8192, 8192);
    bomb.save(dir.join("bomb.png")).unwrap();
    let err = fails(
        drsae()
            .args(["encode", "--model"])
            .arg(&model)
            .arg(dir.join("bomb.png"))
            .arg("-o")
            .arg(dir.join("never.npy")),
    );
    assert!(err.contains("8192×8192"), "{err}");
    assert!(!dir.join("never.npy").exists());
    fails(drsae().arg("inspect").arg(dir.join("x.npy")));
    fails(
        drsae()
            .args(["train", "drsae", "--data", "/nonexistent", "--out"])
            .arg(dir.join("never")),
    );
    assert!(!dir.join("never").exists());
    fails(drsae().args(["train", "drsae", "--hidden", "0"]));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn train_sae_on_npy_shards_writes_a_saelens_directory() {
    use drsae::data::{Synthetic, SyntheticSpec};
    let dir = std::env::temp_dir().join(format!("drsae-cli-sae-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut truth = Synthetic::new(SyntheticSpec {
        d: 16,
        features: 48,
        mean_l0: 3.0,
        correlated_pairs: 4,
        ..SyntheticSpec::default()
    })
    .unwrap();
    for s in 0..2 {
        let x = truth.sample(1500);
        drsae::io::write_npy(dir.join(format!("shard{s}.npy")), x.as_slice(), 1500, 16).unwrap();
    }
    // One invocation, with `extra` flags; its JSON and the weights it wrote.
    let ck = dir.join("ck");
    let run = |out: &std::path::Path, extra: &[&str]| {
        let mut c = drsae();
        c.args([
            "train", "sae", "--d-sae", "64", "--k", "3", "--batch", "128",
        ])
        .args([
            "--samples",
            "6000",
            "--lr",
            "3e-3",
            "--chunk-rows",
            "100",
            "--quiet",
        ])
        .args(extra)
        .arg("--out")
        .arg(out)
        .arg(dir.join("shard0.npy"))
        .arg(dir.join("shard1.npy"));
        let j = ok(&mut c);
        (
            j,
            std::fs::read(out.join("sae_weights.safetensors")).unwrap(),
        )
    };
    let out = dir.join("sae");
    let (j, weights) = run(&out, &[]);
    assert_eq!(j["kind"], "topk");
    assert!(j["fvu"].as_f64().unwrap() < 0.8, "{j}");
    let sae = drsae::Sae::load_saelens(&out).unwrap();
    assert_eq!(sae.network().d_sae(), 64);
    assert!(drsae::Sae::load_sparsify(out.join("sparsify")).is_ok());
    for f in [
        "curve.csv",
        "density.csv",
        "result.json",
        "sparsity.safetensors",
        "density.png",
    ] {
        assert!(out.join(f).exists(), "{f}");
    }
    // With checkpoints, then resumed from the last one (step 46 of 47): the same weights.
    let checkpointed = ["--checkpoint-dir", ck.to_str().unwrap()];
    let (_, first) = run(&dir.join("ck-first"), &checkpointed);
    assert_eq!(first, weights);
    assert!(ck.join("checkpoint.safetensors").exists());
    let resumed = [checkpointed[0], checkpointed[1], "--resume"];
    assert_eq!(run(&dir.join("ck-resumed"), &resumed).1, first);
    fails(
        drsae()
            .args(["train", "sae", "--resume"])
            .arg(dir.join("shard0.npy")),
    );
    // Bad input: one line, exit 2, nothing written.
    let bad = dir.join("bad");
    fails(drsae().args([
        "train",
        "sae",
        "--kind",
        "gated",
        "--out",
        bad.to_str().unwrap(),
        dir.join("shard0.npy").to_str().unwrap(),
    ]));
    fails(drsae().args([
        "train",
        "sae",
        "--k",
        "0",
        dir.join("shard0.npy").to_str().unwrap(),
    ]));
    std::fs::write(dir.join("junk.npy"), b"not numpy").unwrap();
    fails(drsae().args([
        "train",
        "sae",
        "--out",
        bad.to_str().unwrap(),
        dir.join("junk.npy").to_str().unwrap(),
    ]));
    fails(drsae().args([
        "train",
        "sae",
        "--d-sae",
        "64",
        "--k",
        "65",
        dir.join("shard0.npy").to_str().unwrap(),
    ]));
    assert!(!bad.exists());
    let _ = std::fs::remove_dir_all(&dir);
}
