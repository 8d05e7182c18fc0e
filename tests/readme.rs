//! The README's Rust block is `examples/readme.rs` (which `cargo test` compiles), so the
//! snippet a dependent crate pastes as its `main.rs` always builds.

#[test]
fn the_readme_rust_block_is_the_readme_example() {
    let readme = std::fs::read_to_string("README.md").unwrap();
    let start = readme
        .find("```rust")
        .expect("README.md has a ```rust block");
    let body = &readme[start..];
    let body = &body[body.find('\n').unwrap() + 1..];
    let block = &body[..body.find("```").unwrap()];
    let example = std::fs::read_to_string("examples/readme.rs").unwrap();
    assert_eq!(
        block, example,
        "README's rust block and examples/readme.rs differ"
    );
}
