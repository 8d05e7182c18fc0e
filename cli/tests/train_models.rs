//! Every `drsae train` family and `drsae lasso` end to end on the bundled MNIST sample with
//! tiny settings: the JSON keys, the model file (it loads, `inspect` names its kind, `encode`
//! gives codes of the right shape), the pictures (they decode, with the expected sizes); and
//! bad flags: exit code 2, a clear message, nothing written.

mod common;

use common::{drsae, ok};
use std::path::{Path, PathBuf};
use std::process::Command;

fn fails(c: &mut Command, needle: &str) {
    let out = c.output().unwrap();
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("error"), "{err}");
    assert!(err.contains(needle), "expected {needle:?} in {err}");
    assert!(out.stdout.is_empty());
}

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("drsae-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn has_keys(j: &serde_json::Value, keys: &[&str]) {
    for k in keys {
        assert!(j.get(k).is_some(), "missing {k} in {j}");
    }
}

fn png_size(path: &Path) -> (u32, u32) {
    let img = image::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (img.width(), img.height())
}

/// `rows` inputs of `cols` values in [0, 1] as a float32 `.npy`.
fn npy(dir: &Path, rows: usize, cols: usize) -> PathBuf {
    let values: Vec<f32> = (0..rows * cols).map(|i| (i % 13) as f32 / 13.0).collect();
    let path = dir.join(format!("x{cols}.npy"));
    drsae::io::write_npy(&path, &values, rows, cols).unwrap();
    path
}

/// `encode` of 3 rows with the model in `run`: (kind, units), and the `.npy` it wrote.
fn encode(run: &Path, width: usize) -> (String, u64) {
    let x = npy(run, 3, width);
    let codes = run.join("codes_cli.npy");
    let j = ok(drsae()
        .args(["encode", "--model"])
        .arg(run)
        .arg(&x)
        .arg("-o")
        .arg(&codes));
    assert_eq!(j["rows"], 3, "{j}");
    let bytes = std::fs::read(&codes).unwrap();
    let header = String::from_utf8_lossy(&bytes[..128]);
    assert!(
        header.contains(&format!("'shape': (3, {}", j["units"])),
        "{header}"
    );
    (
        j["kind"].as_str().unwrap().to_string(),
        j["units"].as_u64().unwrap(),
    )
}

fn inspect(run: &Path) -> serde_json::Value {
    ok(drsae().arg("inspect").arg(run))
}

#[test]
fn topographic() {
    let dir = tmp("topographic");
    let run = dir.join("run");
    // 4 × 4 units with 2 × 2 pools on 6 × 6 patches.
    let small = [
        "train",
        "topographic",
        "--grid",
        "4",
        "--pool",
        "2",
        "--patch",
        "6",
        "--patches",
        "1000",
        "--held-out",
        "100",
    ];
    let j = ok(drsae()
        .args(small)
        .args(["--epochs", "2", "--out"])
        .arg(&run));
    has_keys(
        &j,
        &[
            "neighbor_orientation_ratio",
            "pinwheels",
            "reconstruction_error",
            "mean_active_groups",
            "seconds",
            "patches_per_s",
        ],
    );
    let model = drsae::GroupSparse::load(run.join("model.safetensors")).unwrap();
    assert_eq!((model.hidden(), model.input_dim()), (16, 36));
    assert_eq!(encode(&run, 36), ("group_sparse".into(), 16));
    assert_eq!(inspect(&run)["tensors"]["W"], serde_json::json!([16, 36]));
    assert_eq!(png_size(&run.join("loss.png")), (800, 500));
    // 4 tiles of 6 × 6 values zoomed 8 times, 1-pixel borders.
    assert_eq!(png_size(&run.join("filters.png")), (197, 197));
    let (w, h) = png_size(&run.join("orientation.png"));
    assert!(w >= 192 && h > 192, "{w}×{h}");
    let curve = std::fs::read_to_string(run.join("loss.csv")).unwrap();
    assert_eq!(curve.lines().count(), 3, "{curve}");
    // Two stages (3 × 3 pools for half the epochs, then 2 × 2): the epochs count on.
    let staged = dir.join("staged");
    ok(drsae()
        .args(small)
        .args(["--epochs", "4", "--start-share", "0.5", "--quiet", "--out"])
        .arg(&staged));
    let curve = std::fs::read_to_string(staged.join("loss.csv")).unwrap();
    assert_eq!(curve.lines().count(), 5, "{curve}");
    assert!(curve.lines().last().unwrap().starts_with("4,"), "{curve}");
    // Tree groups (1 + 2 + 4 units), then the branches active on < 50 % of patches pruned.
    let tree = dir.join("tree");
    let j = ok(drsae()
        .args(small)
        .args(["--groups", "tree", "--branching", "2", "--depth", "3"])
        .args([
            "--prune-threshold",
            "0.5",
            "--epochs",
            "2",
            "--quiet",
            "--out",
        ])
        .arg(&tree));
    has_keys(
        &j,
        &[
            "tree_units",
            "pruned_tree_units",
            "reconstruction_error",
            "pruned_reconstruction_error",
        ],
    );
    assert_eq!(j["tree_units"], 7, "{j}");
    assert!(j["pruned_tree_units"].as_u64().unwrap() >= 1, "{j}");
    assert_eq!(inspect(&tree)["metadata"]["layout"], "tree");
    // 4 leaves of 6 + 2 pixels zoomed 4 times; 3 levels of 8 + 6 pixels.
    assert_eq!(png_size(&tree.join("tree.png")), (128, 168));
    png_size(&tree.join("tree_pruned.png"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn pinwheel() {
    let dir = tmp("pinwheel");
    let run = dir.join("run");
    let j = ok(drsae()
        .args([
            "train",
            "pinwheel",
            "--grid",
            "2",
            "--block",
            "3",
            "--stride",
            "4",
            "--kernel",
            "8",
            "--pool",
            "2",
            "--windows",
            "500",
            "--held-out",
            "50",
            "--epochs",
            "1",
            "--out",
        ])
        .arg(&run));
    has_keys(
        &j,
        &[
            "pinwheels",
            "neighbor_orientation_ratio",
            "reconstruction_error",
            "windows_per_s",
            "seconds",
        ],
    );
    let model = drsae::LocallyConnected::load(run.join("model.safetensors")).unwrap();
    assert_eq!(model.hidden(), 36);
    // Windows of (2 − 1)·4 + 8 = 12 pixels a side.
    assert_eq!(encode(&run, 144), ("locally_connected".into(), 36));
    assert_eq!(png_size(&run.join("loss.png")), (800, 500));
    png_size(&run.join("orientation.png"));
    png_size(&run.join("filters.png"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn inhibition_tree_and_grid() {
    let dir = tmp("inhibition");
    let run = dir.join("tree");
    let j = ok(drsae()
        .args([
            "train",
            "inhibition",
            "--depth",
            "3",
            "--patches",
            "600",
            "--held-out",
            "100",
            "--epochs",
            "2",
            "--quiet",
            "--out",
        ])
        .arg(&run));
    has_keys(
        &j,
        &[
            "energy",
            "mean_nnz",
            "path_fraction",
            "reconstruction_error",
            "lasso_reconstruction_error",
            "seconds",
        ],
    );
    // 1 + 3 + 9 units.
    assert_eq!(encode(&run, 64), ("inhibition".into(), 13));
    assert_eq!(png_size(&run.join("s.png")), (13, 13));
    assert_eq!(png_size(&run.join("energy.png")), (800, 500));
    let grid = dir.join("grid");
    let j = ok(drsae()
        .args([
            "train",
            "inhibition",
            "--structure",
            "grid",
            "--grid",
            "4",
            "--patches",
            "600",
            "--held-out",
            "100",
            "--epochs",
            "1",
            "--out",
        ])
        .arg(&grid));
    has_keys(&j, &["neighbor_orientation_ratio", "pinwheels"]);
    assert_eq!(inspect(&grid)["metadata"]["structure"], "grid");
    // A shrinking radius, 2 then 1, one epoch each: the model holds the last stage's S.
    let staged = dir.join("staged");
    ok(drsae()
        .args(["train", "inhibition", "--structure", "grid", "--grid", "4"])
        .args([
            "--radius-start",
            "2",
            "--lr-end",
            "0.01",
            "--patches",
            "600",
        ])
        .args(["--held-out", "100", "--epochs", "1", "--quiet", "--out"])
        .arg(&staged));
    let meta = &inspect(&staged)["metadata"];
    assert_eq!(meta["structure.radius"], "1", "{meta}");
    let s = drsae::Inhibition::load(staged.join("model.safetensors")).unwrap();
    assert_eq!(
        s.inhibition(),
        &drsae::models::grid_inhibition(4, 4, 1, 1.0).unwrap()
    );
    let j = ok(drsae().args([
        "train",
        "inhibition",
        "--structure",
        "learned",
        "--units",
        "8",
        "--patches",
        "600",
        "--held-out",
        "100",
        "--epochs",
        "1",
        "--quiet",
    ]));
    assert!(j["s_rarity_correlation"].as_f64().is_some(), "{j}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn conv() {
    let dir = tmp("conv");
    let run = dir.join("run");
    let j = ok(drsae()
        .args([
            "train",
            "conv",
            "--maps",
            "4",
            "--train-images",
            "300",
            "--epochs",
            "1",
            "--classifier-epochs",
            "1",
            "--out",
        ])
        .arg(&run));
    has_keys(
        &j,
        &[
            "test_error",
            "train_error",
            "pooled_shift_change",
            "unpooled_shift_change",
            "layer1_images_per_s",
            "seconds",
        ],
    );
    assert!(j["test_error"].as_f64().unwrap() < 50.0, "{j}");
    // 4 maps of 24 × 24 valid positions.
    assert_eq!(encode(&run, 784), ("convolutional".into(), 4 * 24 * 24));
    // 2 × 2 tiles of 5 × 5 values zoomed 6 times.
    assert_eq!(png_size(&run.join("filters.png")), (63, 63));
    assert_eq!(png_size(&run.join("loss.png")), (800, 500));
    // Two stacked layers and the random-filter baseline.
    let stacked = dir.join("stacked");
    let j = ok(drsae()
        .args(["train", "conv", "--maps", "4", "--maps2", "3"])
        .args([
            "--train-images",
            "300",
            "--epochs",
            "1",
            "--classifier-epochs",
            "1",
        ])
        .args(["--random-baseline", "--quiet", "--out"])
        .arg(&stacked));
    has_keys(
        &j,
        &[
            "layer2_images_per_s",
            "random_filters_test_error",
            "random_pooled_shift_change",
            "pooled_rotation_change",
            "weight_decay",
        ],
    );
    // Layer 2 reads layer 1's 12 × 12 × 4 pooled maps: 3 maps of 8 × 8 positions.
    let l2 = drsae::Convolutional::load(stacked.join("layer2.safetensors")).unwrap();
    assert_eq!((l2.input_dim(), l2.hidden()), (12 * 12 * 4, 3 * 8 * 8));
    // 3 maps × 4 channels of 5 × 5 tiles zoomed 3 times, on 4 columns.
    assert_eq!(png_size(&stacked.join("layer2_filters.png")), (65, 49));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn lista_curve_and_lasso() {
    let dir = tmp("lista");
    let run = dir.join("run");
    let j = ok(drsae()
        .args([
            "train",
            "lista",
            "--atoms",
            "20",
            "--train",
            "300",
            "--test",
            "100",
            "--epochs",
            "2",
            "--max-iters",
            "2",
            "--out",
        ])
        .arg(&run));
    has_keys(
        &j,
        &[
            "mnist_lista_T2",
            "mnist_fista_T2",
            "mnist_fista_10x_T2",
            "mnist_fista_iters_to_match_T2",
            "seconds",
        ],
    );
    let model = drsae::ListaEncoder::load(run.join("model.safetensors")).unwrap();
    assert_eq!(model.network().iters(), 2);
    assert_eq!(encode(&run, 784), ("lista".into(), 20));
    assert_eq!(png_size(&run.join("lista.png")), (800, 500));
    let csv = std::fs::read_to_string(run.join("lista.csv")).unwrap();
    assert_eq!(csv.lines().count(), 3, "{csv}");

    let out = dir.join("lasso");
    let j = ok(drsae()
        .args([
            "lasso", "--atoms", "30", "-n", "40", "--solver", "fista", "--out",
        ])
        .arg(&out));
    assert_eq!(j["solver"], "fista");
    has_keys(
        &j,
        &["ms", "objective", "duality_gap", "mean_nnz", "iterations"],
    );
    let bytes = std::fs::read(out.join("codes.npy")).unwrap();
    assert!(String::from_utf8_lossy(&bytes[..128]).contains("'shape': (40, 30"));
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("result.json")).unwrap()).unwrap();
    assert_eq!(r["solver"], "fista");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn help_shows_the_library_defaults() {
    let help = |args: &[&str]| {
        let out = drsae().args(args).arg("--help").output().unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap()
    };
    use drsae::ParamGuard;
    let topo = drsae::GroupSparse::params().check().unwrap();
    let h = help(&["train", "topographic"]);
    assert!(
        h.contains(&format!("[default: {}]", topo.config().lambda)),
        "{h}"
    );
    let conv = drsae::Convolutional::params().check().unwrap();
    let h = help(&["train", "conv"]);
    assert!(
        h.contains(&format!("[default: {}]", conv.config().lambda)),
        "{h}"
    );
    assert!(
        h.contains(&format!("[default: {}]", conv.config().lr)),
        "{h}"
    );
    let inh = drsae::Inhibition::params().check().unwrap();
    let h = help(&["train", "inhibition"]);
    assert!(
        h.contains(&format!("[default: {}]", inh.config().sweeps)),
        "{h}"
    );
    assert!(
        h.contains("- grid:") && h.contains("[default: tree]"),
        "{h}"
    );
    let h = help(&["lasso"]);
    assert!(h.contains("[default: exact]"), "{h}");
    for sub in ["lista", "pinwheel"] {
        assert!(help(&["train", sub]).contains("--out"));
    }
}

#[test]
fn bad_flags_exit_2_and_write_nothing() {
    let dir = tmp("bad");
    let out = dir.join("never");
    let o = out.to_str().unwrap();
    fails(
        drsae().args(["train", "topographic", "--grid", "1", "--out", o]),
        "--grid",
    );
    fails(
        drsae().args(["train", "topographic", "--start-share", "1", "--out", o]),
        "start_stage",
    );
    fails(
        drsae().args(["train", "inhibition", "--structure", "star", "--out", o]),
        "star",
    );
    fails(
        drsae().args(["train", "pinwheel", "--lambda=-1", "--out", o]),
        "lambda",
    );
    fails(
        drsae().args(["train", "conv", "--lr", "0", "--out", o]),
        "lr",
    );
    fails(
        drsae().args(["train", "lista", "--data", "/nonexistent", "--out", o]),
        "/nonexistent",
    );
    fails(
        drsae().args([
            "train", "lista", "--atoms", "9000", "--train", "5000", "--out", o,
        ]),
        "inputs needed",
    );
    fails(
        drsae().args(["lasso", "--solver", "newton", "--out", o]),
        "newton",
    );
    fails(
        drsae().args(["train", "topographic", "--patch", "40", "--out", o]),
        "patch",
    );
    // Absurd values the hostile sweep of 2026-12-03 found accepted (training then ran on):
    // refused by the library's parameter checks before any data is read.
    for (flag, name) in [
        ("--lr=1e30", "`lr`"),
        ("--lambda=1e30", "`weights`"),
        ("--e-max=1e30", "`e_max`"),
        ("--time-budget=1e30", "`time_budget`"),
        ("--lr=11", "`lr`"),
        ("--reconstruction=1e5", "`weights`"),
    ] {
        fails(drsae().args(["train", "drsae", flag, "--out", o]), name);
    }
    for (family, flag, name) in [
        ("lista", "--lr=1e30", "`lr`"),
        ("conv", "--lr=1e30", "`lr`"),
        ("topographic", "--lr=1e30", "`lr`"),
        ("pinwheel", "--lambda=1e30", "`lambda`"),
        ("inhibition", "--lambda=1e30", "`lambda`"),
        ("inhibition", "--lr-s=1e30", "`lr_s`"),
        ("inhibition", "--time-budget=1e30", "`time_budget`"),
    ] {
        fails(drsae().args(["train", family, flag, "--out", o]), name);
    }
    let x = npy(&dir, 64, 16);
    let x = x.to_str().unwrap();
    for (flag, name) in [
        ("--samples=18446744073709551615", "`samples`"),
        ("--samples=64001", "passes over the 64 rows"),
        ("--lr=1e30", "`lr`"),
        ("--sparsity=1e30", "`sparsity`"),
        ("--aux-coefficient=1e30", "`aux_coefficient`"),
        ("--lr-warmup=18446744073709551615", "`lr_warmup`"),
        ("--lr-decay=2443", "`lr_decay`"),
        ("--sparsity-warmup=2443", "`sparsity_warmup`"),
    ] {
        fails(drsae().args(["train", "sae", x, flag, "--out", o]), name);
    }
    assert!(!out.exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn reproduce_presets() {
    // Every preset resolves to a valid command line.
    for preset in [
        "sample",
        "drsae400",
        "drsae200-t11",
        "drsae200-t2",
        "topographic",
        "topographic-tree",
        "inhibition-grid",
        "conv",
        "pinwheel",
        "lista-curve",
    ] {
        let j = ok(drsae().args(["reproduce", preset, "--dry-run"]));
        assert_eq!(j["preset"], preset);
        assert!(
            j["command"].as_str().unwrap().starts_with("drsae train "),
            "{j}"
        );
        assert!(!j["note"].as_str().unwrap().is_empty());
    }
    let j = ok(drsae().args(["reproduce", "drsae200-t2", "--dry-run"]));
    let s = j["settings"].as_str().unwrap();
    assert!(s.contains("hidden: 200") && s.contains("steps: 2"), "{s}");
    assert!(s.contains("optimizer: \"momentum\""), "{s}");
    // Overrides replace the preset's flags.
    let j = ok(drsae().args(["reproduce", "drsae400", "--dry-run", "--", "--seed", "5"]));
    let c = j["command"].as_str().unwrap();
    assert!(c.contains("--seed 5") && !c.contains("--seed 0"), "{c}");
    // A tiny real run of the LISTA curve.
    let dir = tmp("reproduce");
    let out = dir.join("lista");
    let j = ok(drsae()
        .args([
            "reproduce",
            "lista-curve",
            "--quiet",
            "--",
            "--atoms",
            "20",
            "--train",
            "200",
            "--test",
            "50",
            "--epochs",
            "1",
            "--max-iters",
            "1",
            "--out",
        ])
        .arg(&out));
    has_keys(&j, &["mnist_lista_T1", "mnist_fista_T1"]);
    assert!(out.join("lista.png").exists());
    let never = dir.join("never");
    fails(drsae().args(["reproduce", "paper"]), "paper");
    fails(
        drsae()
            .args(["reproduce", "topographic", "--", "--grid", "0", "--out"])
            .arg(&never),
        "--grid",
    );
    assert!(!never.exists());
    let _ = std::fs::remove_dir_all(&dir);
}
