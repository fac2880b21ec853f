//! Serves a [`Fake`] over HTTPS on a loopback port, so a host can make real
//! TLS connections to "login.microsoftonline.com" and "contoso.crm.dynamics.com"
//! (by resolving them to the returned address and trusting `ca_pem`).
//!
//! Responses carrying a [`Delivery`] in their extensions (injected faults) are
//! delivered accordingly: delayed, or cut off mid-body with the connection
//! closed.

use crate::{Delivery, Fake, GeneratedBody};
use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use dataverse_host::serve::accept_loop;
use tokio_rustls::TlsAcceptor;

/// Request bodies beyond this are refused (413): the fake must stay bounded too.
const MAX_BODY: usize = 32 * 1024 * 1024;

/// A running TLS fake. Dropping it stops the server and every open connection.
pub struct TlsFakeServer {
    /// `127.0.0.1:<port>`.
    pub addr: SocketAddr,
    /// The PEM of the throw-away CA that signed the server certificate: the only
    /// root a client needs.
    pub ca_pem: String,
    task: JoinHandle<()>,
    close: Arc<tokio::sync::Notify>,
}

impl TlsFakeServer {
    /// Closes every open connection abruptly (no TLS close_notify) and keeps
    /// listening: what a server or load balancer does to idle keep-alive
    /// connections.
    pub fn close_connections(&self) {
        self.close.notify_one();
    }
}

impl std::fmt::Debug for TlsFakeServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsFakeServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Drop for TlsFakeServer {
    /// The accept task owns the listener and every connection task, so aborting
    /// it closes them all (as soon as the runtime gets to run the cancellation).
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts a TLS server on `127.0.0.1:0` serving `fake` for every host name:
/// HTTP/1.1 with keep-alive, a fresh CA, and a leaf certificate for the
/// config's login and org hosts, the public-cloud defaults, `localhost` and
/// `127.0.0.1`. Must be called inside a Tokio runtime.
pub async fn serve_tls(fake: Arc<Fake>) -> anyhow::Result<TlsFakeServer> {
    serve_tls_with(fake, ServerCert::CaSigned).await
}

/// How the fake's server certificate is made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerCert {
    /// A leaf signed by a throw-away CA; `ca_pem` is the CA.
    CaSigned,
    /// One self-signed certificate marked CA:TRUE, as `openssl req -x509`
    /// makes by default; `ca_pem` is that certificate. Clients must pin it.
    SelfSigned,
}

/// [`serve_tls`] with a choice of server certificate.
pub async fn serve_tls_with(fake: Arc<Fake>, cert: ServerCert) -> anyhow::Result<TlsFakeServer> {
    let config = fake.config();
    let mut names = vec![
        config.login_host.clone(),
        config.org_host.clone(),
        config.github_oidc_host.clone(),
        config.key_vault.host.clone(),
        crate::LOGIN_HOST.to_string(),
        crate::ORG_HOST.to_string(),
        "localhost".to_string(),
        "127.0.0.1".to_string(),
    ];
    names.sort();
    names.dedup();
    let (ca_pem, acceptor) = tls_acceptor(names, cert)?;
    let listener = TcpListener::bind(("127.0.0.1", 0))
        .await
        .context("binding the fake's loopback port")?;
    let addr = listener.local_addr()?;
    let close = Arc::new(tokio::sync::Notify::new());
    let serving = fake.clone();
    let task = tokio::spawn(accept_loop(listener, Some(close.clone()), move |stream| {
        serve_connection(stream, acceptor.clone(), serving.clone())
    }));
    Ok(TlsFakeServer {
        addr,
        ca_pem,
        task,
        close,
    })
}

/// Makes the server certificate for `names`; returns the PEM a client must
/// trust and an acceptor.
fn tls_acceptor(names: Vec<String>, cert: ServerCert) -> anyhow::Result<(String, TlsAcceptor)> {
    if cert == ServerCert::SelfSigned {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(names)?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, "dataverse-wasm fake (self-signed)");
        let cert = params.self_signed(&key)?;
        let der = CertificateDer::from(cert.der().to_vec());
        return Ok((cert.pem(), acceptor(der, &key)?));
    }
    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name = DistinguishedName::new();
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "dataverse-wasm fake CA (tests only)");
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca_params, ca_key);

    let leaf_key = KeyPair::generate()?;
    let mut leaf_params = CertificateParams::new(names)?;
    leaf_params.distinguished_name = DistinguishedName::new();
    leaf_params
        .distinguished_name
        .push(DnType::CommonName, "dataverse-wasm fake server");
    leaf_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let leaf_cert = leaf_params.signed_by(&leaf_key, &issuer)?;

    let leaf = CertificateDer::from(leaf_cert.der().to_vec());
    Ok((ca_cert.pem(), acceptor(leaf, &leaf_key)?))
}

fn acceptor(cert: CertificateDer<'static>, key: &KeyPair) -> anyhow::Result<TlsAcceptor> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut server_config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(
            vec![cert],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )?;
    // Only HTTP/1.1 is served; say so in ALPN so clients offering h2 fall back.
    server_config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(server_config)))
}

async fn serve_connection(stream: TcpStream, acceptor: TlsAcceptor, fake: Arc<Fake>) {
    // As the plain server: without it, an answer written in two pieces
    // waits for the client's delayed ACK (40 ms on Linux) on some requests.
    let _ = stream.set_nodelay(true);
    let Ok(tls) = acceptor.accept(stream).await else {
        return; // failed handshake (e.g. a client that does not trust the CA)
    };
    fake.count_tls_connection();
    // Requests without a Host header are attributed to the SNI name.
    let sni = tls.get_ref().1.server_name().map(str::to_string);
    let service = service_fn(move |req: hyper::Request<Incoming>| {
        let fake = fake.clone();
        let sni = sni.clone();
        async move { answer(&fake, req, sni.as_deref()).await.ok_or(HangUp) }
    });
    // Errors here are client disconnects or protocol garbage: nothing to report.
    let _ = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        .serve_connection(TokioIo::new(tls), service)
        .await;
}

/// A response body: whole, or (for [`Delivery::DropAfter`]) a head
/// followed by an error, which makes hyper abort the connection.
pub(super) enum ReplyBody {
    Whole(Option<Bytes>, u64),
    Truncated {
        head: Option<Bytes>,
        /// A pause before failing, so hyper flushes the head first.
        pause: Option<Pin<Box<tokio::time::Sleep>>>,
    },
    Generated(GeneratedBody),
}

impl ReplyBody {
    fn whole(bytes: Bytes) -> Self {
        let len = bytes.len() as u64;
        ReplyBody::Whole(Some(bytes), len)
    }
}

impl Body for ReplyBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match self.get_mut() {
            ReplyBody::Whole(data, _) => Poll::Ready(
                data.take()
                    .filter(|d| !d.is_empty())
                    .map(|d| Ok(Frame::data(d))),
            ),
            ReplyBody::Truncated { head, pause } => {
                if let Some(head) = head.take().filter(|h| !h.is_empty()) {
                    return Poll::Ready(Some(Ok(Frame::data(head))));
                }
                let pause = pause
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(Duration::from_millis(50))));
                if pause.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                Poll::Ready(Some(Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionAborted,
                    "fault injection: connection dropped mid-body",
                ))))
            }
            ReplyBody::Generated(body) => Pin::new(body)
                .poll_frame(cx)
                .map(|frame| frame.map(|f| f.map_err(|never| match never {}))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ReplyBody::Whole(data, _) => data.is_none(),
            ReplyBody::Truncated { .. } => false,
            ReplyBody::Generated(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ReplyBody::Whole(_, len) => SizeHint::with_exact(*len),
            // The explicit Content-Length header (the full length) rules.
            ReplyBody::Truncated { .. } => SizeHint::default(),
            // Unknown: sent chunked.
            ReplyBody::Generated(_) => SizeHint::default(),
        }
    }
}

/// What a service returns for [`Delivery::HangUp`]: hyper closes a
/// connection whose service fails, without writing a response.
#[derive(Debug)]
pub(super) struct HangUp;

impl std::fmt::Display for HangUp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("fault injection: connection closed without an answer")
    }
}

impl std::error::Error for HangUp {}

/// Answers one request from `fake` (also for the plain-HTTP server): the body
/// capped, a missing Host taken from the SNI name, `Delivery` honoured.
/// `None`: hang up without answering.
pub(super) async fn answer(
    fake: &Fake,
    req: hyper::Request<Incoming>,
    sni: Option<&str>,
) -> Option<hyper::Response<ReplyBody>> {
    let (mut parts, body) = req.into_parts();
    let body = match Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            let mut resp = hyper::Response::new(ReplyBody::whole(Bytes::from_static(
                b"request body too large",
            )));
            *resp.status_mut() = http::StatusCode::PAYLOAD_TOO_LARGE;
            return Some(resp);
        }
    };
    if !parts.headers.contains_key(http::header::HOST)
        && parts.uri.host().is_none()
        && let Some(value) = sni.and_then(|s| http::HeaderValue::from_str(s).ok())
    {
        parts.headers.insert(http::header::HOST, value);
    }
    let response = fake.handle(http::Request::from_parts(parts, body));
    Some(match response.extensions().get::<Delivery>().copied() {
        None => response.map(ReplyBody::whole),
        Some(Delivery::HangUp) => return None,
        Some(Delivery::Delay { millis }) => {
            tokio::time::sleep(Duration::from_millis(millis)).await;
            response.map(ReplyBody::whole)
        }
        Some(Delivery::Generated { bytes }) => {
            let (mut parts, head) = response.into_parts();
            parts.headers.remove(http::header::CONTENT_LENGTH);
            hyper::Response::from_parts(
                parts,
                ReplyBody::Generated(GeneratedBody::new(head, bytes)),
            )
        }
        Some(Delivery::DropAfter { bytes }) => {
            let (mut parts, body) = response.into_parts();
            parts.headers.insert(
                http::header::CONTENT_LENGTH,
                http::HeaderValue::from(body.len()),
            );
            let head = body.slice(..bytes.min(body.len()));
            hyper::Response::from_parts(
                parts,
                ReplyBody::Truncated {
                    head: Some(head),
                    pause: None,
                },
            )
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::token_for;
    use crate::{DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_TENANT_ID, Fake, Fault, ORG_HOST};
    use http_body_util::{Empty, Full};
    use rustls::pki_types::ServerName;
    use rustls::pki_types::pem::PemObject;
    use std::time::Duration;
    use tokio_rustls::TlsConnector;

    /// A TLS connection that trusts only `ca_pem`, with SNI `name`.
    async fn connect(
        server: &TlsFakeServer,
        name: &str,
    ) -> anyhow::Result<tokio_rustls::client::TlsStream<TcpStream>> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls::pki_types::CertificateDer::pem_slice_iter(server.ca_pem.as_bytes()) {
            roots.add(cert?)?;
        }
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let tcp = TcpStream::connect(server.addr).await?;
        let name = ServerName::try_from(name.to_string())?;
        Ok(TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await?)
    }

    fn get(path: &str) -> hyper::Request<Empty<Bytes>> {
        hyper::Request::get(path)
            .header("host", ORG_HOST)
            .body(Empty::new())
            .unwrap()
    }

    #[tokio::test]
    async fn tls_client_trusting_only_the_ca_gets_the_challenge_and_keeps_alive() {
        let fake = Fake::demo();
        let server = serve_tls(fake.clone()).await.unwrap();
        let tls = connect(&server, ORG_HOST).await.unwrap();
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .unwrap();
        tokio::spawn(conn);

        for path in ["/api/data/v9.2/", "/api/data/v9.2/WhoAmI"] {
            let resp = sender.send_request(get(path)).await.unwrap();
            assert_eq!(resp.status(), 401);
            let challenge = resp.headers()["www-authenticate"].to_str().unwrap();
            assert!(
                challenge.contains(&format!("/{DEMO_TENANT_ID}/oauth2/authorize")),
                "{challenge}"
            );
            assert_eq!(resp.headers()["content-length"], "0");
            resp.into_body().collect().await.unwrap();
        }
        let stats = fake.stats();
        assert_eq!(stats.tls_connections, 1);
        assert_eq!(stats.discovery_requests, 2);
    }

    #[tokio::test]
    async fn sni_stands_in_for_a_missing_host_header_and_login_host_is_served() {
        let fake = Fake::demo();
        let server = serve_tls(fake.clone()).await.unwrap();
        let tls = connect(&server, "login.microsoftonline.com").await.unwrap();
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .unwrap();
        tokio::spawn(conn);
        let req = hyper::Request::post(format!("/{DEMO_TENANT_ID}/oauth2/v2.0/token"))
            .body(Full::new(Bytes::from_static(
                b"grant_type=client_credentials",
            )))
            .unwrap();
        let resp = sender.send_request(req).await.unwrap();
        assert_eq!(resp.status(), 400); // missing client_id, but it reached Entra
        assert_eq!(fake.stats().token_requests, 1);
        assert!(connect(&server, "localhost").await.is_ok());
        assert!(
            connect(&server, "example.com").await.is_err(),
            "certificate must not cover other names"
        );
    }

    /// An authenticated GET over `sender`.
    fn api(path: &str, token: &str) -> hyper::Request<Empty<Bytes>> {
        hyper::Request::get(path)
            .header("host", ORG_HOST)
            .header("authorization", format!("Bearer {token}"))
            .body(Empty::new())
            .unwrap()
    }

    #[tokio::test]
    async fn drop_mid_body_fault_sends_part_of_the_body_then_closes_the_connection() {
        let fake = Fake::demo();
        let token = token_for(&fake, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET);
        let server = serve_tls(fake.clone()).await.unwrap();
        fake.inject(Fault::DropMidBody, 1);
        let tls = connect(&server, ORG_HOST).await.unwrap();
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .unwrap();
        let conn = tokio::spawn(conn);
        let resp = sender
            .send_request(api("/api/data/v9.2/accounts", &token))
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let announced: usize = resp.headers()["content-length"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        let (mut body, mut received, mut failed) = (resp.into_body(), 0, false);
        while let Some(frame) = body.frame().await {
            match frame {
                Ok(frame) => received += frame.data_ref().map_or(0, Bytes::len),
                Err(_) => {
                    failed = true;
                    break;
                }
            }
        }
        assert!(
            failed,
            "a truncated body must be an error, not a short success"
        );
        assert_eq!(received, announced / 2);
        let closed = tokio::time::timeout(Duration::from_secs(5), conn).await;
        assert!(closed.is_ok(), "the connection must be closed");
        assert_eq!(fake.stats().api_requests, 1);
    }

    #[tokio::test]
    async fn slow_fault_delays_the_answer() {
        let fake = Fake::demo();
        let token = token_for(&fake, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET);
        let server = serve_tls(fake.clone()).await.unwrap();
        let tls = connect(&server, ORG_HOST).await.unwrap();
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .unwrap();
        tokio::spawn(conn);
        fake.inject(Fault::Slow { millis: 300 }, 1);
        let started = std::time::Instant::now();
        let resp = sender
            .send_request(api("/api/data/v9.2/WhoAmI", &token))
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert!(started.elapsed() >= Duration::from_millis(300));
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        assert!(body.starts_with(b"{"));
        let started = std::time::Instant::now();
        let resp = sender
            .send_request(api("/api/data/v9.2/WhoAmI", &token))
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert!(started.elapsed() < Duration::from_millis(300));
    }

    #[tokio::test]
    async fn dropping_the_server_closes_the_port_and_open_connections() {
        let fake = Fake::demo();
        let server = serve_tls(fake.clone()).await.unwrap();
        let addr = server.addr;
        let tls = connect(&server, ORG_HOST).await.unwrap();
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .unwrap();
        let conn = tokio::spawn(conn);
        assert_eq!(sender.send_request(get("/")).await.unwrap().status(), 401);

        drop(server);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            TcpStream::connect(addr).await.is_err(),
            "listener still open"
        );
        let closed = tokio::time::timeout(Duration::from_secs(5), conn).await;
        assert!(closed.is_ok(), "keep-alive connection still open");
    }
}
