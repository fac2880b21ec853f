//! The wasmtime engine every instance runs in (pooling allocator, epoch
//! interruption) and the on-disk cache of precompiled components.

use std::path::PathBuf;

use sha2::{Digest, Sha256};
use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::error::HostError;
pub use crate::limits::EPOCH_TICK;
use crate::limits::Limits;
use crate::state::HostState;

/// An engine for the component: the pooling allocator (instantiation is a
/// few memcpys into pre-reserved slots) sized by `limits`, and epoch
/// interruption driven by a background thread that lives as long as the
/// engine does.
pub fn new_engine(limits: &Limits) -> Result<Engine, HostError> {
    let slots = limits.max_instances.max(1);
    let mut pool = PoolingAllocationConfig::new();
    // One component instance is a handful of core instances (the module and
    // the canonical-ABI shims), one memory and a few tables.
    pool.total_component_instances(slots)
        .total_core_instances(slots * 8)
        .total_memories(slots * 2)
        .total_tables(slots * 8)
        // One async stack per store (a store runs one call at a time). The
        // default of 1,000 cost a cold process ~1,000 mprotect calls to set
        // up and as many to tear down.
        .total_stacks(slots)
        .max_memory_size(limits.max_memory_bytes);
    let mut config = Config::new();
    config
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool))
        .epoch_interruption(true);
    let engine = Engine::new(&config).map_err(HostError::wasmtime("configuring wasmtime"))?;
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("wasm-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        })
        .map_err(|source| HostError::Io {
            context: "starting the epoch thread".into(),
            source,
        })?;
    Ok(engine)
}

/// What every instance of either component may import: WASI (with nothing
/// of the host behind it but what `HostState` maps in), `wasi:http`,
/// `wasi:keyvalue` (the gateway's shared token store), and the signing
/// client's `signer`.
pub(crate) fn linker(engine: &Engine) -> Result<Linker<HostState>, HostError> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)
        .and_then(|()| wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker))
        .and_then(|()| crate::keyvalue::add_to_linker(&mut linker))
        .map_err(HostError::wasmtime("linking WASI"))?;
    // Always defined, so one linker and one binding (world `client-signing`)
    // fit both client components: the plain one and the gateway import no
    // signer, and a linker may define more than a component imports.
    // Without a runtime signer it answers not-configured.
    crate::bindings::dataverse::client::signer::add_to_linker::<_, wasmtime::component::HasSelf<_>>(
        &mut linker,
        |state: &mut HostState| state,
    )
    .map_err(HostError::wasmtime("linking the signer"))?;
    Ok(linker)
}

/// Precompiled artifacts live in the cache directory, named by the hash of
/// the wasm and of the engine's compatibility key, so a changed component or
/// a different wasmtime never loads a stale artifact. `sha256` is the wasm's
/// digest when the caller already knows it (`dataverse_artifacts` computes
/// it at build time): hashing 1.3 MB is then skipped on every start.
pub(crate) fn load_cached(
    engine: &Engine,
    wasm: &[u8],
    sha256: Option<&str>,
) -> Result<Component, HostError> {
    let key = cache_key(engine, wasm, sha256);
    let path = cache_dir().join(format!("dataverse-{key}.cwasm"));
    if path.exists() {
        // SAFETY: the file was written by `Engine::precompile_component` of an
        // engine with the same compatibility hash, into our own cache directory.
        if let Ok(component) = unsafe { Component::deserialize_file(engine, &path) } {
            return Ok(component);
        }
    }
    let compiled = engine
        .precompile_component(wasm)
        .map_err(HostError::wasmtime("compiling the component"))?;
    // Write then rename: concurrent test processes never see a partial file.
    if std::fs::create_dir_all(cache_dir()).is_ok() {
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        if std::fs::write(&tmp, &compiled).is_ok() {
            let _ = std::fs::rename(&tmp, &path);
        }
    }
    // SAFETY: the bytes were produced just now by this engine.
    unsafe { Component::deserialize(engine, &compiled) }
        .map_err(HostError::wasmtime("loading the compiled component"))
}

/// The name of a component's precompiled artifact: its SHA-256 and the
/// engine's compatibility hash.
fn cache_key(engine: &Engine, wasm: &[u8], sha256: Option<&str>) -> String {
    // The same key either way, so a file loaded by path finds the artifact
    // the embedded bytes left, and the other way round.
    let digest = match sha256 {
        Some(digest) => digest.to_ascii_lowercase(),
        None => Sha256::digest(wasm)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect(),
    };
    let mut hasher = Sha256::new();
    hasher.update(digest.as_bytes());
    let mut engine_key = std::collections::hash_map::DefaultHasher::new();
    std::hash::Hash::hash(&engine.precompile_compatibility_hash(), &mut engine_key);
    hasher.update(std::hash::Hasher::finish(&engine_key).to_le_bytes());
    hasher
        .finalize()
        .iter()
        .take(16)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `DATAVERSE_CACHE_DIR`, else the user's cache directory
/// (`$XDG_CACHE_HOME`, `~/.cache`, `%LOCALAPPDATA%`), else the temp directory.
pub(crate) fn cache_dir() -> PathBuf {
    let var = |name| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(dir) = var("DATAVERSE_CACHE_DIR") {
        return dir;
    }
    var("XDG_CACHE_HOME")
        .or_else(|| var("HOME").map(|home| home.join(".cache")))
        .or_else(|| var("LOCALAPPDATA"))
        .unwrap_or_else(std::env::temp_dir)
        .join("dataverse-wasm")
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_known_digest_names_the_same_artifact_as_hashing_the_bytes() {
        let engine = new_engine(&Limits::default()).unwrap();
        let wasm = b"\0asm not really a component";
        let digest: String = Sha256::digest(wasm)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let hashed = cache_key(&engine, wasm, None);
        assert_eq!(cache_key(&engine, wasm, Some(&digest)), hashed);
        assert_eq!(
            cache_key(&engine, wasm, Some(&digest.to_uppercase())),
            hashed
        );
        assert_ne!(cache_key(&engine, b"other bytes", None), hashed);
        assert_eq!(hashed.len(), 32);
    }

    /// A guest stuck in a loop does not hold the host: the epoch deadline
    /// interrupts it.
    #[test]
    fn a_spinning_guest_is_interrupted_at_its_deadline() {
        let limits = Limits {
            call_deadline: Duration::from_millis(50),
            ..Limits::default()
        };
        let engine = new_engine(&limits).unwrap();
        let module =
            wasmtime::Module::new(&engine, r#"(module (func (export "spin") (loop br 0)))"#)
                .unwrap();
        let mut store = wasmtime::Store::new(&engine, ());
        let started = std::time::Instant::now();
        store.set_epoch_deadline(5);
        let instance = wasmtime::Instance::new(&mut store, &module, &[]).unwrap();
        let spin = instance
            .get_typed_func::<(), ()>(&mut store, "spin")
            .unwrap();
        let error = spin.call(&mut store, ()).unwrap_err();
        assert_eq!(
            error.downcast_ref::<wasmtime::Trap>(),
            Some(&wasmtime::Trap::Interrupt)
        );
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}
