//! The `wasi:keyvalue` adapter: the bucket the host shares between the
//! application's instances, as the core's [`SharedStore`], offered to the
//! client through its transport. Nothing here decides anything; errors are
//! passed on as text (the core never shows them: a failing store only costs
//! the sharing).

use dataverse_wasm::auth::shared::SharedStore;
use dataverse_wasm::http::{Request, Response};
use dataverse_wasm::transport::WasiTransport;
use dataverse_wasm::{Error, Transport};

use crate::incoming::bindings::wasi::keyvalue::{atomics, store};

/// An open bucket.
pub struct KeyValueBucket(store::Bucket);

impl KeyValueBucket {
    /// Opens the bucket named `identifier` (`GATEWAY_TOKEN_BUCKET`; the empty
    /// name is the host's default store, all `wasmtime serve -S keyvalue`
    /// offers). `None` when the host has no such bucket: no sharing.
    pub fn open(identifier: &str) -> Option<KeyValueBucket> {
        store::open(identifier).ok().map(KeyValueBucket)
    }
}

fn text(error: store::Error) -> String {
    match error {
        store::Error::NoSuchStore => "no such store".into(),
        store::Error::AccessDenied => "access denied".into(),
        store::Error::Other(other) => other,
    }
}

impl SharedStore for KeyValueBucket {
    fn get(&mut self, key: &str) -> Result<Option<Vec<u8>>, String> {
        self.0.get(key).map_err(text)
    }

    fn set(&mut self, key: &str, value: &[u8]) -> Result<(), String> {
        self.0.set(key, value).map_err(text)
    }

    fn delete(&mut self, key: &str) -> Result<(), String> {
        self.0.delete(key).map_err(text)
    }

    fn increment(&mut self, key: &str, delta: u64) -> Result<u64, String> {
        atomics::increment(&self.0, key, delta).map_err(text)
    }
}

/// The gateway's transport: the core's `wasi:http` transport, and the
/// bucket the instances share their token through.
pub struct GatewayTransport {
    pub wasi: WasiTransport,
    pub bucket: Option<KeyValueBucket>,
}

impl Transport for GatewayTransport {
    fn send(&mut self, request: &Request) -> Result<Response, Error> {
        self.wasi.send(request)
    }

    fn send_all(&mut self, requests: &[Request]) -> Vec<Result<Response, Error>> {
        self.wasi.send_all(requests)
    }

    fn now(&self) -> u64 {
        self.wasi.now()
    }

    fn sleep(&mut self, millis: u64) {
        self.wasi.sleep(millis)
    }

    fn random(&mut self) -> u64 {
        self.wasi.random()
    }

    fn certificate_store(&mut self, name: Option<&str>) -> Result<Vec<(String, Vec<u8>)>, Error> {
        self.wasi.certificate_store(name)
    }

    fn environment_variable(&self, name: &str) -> Option<String> {
        self.wasi.environment_variable(name)
    }

    fn read_file(&mut self, path: &str, max_bytes: u64) -> Result<Vec<u8>, Error> {
        self.wasi.read_file(path, max_bytes)
    }

    fn shared_store(&mut self) -> Option<&mut dyn SharedStore> {
        match &mut self.bucket {
            Some(bucket) => Some(bucket),
            None => None,
        }
    }
}
