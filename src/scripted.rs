//! A scripted [`Transport`] for tests of the core and of the crates built on
//! it (the gateway, the fuzz targets): it answers from a script, records
//! what was sent and slept, and tells the time it is set to. Pure, like the
//! rest of the core: nothing here touches a network or a clock.

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;
use std::sync::{Arc, Mutex};

use crate::auth::assertion::Algorithm;
use crate::auth::shared::SharedStore;
use crate::error::Error;
use crate::http::{Request, Response};
use crate::transport::Transport;

/// The script and the record. Borrow it mutably as the client's transport
/// (`Client<&mut Scripted>`), or share it with [`Shared`].
#[derive(Debug, Default)]
pub struct Scripted {
    /// Answered in order; an exhausted script fails the send with
    /// [`Scripted::exhausted`].
    pub answers: VecDeque<Result<Response, Error>>,
    /// Every request sent, in order.
    pub sent: Vec<Request>,
    /// Every sleep asked for, in milliseconds.
    pub slept: Vec<u64>,
    /// What `now` answers (Unix seconds).
    pub now: u64,
    /// What `random` answers.
    pub random: u64,
    /// The transport error once the script is exhausted (default: "script exhausted").
    pub exhausted: Option<String>,
    /// The environment the host passes (`environment_variable`).
    pub env: BTreeMap<String, String>,
    /// The files the host lets the client read (`read_file`), by path; a
    /// test may replace one between calls, as a platform rotates it.
    pub files: BTreeMap<String, Vec<u8>>,
    /// Every file read, by path, in order.
    pub read: Vec<String>,
    /// The host's signer (`host_certificate`, `host_sign`); `None`: a host
    /// without one.
    pub signer: Option<ScriptedSigner>,
    /// The store shared with other instances (`shared_store`), if any.
    pub store: Option<StoreSlot>,
    /// The number of requests of every `send_all`, in order (each is
    /// answered from the script one after the other).
    pub waves: Vec<usize>,
}

/// A host signer: the certificate it returns for any key id, the answers to
/// `host_sign` in order, and what it was asked to sign.
#[derive(Debug, Default)]
pub struct ScriptedSigner {
    pub certificate: Vec<Vec<u8>>,
    pub signatures: VecDeque<Result<Vec<u8>, Error>>,
    /// (key id, algorithm, digest) of every `host_sign`.
    pub signed: Vec<(String, Algorithm, Vec<u8>)>,
}

/// A [`SharedStore`] in a [`Scripted`] (a newtype, so `Scripted` stays `Debug`).
pub struct StoreSlot(pub Box<dyn SharedStore + Send>);

impl std::fmt::Debug for StoreSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoreSlot")
    }
}

impl Scripted {
    /// A script of responses, the clock at `now`.
    pub fn new(now: u64, answers: impl IntoIterator<Item = Response>) -> Scripted {
        Scripted {
            answers: answers.into_iter().map(Ok).collect(),
            now,
            random: 7,
            ..Scripted::default()
        }
    }

    /// The URLs sent, in order.
    pub fn sent_urls(&self) -> Vec<String> {
        self.sent.iter().map(|r| r.url.clone()).collect()
    }
}

impl Transport for &mut Scripted {
    fn send(&mut self, request: &Request) -> Result<Response, Error> {
        self.sent.push(request.clone());
        let exhausted = || {
            let message = self.exhausted.as_deref().unwrap_or("script exhausted");
            Err(Error::Transport(message.to_string()))
        };
        self.answers.pop_front().unwrap_or_else(exhausted)
    }

    fn send_all(&mut self, requests: &[Request]) -> Vec<Result<Response, Error>> {
        self.waves.push(requests.len());
        requests.iter().map(|request| self.send(request)).collect()
    }

    fn now(&self) -> u64 {
        self.now
    }

    fn sleep(&mut self, millis: u64) {
        self.slept.push(millis);
    }

    fn random(&mut self) -> u64 {
        self.random
    }

    fn environment_variable(&self, name: &str) -> Option<String> {
        self.env.get(name).cloned()
    }

    fn shared_store(&mut self) -> Option<&mut dyn SharedStore> {
        match &mut self.store {
            Some(slot) => Some(&mut *slot.0),
            None => None,
        }
    }

    fn read_file(&mut self, path: &str, max_bytes: u64) -> Result<Vec<u8>, Error> {
        self.read.push(path.to_string());
        match self.files.get(path) {
            Some(bytes) if bytes.len() as u64 <= max_bytes => Ok(bytes.clone()),
            Some(_) => Err(Error::InvalidSettings(format!(
                "the file {path} is larger than {max_bytes} bytes"
            ))),
            None => Err(Error::InvalidSettings(format!(
                "the file {path} cannot be read: not found"
            ))),
        }
    }

    fn host_signs(&self) -> bool {
        self.signer.is_some()
    }

    fn host_certificate(&mut self, _key_id: &str) -> Result<Vec<Vec<u8>>, Error> {
        match &self.signer {
            Some(signer) => Ok(signer.certificate.clone()),
            None => Err(crate::transport::no_signer()),
        }
    }

    fn host_sign(
        &mut self,
        key_id: &str,
        algorithm: Algorithm,
        digest: &[u8],
    ) -> Result<Vec<u8>, Error> {
        let Some(signer) = &mut self.signer else {
            return Err(crate::transport::no_signer());
        };
        signer
            .signed
            .push((key_id.to_string(), algorithm, digest.to_vec()));
        signer
            .signatures
            .pop_front()
            .unwrap_or_else(|| Err(Error::Transport("signer script exhausted".into())))
    }
}

/// A [`Scripted`] that clones share: for code that owns its transport (a
/// gateway makes one per connection) while the test reads the record.
#[derive(Clone, Debug, Default)]
pub struct Shared(pub Rc<RefCell<Scripted>>);

impl Shared {
    pub fn new(script: Scripted) -> Shared {
        Shared(Rc::new(RefCell::new(script)))
    }
}

impl Transport for Shared {
    fn send(&mut self, request: &Request) -> Result<Response, Error> {
        (&mut *self.0.borrow_mut()).send(request)
    }

    fn now(&self) -> u64 {
        self.0.borrow().now
    }

    fn sleep(&mut self, millis: u64) {
        self.0.borrow_mut().slept.push(millis);
    }

    fn random(&mut self) -> u64 {
        self.0.borrow().random
    }

    fn environment_variable(&self, name: &str) -> Option<String> {
        self.0.borrow().env.get(name).cloned()
    }

    fn read_file(&mut self, path: &str, max_bytes: u64) -> Result<Vec<u8>, Error> {
        (&mut *self.0.borrow_mut()).read_file(path, max_bytes)
    }
}

/// An in-memory [`SharedStore`] that clones share, as the instances of one
/// application share the host's bucket. `failing` makes every operation
/// fail (a store that is down); `ops` records them (`get key`, `set key`,
/// `delete key`, `increment key`).
#[derive(Clone, Debug, Default)]
pub struct MemoryStore(pub Arc<Mutex<MemoryEntries>>);

#[derive(Debug, Default)]
pub struct MemoryEntries {
    pub entries: BTreeMap<String, Vec<u8>>,
    pub failing: bool,
    pub ops: Vec<String>,
}

impl MemoryStore {
    pub fn entries(&self) -> std::sync::MutexGuard<'_, MemoryEntries> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn op(&self, op: &str, key: &str) -> Result<std::sync::MutexGuard<'_, MemoryEntries>, String> {
        let mut entries = self.entries();
        entries.ops.push(format!("{op} {key}"));
        if entries.failing {
            return Err("the store is down".into());
        }
        Ok(entries)
    }
}

impl SharedStore for MemoryStore {
    fn get(&mut self, key: &str) -> Result<Option<Vec<u8>>, String> {
        Ok(self.op("get", key)?.entries.get(key).cloned())
    }

    fn set(&mut self, key: &str, value: &[u8]) -> Result<(), String> {
        self.op("set", key)?
            .entries
            .insert(key.to_string(), value.to_vec());
        Ok(())
    }

    fn delete(&mut self, key: &str) -> Result<(), String> {
        self.op("delete", key)?.entries.remove(key);
        Ok(())
    }

    fn increment(&mut self, key: &str, delta: u64) -> Result<u64, String> {
        let mut entries = self.op("increment", key)?;
        let current = entries
            .entries
            .get(key)
            .and_then(|v| std::str::from_utf8(v).ok()?.parse::<u64>().ok())
            .unwrap_or(0);
        let next = current.saturating_add(delta);
        entries
            .entries
            .insert(key.to_string(), next.to_string().into_bytes());
        Ok(next)
    }
}

/// A response with these headers and a text body.
pub fn response(status: u16, headers: &[(&str, &str)], body: &str) -> Response {
    Response {
        status,
        headers: headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect(),
        body: body.as_bytes().to_vec(),
    }
}

/// WhoAmI's answer (user `u`, business unit `b`, organization `o`).
pub fn who_am_i() -> Response {
    response(
        200,
        &[],
        r#"{"UserId":"u","BusinessUnitId":"b","OrganizationId":"o"}"#,
    )
}

/// Entra ID refusing a wrong client secret (AADSTS7000215).
pub fn invalid_client() -> Response {
    response(
        401,
        &[],
        r#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided.","error_codes":[7000215]}"#,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::Method;

    #[test]
    fn it_answers_in_order_records_and_fails_when_exhausted() {
        let mut script = Scripted::new(42, [response(200, &[], "a"), response(404, &[], "")]);
        script.exhausted = Some("connection refused".into());
        let shared = Shared::new(script);
        let mut t = shared.clone();
        let get = Request::new(Method::Get, "https://o/x");
        assert_eq!(t.send(&get).unwrap().status, 200);
        assert_eq!(t.send(&get).unwrap().status, 404);
        assert!(matches!(t.send(&get), Err(Error::Transport(m)) if m == "connection refused"));
        t.sleep(5);
        assert_eq!((t.now(), t.random()), (42, 7));
        let record = shared.0.borrow();
        assert_eq!((record.sent.len(), record.slept.as_slice()), (3, &[5][..]));
        assert_eq!(record.sent_urls()[0], "https://o/x");
    }
}
