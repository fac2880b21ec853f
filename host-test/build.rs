//! Builds the dataverse-wasm component for wasm32-wasip2 (release, size
//! profile) so that `cargo test` / `cargo run -p host-test` need no pre-step.
//! The nested cargo uses its own target directory (`target/wasm`): sharing
//! the outer one would deadlock on cargo's build-directory lock.

use std::env;
use std::path::PathBuf;
use std::process::Command;

fn main() {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let root = manifest_dir
        .parent()
        .expect("host-test lives in the workspace root")
        .to_path_buf();
    for input in ["src", "wit", "Cargo.toml", "Cargo.lock"] {
        println!("cargo:rerun-if-changed={}", root.join(input).display());
    }
    let target_dir = root.join("target").join("wasm");
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "-p",
            "dataverse-wasm",
        ])
        .arg("--manifest-path")
        .arg(root.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir);
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
            "building the component failed ({status}); is the target installed? run: rustup target add wasm32-wasip2"
        );
    }
    let wasm = target_dir
        .join("wasm32-wasip2")
        .join("release")
        .join("dataverse_wasm.wasm");
    println!(
        "cargo:rustc-env=DATAVERSE_COMPONENT_WASM={}",
        wasm.display()
    );
}
