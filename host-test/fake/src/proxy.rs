//! A forward proxy on 127.0.0.1 for tests (`CONNECT` tunnels, a 407, or a
//! plain answer), recording each request line and `Proxy-Authorization`:
//! what a corporate proxy is to the network code, in a few lines.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use dataverse_host::serve::accept_loop;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// What the test proxy saw of one connection.
#[derive(Clone, Debug)]
pub struct Seen {
    pub request_line: String,
    pub authorization: Option<String>,
}

/// How the test proxy answers.
#[derive(Clone, Copy)]
pub enum Answer {
    /// `CONNECT` anything: a tunnel to this address (the fake serves every
    /// host name there).
    Tunnel(SocketAddr),
    /// `407 Proxy Authentication Required`, then close.
    Refuse,
    /// Any request: `200` with the body `answered`, then close (a proxy
    /// forwarding plain http, or a plain origin server).
    Plain,
}

/// A proxy on 127.0.0.1. Dropping it stops it and every connection it holds.
pub struct TestProxy {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    task: JoinHandle<()>,
}

impl TestProxy {
    pub async fn start(answer: Answer) -> TestProxy {
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("a loopback port");
        let addr = listener.local_addr().expect("its address");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let task = tokio::spawn(accept_loop(listener, None, move |stream| {
            serve(stream, answer, log.clone())
        }));
        TestProxy { addr, seen, task }
    }

    pub fn url(&self, userinfo: Option<&str>) -> String {
        match userinfo {
            Some(userinfo) => format!("http://{userinfo}@{}", self.addr),
            None => format!("http://{}", self.addr),
        }
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for TestProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(mut client: TcpStream, answer: Answer, seen: Arc<Mutex<Vec<Seen>>>) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 8192 {
        match client.read(&mut byte).await {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let mut lines = head.lines();
    let request_line = lines.next().unwrap_or_default().to_string();
    let authorization = lines
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.eq_ignore_ascii_case("proxy-authorization"))
        .map(|(_, value)| value.trim().to_string());
    let connect = request_line.starts_with("CONNECT ");
    seen.lock().unwrap().push(Seen {
        request_line,
        authorization,
    });
    match answer {
        Answer::Tunnel(to) if connect => {
            let Ok(mut upstream) = TcpStream::connect(to).await else {
                return;
            };
            if client
                .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                .await
                .is_ok()
            {
                let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
            }
        }
        Answer::Refuse => {
            let _ = client
                .write_all(
                    b"HTTP/1.1 407 Proxy Authentication Required\r\n\
                      Proxy-Authenticate: Basic realm=\"corp\"\r\n\
                      Content-Length: 0\r\nConnection: close\r\n\r\n",
                )
                .await;
        }
        Answer::Plain | Answer::Tunnel(_) => {
            let _ = client
                .write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\nConnection: close\r\n\r\nanswered",
                )
                .await;
        }
    }
}
