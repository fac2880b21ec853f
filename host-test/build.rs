//! Builds the dataverse-wasm component and the gateway component for
//! wasm32-wasip2 (release, size profile) so that `cargo test` / `cargo run
//! -p host-test` need no pre-step.
//! The nested cargo uses its own target directory (`target/wasm`): sharing
//! the outer one would deadlock on cargo's build-directory lock.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let root = manifest_dir
        .parent()
        .expect("host-test lives in the workspace root")
        .to_path_buf();
    for input in [
        "src",
        "wit",
        "gateway/src",
        "gateway/Cargo.toml",
        "Cargo.toml",
        "Cargo.lock",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(input).display());
    }
    let target_dir = root.join("target").join("wasm");
    // The gateway first: it links the core without its `component` feature,
    // and cargo also writes that featureless core as dataverse_wasm.wasm; the
    // client build that follows puts the real component back in its place.
    // (One invocation for both would unify the features and make the gateway
    // export the client world too.)
    build(&root, &target_dir, "dataverse-gateway");
    build(&root, &target_dir, "dataverse-wasm");
    let release = target_dir.join("wasm32-wasip2").join("release");
    println!(
        "cargo:rustc-env=DATAVERSE_COMPONENT_WASM={}",
        release.join("dataverse_wasm.wasm").display()
    );
    println!(
        "cargo:rustc-env=DATAVERSE_GATEWAY_WASM={}",
        release.join("dataverse_gateway.wasm").display()
    );
}

/// `cargo build --release --target wasm32-wasip2 -p PACKAGE` into `target_dir`.
fn build(root: &Path, target_dir: &Path, package: &str) {
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "-p",
            package,
        ])
        .arg("--manifest-path")
        .arg(root.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(target_dir);
    // Settings meant for the host build must not leak into the guest build
    // (clippy's wrapper, host rustflags, a forced target).
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTC_WRAPPER",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "CARGO_BUILD_RUSTFLAGS",
    ] {
        command.env_remove(var);
    }
    let status = command
        .status()
        .expect("could not run cargo to build the component");
    if !status.success() {
        panic!(
            "building {package} failed ({status}); is the target installed? run: rustup target add wasm32-wasip2"
        );
    }
}
