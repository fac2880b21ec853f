//! Serves a [`Fake`] over plain HTTP on loopback, for hosts that cannot be
//! told to trust a test CA or to resolve a fake name — `wasmtime serve`
//! trusts only the public web PKI and resolves real DNS. One port serves
//! both services: the org as `127.0.0.1:PORT`, Entra ID as `localhost:PORT`
//! (the fake routes by host name), and the client opts in with
//! `AllowHttpLoopback=true`.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use dataverse_host::serve::accept_loop;

use super::tls::{HangUp, answer};
use crate::{DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, Fake, FakeConfig};

/// A running plain-HTTP fake. Dropping it stops the server and every open
/// connection.
pub struct HttpFakeServer {
    /// `127.0.0.1:<port>`.
    pub addr: SocketAddr,
    /// The fake it serves (made for this port).
    pub fake: Arc<Fake>,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for HttpFakeServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpFakeServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Drop for HttpFakeServer {
    /// The accept task owns the listener and the connection tasks.
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl HttpFakeServer {
    /// A connection string for the demo app at this server, with the
    /// loopback-http opt-in.
    pub fn connection_string(&self) -> String {
        format!(
            "AuthType=ClientSecret;Url=http://127.0.0.1:{}/;ClientId={DEMO_CLIENT_ID};ClientSecret={DEMO_CLIENT_SECRET};AllowHttpLoopback=true",
            self.addr.port()
        )
    }
}

/// The demo tenant and environment for a plain-HTTP fake on `port`: the org
/// at `127.0.0.1:port`, Entra ID at `localhost:port`, `http` URLs.
pub fn loopback_config(port: u16) -> FakeConfig {
    FakeConfig {
        org_host: format!("127.0.0.1:{port}"),
        login_host: format!("localhost:{port}"),
        scheme: "http".into(),
        ..FakeConfig::default()
    }
}

/// Binds `127.0.0.1:0`, makes the fake for that port (usually
/// `|port| Fake::new(loopback_config(port))`) and serves it: HTTP/1.1 with
/// keep-alive. Must be called inside a Tokio runtime.
pub async fn serve_http(
    fake_for_port: impl FnOnce(u16) -> Arc<Fake>,
) -> anyhow::Result<HttpFakeServer> {
    let listener = TcpListener::bind(("127.0.0.1", 0))
        .await
        .context("binding the fake's loopback port")?;
    let addr = listener.local_addr()?;
    let fake = fake_for_port(addr.port());
    let serving = fake.clone();
    let task = tokio::spawn(accept_loop(listener, None, move |stream| {
        serve_connection(stream, serving.clone())
    }));
    Ok(HttpFakeServer { addr, fake, task })
}

async fn serve_connection(stream: TcpStream, fake: Arc<Fake>) {
    let _ = stream.set_nodelay(true);
    let service = service_fn(move |req: hyper::Request<Incoming>| {
        let fake = fake.clone();
        async move { answer(&fake, req, None).await.ok_or(HangUp) }
    });
    // Errors here are client disconnects or protocol garbage: nothing to report.
    let _ = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        .serve_connection(TokioIo::new(stream), service)
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DEMO_TENANT_ID;
    use bytes::Bytes;
    use http_body_util::{BodyExt, Full};
    use std::time::Duration;

    async fn send(
        server: &HttpFakeServer,
        method: &str,
        host: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> hyper::Response<Bytes> {
        let tcp = TcpStream::connect(server.addr).await.unwrap();
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
            .await
            .unwrap();
        tokio::spawn(conn);
        let mut req = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", host);
        for (n, v) in headers {
            req = req.header(*n, *v);
        }
        let resp = sender
            .send_request(req.body(Full::new(Bytes::from(body.to_string()))).unwrap())
            .await
            .unwrap();
        let (parts, body) = resp.into_parts();
        hyper::Response::from_parts(parts, body.collect().await.unwrap().to_bytes())
    }

    #[tokio::test]
    async fn discovery_token_and_api_work_over_plain_http_on_one_port() {
        let server = serve_http(|port| Fake::new(loopback_config(port)))
            .await
            .unwrap();
        let port = server.addr.port();
        let org = format!("127.0.0.1:{port}");
        let login = format!("localhost:{port}");

        let challenge = send(&server, "GET", &org, "/api/data/v9.2/", &[], "").await;
        assert_eq!(challenge.status(), 401);
        assert_eq!(
            challenge.headers()["www-authenticate"],
            format!(
                "Bearer authorization_uri=http://localhost:{port}/{DEMO_TENANT_ID}/oauth2/authorize, resource_id=http://127.0.0.1:{port}/"
            )
            .as_str()
        );

        let form = format!(
            "grant_type=client_credentials&client_id={DEMO_CLIENT_ID}&client_secret={}&scope=http%3A%2F%2F127.0.0.1%3A{port}%2F.default",
            crate::percent::encode(DEMO_CLIENT_SECRET, b"-._~", true)
        );
        let token = send(
            &server,
            "POST",
            &login,
            &format!("/{DEMO_TENANT_ID}/oauth2/v2.0/token"),
            &[("content-type", "application/x-www-form-urlencoded")],
            &form,
        )
        .await;
        assert_eq!(token.status(), 200, "{:?}", token.body());
        let body: serde_json::Value = serde_json::from_slice(token.body()).unwrap();
        let token = body["access_token"].as_str().unwrap();

        let bearer = format!("Bearer {token}");
        let created = send(
            &server,
            "POST",
            &org,
            "/api/data/v9.2/accounts",
            &[
                ("authorization", &bearer),
                ("content-type", "application/json"),
            ],
            r#"{"name":"Plain"}"#,
        )
        .await;
        assert_eq!(created.status(), 204);
        let id = created.headers()["odata-entityid"].to_str().unwrap();
        assert!(
            id.starts_with(&format!("http://127.0.0.1:{port}/api/data/v9.2/accounts(")),
            "{id}"
        );
        let stats = server.fake.stats();
        assert_eq!(
            (
                stats.discovery_requests,
                stats.token_requests,
                stats.api_requests
            ),
            (1, 1, 1)
        );
        assert!(
            server
                .connection_string()
                .contains("AllowHttpLoopback=true")
        );
    }

    #[tokio::test]
    async fn dropping_the_server_closes_the_port() {
        let server = serve_http(|port| Fake::new(loopback_config(port)))
            .await
            .unwrap();
        let addr = server.addr;
        drop(server);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            TcpStream::connect(addr).await.is_err(),
            "listener still open"
        );
    }
}
