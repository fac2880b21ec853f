//! Outgoing HTTPS over real sockets: curl-style `--connect-to` rewriting
//! (the Host header and the TLS server name stay the original host), the
//! Mozilla roots plus extra roots (`--cacert`) plus the OS trust store (read
//! when a chain needs it),
//! tunnels through an HTTP proxy ([`Network::with_proxy`], the `proxy`
//! module), and a pool of keep-alive HTTP/1.1 connections shared by every
//! instance that sends through the same `Network` (one TLS handshake per
//! host, not per call). Response bodies stream to the guest; a request is
//! resent by the pool only when not one byte of it was written.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper_util::rt::TokioIo;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody};

use crate::error::HostError;
use crate::proxy::{self, Proxy, ProxyConfig};
use crate::upstream::{Upstream, UpstreamFuture, full};

/// Idle connections kept per destination; more concurrent requests open more
/// connections, and the surplus is closed when they finish.
const MAX_IDLE_PER_DESTINATION: usize = 32;

/// An idle connection older than this is closed instead of reused: servers
/// and load balancers drop idle connections silently (nginx after 75 s, Azure
/// load balancers after 4 min), and a request written into a connection the
/// peer already closed fails in a way that cannot be told apart from one the
/// server received, so it could not be resent safely.
const MAX_IDLE: Duration = Duration::from_secs(30);

/// `HOST1:PORT1:HOST2:PORT2` — connect to HOST2:PORT2 for requests to
/// HOST1:PORT1. An empty HOST1 or PORT1 matches any.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectTo {
    pub from_host: String,
    pub from_port: Option<u16>,
    pub to_host: String,
    pub to_port: u16,
}

impl std::str::FromStr for ConnectTo {
    type Err = HostError;

    fn from_str(s: &str) -> Result<ConnectTo, HostError> {
        let parts: Vec<&str> = s.split(':').collect();
        let [from_host, from_port, to_host, to_port] = parts[..] else {
            return Err(HostError::ConnectTo(s.to_string()));
        };
        let port = |p: &str| {
            p.parse::<u16>()
                .map_err(|_| HostError::ConnectTo(s.to_string()))
        };
        Ok(ConnectTo {
            from_host: from_host.to_ascii_lowercase(),
            from_port: if from_port.is_empty() {
                None
            } else {
                Some(port(from_port)?)
            },
            to_host: to_host.to_string(),
            to_port: port(to_port)?,
        })
    }
}

/// The network upstream.
pub struct Network {
    connect_to: Vec<ConnectTo>,
    /// Plain-http URLs (scheme, authority, path; no query) the guest may
    /// reach beyond loopback: IMDS's token endpoint, and what
    /// [`Network::with_plain_http_endpoint`] adds.
    plain_http: Vec<String>,
    proxy: ProxyConfig,
    tls: TlsConnector,
    idle: Mutex<HashMap<Destination, Vec<(Sender, Instant)>>>,
    connections_opened: AtomicU64,
}

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;
type TrySendError = hyper::client::conn::TrySendError<http::Request<Full<Bytes>>>;

/// Where a connection goes and whom it authenticates: connections are only
/// reused for the same TLS server name, the same target and the same proxy
/// (a tunnel through a proxy and a direct connection never mix).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Destination {
    server_name: String,
    /// The TCP target, or with a proxy the `CONNECT` target.
    to_host: String,
    to_port: u16,
    proxy: Option<Proxy>,
}

impl Network {
    /// A network that connects directly (add proxies with
    /// [`Network::with_proxy`]). It trusts the Mozilla roots,
    /// `extra_roots_pem` (PEM certificates, each also pinned: see
    /// `RootsOrPinned`) and the OS trust store — read the first time a
    /// server's chain leads to none of the others, so a process whose
    /// servers chain to those (Microsoft's do) never pays for reading it.
    pub fn new(
        connect_to: Vec<ConnectTo>,
        extra_roots_pem: Option<&str>,
    ) -> Result<Network, HostError> {
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        let mut pinned = Vec::new();
        if let Some(pem) = extra_roots_pem {
            for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
                let cert = cert.map_err(|e| {
                    HostError::Roots(format!("reading a --cacert certificate: {e}"))
                })?;
                // A self-signed server certificate may carry CA:TRUE, which
                // webpki refuses as a root; it is still pinned below.
                let _ = roots.add(cert.clone());
                pinned.push(cert);
            }
            if pinned.is_empty() {
                return Err(HostError::Roots(
                    "--cacert file holds no PEM certificate".into(),
                ));
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let bundled = verifier(roots.clone(), &provider)?;
        let config = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| HostError::Roots(format!("choosing the TLS versions: {e}")))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(RootsOrPinned {
                bundled,
                roots,
                provider,
                with_os_store: OnceLock::new(),
                pinned,
            }))
            .with_no_client_auth();
        Ok(Network {
            connect_to,
            plain_http: vec![IMDS_TOKEN_URL.to_string()],
            proxy: ProxyConfig::default(),
            tls: TlsConnector::from(Arc::new(config)),
            idle: Mutex::new(HashMap::new()),
            connections_opened: AtomicU64::new(0),
        })
    }

    /// Sends through the proxies `proxy` names (none by default). The CLI
    /// passes `ProxyConfig::from_env(|name| std::env::var(name).ok())`; a
    /// library reads no environment unless told to.
    ///
    /// With a proxy, `--connect-to` rules still apply, as in curl: the
    /// `CONNECT` target is the rewritten host and port, while `NO_PROXY` is
    /// matched against the URL's own host, and TLS still authenticates the
    /// URL's host, end to end through the tunnel.
    pub fn with_proxy(mut self, proxy: ProxyConfig) -> Network {
        self.proxy = proxy;
        self
    }

    /// Lets the guest reach `url` (its path exactly, any query) over plain
    /// http: App Service's `IDENTITY_ENDPOINT` when the platform made it
    /// http on an address that is not loopback (a Linux container's host,
    /// `http://172.16.…:8081/msi/token`). IMDS's token endpoint
    /// (`http://169.254.169.254/metadata/identity/oauth2/token`) is allowed
    /// from the start; every other plain-http URL off loopback is refused.
    /// These requests never go through a proxy (the endpoints are local to
    /// the machine), but `--connect-to` rules apply to them.
    pub fn with_plain_http_endpoint(mut self, url: &str) -> Result<Network, HostError> {
        let uri: http::Uri = url
            .parse()
            .map_err(|_| HostError::PlainHttpEndpoint(url.to_string()))?;
        if uri.scheme() != Some(&http::uri::Scheme::HTTP) || uri.host().is_none() {
            return Err(HostError::PlainHttpEndpoint(url.to_string()));
        }
        self.plain_http.push(endpoint_of(&uri));
        Ok(self)
    }

    /// The proxies this network sends through.
    pub fn proxy(&self) -> &ProxyConfig {
        &self.proxy
    }

    /// TCP + TLS connections opened so far (each one a TLS handshake).
    pub fn connections_opened(&self) -> u64 {
        self.connections_opened.load(Ordering::Relaxed)
    }

    /// Where to open the TCP connection for `host:port`.
    pub fn destination(&self, host: &str, port: u16) -> (String, u16) {
        for rule in &self.connect_to {
            let host_matches =
                rule.from_host.is_empty() || rule.from_host.eq_ignore_ascii_case(host);
            let port_matches = rule.from_port.is_none_or(|p| p == port);
            if host_matches && port_matches {
                return (rule.to_host.clone(), rule.to_port);
            }
        }
        (host.to_string(), port)
    }

    /// Sends one request, on an idle keep-alive connection to the same
    /// destination when there is one, and returns the response as soon as
    /// its head arrives. The body streams: the host holds at most one frame
    /// of it, the guest stops reading at its own cap (and the connection is
    /// then dropped), and the connection returns to the pool only once the
    /// body has been read to the end.
    pub async fn send(
        self: &Arc<Self>,
        request: http::Request<Bytes>,
        options: RequestOptions,
    ) -> Result<http::Response<WasiBody>, HttpError> {
        let uri = request.uri().clone();
        if uri.scheme() == Some(&http::uri::Scheme::HTTP) {
            if self.plain_http.contains(&endpoint_of(&uri)) {
                let host = uri.host().ok_or(HttpError::HttpRequestUriInvalid)?;
                let (to_host, to_port) = self.destination(host, uri.port_u16().unwrap_or(80));
                // Off Azure nothing answers at IMDS's address, and a SYN to
                // it may wait minutes: bound the connect even when the guest
                // set no timeout.
                let connect = options.connect_timeout.or(Some(IDENTITY_CONNECT_TIMEOUT));
                return send_plain(request, Some((to_host, to_port)), None, connect).await;
            }
            let proxy = self.proxy.proxy_for(&uri).filter(|p| p.is_loopback());
            return send_plain(request, None, proxy, options.connect_timeout).await;
        }
        if uri.scheme() != Some(&http::uri::Scheme::HTTPS) {
            return Err(HttpError::HttpProtocolError);
        }
        let host = uri
            .host()
            .ok_or(HttpError::HttpRequestUriInvalid)?
            .to_string();
        let port = uri.port_u16().unwrap_or(443);
        let (to_host, to_port) = self.destination(&host, port);
        let destination = Destination {
            server_name: host.clone(),
            to_host,
            to_port,
            proxy: self.proxy.proxy_for(&uri).cloned(),
        };

        // Origin-form on the wire; the Host header keeps the original host.
        let (mut parts, body) = request.into_parts();
        let path = uri.path_and_query().map_or("/", |p| p.as_str());
        parts.uri = path.parse().map_err(|_| HttpError::HttpRequestUriInvalid)?;
        let host_header = if port == 443 {
            host.clone()
        } else {
            format!("{host}:{port}")
        };
        parts.headers.insert(
            http::header::HOST,
            host_header
                .parse()
                .map_err(|_| HttpError::HttpRequestUriInvalid)?,
        );
        let request = http::Request::from_parts(parts, Full::new(body));

        let mut sender = match self.take_idle(&destination).await {
            Some(sender) => sender,
            None => self.open(&destination, &options).await?,
        };
        let response = match self.first_byte(&mut sender, request, &options).await? {
            Ok(response) => response,
            // hyper gives the request back only when not one byte of it was
            // written (the connection closed before it was dispatched): then,
            // and only then, it is sent once more on a new connection, whatever
            // its method. A request that was written, even partly, may have
            // reached the server; whether to send it again is the guest's retry
            // policy's decision, and counts as an attempt.
            Err(mut error) => match error.take_message() {
                Some(unsent) => {
                    sender = self.open(&destination, &options).await?;
                    self.first_byte(&mut sender, unsent, &options)
                        .await?
                        .map_err(|e| after_writing(e.into_error()))?
                }
                None => return Err(after_writing(error.into_error())),
            },
        };
        let between_bytes = options.between_bytes_timeout;
        Ok(response.map(|incoming| {
            ResponseBody {
                incoming,
                between_bytes,
                deadline: None,
                release: Some((self.clone(), destination, sender)),
            }
            .boxed_unsync()
        }))
    }

    /// Sends `request` on `sender` and waits for the response head, within
    /// the first-byte timeout.
    async fn first_byte(
        &self,
        sender: &mut Sender,
        request: http::Request<Full<Bytes>>,
        options: &RequestOptions,
    ) -> Result<Result<http::Response<Incoming>, TrySendError>, HttpError> {
        with_timeout(
            options.first_byte_timeout,
            sender.try_send_request(request),
            HttpError::ConnectionReadTimeout,
        )
        .await
    }

    /// An idle connection to `destination`, once it can take a request (a
    /// connection goes back to the pool as soon as its response body is
    /// read, possibly a moment before hyper has marked it idle).
    async fn take_idle(&self, destination: &Destination) -> Option<Sender> {
        loop {
            let (mut sender, since) = {
                let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
                idle.get_mut(destination)?.pop()?
            };
            if since.elapsed() < MAX_IDLE && !sender.is_closed() && sender.ready().await.is_ok() {
                return Some(sender);
            }
        }
    }

    fn put_idle(&self, destination: Destination, sender: Sender) {
        if sender.is_closed() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        let senders = idle.entry(destination).or_default();
        // The oldest idle connections are the likeliest to be stale: drop them.
        senders.retain(|(_, since)| since.elapsed() < MAX_IDLE);
        if senders.len() < MAX_IDLE_PER_DESTINATION {
            senders.push((sender, Instant::now()));
        }
    }

    /// A new TCP (+ CONNECT tunnel) + TLS + HTTP/1.1 connection, within
    /// the connect timeout.
    async fn open(
        &self,
        destination: &Destination,
        options: &RequestOptions,
    ) -> Result<Sender, HttpError> {
        let connect = async {
            let tcp = match &destination.proxy {
                None => connect_tcp(&destination.to_host, destination.to_port).await?,
                Some(proxy) => {
                    let mut tcp = connect_tcp(proxy.host(), proxy.port())
                        .await
                        .map_err(|e| proxy_unreachable(e, proxy))?;
                    proxy::open_tunnel(&mut tcp, proxy, &destination.to_host, destination.to_port)
                        .await
                        .map_err(proxy_failure)?;
                    tcp
                }
            };
            let _ = tcp.set_nodelay(true);
            let server_name = ServerName::try_from(destination.server_name.clone())
                .map_err(|_| HttpError::HttpRequestUriInvalid)?;
            self.tls.connect(server_name, tcp).await.map_err(|e| {
                if e.to_string().contains("certificate") {
                    HttpError::TlsCertificateError
                } else {
                    HttpError::TlsProtocolError
                }
            })
        };
        let tls = with_timeout(
            options.connect_timeout,
            connect,
            HttpError::ConnectionTimeout,
        )
        .await??;
        self.connections_opened.fetch_add(1, Ordering::Relaxed);
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await?;
        tokio::spawn(connection);
        Ok(sender)
    }
}

/// A TCP connection to `host:port`. It resolves first, so that an unknown
/// name (a typo in `Url`) is a DNS error, which the guest does not retry,
/// not "refused".
async fn connect_tcp(host: &str, port: u16) -> Result<TcpStream, HttpError> {
    let addresses: Vec<_> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|_| HttpError::DnsError {
            rcode: None,
            info_code: None,
        })?
        .collect();
    TcpStream::connect(&addresses[..])
        .await
        .map_err(|_| HttpError::ConnectionRefused)
}

/// What the guest hears when the proxy itself cannot be reached. Refused
/// and timed out keep their codes: nothing was sent, and the guest retries
/// those even for a POST, which is right for a proxy restarting. A proxy
/// name that does not resolve is said in words instead: as a DNS error the
/// guest would blame the org's host.
fn proxy_unreachable(error: HttpError, proxy: &Proxy) -> HttpError {
    match error {
        HttpError::DnsError { .. } => {
            HttpError::InternalError(Some(format!("could not resolve the proxy {proxy}")))
        }
        other => other,
    }
}

/// A proxy refusing the tunnel, or answering nonsense, reaches the guest as
/// `internal-error` carrying the [`HostError`]'s text (which names the proxy
/// and the status, never its credentials): the only `wasi:http` error code
/// with room for words, and the guest puts those words in its transport
/// error. (The guest treats it as a transport failure: retried for an
/// idempotent request, not for a POST.)
fn proxy_failure(error: HostError) -> HttpError {
    HttpError::InternalError(Some(error.to_string()))
}

/// What the guest hears when a request was written and no answer came: the
/// peer closing or resetting the connection is `ConnectionTerminated` (the
/// request may have been received), not a protocol error.
fn after_writing(error: hyper::Error) -> HttpError {
    let io = std::error::Error::source(&error).and_then(|e| e.downcast_ref::<std::io::Error>());
    if error.is_incomplete_message() || error.is_closed() || error.is_canceled() || io.is_some() {
        HttpError::ConnectionTerminated
    } else {
        error.into()
    }
}

/// A response body read from a pooled connection: at most one frame at a
/// time, each within the between-bytes timeout. Read to the end, it hands
/// the connection back to the pool; dropped before that (the guest stopped
/// at its cap, or failed), the connection is closed with it.
struct ResponseBody {
    incoming: Incoming,
    between_bytes: Option<Duration>,
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
    release: Option<(Arc<Network>, Destination, Sender)>,
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = HttpError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, HttpError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.incoming).poll_frame(cx) {
            Poll::Ready(frame) => {
                this.deadline = None;
                if frame.is_none()
                    && let Some((network, destination, sender)) = this.release.take()
                {
                    network.put_idle(destination, sender);
                }
                Poll::Ready(frame.map(|f| f.map_err(HttpError::from)))
            }
            Poll::Pending => {
                let Some(limit) = this.between_bytes else {
                    return Poll::Pending;
                };
                let deadline = this
                    .deadline
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
                match deadline.as_mut().poll(cx) {
                    Poll::Ready(()) => {
                        this.release = None;
                        Poll::Ready(Some(Err(HttpError::ConnectionReadTimeout)))
                    }
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.incoming.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.incoming.size_hint()
    }
}

fn verifier(
    roots: rustls::RootCertStore,
    provider: &Arc<rustls::crypto::CryptoProvider>,
) -> Result<Arc<rustls::client::WebPkiServerVerifier>, HostError> {
    rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| HostError::Roots(format!("building the certificate verifier: {e}")))
}

/// Verifies the server's chain against the Mozilla roots and `--cacert`'s;
/// when they know none of its issuers, against those and the OS trust
/// store (read then, once). Failing that, it accepts a server certificate
/// that is byte-for-byte one given in `--cacert` and valid for the server
/// name — what curl does with a self-signed certificate. The handshake
/// signature is always checked, so the server must hold the key.
#[derive(Debug)]
struct RootsOrPinned {
    bundled: Arc<rustls::client::WebPkiServerVerifier>,
    /// What `bundled` was built from, for `with_os_store`.
    roots: rustls::RootCertStore,
    provider: Arc<rustls::crypto::CryptoProvider>,
    /// `roots` and the OS store: a company's own root CA, or the one a
    /// TLS-inspecting proxy re-signs traffic with. Unreadable files and
    /// certificates webpki cannot use are skipped: a broken store must not
    /// stop a host the Mozilla roots serve.
    with_os_store: OnceLock<Option<Arc<rustls::client::WebPkiServerVerifier>>>,
    pinned: Vec<CertificateDer<'static>>,
}

impl RootsOrPinned {
    fn with_os_store(&self) -> Option<&rustls::client::WebPkiServerVerifier> {
        self.with_os_store
            .get_or_init(|| {
                let mut roots = self.roots.clone();
                let native = rustls_native_certs::load_native_certs();
                let (added, _) = roots.add_parsable_certificates(native.certs);
                (added > 0)
                    .then(|| verifier(roots, &self.provider).ok())
                    .flatten()
            })
            .as_deref()
    }
}

impl ServerCertVerifier for RootsOrPinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verify = |verifier: &rustls::client::WebPkiServerVerifier| {
            verifier.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        };
        let mut verdict = verify(&self.bundled);
        if matches!(
            verdict,
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::UnknownIssuer
            ))
        ) && let Some(with_os_store) = self.with_os_store()
        {
            verdict = verify(with_os_store);
        }
        if verdict.is_ok()
            || !self
                .pinned
                .iter()
                .any(|p| p.as_ref() == end_entity.as_ref())
        {
            return verdict;
        }
        let valid_for_name = webpki::EndEntityCert::try_from(end_entity)
            .is_ok_and(|cert| cert.verify_is_valid_for_subject_name(server_name).is_ok());
        if valid_for_name {
            Ok(ServerCertVerified::assertion())
        } else {
            verdict
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.bundled.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.bundled.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.bundled.supported_verify_schemes()
    }
}

async fn with_timeout<F: Future>(
    limit: Option<Duration>,
    future: F,
    error: HttpError,
) -> Result<F::Output, HttpError> {
    match limit {
        Some(limit) => tokio::time::timeout(limit, future).await.map_err(|_| error),
        None => Ok(future.await),
    }
}

impl Upstream for Network {
    fn send(
        self: Arc<Self>,
        request: http::Request<Bytes>,
        options: RequestOptions,
    ) -> UpstreamFuture {
        Box::pin(async move { Network::send(&self, request, options).await })
    }
}

/// One plain-HTTP request to a loopback host, on a fresh connection.
/// The guest allows plain http only to loopback (`AllowHttpLoopback=true`,
/// and the gateway's local fakes); the host refuses anything else, so a
/// guest cannot use it to reach the network in clear.
///
/// `proxy` is the `http_proxy` for the URL when that proxy is itself on
/// loopback (a debugging proxy: mitmproxy, Fiddler); the caller drops any
/// other, since sending there would carry the request, a client secret
/// perhaps, in clear across the network, to be delivered to the proxy
/// machine's own loopback. Through a proxy the request goes in absolute form
/// (`GET http://127.0.0.1:8080/path`), as HTTP proxies expect plain http,
/// rather than in a CONNECT tunnel, which many proxies allow to port 443 only.
/// `http://host[:port]/path`, lower-case host, no query: what a plain-http
/// endpoint is matched by.
fn endpoint_of(uri: &http::Uri) -> String {
    let host = uri.host().unwrap_or("").to_ascii_lowercase();
    let port = uri.port_u16().map_or(String::new(), |p| format!(":{p}"));
    format!("http://{host}{port}{}", uri.path())
}

/// The connect timeout of a plain-http identity endpoint when the guest set none.
const IDENTITY_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// IMDS's token endpoint, the one plain-http URL every network allows.
const IMDS_TOKEN_URL: &str = dataverse_wasm::auth::managed_identity::IMDS_TOKEN_URL;

/// Plain http: to an allowed identity endpoint (`target`: where its
/// `--connect-to` rule sends it; never through a proxy), or else only to
/// loopback, through a loopback proxy when one applies.
async fn send_plain(
    request: http::Request<Bytes>,
    target: Option<(String, u16)>,
    proxy: Option<&Proxy>,
    connect_timeout: Option<Duration>,
) -> Result<http::Response<WasiBody>, HttpError> {
    let uri = request.uri().clone();
    let host = uri.host().ok_or(HttpError::HttpRequestUriInvalid)?;
    let (target, port) = match target {
        Some(target) => target,
        None => {
            let loopback = host == "localhost"
                || host
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback());
            if !loopback {
                return Err(HttpError::HttpRequestDenied);
            }
            let target = if host == "localhost" {
                "127.0.0.1"
            } else {
                host
            };
            (target.to_string(), uri.port_u16().unwrap_or(80))
        }
    };
    let target = target.trim_start_matches('[').trim_end_matches(']');
    let tcp = match proxy {
        Some(proxy) => connect_tcp(proxy.host(), proxy.port())
            .await
            .map_err(|e| proxy_unreachable(e, proxy))?,
        None => with_timeout(
            connect_timeout,
            TcpStream::connect((target, port)),
            HttpError::ConnectionTimeout,
        )
        .await?
        .map_err(|_| HttpError::ConnectionRefused)?,
    };
    let _ = tcp.set_nodelay(true);
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await?;
    tokio::spawn(connection);
    let (mut parts, body) = request.into_parts();
    if let Some(authorization) = proxy.and_then(Proxy::authorization) {
        let mut value = http::HeaderValue::from_str(authorization.expose())
            .map_err(|_| HttpError::HttpRequestUriInvalid)?;
        value.set_sensitive(true);
        parts
            .headers
            .insert(http::header::PROXY_AUTHORIZATION, value);
    }
    // A proxy takes the absolute URI as it is; a server its path.
    if proxy.is_none() {
        parts.uri = uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .parse()
            .map_err(|_| HttpError::HttpRequestUriInvalid)?;
    }
    if !parts.headers.contains_key(http::header::HOST)
        && let Some(authority) = uri.authority()
    {
        let value = authority
            .as_str()
            .parse()
            .map_err(|_| HttpError::HttpRequestUriInvalid)?;
        parts.headers.insert(http::header::HOST, value);
    }
    let response = sender
        .send_request(http::Request::from_parts(parts, Full::new(body)))
        .await?;
    let (parts, body) = response.into_parts();
    let body = body.collect().await?.to_bytes();
    Ok(http::Response::from_parts(parts, full(body)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_to_parses_like_curl() {
        let rule: ConnectTo = "login.microsoftonline.com:443:127.0.0.1:8443"
            .parse()
            .unwrap();
        assert_eq!(
            rule,
            ConnectTo {
                from_host: "login.microsoftonline.com".into(),
                from_port: Some(443),
                to_host: "127.0.0.1".into(),
                to_port: 8443
            }
        );
        let any: ConnectTo = "::localhost:9000".parse().unwrap();
        assert_eq!((any.from_host.as_str(), any.from_port), ("", None));
        for bad in ["a:1:b", "a:x:b:1", "a:1:b:99999"] {
            assert!(bad.parse::<ConnectTo>().is_err(), "{bad}");
        }
    }

    #[test]
    fn destination_applies_the_first_matching_rule() {
        let network = Network::new(
            vec![
                "contoso.crm.dynamics.com:443:127.0.0.1:1".parse().unwrap(),
                "::127.0.0.1:2".parse().unwrap(),
            ],
            None,
        )
        .unwrap();
        assert_eq!(
            network.destination("contoso.crm.dynamics.com", 443),
            ("127.0.0.1".into(), 1)
        );
        assert_eq!(
            network.destination("login.microsoftonline.com", 443),
            ("127.0.0.1".into(), 2)
        );
    }
}
