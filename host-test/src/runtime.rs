//! Loading the component: one `Engine` (pooling allocator, epoch
//! interruption), a compiled-artifact cache on disk keyed by the wasm's hash,
//! and a `Linker` with WASI + wasi:http.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use sha2::{Digest, Sha256};
use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::outgoing::ExchangeLog;
use crate::session::ClientPre;
use crate::state::HostState;

/// The component built by this crate's build script.
pub const DEFAULT_COMPONENT: &str = env!("DATAVERSE_COMPONENT_WASM");

/// How often the engine's epoch advances: the granularity of call deadlines.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// What one instance may use. Every `Store` the runtime creates gets these.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest linear memory one instance may grow to; growing past it traps
    /// the instance with [`crate::GuestTrap::MemoryLimit`].
    pub max_memory_bytes: usize,
    /// Wall-clock budget of one call into the component, its retries and
    /// waits included. A guest still running past it traps at its next epoch
    /// check with [`crate::GuestTrap::DeadlineExceeded`], so a runaway guest
    /// cannot hold a host thread.
    pub call_deadline: Duration,
    /// Instances alive at once: the pooling allocator's slots.
    pub max_instances: u32,
}

impl Limits {
    pub const DEFAULT: Limits = Limits {
        // The component caps response bodies at 64 MiB by default and
        // parses them in place: 256 MiB leaves room for that.
        max_memory_bytes: 256 * 1024 * 1024,
        // Above the component's default retry budget (120 s of waiting plus
        // the attempts themselves).
        call_deadline: Duration::from_secs(300),
        max_instances: 64,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}

/// A compiled component, ready to instantiate many times.
pub struct Runtime {
    pub(crate) engine: Engine,
    pub(crate) pre: ClientPre<HostState>,
    pub(crate) limits: Limits,
    pub(crate) exchange_log: Option<ExchangeLog>,
}

impl Runtime {
    /// Loads the component at `wasm` with default [`Limits`], compiling it
    /// only if no cached artifact for these exact bytes (and this wasmtime)
    /// exists.
    pub fn load(wasm: &Path) -> anyhow::Result<Runtime> {
        Runtime::load_with(wasm, Limits::default())
    }

    /// Loads the component this crate was built with.
    pub fn load_default() -> anyhow::Result<Runtime> {
        Runtime::load(Path::new(DEFAULT_COMPONENT))
    }

    /// [`Runtime::load`] with explicit limits.
    pub fn load_with(wasm: &Path, limits: Limits) -> anyhow::Result<Runtime> {
        let engine = new_engine(&limits)?;
        let bytes = std::fs::read(wasm)
            .with_context(|| format!("reading the component {}", wasm.display()))?;
        let component = load_cached(&engine, &bytes)?;
        Runtime::from_component(engine, &component, limits)
    }

    /// Builds a runtime around an already compiled `component` of `engine`
    /// (an engine made by [`new_engine`] with the same `limits`).
    pub fn from_component(
        engine: Engine,
        component: &Component,
        limits: Limits,
    ) -> anyhow::Result<Runtime> {
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
        let pre = ClientPre::new(linker.instantiate_pre(component)?)?;
        Ok(Runtime {
            engine,
            pre,
            limits,
            exchange_log: None,
        })
    }

    /// Reports every HTTP exchange of every instance to `log` (the CLI's `-v`).
    pub fn with_exchange_log(mut self, log: ExchangeLog) -> Runtime {
        self.exchange_log = Some(log);
        self
    }

    /// The limits every instance of this runtime runs under.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// The epoch ticks a call may run for (see [`Limits::call_deadline`]).
    pub(crate) fn deadline_ticks(&self) -> u64 {
        (self.limits.call_deadline.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64
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
}

/// An engine for the component: the pooling allocator (instantiation is a
/// few memcpys into pre-reserved slots) sized by `limits`, and epoch
/// interruption driven by a background thread that lives as long as the
/// engine does.
pub fn new_engine(limits: &Limits) -> anyhow::Result<Engine> {
    let slots = limits.max_instances.max(1);
    let mut pool = PoolingAllocationConfig::new();
    // One component instance is a handful of core instances (the module and
    // the canonical-ABI shims), one memory and a few tables.
    pool.total_component_instances(slots)
        .total_core_instances(slots * 8)
        .total_memories(slots * 2)
        .total_tables(slots * 8)
        .max_memory_size(limits.max_memory_bytes);
    let mut config = Config::new();
    config
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool))
        .epoch_interruption(true);
    let engine = Engine::new(&config)?;
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
        .context("starting the epoch thread")?;
    Ok(engine)
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

#[cfg(test)]
mod tests {
    use super::*;

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
