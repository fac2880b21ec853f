//! What a `Store` holds: WASI and wasi:http contexts, the hooks that route the
//! guest's outgoing requests, and the guest's memory accounting.

use std::path::Path;
use std::sync::Arc;
use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;

use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::identity::IdentityEnvironment;
use crate::signer::Signer;
use crate::upstream::OutgoingHooks;

/// Where the guest finds the certificate store the host maps in.
pub use dataverse_wasm::transport::CERTIFICATE_STORE_PATH as CERTIFICATE_STORE_GUEST_PATH;

pub struct HostState {
    pub(crate) wasi: WasiCtx,
    pub(crate) http: WasiHttpCtx,
    pub(crate) table: ResourceTable,
    pub(crate) hooks: OutgoingHooks,
    pub(crate) memory: MemoryLimit,
    /// What the `signer` import asks (none: `not-configured`).
    pub(crate) signer: Option<Arc<dyn Signer>>,
    /// The `wasi:keyvalue` buckets (the gateway's shared token); a fresh,
    /// unshared set unless the server hands every instance the same one.
    pub(crate) keyvalue: crate::keyvalue::SharedBuckets,
}

impl HostState {
    /// `certificate_store`: a host directory the guest may read (read-only)
    /// at [`CERTIFICATE_STORE_GUEST_PATH`]; `env`: the guest's environment
    /// (the gateway's configuration); `identity`: the platform's identity
    /// variables and the federated token directories, each mapped
    /// read-only at its own path. Nothing else of the host's filesystem,
    /// environment or arguments is visible.
    pub(crate) fn new(
        hooks: OutgoingHooks,
        certificate_store: Option<&Path>,
        env: &[(&str, &str)],
        identity: Option<&IdentityEnvironment>,
        memory_limit: usize,
    ) -> wasmtime::Result<HostState> {
        let mut wasi = WasiCtx::builder();
        for (name, value) in env {
            wasi.env(name, value);
        }
        if let Some(dir) = certificate_store {
            wasi.preopened_dir(dir, CERTIFICATE_STORE_GUEST_PATH, FsPerms::ReadOnly)?;
        }
        if let Some(identity) = identity {
            for (name, value) in identity.pairs() {
                wasi.env(name, value);
            }
            for dir in identity.token_directories() {
                let guest = dir.to_string_lossy();
                wasi.preopened_dir(dir, &guest, FsPerms::ReadOnly)?;
            }
        }
        Ok(HostState {
            wasi: wasi.build(),
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            hooks,
            memory: MemoryLimit {
                limit: memory_limit,
                peak: 0,
            },
            signer: None,
            keyvalue: Default::default(),
        })
    }
}

/// Caps the guest's linear memory and remembers the largest size it reached.
pub struct MemoryLimit {
    pub(crate) limit: usize,
    pub(crate) peak: usize,
}

/// The trap reason when a guest grows its memory past [`MemoryLimit`]:
/// failing the growth with an error (rather than returning -1 to the guest,
/// whose allocator would abort with an anonymous `unreachable`) lets the host
/// say why the instance died.
#[derive(Debug)]
pub struct MemoryLimitExceeded {
    pub limit: usize,
    pub desired: usize,
}

impl std::fmt::Display for MemoryLimitExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the instance tried to grow its memory to {} bytes, past its limit of {} bytes",
            self.desired, self.limit
        )
    }
}

impl std::error::Error for MemoryLimitExceeded {}

impl ResourceLimiter for MemoryLimit {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.limit {
            return Err(MemoryLimitExceeded {
                limit: self.limit,
                desired,
            }
            .into());
        }
        self.peak = self.peak.max(desired);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}
