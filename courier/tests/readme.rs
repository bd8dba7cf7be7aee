//! The README's example is `examples/readme.rs`, which `cargo test` compiles: the README must
//! show that file's code, word for word.

#[test]
fn the_readme_example_is_the_compiled_one() {
    let readme = include_str!("../../README.md");
    let example = include_str!("../examples/readme.rs");
    let code: String = example
        .lines()
        .skip_while(|line| line.starts_with("//!") || line.is_empty())
        .map(|line| format!("{line}\n"))
        .collect();
    let start = readme
        .find("```rust\n")
        .expect("a rust block in the README")
        + "```rust\n".len();
    let end = start + readme[start..].find("```").expect("the block ends");
    assert_eq!(
        &readme[start..end],
        code,
        "README's example differs from examples/readme.rs"
    );
}
