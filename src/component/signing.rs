//! `HostTransport`: the core's `WasiTransport` plus the `signer` import, the
//! one thing the `client-signing` world imports beyond `client`. Compiled
//! only with the feature `host-signer` (the signing component), and kept out
//! of the core, so that the plain client, the gateway and the command
//! component (which link `WasiTransport`) import no signer their hosts would
//! have to provide.

use dataverse_wasm::auth::assertion::Algorithm;
use dataverse_wasm::error::{AuthFailure, Error};
use dataverse_wasm::http::{Request, Response};
use dataverse_wasm::transport::{Transport, WasiTransport};

use crate::bindings::dataverse::client::signer::{self, SignatureAlgorithm, SignerError};

/// The component's transport: `wasi:http` and friends, and the host's signer.
pub struct HostTransport(pub WasiTransport);

impl Transport for HostTransport {
    fn send(&mut self, request: &Request) -> Result<Response, Error> {
        self.0.send(request)
    }

    fn send_all(&mut self, requests: &[Request]) -> Vec<Result<Response, Error>> {
        self.0.send_all(requests)
    }

    fn now(&self) -> u64 {
        self.0.now()
    }

    fn sleep(&mut self, millis: u64) {
        self.0.sleep(millis)
    }

    fn random(&mut self) -> u64 {
        self.0.random()
    }

    fn certificate_store(&mut self, name: Option<&str>) -> Result<Vec<(String, Vec<u8>)>, Error> {
        self.0.certificate_store(name)
    }

    fn environment_variable(&self, name: &str) -> Option<String> {
        self.0.environment_variable(name)
    }

    fn read_file(&mut self, path: &str, max_bytes: u64) -> Result<Vec<u8>, Error> {
        self.0.read_file(path, max_bytes)
    }

    fn host_signs(&self) -> bool {
        true
    }

    fn host_certificate(&mut self, key_id: &str) -> Result<Vec<Vec<u8>>, Error> {
        signer::certificate(key_id).map_err(from_wit)
    }

    fn host_sign(
        &mut self,
        key_id: &str,
        algorithm: Algorithm,
        digest: &[u8],
    ) -> Result<Vec<u8>, Error> {
        let algorithm = match algorithm {
            Algorithm::Rs256 => SignatureAlgorithm::Rs256,
            Algorithm::Ps256 => SignatureAlgorithm::Ps256,
        };
        signer::sign(key_id, algorithm, digest).map_err(from_wit)
    }
}

/// A host's refusal as the core's error: no signer is a settings problem;
/// a store that refused the host is an authentication failure (HTTP 403,
/// `error` = `signer_denied`), whose message the host wrote to name the
/// store and the permission; an unreachable store is a transport failure.
fn from_wit(error: SignerError) -> Error {
    match error {
        SignerError::NotConfigured(message) => Error::InvalidSettings(message),
        SignerError::Denied(message) => Error::Authentication(Box::new(AuthFailure {
            status: 403,
            error: "signer_denied".into(),
            description: message,
            ..AuthFailure::default()
        })),
        SignerError::Unavailable(message) => Error::Transport(message),
    }
}
