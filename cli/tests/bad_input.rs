//! Hostile input to `drsae train` and `drsae lasso` (the tests the examples had while they
//! were the command line): forged IDX headers, a PGM claiming 10¹⁰ pixels, a truncated
//! checkpoint and every kind of bad flag each end in an `error:` on stderr with exit code 2,
//! never a panic or a hang, and leave a `--out` that did not exist absent; an interrupted
//! DrSAE run, resumed, writes the whole training curve.

mod common;

use common::drsae;
use std::path::{Path, PathBuf};
use std::process::Output;

fn temp(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("drsae-bad-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn idx(dims: &[u32], payload: &[u8]) -> Vec<u8> {
    let mut v = vec![0, 0, 8, dims.len() as u8];
    for d in dims {
        v.extend_from_slice(&d.to_be_bytes());
    }
    v.extend_from_slice(payload);
    v
}

/// An MNIST directory whose training images are `train_images` (the other files valid).
fn write_mnist(dir: &Path, train_images: Vec<u8>) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("train-images-idx3-ubyte"), train_images).unwrap();
    std::fs::write(dir.join("train-labels-idx1-ubyte"), idx(&[2], &[1, 2])).unwrap();
    std::fs::write(dir.join("t10k-images-idx3-ubyte"), idx(&[1, 2, 2], &[0; 4])).unwrap();
    std::fs::write(dir.join("t10k-labels-idx1-ubyte"), idx(&[1], &[3])).unwrap();
}

/// Runs `drsae args` with a deadline: a hang fails the test instead of hanging it.
fn run(args: &[String], secs: u64) -> Result<Output, String> {
    use std::io::Read;
    let mut child = drsae()
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out_pipe = child.stdout.take().unwrap();
    let mut err_pipe = child.stderr.take().unwrap();
    let out_t = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out_pipe.read_to_end(&mut v);
        v
    });
    let err_t = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err_pipe.read_to_end(&mut v);
        v
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("still running after {secs} s"));
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    Ok(Output {
        status,
        stdout: out_t.join().unwrap(),
        stderr: err_t.join().unwrap(),
    })
}

/// `None` when `drsae args` (with `--out out` appended) failed cleanly: exit status 2, no
/// panic, an `error: ` line containing `expect`, and `out` still absent; else what went
/// wrong.
fn clean_failure(args: &[&str], out: &Path, expect: &str) -> Option<String> {
    let mut full: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    full.extend(["--out".to_string(), out.display().to_string()]);
    let output = match run(&full, 60) {
        Err(e) => return Some(format!("{full:?}: {e}")),
        Ok(o) => o,
    };
    let stderr = String::from_utf8_lossy(&output.stderr);
    let error = stderr.lines().find(|l| l.starts_with("error: "));
    let ok = output.status.code() == Some(2)
        && !stderr.contains("panicked")
        && error.is_some_and(|l| l.contains(expect))
        && !out.exists();
    (!ok).then(|| {
        format!(
            "{full:?}: status {:?}, --out created: {}, stderr {stderr:?}",
            output.status.code(),
            out.exists()
        )
    })
}

#[test]
fn bad_files_fail_cleanly_and_leave_out_absent() {
    let root = temp("files");
    let idx_dir = root.join("idx");
    write_mnist(&idx_dir, idx(&[u32::MAX, 28, 28], &[0; 64]));
    let pgm_dir = root.join("pgm");
    std::fs::create_dir_all(&pgm_dir).unwrap();
    std::fs::write(pgm_dir.join("big.pgm"), b"P5 100000 100000 255\n\0\0\0").unwrap();
    let ckpt_dir = root.join("ckpt");
    std::fs::create_dir_all(&ckpt_dir).unwrap();
    std::fs::write(
        ckpt_dir.join("checkpoint.safetensors"),
        b"\x10\0\0\0\0\0\0\0{\"E\":",
    )
    .unwrap();
    let (i, p, c) = (
        idx_dir.to_str().unwrap(),
        pgm_dir.to_str().unwrap(),
        ckpt_dir.to_str().unwrap(),
    );
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["train", "drsae", "--data", i], "IDX"),
        (
            vec!["train", "drsae", "--data", "/nonexistent/dir"],
            "not found",
        ),
        (
            vec!["train", "drsae", "--data", i, "--checkpoint-dir", c],
            "IDX",
        ),
        (
            vec!["train", "drsae", "--checkpoint-dir", c, "--resume"],
            "safetensors",
        ),
        (vec!["lasso", "--data", i], "IDX"),
        (vec!["train", "conv", "--data", i], "IDX"),
        (vec!["train", "lista", "--data", i], "IDX"),
        (vec!["train", "lista", "--data", p], "PGM"),
        (vec!["train", "pinwheel", "--data", p], "PGM"),
        (vec!["train", "topographic", "--data", p], "PGM"),
        (vec!["train", "inhibition", "--data", p], "PGM"),
    ];
    let failures: Vec<String> = cases
        .iter()
        .enumerate()
        .filter_map(|(k, (args, expect))| {
            clean_failure(args, &root.join(format!("absent{k}/out")), expect)
        })
        .collect();
    std::fs::remove_dir_all(&root).ok();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Every training subcommand and `lasso`, with its size flags and its real-valued flags.
const FLAGS: [(&[&str], &[&str], &[&str]); 8] = [
    (
        &["train", "drsae"],
        &[
            "hidden",
            "batch",
            "steps",
            "epochs-sup",
            "epochs-unsup",
            "val",
        ],
        &[
            "lr",
            "lr-unsup",
            "average",
            "e-max",
            "time-budget",
            "lambda",
        ],
    ),
    (
        &["train", "conv"],
        &["kernel", "maps", "maps2", "pool", "epochs", "train-images"],
        &["lambda", "lambda2", "lr", "time-budget"],
    ),
    (
        &["train", "inhibition"],
        &[
            "grid",
            "radius",
            "radius-start",
            "patch",
            "patches",
            "epochs",
        ],
        &["lambda", "inhibition", "lr", "lr-end", "zca", "time-budget"],
    ),
    (&["lasso"], &["atoms", "n", "iters"], &["lambda", "tol"]),
    (
        &["train", "lista"],
        &["atoms", "train", "test", "epochs", "max-iters"],
        &["lambda", "lr"],
    ),
    (
        &["train", "pinwheel"],
        &["grid", "block", "stride", "kernel", "pool", "windows"],
        &["lambda", "lcn", "lr", "time-budget"],
    ),
    (
        &["train", "topographic"],
        &["grid", "pool", "patch", "patches", "depth", "branching"],
        &[
            "lambda",
            "lr",
            "time-budget",
            "start-share",
            "prune-threshold",
        ],
    ),
    (
        &["train", "sae"],
        &["d-sae", "k", "batch", "samples"],
        &["lr", "sparsity"],
    ),
];

/// Every subcommand, every kind of bad flag: an unknown flag, a missing value, a stray
/// argument, a value that is not a number, NaN, infinite and negative reals, negative,
/// fractional and overflowing sizes. Each exits with status 2 and an `error:` line naming
/// the problem, within seconds, and leaves `--out` absent.
#[test]
fn every_subcommand_refuses_every_kind_of_bad_flag() {
    let root = temp("flags");
    let npy = root.join("x.npy");
    drsae::io::write_npy(&npy, &[0.5; 64 * 16], 64, 16).unwrap();
    // (the command and its input, the bad flags)
    let mut cases: Vec<(Vec<String>, Vec<String>)> = Vec::new();
    for (command, sizes, reals) in FLAGS {
        let base = |extra: &[&str]| {
            let mut v: Vec<String> = command.iter().map(|a| a.to_string()).collect();
            if command == ["train", "sae"] {
                v.push(npy.display().to_string());
            }
            (v, extra.iter().map(|a| a.to_string()).collect())
        };
        cases.push(base(&["--bogus", "1"]));
        if command != ["train", "sae"] {
            cases.push(base(&["stray"]));
        }
        for (i, f) in sizes.iter().enumerate() {
            let flag = format!("--{f}");
            let mut bad = vec!["18446744073709551616", "-1"];
            if i == 0 {
                bad.extend(["abc", "2.5", "NaN", ""]);
                cases.push(base(&[&flag]));
            }
            for b in bad {
                cases.push(base(&[&flag, b]));
            }
        }
        for (i, f) in reals.iter().enumerate() {
            let flag = format!("--{f}");
            let mut bad = vec!["NaN", "inf", "-1"];
            if i == 0 {
                bad.extend(["abc", "-inf", "1e39", "0x10"]);
                cases.push(base(&[&flag]));
            }
            for b in bad {
                // `--flag=-1`: a value, not a flag of its own.
                cases.push(base(&[&format!("{flag}={b}")]));
            }
        }
    }
    let failures = std::sync::Mutex::new(Vec::new());
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| loop {
                let k = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some((command, bad)) = cases.get(k) else {
                    break;
                };
                let out = root.join(format!("out{k}"));
                // Before the bad flags, so that a missing value stays the last flag's.
                let mut full = command.clone();
                full.extend(["--out".to_string(), out.display().to_string()]);
                full.extend(bad.iter().cloned());
                let problem = match run(&full, 30) {
                    Err(e) => Some(e),
                    Ok(o) => {
                        let stderr = String::from_utf8_lossy(&o.stderr);
                        let ok = o.status.code() == Some(2)
                            && stderr.starts_with("error: ")
                            && !stderr.contains("panicked")
                            && !out.exists();
                        (!ok).then(|| format!("status {:?}, stderr {stderr:?}", o.status.code()))
                    }
                };
                if let Some(p) = problem {
                    failures.lock().unwrap().push(format!("{full:?}: {p}"));
                }
            });
        }
    });
    std::fs::remove_dir_all(&root).ok();
    let failures = failures.into_inner().unwrap();
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn resumed_drsae_run_writes_the_whole_training_curve() {
    // 40 random 4 × 4 "digits": 30 to train (6 steps of 5 per epoch), 10 to validate.
    let d = temp("resume");
    let pixels = |n: usize| {
        (0..n * 16)
            .map(|i| (i * 37 % 251) as u8)
            .collect::<Vec<u8>>()
    };
    let labels = |n: usize| (0..n).map(|i| (i % 10) as u8).collect::<Vec<u8>>();
    let files = [
        ("train-images-idx3-ubyte", idx(&[40, 4, 4], &pixels(40))),
        ("train-labels-idx1-ubyte", idx(&[40], &labels(40))),
        ("t10k-images-idx3-ubyte", idx(&[10, 4, 4], &pixels(10))),
        ("t10k-labels-idx1-ubyte", idx(&[10], &labels(10))),
    ];
    for (name, bytes) in files {
        std::fs::write(d.join(name), bytes).unwrap();
    }
    let (out, ck) = (d.join("out"), d.join("ck"));
    let settings: Vec<String> = [
        "--threads",
        "1",
        "train",
        "drsae",
        "--data",
        d.to_str().unwrap(),
        "--val",
        "10",
        "--hidden",
        "8",
        "--batch",
        "5",
        "--epochs-unsup",
        "1",
        "--epochs-sup",
        "2",
        "--checkpoint-dir",
        ck.to_str().unwrap(),
        "--checkpoint-every",
        "2",
        "--out",
        out.to_str().unwrap(),
    ]
    .iter()
    .map(|a| a.to_string())
    .collect();
    let with = |extra: &[&str]| {
        let mut v = settings.clone();
        v.extend(extra.iter().map(|a| a.to_string()));
        run(&v, 60).unwrap()
    };
    let first = with(&["--stop-after-steps", "8"]);
    assert_eq!(first.status.code(), Some(2), "the run was not interrupted");
    assert!(!out.exists(), "an interrupted run wrote --out");
    let resumed = with(&["--resume"]);
    assert!(
        resumed.status.success(),
        "{}",
        String::from_utf8_lossy(&resumed.stderr)
    );
    let curve = std::fs::read_to_string(out.join("curve.csv")).unwrap();
    let epochs: Vec<String> = curve
        .lines()
        .skip(1)
        .map(|l| l.split(',').take(2).collect::<Vec<_>>().join(","))
        .collect();
    // Phase 1's epoch ran before the interruption (step 8 falls in phase 2's first epoch).
    assert_eq!(epochs, ["1,1", "2,1", "2,2"], "curve.csv:\n{curve}");
    std::fs::remove_dir_all(&d).ok();
}
