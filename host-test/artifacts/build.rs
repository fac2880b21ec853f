//! Builds the four guests — the `dataverse:client` component
//! (src/component), the same with the host's signer imported
//! (src/component-signing, world `client-signing`), the gateway and the
//! command component (cli) — for wasm32-wasip2 in one cargo invocation
//! (release, size profile), so that no test or host build needs a pre-step.
//! They share the core but no feature of it: building them together unifies
//! nothing (`host-signer` is a feature of the component packages only).
//!
//! The nested cargo uses its own target directory (`target/wasm`): sharing
//! the outer one would deadlock on cargo's build-directory lock.
//!
//! Then it compiles the client component for this machine with wasmtime's
//! Cranelift, so a host's first run loads machine code instead of spending
//! most of a second compiling (issue 13). That costs the build a second,
//! compile-only wasmtime (a build dependency cannot share the host's).

use std::env;
use std::path::PathBuf;
use std::process::Command;

use sha2::{Digest, Sha256};

/// (package, file it writes, environment variable prefix for lib.rs).
const GUESTS: [(&str, &str, &str); 4] = [
    (
        "dataverse-client",
        "dataverse_client.wasm",
        "DATAVERSE_CLIENT",
    ),
    (
        "dataverse-client-signing",
        "dataverse_client_signing.wasm",
        "DATAVERSE_SIGNING_CLIENT",
    ),
    (
        "dataverse-gateway",
        "dataverse_gateway.wasm",
        "DATAVERSE_GATEWAY",
    ),
    ("dataverse-cli", "dataverse-cli.wasm", "DATAVERSE_COMMAND"),
];

fn main() {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let root = manifest_dir
        .join("../..")
        .canonicalize()
        .expect("the artifacts crate lives in host-test/artifacts");
    for input in [
        "src",
        "wit",
        "gateway/src",
        "gateway/Cargo.toml",
        "cli/src",
        "cli/Cargo.toml",
        "Cargo.toml",
        "Cargo.lock",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(input).display());
    }
    let target_dir = root.join("target").join("wasm");
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    command.args(["build", "--release", "--target", "wasm32-wasip2"]);
    for (package, _, _) in GUESTS {
        command.args(["-p", package]);
    }
    command
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
        .expect("could not run cargo to build the components");
    if !status.success() {
        panic!(
            "building the components failed ({status}); is the target installed? run: rustup target add wasm32-wasip2"
        );
    }
    let release = target_dir.join("wasm32-wasip2").join("release");
    for (_, file, var) in GUESTS {
        let path = release.join(file);
        let bytes =
            std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        // Hashed here, once, so a host never hashes 1.4 MB at start-up to
        // find its precompiled artifact.
        let digest: String = Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        println!("cargo:rustc-env={var}_WASM={}", path.display());
        println!("cargo:rustc-env={var}_SHA256={digest}");
    }
    let client = release.join(GUESTS[0].1);
    let out = PathBuf::from(env::var("OUT_DIR").expect("set by cargo"));
    let precompiled = out.join("dataverse_client.cwasm");
    std::fs::write(&precompiled, precompile(&client)).expect("writing the precompiled client");
    println!(
        "cargo:rustc-env=DATAVERSE_CLIENT_CWASM={}",
        precompiled.display()
    );
}

/// The client component as wasmtime's machine code for the machine this
/// build runs on, or nothing when the build is for another machine
/// (cross-compiled): a host then compiles it on first use, as before.
///
/// The engine must produce what `dataverse_host::engine::new_engine` would:
/// the same wasmtime (both pinned to one version) and the same settings
/// that change code generation — epoch interruption. The pooling allocator
/// does not change code. `dataverse-host`'s test
/// `a_first_run_loads_the_precompiled_client_instead_of_compiling` fails if
/// they drift; a host that cannot load it falls back to compiling, so a
/// drift costs speed, never correctness.
fn precompile(component: &std::path::Path) -> Vec<u8> {
    if env::var("TARGET").ok() != env::var("HOST").ok() {
        return Vec::new();
    }
    let wasm =
        std::fs::read(component).unwrap_or_else(|e| panic!("reading {}: {e}", component.display()));
    let mut config = wasmtime::Config::new();
    config.epoch_interruption(true);
    let engine = wasmtime::Engine::new(&config).expect("configuring wasmtime");
    engine
        .precompile_component(&wasm)
        .unwrap_or_else(|e| panic!("precompiling {}: {e:?}", component.display()))
}
