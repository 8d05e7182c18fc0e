#![allow(clippy::needless_range_loop)]
//! The examples (the crate's command line) answer hostile input with one human line on
//! stderr and a non-zero exit code, never a panic; and an interrupted run, resumed, loses
//! nothing of what it writes.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

fn example(name: &str) -> PathBuf {
    // target/<profile>/deps/<this test> → target/<profile>/examples/<name>
    let exe = std::env::current_exe().unwrap();
    exe.parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples")
        .join(name)
}

fn idx(dims: &[u32], payload: &[u8]) -> Vec<u8> {
    let mut v = vec![0, 0, 8, dims.len() as u8];
    for d in dims {
        v.extend_from_slice(&d.to_be_bytes());
    }
    v.extend_from_slice(payload);
    v
}

/// The example's executable, brought up to date by `cargo build` once per example and test
/// process: a filtered run (`cargo test --test cli_errors`) does not build the examples, and
/// an executable left over from an earlier build may be stale.
fn built_example(name: &str) -> PathBuf {
    static BUILT: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let exe = example(name);
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if !built.iter().any(|b| b == name) {
        let mut cargo = Command::new(env!("CARGO"));
        cargo.args(["build", "--quiet", "--example", name]);
        // The test executable sits in target/<profile>/deps: build the example in that profile.
        if exe
            .parent()
            .and_then(|p| p.parent())
            .and_then(|p| p.file_name())
            == Some("release".as_ref())
        {
            cargo.arg("--release");
        }
        let status = cargo.status().unwrap();
        assert!(
            status.success() && exe.exists(),
            "could not build example {name}"
        );
        built.push(name.to_string());
    }
    exe
}

fn check_fails_cleanly(name: &str, args: &[&str], expect: &str) {
    let exe = built_example(name);
    let out = Command::new(&exe).args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{name} {args:?} succeeded");
    assert!(
        !stderr.contains("panicked"),
        "{name} {args:?} panicked: {stderr}"
    );
    let last = stderr.lines().last().unwrap_or("");
    assert!(
        last.starts_with("error: ") && last.contains(expect),
        "{name} {args:?}: {stderr}"
    );
}

fn temp(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("drsae-cli-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn write_mnist(dir: &Path, train_images: Vec<u8>) {
    std::fs::write(dir.join("train-images-idx3-ubyte"), train_images).unwrap();
    std::fs::write(dir.join("train-labels-idx1-ubyte"), idx(&[2], &[1, 2])).unwrap();
    std::fs::write(dir.join("t10k-images-idx3-ubyte"), idx(&[1, 2, 2], &[0; 4])).unwrap();
    std::fs::write(dir.join("t10k-labels-idx1-ubyte"), idx(&[1], &[3])).unwrap();
}

#[test]
fn forged_idx_header() {
    let d = temp("idx");
    write_mnist(&d, idx(&[u32::MAX, 28, 28], &[0; 64]));
    check_fails_cleanly("mnist", &["--data", d.to_str().unwrap()], "IDX");
    check_fails_cleanly("lasso", &["--data", d.to_str().unwrap()], "IDX");
    check_fails_cleanly("conv", &["--data", d.to_str().unwrap()], "IDX");
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn missing_data_and_bad_flags() {
    check_fails_cleanly("mnist", &["--data", "/nonexistent/dir"], "not found");
    check_fails_cleanly("mnist", &["--batch", "zero"], "--batch");
    check_fails_cleanly("mnist", &["--batch", "0"], "batch");
    check_fails_cleanly("mnist", &["--bogus", "1"], "unknown option");
    // A rate that silences every unit: a collapse error, not a useless model.
    check_fails_cleanly(
        "mnist",
        &[
            "--optimizer",
            "momentum",
            "--lr",
            "1",
            "--hidden",
            "16",
            "--iters",
            "2",
        ],
        "collapsed",
    );
    check_fails_cleanly("mnist", &["--lr-unsup", "-1"], "--lr-unsup");
    check_fails_cleanly("lasso", &["--solver", "magic"], "solver");
    check_fails_cleanly("conv", &["--kernel", "40"], "kernel");
    check_fails_cleanly("conv", &["--maps", "0"], "--maps");
    check_fails_cleanly(
        "pinwheel",
        &["--data", "/nonexistent/dir"],
        "/nonexistent/dir",
    );
    check_fails_cleanly("pinwheel", &["--grid", "0"], "--grid");
    check_fails_cleanly("topographic", &["--groups", "ring"], "--groups");
    check_fails_cleanly(
        "inhibition",
        &["--radius", "2", "--radius-start", "1"],
        "--radius-start",
    );
    check_fails_cleanly("inhibition", &["--epochs", "0"], "--epochs must be");
    check_fails_cleanly(
        "inhibition",
        &["--epochs", "3", "--time-budget", "9"],
        "exclude",
    );
    check_fails_cleanly("topographic", &["--start-share", "1.5"], "--start-share");
    check_fails_cleanly(
        "topographic",
        &["--groups", "tree", "--prune-threshold", "2"],
        "--prune-threshold",
    );
    check_fails_cleanly(
        "topographic",
        &["--groups", "tree", "--depth", "0"],
        "depth",
    );
    check_fails_cleanly(
        "topographic",
        &["--groups", "tree", "--depth", "12"],
        "4,096",
    );
}

#[test]
fn huge_pgm() {
    let d = temp("pgm");
    std::fs::write(d.join("big.pgm"), b"P5 100000 100000 255\n\0\0\0").unwrap();
    check_fails_cleanly(
        "lista",
        &[
            "--natural",
            d.to_str().unwrap(),
            "--max-iters",
            "1",
            "--epochs",
            "1",
            "--train",
            "10",
            "--test",
            "10",
            "--atoms",
            "5",
        ],
        "PGM",
    );
    check_fails_cleanly("pinwheel", &["--data", d.to_str().unwrap()], "PGM");
    std::fs::remove_dir_all(&d).ok();
}

/// Bad input files (forged IDX headers, a PGM claiming 10¹⁰ pixels, a truncated checkpoint,
/// a missing directory) with a `--out` that does not exist: a clean error with status 2, and
/// `--out` is still absent afterwards (the directory is created only once the inputs have
/// been read and checked).
#[test]
fn bad_input_leaves_a_nonexistent_out_absent() {
    let root = temp("out-absent");
    let idx_dir = root.join("idx");
    std::fs::create_dir_all(&idx_dir).unwrap();
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
    let (idx_s, pgm_s, ckpt_s) = (
        idx_dir.display().to_string(),
        pgm_dir.display().to_string(),
        ckpt_dir.display().to_string(),
    );
    let small_lista = [
        "--max-iters",
        "1",
        "--epochs",
        "1",
        "--train",
        "10",
        "--test",
        "10",
    ];
    let mut cases: Vec<(&str, Vec<&str>, &str)> = vec![
        ("mnist", vec!["--data", &idx_s], "IDX"),
        ("mnist", vec!["--data", "/nonexistent/dir"], "not found"),
        (
            "mnist",
            vec!["--data", &idx_s, "--checkpoint-every", "1"],
            "IDX",
        ),
        ("mnist", vec!["--resume", &ckpt_s], "safetensors"),
        ("conv", vec!["--data", &idx_s], "IDX"),
        ("lista", vec!["--data", &idx_s], "IDX"),
        ("pinwheel", vec!["--data", &pgm_s], "PGM"),
        ("topographic", vec!["--data", &pgm_s], "PGM"),
        ("inhibition", vec!["--data", &pgm_s], "PGM"),
    ];
    let mut lista = vec!["--natural", pgm_s.as_str()];
    lista.extend(small_lista);
    cases.push(("lista", lista, "PGM"));
    let mut failures = Vec::new();
    for (k, (name, args, expect)) in cases.iter().enumerate() {
        let out_dir = root.join(format!("absent{k}")).join("out");
        let mut full: Vec<String> = vec!["--out".into(), out_dir.display().to_string()];
        full.extend(args.iter().map(|a| a.to_string()));
        match run_with_deadline(name, &full, 60) {
            Err(e) => failures.push(format!("{name} {full:?}: {e}")),
            Ok(out) => {
                let stderr = String::from_utf8_lossy(&out.stderr);
                let last = stderr.lines().last().unwrap_or("");
                let created = root.join(format!("absent{k}")).exists();
                if out.status.code() != Some(2)
                    || stderr.contains("panicked")
                    || !last.starts_with("error: ")
                    || !last.contains(expect)
                    || created
                {
                    failures.push(format!(
                        "{name} {full:?}: status {:?}, --out created: {created}, stderr {stderr:?}",
                        out.status.code()
                    ));
                }
            }
        }
    }
    std::fs::remove_dir_all(&root).ok();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn truncated_checkpoint() {
    let d = temp("ckpt");
    std::fs::write(
        d.join("checkpoint.safetensors"),
        b"\x10\0\0\0\0\0\0\0{\"E\":",
    )
    .unwrap();
    check_fails_cleanly("mnist", &["--resume", d.to_str().unwrap()], "safetensors");
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn resumed_mnist_run_writes_the_whole_training_curve() {
    // 40 random 4 × 4 "digits": 30 to train (6 steps of 5 per epoch), 10 to validate.
    let d = temp("resume");
    let pixels = |n: usize| {
        (0..n * 16)
            .map(|i| (i * 37 % 251) as u8)
            .collect::<Vec<u8>>()
    };
    let labels = |n: usize| (0..n).map(|i| (i % 10) as u8).collect::<Vec<u8>>();
    std::fs::write(
        d.join("train-images-idx3-ubyte"),
        idx(&[40, 4, 4], &pixels(40)),
    )
    .unwrap();
    std::fs::write(d.join("train-labels-idx1-ubyte"), idx(&[40], &labels(40))).unwrap();
    std::fs::write(
        d.join("t10k-images-idx3-ubyte"),
        idx(&[10, 4, 4], &pixels(10)),
    )
    .unwrap();
    std::fs::write(d.join("t10k-labels-idx1-ubyte"), idx(&[10], &labels(10))).unwrap();
    let out = d.join("out");
    let (data, out_s) = (d.to_str().unwrap(), out.to_str().unwrap());
    let common = [
        "--data",
        data,
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
        "--threads",
        "1",
        "--out",
        out_s,
    ];
    let exe = built_example("mnist");
    let first = Command::new(&exe)
        .args(common)
        .args(["--checkpoint-every", "2", "--stop-after-steps", "8"])
        .output()
        .unwrap();
    assert!(!first.status.success(), "the run was not interrupted");
    let resumed = Command::new(&exe)
        .args(common)
        .args(["--resume", out_s])
        .output()
        .unwrap();
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
}

/// Runs an example with a deadline (a hang fails the test instead of hanging it).
fn run_with_deadline(
    name: &str,
    args: &[String],
    secs: u64,
) -> Result<std::process::Output, String> {
    use std::io::Read;
    let exe = built_example(name);
    let mut child = Command::new(&exe)
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    // Read both pipes on threads so a chatty child cannot block on a full pipe.
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
    Ok(std::process::Output {
        status,
        stdout: out_t.join().unwrap(),
        stderr: err_t.join().unwrap(),
    })
}

/// The examples and, for each: size flags, real-valued flags, size flags that size a
/// buffer (refused at 5·10⁷ by the example's own bound), and whether it takes `--out`.
type Flags = (
    &'static str,
    &'static [&'static str],
    &'static [&'static str],
    &'static [&'static str],
    bool,
);
const FLAGS: [Flags; 8] = [
    (
        "conv",
        &["kernel", "maps", "pool", "epochs", "train-images"],
        &["lambda", "lr", "time-budget"],
        &["maps", "kernel"],
        true,
    ),
    (
        "inhibition",
        &["grid", "radius", "patch", "patches", "epochs"],
        &["lambda", "inhibition", "lr", "zca-eps", "time-budget"],
        &["grid", "patch", "patches"],
        true,
    ),
    (
        "lasso",
        &["atoms", "n", "iters", "repeat"],
        &["lambda", "tol"],
        &["atoms", "n"],
        false,
    ),
    (
        "lista",
        &["atoms", "train", "test", "epochs", "max-iters"],
        &["lambda-mnist", "lambda-natural"],
        &["atoms"],
        true,
    ),
    (
        "mnist",
        &[
            "hidden",
            "batch",
            "iters",
            "epochs-sup",
            "epochs-unsup",
            "patience",
            "val",
        ],
        &["lr", "average", "e-max", "time-budget", "lambda"],
        &["hidden", "iters", "val"],
        true,
    ),
    (
        "pinwheel",
        &["grid", "block", "stride", "kernel", "pool", "windows"],
        &["lambda", "lcn", "lr", "time-budget"],
        &["grid", "block", "stride", "kernel", "windows"],
        true,
    ),
    (
        "topographic",
        &["grid", "pool", "patch", "patches"],
        &["lambda", "lr", "time-budget", "start-share"],
        &["grid", "patch", "patches"],
        true,
    ),
    ("bench", &["threads"], &[], &[], false),
];

/// Every example, every kind of bad flag: an unknown flag, a missing value, a stray
/// positional argument, a value that is not a number, NaN, infinite and negative reals,
/// negative, fractional, overflowing and huge sizes. Each gives exactly one line on stderr
/// (`error: …` naming the flag), exit status 2, within seconds, and leaves no file in
/// `--out`. (Every size flag gets the huge values; the cheaper parse errors are checked on
/// the first flag of each kind.)
#[test]
fn every_example_rejects_every_kind_of_bad_flag_with_status_2() {
    let root = temp("flags");
    let mut cases: Vec<(&str, Vec<String>, String)> = Vec::new();
    let s = |v: &[&str]| v.iter().map(|a| a.to_string()).collect::<Vec<_>>();
    for (name, sizes, reals, buffers, _) in FLAGS {
        cases.push((name, s(&["--bogus", "1"]), "unknown option --bogus".into()));
        cases.push((name, s(&["--threads", "0"]), "--threads".into()));
        cases.push((name, s(&["--threads", "100000"]), "--threads".into()));
        if name != "bench" {
            cases.push((name, s(&["stray"]), "unexpected argument `stray`".into()));
        }
        for (i, f) in sizes.iter().enumerate() {
            let flag = format!("--{f}");
            let mut bad = vec!["18446744073709551616", "1000000000000"];
            if i == 0 {
                bad.extend(["abc", "-1", "2.5", "NaN", ""]);
                cases.push((name, vec![flag.clone()], format!("{flag} needs a value")));
            }
            for b in bad {
                cases.push((name, vec![flag.clone(), b.into()], flag.clone()));
            }
        }
        for (i, f) in reals.iter().enumerate() {
            let flag = format!("--{f}");
            let mut bad = vec!["NaN", "inf", "-1"];
            if i == 0 {
                bad.extend(["abc", "-inf", "1e39", "0x10"]);
                cases.push((name, vec![flag.clone()], format!("{flag} needs a value")));
            }
            for b in bad {
                cases.push((name, vec![flag.clone(), b.into()], flag.clone()));
            }
        }
        for f in buffers.iter() {
            cases.push((
                name,
                vec![format!("--{f}"), "50000000".into()],
                String::new(),
            ));
        }
    }
    // Two at a time: the examples are debug builds and most of the time is start-up.
    let failures = Mutex::new(Vec::new());
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| loop {
                let k = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some((name, args, expect)) = cases.get(k) else {
                    break;
                };
                let out_dir = root.join(format!("out{k}"));
                let mut full = args.clone();
                if FLAGS.iter().any(|f| f.0 == *name && f.4) {
                    // Before the bad flag, so that "needs a value" stays the last flag's.
                    full.splice(0..0, ["--out".to_string(), out_dir.display().to_string()]);
                }
                let problem = match run_with_deadline(name, &full, 30) {
                    Err(e) => Some(e),
                    Ok(out) => {
                        let stderr = String::from_utf8_lossy(&out.stderr);
                        let lines: Vec<&str> =
                            stderr.lines().filter(|l| !l.trim().is_empty()).collect();
                        // Not even the directory is created.
                        let created = out_dir.exists();
                        let ok = out.status.code() == Some(2)
                            && lines.len() == 1
                            && lines[0].starts_with("error: ")
                            && lines[0].contains(expect.as_str())
                            && !created;
                        (!ok).then(|| {
                            format!(
                                "status {:?}, --out created: {created}, stderr {stderr:?}",
                                out.status.code()
                            )
                        })
                    }
                };
                if let Some(p) = problem {
                    failures
                        .lock()
                        .unwrap()
                        .push(format!("{name} {full:?}: {p}"));
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
