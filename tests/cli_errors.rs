//! The measurement examples whose outputs results files cite (`bench`, `sae`) answer bad
//! flags with one human line on stderr and exit code 2, never a panic. (The command line
//! proper, `drsae`, has its own such tests in `cli/tests/`.)

use std::path::PathBuf;
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

/// The examples and, for each, the subcommand its flags follow and its size flags.
const FLAGS: [(&str, &[&str], &[&str]); 3] = [
    ("bench", &[], &[]),
    (
        "sae",
        &["throughput"],
        &["d-in", "d-sae", "k", "batch", "steps"],
    ),
    ("sae", &["synthetic"], &["rows", "d-sae", "k", "batch"]),
];

/// Every measurement example, every kind of bad flag: an unknown flag, a missing value, a
/// stray positional argument, bad thread counts, a value that is not a number and
/// negative, fractional and overflowing sizes. Each gives exactly one line on stderr
/// (`error: …` naming the flag) and exit status 2, within seconds.
#[test]
fn every_example_rejects_every_kind_of_bad_flag_with_status_2() {
    let mut cases: Vec<(&str, Vec<String>, String)> = Vec::new();
    let s = |v: &[&str]| v.iter().map(|a| a.to_string()).collect::<Vec<_>>();
    for (name, sub, sizes) in FLAGS {
        let with = |extra: &[&str]| [s(sub), s(extra)].concat();
        cases.push((
            name,
            with(&["--bogus", "1"]),
            "unknown option --bogus".into(),
        ));
        cases.push((name, with(&["--threads", "0"]), "--threads".into()));
        cases.push((name, with(&["--threads", "100000"]), "--threads".into()));
        if name != "bench" {
            cases.push((name, with(&["stray"]), "unexpected argument `stray`".into()));
        }
        for (i, f) in sizes.iter().enumerate() {
            let flag = format!("--{f}");
            let mut bad = vec!["18446744073709551616", "1000000000000"];
            if i == 0 {
                bad.extend(["abc", "-1", "2.5", "NaN", ""]);
                cases.push((name, with(&[&flag]), format!("{flag} needs a value")));
            }
            for b in bad {
                cases.push((name, with(&[&flag, b]), flag.clone()));
            }
        }
    }
    let mut failures = Vec::new();
    for (name, args, expect) in &cases {
        let problem = match run_with_deadline(name, args, 30) {
            Err(e) => Some(e),
            Ok(out) => {
                let stderr = String::from_utf8_lossy(&out.stderr);
                let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
                let ok = out.status.code() == Some(2)
                    && lines.len() == 1
                    && lines[0].starts_with("error: ")
                    && lines[0].contains(expect.as_str());
                (!ok).then(|| format!("status {:?}, stderr {stderr:?}", out.status.code()))
            }
        };
        if let Some(p) = problem {
            failures.push(format!("{name} {args:?}: {p}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
