//! The seam between the core and the outside world: `Transport`, and its
//! `wasi:http/outgoing-handler` + `wasi:clocks` + `wasi:random` implementation
//! for the component.

use crate::auth::assertion::Algorithm;
use crate::auth::shared::SharedStore;
use crate::error::Error;
use crate::http::{Request, Response};

/// The component the signer needs, and the interface its host implements:
/// named in [`no_signer`], so the error says exactly what to use instead.
pub const SIGNING_COMPONENT: &str = "dataverse_client_signing.wasm";
pub const SIGNER_INTERFACE: &str = "dataverse:client/signer";

/// The error of a transport that cannot ask a host to sign: the plain
/// `client` component (which imports no signer, so that hosts with only
/// standard WASI run it), the gateway and the command component. Given at
/// `connect`, before anything is sent.
pub fn no_signer() -> Error {
    Error::InvalidSettings(format!(
        "Key Vault signing (KeyVaultUrl) needs {SIGNING_COMPONENT} and a host that implements \
         {SIGNER_INTERFACE}; this component imports no signer"
    ))
}

/// The world outside the pure core: the network, the clock and randomness.
/// One seam, so tests can script all three.
pub trait Transport {
    /// Sends one request and reads the whole response.
    fn send(&mut self, request: &Request) -> Result<Response, Error>;

    /// Sends several requests at once and reads their responses, in the
    /// requests' order. The default sends them one after the other; the
    /// `wasi:http` transport has all of them in flight together.
    fn send_all(&mut self, requests: &[Request]) -> Vec<Result<Response, Error>> {
        requests.iter().map(|request| self.send(request)).collect()
    }

    /// Now, in Unix seconds.
    fn now(&self) -> u64;

    /// Waits (without spinning) before a retry.
    fn sleep(&mut self, millis: u64);

    /// 64 random bits (request ids, retry jitter, assertion ids).
    fn random(&mut self) -> u64;

    /// The files (name, bytes) of the certificate store the host provides,
    /// or of its subdirectory `name` (ServiceClient's `CertificateStoreName`).
    fn certificate_store(&mut self, name: Option<&str>) -> Result<Vec<(String, Vec<u8>)>, Error> {
        let _ = name;
        Err(no_store())
    }

    /// A variable of the environment the host gives the client (the
    /// platform's identity variables: `IDENTITY_ENDPOINT`,
    /// `AZURE_FEDERATED_TOKEN_FILE`, …); `None` when it passed none by
    /// that name.
    fn environment_variable(&self, name: &str) -> Option<String> {
        let _ = name;
        None
    }

    /// Whether `host_certificate` and `host_sign` can reach a signer (the
    /// signing component's transport, a test's script). `false`, the
    /// default, makes the client refuse a key the host holds before
    /// anything is sent, and lets the compiler drop that code path from the
    /// components that cannot sign.
    fn host_signs(&self) -> bool {
        false
    }

    /// The certificate (DER, leaf first) of a key the host holds and signs
    /// with (the WIT `signer`): the component never gets the key itself.
    fn host_certificate(&mut self, key_id: &str) -> Result<Vec<Vec<u8>>, Error> {
        let _ = key_id;
        Err(no_signer())
    }

    /// The host's signature of a SHA-256 `digest` with the key `key_id`.
    fn host_sign(
        &mut self,
        key_id: &str,
        algorithm: Algorithm,
        digest: &[u8],
    ) -> Result<Vec<u8>, Error> {
        let _ = (key_id, algorithm, digest);
        Err(no_signer())
    }

    /// A key-value store the application's instances share (the
    /// gateway's `wasi:keyvalue` bucket), where the client keeps its token
    /// and the discovered authority for the others; `None` (the default):
    /// no sharing, and none of that code is linked.
    fn shared_store(&mut self) -> Option<&mut dyn SharedStore> {
        None
    }

    /// The bytes of a file the host lets the client read (a federated token
    /// file), at most `max_bytes` of them.
    fn read_file(&mut self, path: &str, max_bytes: u64) -> Result<Vec<u8>, Error> {
        let _ = (path, max_bytes);
        Err(Error::InvalidSettings(
            "this host gives the client no files to read (a federated token file must be \
             mapped into the component)"
                .into(),
        ))
    }
}

/// Reads a whole file through `std::fs` (on wasm32-wasip2 that is
/// `wasi:filesystem`, limited to what the host preopened), refusing one
/// larger than `max_bytes`. Messages name the path, never the contents.
pub fn read_file(path: &str, max_bytes: u64) -> Result<Vec<u8>, Error> {
    use std::io::Read;
    let unreadable = |e: std::io::Error| {
        Error::InvalidSettings(format!(
            "the file {path} cannot be read: {e} (the host must map its directory into the \
             component)"
        ))
    };
    let file = std::fs::File::open(path).map_err(unreadable)?;
    let mut bytes = Vec::new();
    file.take(max_bytes.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(unreadable)?;
    if bytes.len() as u64 > max_bytes {
        return Err(Error::InvalidSettings(format!(
            "the file {path} is larger than {max_bytes} bytes"
        )));
    }
    Ok(bytes)
}

/// Where a host maps the certificate store into the component.
pub const CERTIFICATE_STORE_PATH: &str = "/certificates";

/// Largest certificate store file read (a PFX with a long chain is a few KiB).
const MAX_STORE_FILE_BYTES: u64 = 1024 * 1024;

/// At most this many files are read from a store.
const MAX_STORE_FILES: usize = 1000;

fn no_store() -> Error {
    Error::InvalidSettings(format!(
        "AuthType=Certificate needs a certificate store: the host must map a directory of PEM/PFX files at {CERTIFICATE_STORE_PATH} (host-test: --cert-store DIR)"
    ))
}

/// Reads a certificate store directory through `std::fs` (on wasm32-wasip2
/// that is `wasi:filesystem`, limited to what the host preopened).
pub fn read_store(
    root: &std::path::Path,
    name: Option<&str>,
) -> Result<Vec<(String, Vec<u8>)>, Error> {
    if !root.is_dir() {
        return Err(no_store());
    }
    let dir = match name {
        Some(name) if !name.is_empty() => {
            if name.contains(['/', '\\']) || name == ".." || name == "." {
                return Err(Error::InvalidSettings(
                    "CertificateStoreName must be a plain directory name".into(),
                ));
            }
            // ServiceClient's store names ("My") name a subdirectory when the
            // host made one; otherwise the store root is the store.
            let sub = root.join(name);
            if sub.is_dir() {
                sub
            } else {
                root.to_path_buf()
            }
        }
        _ => root.to_path_buf(),
    };
    let unreadable = |e: std::io::Error| {
        Error::InvalidSettings(format!(
            "the certificate store {} cannot be read: {e}",
            dir.display()
        ))
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(&dir).map_err(unreadable)? {
        let entry = entry.map_err(unreadable)?;
        let Ok(meta) = entry.metadata() else { continue };
        if !meta.is_file() || meta.len() > MAX_STORE_FILE_BYTES {
            continue;
        }
        if files.len() == MAX_STORE_FILES {
            break;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        let bytes = std::fs::read(entry.path()).map_err(|e| {
            Error::InvalidSettings(format!("the certificate file {name} cannot be read: {e}"))
        })?;
        files.push((name, bytes));
    }
    files.sort();
    Ok(files)
}

/// Randomness for cryptography (the PSS salt and the RSA blinding of an
/// assertion's signature): `wasi:random` in the component, the OS's
/// elsewhere. Outside `Transport` because jsonwebtoken's signer seam takes
/// no arguments; `wasi:random` rather than `getrandom` so that the component
/// imports one source of randomness.
pub(crate) struct SystemRng;

impl rsa::rand_core::RngCore for SystemRng {
    fn next_u32(&mut self) -> u32 {
        rsa::rand_core::impls::next_u32_via_fill(self)
    }

    fn next_u64(&mut self) -> u64 {
        rsa::rand_core::impls::next_u64_via_fill(self)
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        #[cfg(target_arch = "wasm32")]
        for chunk in dest.chunks_mut(8) {
            let random = bindings::wasi::random::random::get_random_u64().to_le_bytes();
            chunk.copy_from_slice(&random[..chunk.len()]);
        }
        #[cfg(not(target_arch = "wasm32"))]
        rsa::rand_core::OsRng.fill_bytes(dest);
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rsa::rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

impl rsa::rand_core::CryptoRng for SystemRng {}

/// Default largest response body: 64 MiB.
pub const DEFAULT_MAX_RESPONSE_BYTES: u64 = 64 * 1024 * 1024;

#[cfg(target_arch = "wasm32")]
pub use wasi_http::WasiTransport;

/// Bindings of the `transport` world: only the imports the transport uses.
/// Kept apart from the `client` world's bindings (`component`) so that another
/// component (the gateway) can link the core without exporting `client`.
#[cfg(target_arch = "wasm32")]
pub mod bindings {
    wit_bindgen::generate!({
        world: "transport",
        path: "wit",
        generate_all,
    });
}

#[cfg(target_arch = "wasm32")]
mod wasi_http {
    use super::bindings::wasi::clocks::{monotonic_clock, wall_clock};
    use super::bindings::wasi::http::outgoing_handler;
    use super::bindings::wasi::http::types::{
        ErrorCode, Fields, FutureIncomingResponse, IncomingBody, Method, OutgoingBody,
        OutgoingRequest, RequestOptions, Scheme,
    };
    use super::bindings::wasi::io::streams::StreamError;
    use super::bindings::wasi::random::random;
    use super::*;
    use crate::http::split_url;

    /// `wasi:http` transport. Blocking: each call waits on the host's pollable.
    pub struct WasiTransport {
        pub max_response_bytes: u64,
        /// Connect, first-byte and between-bytes timeout.
        pub timeout_ms: Option<u32>,
    }

    impl Transport for WasiTransport {
        fn send(&mut self, request: &Request) -> Result<Response, Error> {
            let future = self.start(request)?;
            self.finish(future, &request.url)
        }

        /// Every request is handed to the host (and its body written)
        /// before the first response is read, so the host has them all in
        /// flight; the responses are then read in order (one still
        /// arriving is buffered by the host meanwhile).
        fn send_all(&mut self, requests: &[Request]) -> Vec<Result<Response, Error>> {
            let started: Vec<_> = requests.iter().map(|r| self.start(r)).collect();
            started
                .into_iter()
                .zip(requests)
                .map(|(future, request)| self.finish(future?, &request.url))
                .collect()
        }

        fn now(&self) -> u64 {
            wall_clock::now().seconds
        }

        fn sleep(&mut self, millis: u64) {
            monotonic_clock::subscribe_duration(millis.saturating_mul(1_000_000)).block();
        }

        fn random(&mut self) -> u64 {
            random::get_random_u64()
        }

        fn certificate_store(
            &mut self,
            name: Option<&str>,
        ) -> Result<Vec<(String, Vec<u8>)>, Error> {
            read_store(std::path::Path::new(CERTIFICATE_STORE_PATH), name)
        }

        fn environment_variable(&self, name: &str) -> Option<String> {
            std::env::var(name).ok()
        }

        fn read_file(&mut self, path: &str, max_bytes: u64) -> Result<Vec<u8>, Error> {
            super::read_file(path, max_bytes)
        }
    }

    impl WasiTransport {
        /// Hands the request to the host and writes its body.
        fn start(&self, request: &Request) -> Result<FutureIncomingResponse, Error> {
            let (outgoing, body) = self.outgoing(request)?;
            let options = self.options();
            // The host must have the request before the body is written: the
            // body stream is a bounded pipe to the host's sender, so writing
            // more than it buffers before `handle` waits for a reader that
            // does not exist yet (any body over 4 KiB hung).
            let future = outgoing_handler::handle(outgoing, options)
                .map_err(|e| failed(&e, &request.url))?;
            // A write fails only when the host stopped taking the body: it
            // could not send the request (the future says why), or the
            // server answered before reading all of it (a 401, a 413), and
            // then its answer is the result.
            let _ = write_body(body, &request.body);
            Ok(future)
        }

        /// Waits for the response to a started request and reads it whole.
        fn finish(&self, future: FutureIncomingResponse, url: &str) -> Result<Response, Error> {
            let incoming = loop {
                match future.get() {
                    Some(result) => break result,
                    None => future.subscribe().block(),
                }
            };
            let incoming = incoming
                .map_err(|()| Error::Transport("the response was already taken".into()))?
                .map_err(|e| failed(&e, url))?;
            let status = incoming.status();
            let headers: Vec<(String, String)> = incoming
                .headers()
                .entries()
                .into_iter()
                .map(|(name, value)| (name, String::from_utf8_lossy(&value).into_owned()))
                .collect();
            // Refuse a declared oversized body before reading a byte of it.
            let declared = content_length(&headers);
            if declared.is_some_and(|len| len > self.max_response_bytes) {
                return Err(too_large(url, self.max_response_bytes));
            }
            let body = incoming
                .consume()
                .map_err(|()| Error::Transport("the response body was already taken".into()))?;
            let body = self.read_body(body, url, declared)?;
            Ok(Response {
                status,
                headers,
                body,
            })
        }

        fn outgoing(&self, request: &Request) -> Result<(OutgoingRequest, OutgoingBody), Error> {
            // Plain http reaches loopback (the settings allowed it with
            // AllowHttpLoopback, for a local test server) and the platform's
            // managed-identity endpoint (a request marked for it), nothing else.
            let parts = split_url(&request.url)
                .filter(|_| request.may_be_sent())
                .ok_or_else(|| {
                    Error::InvalidRequest(format!("not an https URL: {}", request.url))
                })?;
            let scheme = if parts.https {
                Scheme::Https
            } else {
                Scheme::Http
            };
            let headers = Fields::new();
            for (name, value) in &request.headers {
                headers.append(name, value.as_bytes()).map_err(|_| {
                    Error::InvalidRequest(format!("header '{name}' is not allowed"))
                })?;
            }
            if !request.body.is_empty() || request.method != crate::http::Method::Get {
                // Always send a length: some servers refuse chunked POSTs.
                headers
                    .append("content-length", request.body.len().to_string().as_bytes())
                    .map_err(|_| Error::InvalidRequest("content-length".into()))?;
            }
            let outgoing = OutgoingRequest::new(headers);
            let method = match request.method {
                crate::http::Method::Get => Method::Get,
                crate::http::Method::Post => Method::Post,
                crate::http::Method::Patch => Method::Patch,
                crate::http::Method::Put => Method::Put,
                crate::http::Method::Delete => Method::Delete,
            };
            let invalid =
                |what: &str| Error::InvalidRequest(format!("{what} rejected: {}", request.url));
            outgoing
                .set_method(&method)
                .map_err(|()| invalid("method"))?;
            outgoing
                .set_scheme(Some(&scheme))
                .map_err(|()| invalid("scheme"))?;
            outgoing
                .set_authority(Some(parts.authority))
                .map_err(|()| invalid("authority"))?;
            outgoing
                .set_path_with_query(Some(parts.path_and_query))
                .map_err(|()| invalid("path"))?;
            let body = outgoing.body().map_err(|()| invalid("body"))?;
            Ok((outgoing, body))
        }

        fn options(&self) -> Option<RequestOptions> {
            let ms = self.timeout_ms?;
            let options = RequestOptions::new();
            let ns = Some(u64::from(ms) * 1_000_000);
            // A host may not support a timeout; then its own default applies.
            let _ = options.set_connect_timeout(ns);
            let _ = options.set_first_byte_timeout(ns);
            let _ = options.set_between_bytes_timeout(ns);
            Some(options)
        }

        /// Reads the body. With a declared length of at most 8 MiB (already
        /// checked against the limit) into one buffer of that size: a file
        /// chunk is in memory once. Without, as a list of chunks joined once at the
        /// end: growing one buffer by doubling would leave up to twice the
        /// limit behind in linear memory (which never shrinks).
        fn read_body(
            &self,
            body: IncomingBody,
            url: &str,
            declared: Option<u64>,
        ) -> Result<Vec<u8>, Error> {
            // At most 8 MiB up front: a lying length costs no more than that.
            const PREALLOCATE_MAX: u64 = 8 * 1024 * 1024;
            let mut whole: Option<Vec<u8>> = declared
                .filter(|len| *len <= PREALLOCATE_MAX)
                .map(|len| Vec::with_capacity(len as usize));
            let mut chunks: Vec<Vec<u8>> = Vec::new();
            let mut total = 0usize;
            {
                let stream = body.stream().map_err(|()| {
                    Error::Transport("the response stream was already taken".into())
                })?;
                loop {
                    match stream.blocking_read(64 * 1024) {
                        Ok(chunk) => {
                            total += chunk.len();
                            if total as u64 > self.max_response_bytes {
                                return Err(too_large(url, self.max_response_bytes));
                            }
                            match &mut whole {
                                // A body longer than declared still only
                                // grows to the limit checked above.
                                Some(buffer) => buffer.extend_from_slice(&chunk),
                                None => chunks.push(chunk),
                            }
                        }
                        Err(StreamError::Closed) => break,
                        Err(StreamError::LastOperationFailed(e)) => {
                            return Err(Error::Transport(format!(
                                "reading the response from {}: {}",
                                host_of(url),
                                e.to_debug_string()
                            )));
                        }
                    }
                }
            }
            let _ = IncomingBody::finish(body);
            if let Some(buffer) = whole {
                return Ok(buffer);
            }
            if chunks.len() == 1 {
                return Ok(chunks.pop().unwrap_or_default());
            }
            let mut bytes = Vec::with_capacity(total);
            for chunk in chunks {
                bytes.extend_from_slice(&chunk);
            }
            Ok(bytes)
        }
    }

    /// Streams `bytes` into the request body within the host's write budget
    /// (`check-write`), waiting for room when the host has not caught up, and
    /// finishes the body. Fails when the host closed the stream (it could not
    /// send the request; the response future then says why).
    fn write_body(body: OutgoingBody, bytes: &[u8]) -> Result<(), ()> {
        {
            let stream = body.write()?;
            let mut rest = bytes;
            while !rest.is_empty() {
                let budget = stream.check_write().map_err(|_| ())?;
                if budget == 0 {
                    stream.subscribe().block();
                    continue;
                }
                let n = usize::try_from(budget)
                    .unwrap_or(usize::MAX)
                    .min(rest.len());
                stream.write(&rest[..n]).map_err(|_| ())?;
                rest = &rest[n..];
            }
            stream.blocking_flush().map_err(|_| ())?;
        }
        OutgoingBody::finish(body, None).map_err(|_| ())
    }

    fn content_length(headers: &[(String, String)]) -> Option<u64> {
        headers
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, value)| value.trim().parse().ok())
    }

    fn too_large(url: &str, limit: u64) -> Error {
        Error::InvalidResponse(format!(
            "the response from {} is larger than the limit of {limit} bytes (client option max-response-bytes)",
            host_of(url)
        ))
    }

    fn host_of(url: &str) -> &str {
        split_url(url).map_or(url, |p| p.authority)
    }

    /// The error for a request the host could not complete: `Unsent` when
    /// the host says no connection was made (it never sent a byte), else
    /// `Transport` (the request may have reached the server).
    fn failed(error: &ErrorCode, url: &str) -> Error {
        let message = describe(error, url);
        match error {
            // Retrying cannot fix an unknown name, an untrusted certificate
            // or the host's refusal to send (plain http off loopback).
            ErrorCode::DnsError(_)
            | ErrorCode::TlsCertificateError
            | ErrorCode::TlsAlertReceived(_)
            | ErrorCode::HttpRequestDenied => Error::Unsent {
                message,
                permanent: true,
            },
            ErrorCode::ConnectionRefused
            | ErrorCode::ConnectionTimeout
            | ErrorCode::TlsProtocolError => Error::Unsent {
                message,
                permanent: false,
            },
            _ => Error::Transport(message),
        }
    }

    fn describe(error: &ErrorCode, url: &str) -> String {
        let host = host_of(url);
        match error {
            ErrorCode::DnsError(_) => format!("could not resolve {host}"),
            ErrorCode::ConnectionRefused => format!("connection to {host} refused"),
            ErrorCode::ConnectionTimeout => format!("connecting to {host} timed out"),
            ErrorCode::TlsCertificateError | ErrorCode::TlsAlertReceived(_) => {
                format!("TLS with {host} failed (certificate not trusted?)")
            }
            ErrorCode::TlsProtocolError => format!("the TLS handshake with {host} failed"),
            ErrorCode::ConnectionReadTimeout => format!("reading from {host} timed out"),
            ErrorCode::HttpResponseIncomplete | ErrorCode::ConnectionTerminated => {
                format!("the connection to {host} closed before the response was complete")
            }
            // A host's own words (a proxy's refusal, say): shown as they are.
            ErrorCode::InternalError(Some(message)) => {
                format!("request to {host} failed: {message}")
            }
            other => format!("request to {host} failed: {}", code_name(other)),
        }
    }

    /// The case's name in `wasi:http/types` (not `Debug` output: the
    /// generated `Debug` of `error-code` and its payloads is ~6 KB of the
    /// component).
    fn code_name(error: &ErrorCode) -> &'static str {
        match error {
            ErrorCode::DnsTimeout => "DNS-timeout",
            ErrorCode::DnsError(_) => "DNS-error",
            ErrorCode::DestinationNotFound => "destination-not-found",
            ErrorCode::DestinationUnavailable => "destination-unavailable",
            ErrorCode::DestinationIpProhibited => "destination-IP-prohibited",
            ErrorCode::DestinationIpUnroutable => "destination-IP-unroutable",
            ErrorCode::ConnectionRefused => "connection-refused",
            ErrorCode::ConnectionTerminated => "connection-terminated",
            ErrorCode::ConnectionTimeout => "connection-timeout",
            ErrorCode::ConnectionReadTimeout => "connection-read-timeout",
            ErrorCode::ConnectionWriteTimeout => "connection-write-timeout",
            ErrorCode::ConnectionLimitReached => "connection-limit-reached",
            ErrorCode::TlsProtocolError => "TLS-protocol-error",
            ErrorCode::TlsCertificateError => "TLS-certificate-error",
            ErrorCode::TlsAlertReceived(_) => "TLS-alert-received",
            ErrorCode::HttpRequestDenied => "HTTP-request-denied",
            ErrorCode::HttpRequestLengthRequired => "HTTP-request-length-required",
            ErrorCode::HttpRequestBodySize(_) => "HTTP-request-body-size",
            ErrorCode::HttpRequestMethodInvalid => "HTTP-request-method-invalid",
            ErrorCode::HttpRequestUriInvalid => "HTTP-request-URI-invalid",
            ErrorCode::HttpRequestUriTooLong => "HTTP-request-URI-too-long",
            ErrorCode::HttpRequestHeaderSectionSize(_) => "HTTP-request-header-section-size",
            ErrorCode::HttpRequestHeaderSize(_) => "HTTP-request-header-size",
            ErrorCode::HttpRequestTrailerSectionSize(_) => "HTTP-request-trailer-section-size",
            ErrorCode::HttpRequestTrailerSize(_) => "HTTP-request-trailer-size",
            ErrorCode::HttpResponseIncomplete => "HTTP-response-incomplete",
            ErrorCode::HttpResponseHeaderSectionSize(_) => "HTTP-response-header-section-size",
            ErrorCode::HttpResponseHeaderSize(_) => "HTTP-response-header-size",
            ErrorCode::HttpResponseBodySize(_) => "HTTP-response-body-size",
            ErrorCode::HttpResponseTrailerSectionSize(_) => "HTTP-response-trailer-section-size",
            ErrorCode::HttpResponseTrailerSize(_) => "HTTP-response-trailer-size",
            ErrorCode::HttpResponseTransferCoding(_) => "HTTP-response-transfer-coding",
            ErrorCode::HttpResponseContentCoding(_) => "HTTP-response-content-coding",
            ErrorCode::HttpResponseTimeout => "HTTP-response-timeout",
            ErrorCode::HttpUpgradeFailed => "HTTP-upgrade-failed",
            ErrorCode::HttpProtocolError => "HTTP-protocol-error",
            ErrorCode::LoopDetected => "loop-detected",
            ErrorCode::ConfigurationError => "configuration-error",
            ErrorCode::InternalError(_) => "internal-error",
        }
    }
}
