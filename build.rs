//! Sets `cfg(drsae_avx512)` when the compiler has the AVX-512 intrinsics and the `avx512f`
//! target feature (stable since Rust 1.89); older compilers (the MSRV is 1.75) build
//! without the AVX-512 level, which is then never available.
//!
//! Also sets `DRSAE_GIT_COMMIT` (`drsae::BUILD_COMMIT`): the commit of drsae's own git
//! checkout the crate is built from, `+dirty` with uncommitted changes to tracked files,
//! `unknown` outside a checkout of its own (a registry download, a copy inside another
//! repository).

use std::path::Path;
use std::process::Command;

/// `git ARGS` in the crate's directory, if it succeeds.
fn git(args: &[&str]) -> Option<String> {
    let dir = std::env::var("CARGO_MANIFEST_DIR").ok()?;
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .ok()
        .filter(|o| o.status.success())?;
    Some(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn build_commit() -> String {
    let manifest = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
    let own = git(&["rev-parse", "--show-toplevel"]).is_some_and(|top| {
        std::fs::canonicalize(top).ok() == std::fs::canonicalize(&manifest).ok()
    });
    if !own {
        return "unknown".into();
    }
    // Rebuild when HEAD moves, the index changes or a source changes (dirtiness).
    for what in ["HEAD", "index"] {
        if let Some(p) = git(&["rev-parse", "--git-path", what]) {
            let p = Path::new(&manifest).join(p);
            if p.exists() {
                println!("cargo:rerun-if-changed={}", p.display());
            }
        }
    }
    if let Some(r) = git(&["symbolic-ref", "-q", "HEAD"]) {
        if let Some(p) = git(&["rev-parse", "--git-path", &r]) {
            let p = Path::new(&manifest).join(p);
            if p.exists() {
                println!("cargo:rerun-if-changed={}", p.display());
            }
        }
    }
    println!("cargo:rerun-if-changed=src");
    let Some(commit) = git(&["rev-parse", "--short=12", "HEAD"]) else {
        return "unknown".into();
    };
    let dirty =
        git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    if dirty {
        format!("{commit}+dirty")
    } else {
        commit
    }
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rustc-env=DRSAE_GIT_COMMIT={}", build_commit());
    println!("cargo:rustc-check-cfg=cfg(drsae_avx512)");
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let minor = Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|v| v.split('.').nth(1).and_then(|m| m.parse::<u32>().ok()));
    if minor.is_some_and(|m| m >= 89) {
        println!("cargo:rustc-cfg=drsae_avx512");
    }
}
