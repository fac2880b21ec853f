//! The Node.js example (`examples/node`) as its README section runs it: the
//! component transpiled by jco, loaded in Node.js, against the fake served on
//! loopback TLS by this crate's CLI. `examples/node/test.sh` does the work and
//! checks the output; this test gives it the binary and the component that
//! `cargo test` just built.

use std::path::Path;
use std::process::Command;

#[test]
fn node_example_prints_whoami_and_accounts_through_jco() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("host-test lives in the workspace root");
    let example = root.join("examples").join("node");
    assert!(
        example.join("node_modules").is_dir(),
        "examples/node/node_modules is missing: run scripts/install-node-deps (npm ci of the pinned jco and preview2-shim) first"
    );
    let output = Command::new("bash")
        .arg(example.join("test.sh"))
        .env("HOST_TEST", env!("CARGO_BIN_EXE_host-test"))
        .env("DATAVERSE_COMPONENT", dataverse_artifacts::CLIENT_PATH)
        .output()
        .expect("bash runs examples/node/test.sh");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "examples/node/test.sh failed ({}):\n{stdout}{stderr}",
        output.status
    );
    // The timings, for `cargo test -- --nocapture`.
    print!("{stdout}");
}
