//! Sets `cfg(drsae_avx512)` when the compiler has the AVX-512 intrinsics and the `avx512f`
//! target feature (stable since Rust 1.89); older compilers (the MSRV is 1.75) build
//! without the AVX-512 level, which is then never available.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
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
