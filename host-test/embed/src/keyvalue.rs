//! `wasi:keyvalue` (0.2.0-draft: `store`, `atomics`) for the gateway's
//! instances, backed by one in-memory map per bucket that every instance of
//! the server shares — what the gateway needs to ask Entra ID once for the
//! whole process. `wasmtime serve -S keyvalue` gives each instance its own
//! map instead; a fleet on several hosts needs a store behind them all
//! (wasmCloud's NATS JetStream).
//!
//! Values are held as given: the gateway's token is one of them, so nothing
//! here logs a key's value, and a store dies with its server.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use wasmtime::component::{HasData, Linker, Resource};

use crate::state::HostState;

mod generated {
    wasmtime::component::bindgen!({
        world: "shared-store",
        path: "../../wit",
        with: {
            "wasi:keyvalue/store.bucket": super::BucketName,
        },
    });
}

use generated::wasi::keyvalue::{atomics, store};

/// Largest value accepted (a token record is a few KiB): a runaway guest
/// cannot grow the host's memory through the store.
pub const MAX_VALUE_BYTES: usize = 64 * 1024;
/// Largest number of keys in one bucket, for the same reason.
pub const MAX_KEYS: usize = 10_000;

/// One bucket's keys and values.
type Entries = HashMap<String, Vec<u8>>;

/// The buckets, shared by every instance given a clone.
#[derive(Clone, Default)]
pub struct SharedBuckets {
    buckets: Arc<Mutex<HashMap<String, Entries>>>,
}

impl std::fmt::Debug for SharedBuckets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Keys and values stay out of logs: the values are tokens.
        f.debug_struct("SharedBuckets").finish_non_exhaustive()
    }
}

impl SharedBuckets {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Entries>> {
        self.buckets.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The number of keys in bucket `name` (for tests and stats).
    pub fn len(&self, name: &str) -> usize {
        self.lock().get(name).map_or(0, HashMap::len)
    }

    /// Whether no bucket holds anything.
    pub fn is_empty(&self) -> bool {
        self.lock().values().all(HashMap::is_empty)
    }

    /// Stores `value` under `key`, within the limits.
    fn set(&self, bucket: &str, key: String, value: Vec<u8>) -> Result<()> {
        if value.len() > MAX_VALUE_BYTES {
            return Err(store::Error::Other(format!(
                "a value may have at most {MAX_VALUE_BYTES} bytes"
            )));
        }
        let mut buckets = self.lock();
        let entries = buckets.entry(bucket.to_string()).or_default();
        if entries.len() >= MAX_KEYS && !entries.contains_key(&key) {
            return Err(store::Error::Other(format!(
                "a bucket may hold at most {MAX_KEYS} keys"
            )));
        }
        entries.insert(key, value);
        Ok(())
    }

    /// Atomic across instances: the whole read-add-write holds the lock.
    /// A value that is not a number counts as 0, as wasmCloud's stores do.
    fn increment(&self, bucket: &str, key: String, delta: u64) -> Result<u64> {
        let mut buckets = self.lock();
        let entries = buckets.entry(bucket.to_string()).or_default();
        let current = entries
            .get(&key)
            .and_then(|v| std::str::from_utf8(v).ok()?.parse::<u64>().ok())
            .unwrap_or(0);
        let next = current.saturating_add(delta);
        entries.insert(key, next.to_string().into_bytes());
        Ok(next)
    }
}

/// An open bucket: its name in [`SharedBuckets`].
pub struct BucketName(String);

/// Adds `wasi:keyvalue/store` and `atomics` to `linker`, over each store's
/// [`HostState::keyvalue`].
pub(crate) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    store::add_to_linker::<HostState, KeyValue>(linker, |state| state)?;
    atomics::add_to_linker::<HostState, KeyValue>(linker, |state| state)
}

struct KeyValue;

impl HasData for KeyValue {
    type Data<'a> = &'a mut HostState;
}

type Result<T> = std::result::Result<T, store::Error>;

fn bucket<'a>(state: &'a HostState, handle: &Resource<BucketName>) -> wasmtime::Result<&'a str> {
    Ok(state.table.get(handle)?.0.as_str())
}

impl store::Host for HostState {
    fn open(&mut self, identifier: String) -> Result<Resource<BucketName>> {
        self.keyvalue.lock().entry(identifier.clone()).or_default();
        self.table
            .push(BucketName(identifier))
            .map_err(|e| store::Error::Other(e.to_string()))
    }
}

impl store::HostBucket for HostState {
    fn get(&mut self, handle: Resource<BucketName>, key: String) -> Result<Option<Vec<u8>>> {
        let name = bucket(self, &handle).map_err(other)?;
        Ok(self
            .keyvalue
            .lock()
            .get(name)
            .and_then(|b| b.get(&key).cloned()))
    }

    fn set(&mut self, handle: Resource<BucketName>, key: String, value: Vec<u8>) -> Result<()> {
        let name = bucket(self, &handle).map_err(other)?;
        self.keyvalue.set(name, key, value)
    }

    fn delete(&mut self, handle: Resource<BucketName>, key: String) -> Result<()> {
        let name = bucket(self, &handle).map_err(other)?;
        if let Some(entries) = self.keyvalue.lock().get_mut(name) {
            entries.remove(&key);
        }
        Ok(())
    }

    fn exists(&mut self, handle: Resource<BucketName>, key: String) -> Result<bool> {
        let name = bucket(self, &handle).map_err(other)?;
        Ok(self
            .keyvalue
            .lock()
            .get(name)
            .is_some_and(|b| b.contains_key(&key)))
    }

    fn list_keys(
        &mut self,
        handle: Resource<BucketName>,
        _cursor: Option<u64>,
    ) -> Result<store::KeyResponse> {
        let name = bucket(self, &handle).map_err(other)?;
        let mut keys: Vec<String> = self
            .keyvalue
            .lock()
            .get(name)
            .map(|b| b.keys().cloned().collect())
            .unwrap_or_default();
        keys.sort();
        Ok(store::KeyResponse { keys, cursor: None })
    }

    fn drop(&mut self, handle: Resource<BucketName>) -> wasmtime::Result<()> {
        self.table.delete(handle)?;
        Ok(())
    }
}

impl atomics::Host for HostState {
    fn increment(&mut self, handle: Resource<BucketName>, key: String, delta: u64) -> Result<u64> {
        let name = bucket(self, &handle).map_err(other)?;
        self.keyvalue.increment(name, key, delta)
    }
}

fn other(error: wasmtime::Error) -> store::Error {
    store::Error::Other(error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_and_keys_are_capped_so_a_guest_cannot_grow_the_host() {
        let buckets = SharedBuckets::default();
        assert!(
            buckets
                .set("b", "k".into(), vec![0; MAX_VALUE_BYTES])
                .is_ok()
        );
        let too_big = buckets.set("b", "k".into(), vec![0; MAX_VALUE_BYTES + 1]);
        assert!(
            matches!(too_big, Err(store::Error::Other(m)) if m.contains("at most 65536 bytes"))
        );
        for i in 1..MAX_KEYS {
            buckets.set("b", format!("k{i}"), vec![1]).unwrap();
        }
        assert_eq!(buckets.len("b"), MAX_KEYS);
        assert!(buckets.set("b", "one-more".into(), vec![1]).is_err());
        // Replacing a key is still allowed at the cap; other buckets are apart.
        assert!(buckets.set("b", "k1".into(), vec![2]).is_ok());
        assert!(buckets.set("other", "k".into(), vec![1]).is_ok());
    }

    #[test]
    fn increments_are_shared_by_every_clone_and_start_from_zero() {
        let buckets = SharedBuckets::default();
        let clone = buckets.clone();
        assert_eq!(buckets.increment("b", "lease".into(), 1).unwrap(), 1);
        assert_eq!(clone.increment("b", "lease".into(), 1).unwrap(), 2);
        // Not a number: counts as 0.
        buckets.set("b", "junk".into(), b"\xff".to_vec()).unwrap();
        assert_eq!(clone.increment("b", "junk".into(), 5).unwrap(), 5);
        assert_eq!(
            buckets.increment("b", "max".into(), u64::MAX).unwrap(),
            u64::MAX
        );
        assert_eq!(buckets.increment("b", "max".into(), 1).unwrap(), u64::MAX);
        // Concurrent increments from threads: each sees a distinct count.
        let counts: Vec<u64> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..8)
                .map(|_| {
                    let b = buckets.clone();
                    scope.spawn(move || b.increment("b", "race".into(), 1).unwrap())
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let mut sorted = counts;
        sorted.sort();
        assert_eq!(sorted, (1..=8).collect::<Vec<u64>>());
    }
}
