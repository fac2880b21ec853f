//! dataverse-artifacts: the guests of this workspace, built by this crate's
//! build script; the three a host embeds are here as bytes too.
//!
//! - [`CLIENT`]: the `dataverse:client` component (world `client`): imports
//!   only WASI, so any WASI host runs it. Use it unless the certificate's key
//!   stays in Key Vault.
//! - [`SIGNING_CLIENT`]: the same component with the host's signer imported
//!   (world `client-signing`), for `KeyVaultUrl` settings; only a host that
//!   implements `dataverse:client/signer` can instantiate it.
//! - [`GATEWAY`]: the gateway component (`wasi:http/incoming-handler`).
//! - [`COMMAND_PATH`]: the command component (world `command`, exports
//!   `wasi:cli/run`), for `wasmtime run` and `jco run`; no host embeds it.
//!
//! A host that embeds [`CLIENT`] carries the component inside its own
//! binary, so it runs wherever the binary is copied; the `*_PATH` constants
//! name the files the build wrote, for tools that need a file
//! (`wasmtime serve`, jco) and exist only on the machine that built them.

/// The `dataverse:client` component.
pub const CLIENT: &[u8] = include_bytes!(env!("DATAVERSE_CLIENT_WASM"));
/// SHA-256 of [`CLIENT`], lowercase hex.
pub const CLIENT_SHA256: &str = env!("DATAVERSE_CLIENT_SHA256");
/// Where the build wrote [`CLIENT`].
pub const CLIENT_PATH: &str = env!("DATAVERSE_CLIENT_WASM");
/// [`CLIENT`] compiled by wasmtime 48.0.8 for the machine that built this
/// crate (empty when it was cross-compiled). Only a wasmtime of that
/// version, on a CPU with the same features, configured as
/// `dataverse-host`'s engine, can load it; `dataverse_host::Runtime::from_precompiled`
/// tries it and compiles [`CLIENT`] when it cannot.
pub const CLIENT_PRECOMPILED: &[u8] = include_bytes!(env!("DATAVERSE_CLIENT_CWASM"));

/// The client component that asks its host to sign (world `client-signing`).
pub const SIGNING_CLIENT: &[u8] = include_bytes!(env!("DATAVERSE_SIGNING_CLIENT_WASM"));
/// SHA-256 of [`SIGNING_CLIENT`], lowercase hex.
pub const SIGNING_CLIENT_SHA256: &str = env!("DATAVERSE_SIGNING_CLIENT_SHA256");
/// Where the build wrote [`SIGNING_CLIENT`].
pub const SIGNING_CLIENT_PATH: &str = env!("DATAVERSE_SIGNING_CLIENT_WASM");

/// The gateway component.
pub const GATEWAY: &[u8] = include_bytes!(env!("DATAVERSE_GATEWAY_WASM"));
/// SHA-256 of [`GATEWAY`], lowercase hex.
pub const GATEWAY_SHA256: &str = env!("DATAVERSE_GATEWAY_SHA256");
/// Where the build wrote [`GATEWAY`].
pub const GATEWAY_PATH: &str = env!("DATAVERSE_GATEWAY_WASM");

/// Where the build wrote the command component.
pub const COMMAND_PATH: &str = env!("DATAVERSE_COMMAND_WASM");
/// SHA-256 of the command component, lowercase hex.
pub const COMMAND_SHA256: &str = env!("DATAVERSE_COMMAND_SHA256");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_guests_are_components_and_differ() {
        // A component's preamble: magic, then version 0x0d and layer 1.
        const COMPONENT: [u8; 8] = [0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00];
        assert_eq!(CLIENT[..8], COMPONENT);
        assert_eq!(SIGNING_CLIENT[..8], COMPONENT);
        assert_eq!(GATEWAY[..8], COMPONENT);
        assert_ne!(CLIENT_SHA256, GATEWAY_SHA256);
        assert_ne!(CLIENT_SHA256, SIGNING_CLIENT_SHA256);
        assert_eq!(CLIENT_SHA256.len(), 64);
    }
}
