//! Modern sparse auto-encoders end to end: training recovers a known dictionary, the same
//! seed gives the same model, SAELens and sparsify files round-trip, activation shards are
//! streamed and malformed ones rejected.

mod common;

use drsae::data::{recovery, ActivationSource, InMemory, Shards, Synthetic, SyntheticSpec};
use drsae::io::{npy_bytes, ShardReader};
use drsae::linalg::Mat;
use drsae::prelude::*;
use drsae::train::DecoderNorm;
use std::collections::HashMap;
use std::path::PathBuf;

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("drsae-sae-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn small_truth() -> (Synthetic, Mat) {
    let mut t = Synthetic::new(SyntheticSpec {
        d: 32,
        features: 96,
        mean_l0: 3.0,
        correlated_pairs: 8,
        ..SyntheticSpec::default()
    })
    .unwrap();
    let x = t.sample(6000);
    (t, x)
}

fn topk_params() -> SaeParams {
    Sae::params()
        .kind(SaeKind::TopK { k: 3 })
        .d_sae(128)
        .batch(256)
        .samples(60_000)
        .lr(3e-3)
        .dead_after(20_000)
}

#[test]
fn topk_and_batch_topk_recover_a_known_dictionary() {
    let (truth, x) = small_truth();
    for (name, kind) in [
        ("topk", SaeKind::TopK { k: 3 }),
        ("batchtopk", SaeKind::BatchTopK { k: 3 }),
    ] {
        let sae = topk_params().kind(kind).fit(&x).unwrap();
        let rec = recovery(truth.features(), sae.network().w_dec());
        let eval = sae.evaluate(&x).unwrap();
        assert!(
            rec.mean_max_cosine > 0.9 && eval.fvu < 0.3,
            "{name}: mean max cosine {}, fvu {}",
            rec.mean_max_cosine,
            eval.fvu
        );
        if name == "batchtopk" {
            // Inference is a JumpReLU at the estimated threshold: L0 near k.
            assert!((1.5..6.0).contains(&eval.l0), "batchtopk L0 {}", eval.l0);
            let t = sae.network().threshold();
            assert!(t[0] > 0.0 && t.iter().all(|&v| v == t[0]));
        }
    }
}

#[test]
fn relu_and_jump_relu_train_to_sparse_codes() {
    let (_, x) = small_truth();
    let relu = Sae::params()
        .kind(SaeKind::Relu)
        .d_sae(128)
        .batch(256)
        .samples(30_000)
        .lr(2e-3)
        .sparsity(2.0)
        .fit(&x)
        .unwrap();
    let e = relu.evaluate(&x).unwrap();
    assert!(e.fvu < 0.5 && e.l0 < 40.0, "relu fvu {} L0 {}", e.fvu, e.l0);
    let jump = Sae::params()
        .kind(SaeKind::JumpRelu)
        .d_sae(128)
        .batch(256)
        .samples(30_000)
        .lr(2e-3)
        .sparsity(1.0)
        .fit(&x)
        .unwrap();
    let e = jump.evaluate(&x).unwrap();
    assert!(
        e.fvu < 0.6 && e.l0 < 64.0,
        "jumprelu fvu {} L0 {}",
        e.fvu,
        e.l0
    );
    // The thresholds moved from their initial value.
    assert!(jump
        .network()
        .threshold()
        .iter()
        .any(|&t| (t - 0.01).abs() > 1e-3));
}

#[test]
fn the_same_seed_gives_the_same_model() {
    let (_, x) = small_truth();
    let p = topk_params().samples(5_000).prefixes(vec![16, 64, 128]);
    let a = p.fit(&x).unwrap();
    let b = p.fit(&x).unwrap();
    assert_eq!(a.network(), b.network());
    let c = p.clone().seed(1).fit(&x).unwrap();
    assert_ne!(a.network(), c.network());
}

#[test]
fn saelens_and_sparsify_directories_round_trip() {
    let (_, x) = small_truth();
    let x = x.row_range(0, 200).to_owned();
    for kind in [
        SaeKind::TopK { k: 3 },
        SaeKind::BatchTopK { k: 3 },
        SaeKind::Relu,
        SaeKind::JumpRelu,
    ] {
        let sae = topk_params().kind(kind).samples(3_000).fit(&x).unwrap();
        assert!(sae.input_scale() != 1.0);
        let want = sae.reconstruct(&x).unwrap();
        let dir = tmp(kind.name());
        sae.save_saelens(&dir).unwrap();
        let back = Sae::load_saelens(&dir).unwrap();
        let got = back.reconstruct(&x).unwrap();
        let scale = want.as_slice().iter().fold(0f32, |a, v| a.max(v.abs()));
        assert!(
            got.max_abs_diff(&want) <= 1e-5 * scale,
            "{}: {}",
            kind.name(),
            got.max_abs_diff(&want)
        );
        assert!(dir.join("sparsity.safetensors").exists());
        if let SaeKind::TopK { .. } = kind {
            let sdir = dir.join("sparsify");
            sae.save_sparsify(&sdir).unwrap();
            let back = Sae::load_sparsify(&sdir).unwrap();
            assert!(back.reconstruct(&x).unwrap().max_abs_diff(&want) <= 1e-5 * scale);
        } else {
            assert!(sae.save_sparsify(dir.join("no")).is_err());
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
fn malformed_sae_directories_are_errors() {
    let (_, x) = small_truth();
    let sae = topk_params().samples(2_000).fit(&x).unwrap();
    let dir = tmp("bad");
    sae.save_saelens(&dir).unwrap();
    let cfg = std::fs::read_to_string(dir.join("cfg.json")).unwrap();
    for (what, text) in [
        ("arch", cfg.replace("\"topk\"", "\"gated\"")),
        ("shape", cfg.replace("\"d_sae\": 128", "\"d_sae\": 127")),
        (
            "norm",
            cfg.replace(
                "\"normalize_activations\": \"none\"",
                "\"normalize_activations\": \"layer_norm\"",
            ),
        ),
        ("k", cfg.replace("\"k\": 3", "\"k\": 0")),
        ("json", "{".to_string()),
        ("array", "[]".to_string()),
    ] {
        std::fs::write(dir.join("cfg.json"), &text).unwrap();
        assert!(Sae::load_saelens(&dir).is_err(), "{what} accepted");
    }
    std::fs::write(dir.join("cfg.json"), &cfg).unwrap();
    assert!(Sae::load_saelens(&dir).is_ok());
    std::fs::write(
        dir.join("sae_weights.safetensors"),
        b"\x08\0\0\0\0\0\0\0{}      ",
    )
    .unwrap();
    assert!(Sae::load_saelens(&dir).is_err());
    assert!(Sae::load_saelens(dir.join("missing")).is_err());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn shards_stream_every_row_once_per_pass_with_bounded_buffers() {
    let dir = tmp("shards");
    let (rows_a, rows_b, d) = (37usize, 50usize, 5usize);
    let a: Vec<f32> = (0..rows_a * d).map(|i| (i / d) as f32).collect();
    let b: Vec<f32> = (0..rows_b * d).map(|i| (rows_a + i / d) as f32).collect();
    std::fs::write(dir.join("a.npy"), npy_bytes(&a, rows_a, d)).unwrap();
    let st = drsae::io::tensors_to_bytes(
        &[("acts".to_string(), vec![rows_b, d], &b[..])],
        Default::default(),
    )
    .unwrap();
    std::fs::write(dir.join("b.safetensors"), st).unwrap();
    let mut s = Shards::open(&[dir.join("a.npy"), dir.join("b.safetensors")], 8, 3, 7).unwrap();
    assert_eq!((s.d_in(), s.len()), (d, Some((rows_a + rows_b) as u64)));
    let mut seen = vec![0u32; rows_a + rows_b];
    let mut batch = Mat::zeros(29, d);
    for _ in 0..3 {
        s.fill(&mut batch).unwrap(); // 87 = one pass exactly
        for r in batch.rows() {
            assert!(r.iter().all(|&v| v == r[0]), "a row was torn");
            seen[r[0] as usize] += 1;
        }
    }
    assert!(seen.iter().all(|&c| c == 1), "{seen:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Skipping `n` vectors leaves a source where serving them would have: the shards (which
/// skip whole buffers unread), the in-memory source and the default (fill and discard).
#[test]
fn skipping_vectors_continues_where_serving_them_would() {
    let dir = tmp("skip");
    let (rows, d) = (61usize, 3usize);
    let a: Vec<f32> = (0..rows * d).map(|i| (i / d) as f32).collect();
    std::fs::write(dir.join("a.npy"), npy_bytes(&a, rows, d)).unwrap();
    let (_, x) = small_truth();
    type Open<'a> = Box<dyn Fn() -> Box<dyn ActivationSource + 'a> + 'a>;
    let sources: Vec<(&str, Open)> = vec![
        (
            "shards",
            Box::new(|| Box::new(Shards::open(&[dir.join("a.npy")], 5, 3, 9).unwrap())),
        ),
        (
            "in memory",
            Box::new(|| Box::new(drsae::data::InMemory::new(x.row_range(0, 45), 4).unwrap())),
        ),
        (
            "synthetic (default skip)",
            Box::new(|| Box::new(small_truth().0)),
        ),
    ];
    for (name, open) in &sources {
        for n in [0u64, 1, 14, 15, 16, 44, 45, 61, 200] {
            let (mut served, mut skipped) = (open(), open());
            let width = served.d_in();
            if n > 0 {
                served.fill(&mut Mat::zeros(n as usize, width)).unwrap();
            }
            skipped.skip(n).unwrap();
            let (mut a, mut b) = (Mat::zeros(70, width), Mat::zeros(70, width));
            served.fill(&mut a).unwrap();
            skipped.fill(&mut b).unwrap();
            assert_eq!(a, b, "{name}, skipping {n}");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn malformed_shards_are_errors_without_large_allocations() {
    let dir = tmp("badshards");
    let good = npy_bytes(&[1.0; 12], 3, 4);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("truncated", good[..good.len() - 4].to_vec()),
        ("trailing", [&good[..], &[0u8; 4]].concat()),
        ("magic", [b"XNUMPY".as_slice(), &good[6..]].concat()),
        (
            "huge",
            String::from_utf8_lossy(&good)
                .replace("(3, 4)", "(3000000000000, 4)")
                .into_bytes(),
        ),
        (
            "dtype",
            String::from_utf8_lossy(&good)
                .replace("<f4", "<f8")
                .into_bytes(),
        ),
        (
            "fortran",
            String::from_utf8_lossy(&good)
                .replace("False", "True ")
                .into_bytes(),
        ),
        (
            "1-D",
            String::from_utf8_lossy(&good)
                .replace("(3, 4)", "(12,)  ")
                .into_bytes(),
        ),
        ("empty", Vec::new()),
        ("header length", {
            let mut g = good.clone();
            g[8] = 0xff;
            g[9] = 0xff;
            g
        }),
    ];
    for (what, bytes) in cases {
        let p = dir.join(format!("{}.npy", what.replace(' ', "_")));
        std::fs::write(&p, &bytes).unwrap();
        assert!(ShardReader::open(&p).is_err(), "{what} accepted");
    }
    let nan = npy_bytes(&[f32::NAN; 12], 3, 4);
    std::fs::write(dir.join("nan.npy"), nan).unwrap();
    let mut s = Shards::open(&[dir.join("nan.npy")], 2, 1, 0).unwrap();
    assert!(s.fill(&mut Mat::zeros(1, 4)).is_err());
    assert!(Shards::open(&[dir.join("missing.npy")], 2, 1, 0).is_err());
    assert!(Shards::open(std::slice::from_ref(&dir), 2, 1, 0).is_err());
    assert!(Shards::open(&[], 2, 1, 0).is_err());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn invalid_parameters_name_their_field() {
    let (_, x) = small_truth();
    let bad = |p: SaeParams, field: &str| match p.fit(&x) {
        Err(Error::InvalidParameter { name, .. }) => assert_eq!(name, field),
        other => panic!("{field}: {other:?}"),
    };
    bad(topk_params().kind(SaeKind::TopK { k: 0 }), "k");
    bad(topk_params().d_sae(0), "d_sae");
    bad(topk_params().lr(f32::NAN), "lr");
    bad(topk_params().batch(0), "batch");
    bad(topk_params().prefixes(vec![64, 32, 128]), "prefixes");
    bad(topk_params().samples(0), "samples");
    // Bounded by the data: 6000 rows allow at most 1000 passes.
    bad(topk_params().samples(6_000_001), "samples");
    bad(topk_params().samples(u64::MAX), "samples");
    bad(topk_params().lr(1e30), "lr");
    bad(topk_params().lr(10.5), "lr");
    bad(topk_params().sparsity(1e30), "sparsity");
    bad(topk_params().aux(Some((1e30, 0))), "aux_coefficient");
    // 60,000 samples in batches of 256: 235 steps.
    bad(topk_params().lr_warmup(236), "lr_warmup");
    bad(topk_params().lr_warmup(u64::MAX), "lr_warmup");
    bad(topk_params().lr_decay(236), "lr_decay");
    bad(topk_params().sparsity_warmup(236), "sparsity_warmup");
    bad(
        topk_params().decoder(DecoderNorm::Free).sparsity(-1.0),
        "sparsity",
    );
}

/// Parameters whose run exercises every piece of resumable state: 20 steps with reports
/// every 6 (so a stop at 7 falls inside a stretch), rate warm-up and decay, λ warm-up, and
/// latents that die (dead_after 512) so that AuxK's dead set matters.
fn resumable(kind: SaeKind) -> SaeParams {
    topk_params()
        .kind(kind)
        .batch(128)
        .samples(128 * 20)
        .log_every(6)
        .lr_warmup(4)
        .lr_decay(5)
        .sparsity(0.01)
        .sparsity_warmup(8)
        .dead_after(512)
}

fn same_run(a: &Sae, b: &Sae, what: &str) {
    assert_eq!(a.network(), b.network(), "{what}: networks differ");
    assert_eq!(a.input_scale(), b.input_scale(), "{what}");
    let (mut ra, mut rb) = (a.report().clone(), b.report().clone());
    (ra.seconds, rb.seconds) = (0.0, 0.0);
    assert_eq!(ra, rb, "{what}: final reports differ");
}

#[test]
fn an_interrupted_and_resumed_run_gives_the_same_model() {
    let (_, x) = small_truth();
    let x = x.row_range(0, 1000).to_owned(); // 2.56 passes: reshuffles inside the run
    for kind in [
        SaeKind::TopK { k: 3 },
        SaeKind::BatchTopK { k: 3 },
        SaeKind::JumpRelu,
        SaeKind::Relu,
    ] {
        let dir = tmp(&format!("resume-{}", kind.name()));
        let p = resumable(kind);
        let whole = p.fit(&x).unwrap();
        let ck = p.clone().checkpoint_dir(&dir).checkpoint_every(3);
        match ck.clone().stop_after_steps(7).fit(&x) {
            Err(drsae::Error::Interrupted { step: 7 }) => {}
            other => panic!("{}: expected an interruption, got {other:?}", kind.name()),
        }
        // The resumed run starts at step 7: its first report is the one at step 12.
        let mut reported = Vec::new();
        let resumed = ck
            .clone()
            .resume(true)
            .check()
            .unwrap()
            .fit_source_with(&mut InMemory::new(x.view(), 0).unwrap(), |r| {
                reported.push(r.step)
            })
            .unwrap();
        assert_eq!(reported, [12, 18, 20], "{}", kind.name());
        same_run(&whole, &resumed, kind.name());
        // Resuming from the later checkpoint the resumed run wrote (step 18) gives the same
        // model again, and a run without `resume` ignores the directory's checkpoint.
        assert_eq!(
            ck.clone().resume(true).fit(&x).unwrap().network(),
            whole.network()
        );
        assert_eq!(ck.clone().fit(&x).unwrap().network(), whole.network());
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
fn a_run_on_shards_resumes_where_it_stopped() {
    let dir = tmp("resume-shards");
    let (_, x) = small_truth();
    let (a, b) = (
        x.row_range(0, 700).to_owned(),
        x.row_range(700, 1300).to_owned(),
    );
    std::fs::write(dir.join("a.npy"), npy_bytes(a.as_slice(), 700, 32)).unwrap();
    std::fs::write(dir.join("b.npy"), npy_bytes(b.as_slice(), 600, 32)).unwrap();
    let open = || Shards::open(&[dir.join("a.npy"), dir.join("b.npy")], 300, 2, 5).unwrap();
    let p = resumable(SaeKind::TopK { k: 3 }).prefixes(vec![32, 128]);
    let whole = p.fit_source(&mut open()).unwrap();
    let ck = p.checkpoint_dir(dir.join("ck")).checkpoint_every(4);
    assert!(matches!(
        ck.clone().stop_after_steps(13).fit_source(&mut open()),
        Err(drsae::Error::Interrupted { step: 13 })
    ));
    let resumed = ck.resume(true).fit_source(&mut open()).unwrap();
    same_run(&whole, &resumed, "shards");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn sae_checkpoints_of_another_run_or_with_bad_fields_are_refused() {
    use drsae::train::CHECKPOINT_FILE;
    let dir = tmp("resume-bad");
    let (_, x) = small_truth();
    let x = x.row_range(0, 1000).to_owned();
    let p = resumable(SaeKind::BatchTopK { k: 3 }).checkpoint_dir(&dir);
    assert!(matches!(
        p.clone().stop_after_steps(9).fit(&x),
        Err(drsae::Error::Interrupted { step: 9 })
    ));
    let good = std::fs::read(dir.join(CHECKPOINT_FILE)).unwrap();
    let resume = p.clone().resume(true);
    let narrow = Mat::from_vec(1000, 16, x.rows().flat_map(|r| r[..16].to_vec()).collect());
    // Another configuration, another data width.
    for (what, r) in [
        ("lr", p.clone().lr(1e-3).resume(true).fit(&x)),
        ("width", resume.fit(&narrow)),
    ] {
        let e = r.expect_err(what).to_string();
        assert!(e.contains("different configuration"), "{what}: {e}");
    }
    type Edit = fn(&mut HashMap<String, (Vec<usize>, Vec<f32>)>, &mut HashMap<String, String>);
    let edits: [(&str, Edit, &str); 10] = [
        (
            "step past the end",
            |_, m| {
                m.insert("step".into(), "20".into());
                m.insert("batch_index".into(), "20".into());
            },
            "does not fit",
        ),
        (
            "step and minibatch disagree",
            |_, m| {
                m.insert("batch_index".into(), "8".into());
            },
            "does not fit",
        ),
        (
            "epoch 1",
            |_, m| {
                m.insert("epoch".into(), "1".into());
            },
            "epoch",
        ),
        (
            "ten sums",
            |_, m| {
                let s = m["sums"].rsplit_once(' ').unwrap().0.to_string();
                m.insert("sums".into(), s);
            },
            "running sums",
        ),
        (
            "negative elapsed time",
            |_, m| {
                let s = m["sums"].rsplit_once(' ').unwrap().0.to_string();
                m.insert("sums".into(), format!("{s} -1.0"));
            },
            "elapsed",
        ),
        (
            "NaN in the sums",
            |_, m| {
                m.insert("sums".into(), m["sums"].replacen(' ', " NaN ", 1));
            },
            "NaN",
        ),
        (
            "a fractional count",
            |t, _| {
                t.get_mut("since_fired/lo").unwrap().1[0] = 0.5;
            },
            "24-bit",
        ),
        (
            "a missing count tensor",
            |t, _| {
                t.remove("stretch_fired/hi");
            },
            "missing",
        ),
        (
            "a short decoder",
            |t, _| {
                let w = t.get_mut("W_dec").unwrap();
                w.1.pop();
                w.0 = vec![w.1.len()];
            },
            "W_dec",
        ),
        (
            "an unknown tensor",
            |t, _| {
                t.insert("extra".into(), (vec![1], vec![0.0]));
            },
            "extra",
        ),
    ];
    for (what, edit, needle) in edits {
        common::write_edited(&dir, &good, edit);
        let e = resume.fit(&x).expect_err(what).to_string();
        assert!(e.contains(needle), "{what}: {e}");
    }
    // Checkpointing settings without a directory, or that would never write.
    let e = Sae::params().resume(true).fit(&x).unwrap_err().to_string();
    assert!(e.contains("checkpoint_dir"), "{e}");
    let e = Sae::params()
        .checkpoint_dir(&dir)
        .log_every(0)
        .fit(&x)
        .unwrap_err()
        .to_string();
    assert!(e.contains("checkpoint_every"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}
