//! The wasmtime engine every instance runs in (pooling allocator, epoch
//! interruption) and the on-disk cache of precompiled components.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::error::HostError;
pub use crate::limits::EPOCH_TICK;
use crate::limits::{Allocation, Limits};
use crate::state::HostState;

/// An engine for the component: the allocator `limits` name (pooled:
/// instantiation is a few memcpys into slots reserved for
/// `limits.max_instances`; or on demand), and epoch interruption driven by
/// a background thread that lives as long as the engine does.
pub fn new_engine(limits: &Limits) -> Result<Engine, HostError> {
    let strategy = match limits.allocation {
        Allocation::Pooled => InstanceAllocationStrategy::Pooling(pool(limits)),
        Allocation::OnDemand => InstanceAllocationStrategy::OnDemand,
    };
    let mut config = Config::new();
    config
        .allocation_strategy(strategy)
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

/// The pooling allocator's slots for `limits.max_instances` instances.
fn pool(limits: &Limits) -> PoolingAllocationConfig {
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
    pool
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

/// How [`load`] got its component.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Loaded {
    /// Its artifact was in the cache directory.
    Cached,
    /// The caller's precompiled bytes fit this engine (now in the cache too).
    Precompiled,
    /// Compiled now (and cached).
    Compiled,
}

/// The component `wasm` for `engine`. Precompiled artifacts live in `dir`
/// (see [`cache_dir`]), named by the hash of the wasm and of the engine's
/// compatibility key, so a changed component or a different wasmtime never
/// loads a stale artifact. `sha256` is the wasm's digest when the caller
/// already knows it (`dataverse_artifacts` computes it at build time):
/// hashing 1 MB is then skipped on every start. `precompiled` is the wasm
/// as machine code made when the host was built
/// (`dataverse_artifacts::CLIENT_PRECOMPILED`), or empty: on a first run it
/// is written to the cache instead of compiling, and loaded from there like
/// any cached artifact — mapped from the file, so later runs never touch
/// the copy inside the binary.
pub(crate) fn load(
    engine: &Engine,
    dir: &Path,
    wasm: &[u8],
    sha256: Option<&str>,
    precompiled: &[u8],
) -> Result<(Component, Loaded), HostError> {
    let path = dir.join(format!(
        "dataverse-{}.cwasm",
        cache_key(engine, wasm, sha256)
    ));
    // SAFETY (both): the file holds `Engine::precompile_component` output —
    // written below by this function, from this engine or from the build's
    // precompiled bytes — in our own cache directory; wasmtime refuses an
    // artifact of an engine it does not fit.
    if let Ok(component) = unsafe { Component::deserialize_file(engine, &path) } {
        return Ok((component, Loaded::Cached));
    }
    if !precompiled.is_empty() {
        if write_atomically(dir, &path, precompiled) {
            match unsafe { Component::deserialize_file(engine, &path) } {
                Ok(component) => return Ok((component, Loaded::Precompiled)),
                // Made for another CPU or engine: compile after all.
                Err(_) => {
                    let _ = std::fs::remove_file(&path);
                }
            }
        // SAFETY: the caller passes `precompile_component` output only.
        } else if let Ok(component) = unsafe { Component::deserialize(engine, precompiled) } {
            return Ok((component, Loaded::Precompiled));
        }
    }
    let compiled = engine
        .precompile_component(wasm)
        .map_err(HostError::wasmtime("compiling the component"))?;
    write_atomically(dir, &path, &compiled);
    // SAFETY: the bytes were produced just now by this engine.
    let component = unsafe { Component::deserialize(engine, &compiled) }
        .map_err(HostError::wasmtime("loading the compiled component"))?;
    Ok((component, Loaded::Compiled))
}

/// Writes then renames, so concurrent processes never see a partial file.
/// A cache that cannot be written only costs speed: false.
fn write_atomically(dir: &Path, path: &Path, bytes: &[u8]) -> bool {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::create_dir_all(dir).is_ok()
        && std::fs::write(&tmp, bytes).is_ok()
        && std::fs::rename(&tmp, path).is_ok()
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

    /// The client compiled by `dataverse-artifacts`' build script fits the
    /// engine every runtime makes, whatever its limits: a first run with an
    /// empty cache writes it there instead of compiling, later runs map it.
    /// An engine that generates other code (no epoch checks) cannot use it
    /// and compiles: a drift between the build's settings and the host's
    /// costs speed, never correctness.
    #[test]
    fn a_first_run_loads_the_precompiled_client_instead_of_compiling() {
        use dataverse_artifacts::{CLIENT, CLIENT_PRECOMPILED, CLIENT_SHA256};
        assert!(!CLIENT_PRECOMPILED.is_empty(), "built for this machine");
        let dir = std::env::temp_dir().join(format!("dataverse-load-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let small = Limits {
            max_memory_bytes: 16 << 20,
            max_instances: 1,
            call_deadline: Duration::from_secs(1),
            allocation: Allocation::OnDemand,
        };
        let how = |engine: &Engine, precompiled: &[u8]| {
            load(engine, &dir, CLIENT, Some(CLIENT_SHA256), precompiled)
                .unwrap()
                .1
        };
        let engine = new_engine(&Limits::default()).unwrap();
        assert_eq!(how(&engine, CLIENT_PRECOMPILED), Loaded::Precompiled);
        let cached: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
        assert_eq!(cached.len(), 1);
        let file = cached[0].as_ref().unwrap().path();
        assert_eq!(std::fs::read(&file).unwrap(), CLIENT_PRECOMPILED);
        assert_eq!(how(&engine, CLIENT_PRECOMPILED), Loaded::Cached);
        // Other limits, the same engine settings: the same artifact.
        assert_eq!(how(&new_engine(&small).unwrap(), &[]), Loaded::Cached);

        // Bytes that are not machine code, or an engine they do not fit:
        // compiled, and the cache holds this engine's own artifact. (An
        // empty component stands in for the client: it compiles in
        // milliseconds, and `load` treats all bytes alike.)
        let _ = std::fs::remove_dir_all(&dir);
        let tiny = b"(component)";
        let how = |engine: &Engine, precompiled: &[u8]| {
            load(engine, &dir, tiny, None, precompiled).unwrap().1
        };
        let other = Engine::new(&Config::new()).unwrap();
        let other_precompiled = other.precompile_component(tiny).unwrap();
        assert_eq!(how(&engine, &other_precompiled), Loaded::Compiled);
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(how(&engine, b"not machine code"), Loaded::Compiled);
        assert_eq!(how(&other, &[]), Loaded::Compiled);
        assert_eq!(how(&other, &[]), Loaded::Cached);
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 2);
        let _ = std::fs::remove_dir_all(&dir);
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
