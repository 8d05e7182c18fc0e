//! Helpers shared by the CLI's integration tests.
#![allow(dead_code)] // each test crate uses its own share of the helpers

use std::process::Command;

/// The `drsae` binary under test, run from the repository root (so that `data/` resolves).
pub fn drsae() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_drsae"));
    c.current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
    c
}

/// Runs `c`, asserts it succeeded (showing its stderr otherwise) and parses the last line
/// of its stdout as JSON.
pub fn ok(c: &mut Command) -> serde_json::Value {
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    serde_json::from_str(stdout.lines().last().unwrap()).unwrap()
}
