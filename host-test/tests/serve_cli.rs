//! `host-test serve` as a user runs it: the real binary serving the gateway
//! component, reaching the plain-HTTP fake through the network upstream.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use dataverse_fake::{self as fake, Fake};

const BIN: &str = env!("CARGO_BIN_EXE_host-test");

#[test]
fn serve_refuses_to_start_without_its_variables() {
    let output = Command::new(BIN)
        .arg("serve")
        .env_remove("DATAVERSE_CONNECTION")
        .env_remove("GATEWAY_API_KEY")
        .output()
        .expect("the CLI runs");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("GATEWAY_API_KEY and DATAVERSE_CONNECTION"),
        "{stderr}"
    );
}

/// Kills the child on drop.
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_answers_whoami_with_the_key_and_401_without() {
    let server = fake::serve_http(|port| Fake::new(fake::loopback_config(port)))
        .await
        .unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let key = "serve-cli-key-0123456789abcdef";
    let _child = Running(
        Command::new(BIN)
            .args(["serve", "--port", &port.to_string()])
            .env("DATAVERSE_CONNECTION", server.connection_string())
            .env("GATEWAY_API_KEY", key)
            .env_remove("GATEWAY_ALLOW")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the CLI starts"),
    );
    let get = |headers: Vec<(&'static str, String)>| async move {
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp)).await?;
        tokio::spawn(conn);
        let mut request = hyper::Request::get("/whoami").header("host", "localhost");
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let response = sender
            .send_request(request.body(http_body_util::Empty::<bytes::Bytes>::new())?)
            .await?;
        anyhow::Ok(response.status().as_u16())
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        match get(vec![("x-api-key", key.to_string())]).await {
            Ok(status) => break status,
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Err(e) => panic!("host-test serve never answered: {e:#}"),
        }
    };
    assert_eq!(status, 200);
    assert_eq!(get(vec![]).await.unwrap(), 401);
    assert_eq!(server.fake.stats().token_requests, 1);
}
