//! The README's "Embed in wasmtime (Rust)" snippet is `examples/embed.rs`,
//! verbatim; this test runs it and keeps the two from drifting apart.

// `main` is the example's entry point, unused here.
#[allow(dead_code)]
#[path = "../examples/embed.rs"]
mod embed;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_embedding_example_runs() {
    embed::run()
        .await
        .expect("the example runs against the fake");
}

#[test]
fn the_readme_shows_the_embedding_example_verbatim() {
    let readme = include_str!("../../../README.md");
    let example = include_str!("../examples/embed.rs");
    assert!(
        readme.contains(&format!("```rust\n{example}```")),
        "README.md must show host-test/embed/examples/embed.rs verbatim in a ```rust block"
    );
}
