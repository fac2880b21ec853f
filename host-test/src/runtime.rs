//! Loading the component: one `Engine`, a compiled-artifact cache on disk
//! keyed by the wasm's hash, and a `Linker` with WASI + wasi:http.

use std::path::{Path, PathBuf};

use anyhow::Context;
use sha2::{Digest, Sha256};
use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine};

use crate::session::ClientPre;
use crate::state::HostState;

/// The component built by this crate's build script.
pub const DEFAULT_COMPONENT: &str = env!("DATAVERSE_COMPONENT_WASM");

/// A compiled component, ready to instantiate many times.
pub struct Runtime {
    pub(crate) engine: Engine,
    pub(crate) pre: ClientPre<HostState>,
}

impl Runtime {
    /// Loads the component at `wasm`, compiling it only if no cached
    /// artifact for these exact bytes (and this wasmtime) exists.
    pub fn load(wasm: &Path) -> anyhow::Result<Runtime> {
        let engine = Engine::new(&Config::new())?;
        let bytes = std::fs::read(wasm)
            .with_context(|| format!("reading the component {}", wasm.display()))?;
        let component = load_cached(&engine, &bytes)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
        let pre = ClientPre::new(linker.instantiate_pre(&component)?)?;
        Ok(Runtime { engine, pre })
    }

    /// The names of the component's imports and exports, e.g.
    /// `wasi:http/outgoing-handler@0.2.12` and `dataverse:client/web-api@0.1.0`.
    pub fn interface_names(&self) -> (Vec<String>, Vec<String>) {
        let ty = self.pre.instance_pre().component().component_type();
        let imports = ty
            .imports(&self.engine)
            .map(|(name, _)| name.to_string())
            .collect();
        let exports = ty
            .exports(&self.engine)
            .map(|(name, _)| name.to_string())
            .collect();
        (imports, exports)
    }

    /// Loads the component this crate was built with.
    pub fn load_default() -> anyhow::Result<Runtime> {
        Runtime::load(Path::new(DEFAULT_COMPONENT))
    }
}

/// Precompiled artifacts live next to the build output, named by the hash of
/// the wasm and of the engine's compatibility key, so a changed component or
/// a different wasmtime never loads a stale artifact.
fn load_cached(engine: &Engine, wasm: &[u8]) -> anyhow::Result<Component> {
    let mut hasher = Sha256::new();
    hasher.update(wasm);
    let mut engine_key = std::collections::hash_map::DefaultHasher::new();
    std::hash::Hash::hash(&engine.precompile_compatibility_hash(), &mut engine_key);
    hasher.update(std::hash::Hasher::finish(&engine_key).to_le_bytes());
    let key: String = hasher
        .finalize()
        .iter()
        .take(16)
        .map(|b| format!("{b:02x}"))
        .collect();
    let path = cache_dir().join(format!("dataverse-{key}.cwasm"));
    if path.exists() {
        // SAFETY: the file was written by `Engine::precompile_component` of an
        // engine with the same compatibility hash, into our own cache directory.
        if let Ok(component) = unsafe { Component::deserialize_file(engine, &path) } {
            return Ok(component);
        }
    }
    let compiled = engine.precompile_component(wasm)?;
    // Write then rename: concurrent test processes never see a partial file.
    if std::fs::create_dir_all(cache_dir()).is_ok() {
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        if std::fs::write(&tmp, &compiled).is_ok() {
            let _ = std::fs::rename(&tmp, &path);
        }
    }
    // SAFETY: the bytes were produced just now by this engine.
    Ok(unsafe { Component::deserialize(engine, &compiled) }?)
}

fn cache_dir() -> PathBuf {
    match std::env::var_os("DATAVERSE_CACHE_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(DEFAULT_COMPONENT)
            .parent()
            .map(|p| p.join("precompiled"))
            .unwrap_or_else(std::env::temp_dir),
    }
}
