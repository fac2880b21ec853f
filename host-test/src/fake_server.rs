//! `fake-server`: the fake Entra ID + Dataverse on loopback for a while,
//! with the files that point a client at it: TLS for the native CLI (which
//! can be told to trust its CA), or with `--http` plain HTTP for runners that
//! cannot (`wasmtime run`, `jco run` of the command component), through the
//! connection string's `AllowHttpLoopback=true`.

use std::path::PathBuf;
use std::time::Duration;

use dataverse_fake::{self as fake, Fake};

use crate::{Failure, output};

pub async fn run(seconds: u64, http: bool) -> Result<(), Failure> {
    if http {
        return run_http(seconds).await;
    }
    let demo = Fake::demo();
    let server = fake::serve_tls(demo.clone()).await.map_err(Failure::host)?;
    let port = server.addr.port();
    let files = Files::create(port, &server.ca_pem, &fake::demo_connection_string())
        .map_err(|e| Failure::host(format!("writing the fake's files: {e}")))?;
    // Listen for SIGTERM before saying where the files are: whoever reads
    // the `try:` line may stop this process at once, and must not kill it
    // before the files can be removed.
    let stop = Stop::listen();
    output::line(&format!(
        "fake Entra ID + Dataverse on https://127.0.0.1:{port} for {seconds} s\n\
         try: host-test --connection @{} --connect-to {}:443:127.0.0.1:{port} --connect-to {}:443:127.0.0.1:{port} --cacert {} whoami",
        files.connection.display(),
        fake::ORG_HOST,
        fake::LOGIN_HOST,
        files.ca.display()
    ))?;
    stop.sleep_or_stop(Duration::from_secs(seconds)).await;
    drop(server);
    drop(files);
    served(&demo.stats())
}

async fn run_http(seconds: u64) -> Result<(), Failure> {
    let server = fake::serve_http(|port| Fake::new(fake::loopback_config(port)))
        .await
        .map_err(Failure::host)?;
    let port = server.addr.port();
    let files = Files::create(port, "", &server.connection_string())
        .map_err(|e| Failure::host(format!("writing the fake's files: {e}")))?;
    let stop = Stop::listen();
    output::line(&format!(
        "fake Entra ID + Dataverse on http://127.0.0.1:{port} for {seconds} s\n\
         try: DATAVERSE_CONNECTION=\"$(cat {})\" wasmtime run -S http --env DATAVERSE_CONNECTION dataverse-cli.wasm whoami",
        files.connection.display(),
    ))?;
    stop.sleep_or_stop(Duration::from_secs(seconds)).await;
    let stats = server.fake.stats();
    drop(server);
    drop(files);
    served(&stats)
}

/// The last line: what the fake served, for a load test to count token
/// requests (`{"token_requests":…,"discovery_requests":…,"api_requests":…}`).
fn served(stats: &fake::FakeStats) -> Result<(), Failure> {
    output::line(&format!(
        r#"served: {{"token_requests":{},"discovery_requests":{},"api_requests":{}}}"#,
        stats.token_requests, stats.discovery_requests, stats.api_requests
    ))
}

/// The CA and the connection string in a private temporary folder: the
/// secret stays off the command line the `try:` line shows. The folder goes
/// when this is dropped — at the end, and on Ctrl-C or SIGTERM.
struct Files {
    dir: PathBuf,
    ca: PathBuf,
    connection: PathBuf,
}

impl Files {
    fn create(port: u16, ca_pem: &str, connection: &str) -> std::io::Result<Files> {
        let dir = std::env::temp_dir().join(format!("dataverse-fake-{port}"));
        std::fs::create_dir_all(&dir)?;
        private(&dir, 0o700)?;
        let ca = dir.join("ca.pem");
        std::fs::write(&ca, ca_pem)?;
        let connection_file = dir.join("connection");
        std::fs::write(&connection_file, connection)?;
        private(&connection_file, 0o600)?;
        Ok(Files {
            dir,
            ca,
            connection: connection_file,
        })
    }
}

impl Drop for Files {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[cfg(unix)]
fn private(path: &std::path::Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn private(_path: &std::path::Path, _mode: u32) -> std::io::Result<()> {
    Ok(())
}

/// Ctrl-C and SIGTERM, listened for from creation on.
struct Stop {
    #[cfg(unix)]
    terminate: Option<tokio::signal::unix::Signal>,
}

impl Stop {
    fn listen() -> Stop {
        Stop {
            #[cfg(unix)]
            terminate: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .ok(),
        }
    }

    /// Waits `duration`, or until Ctrl-C or SIGTERM, whichever comes first.
    async fn sleep_or_stop(mut self, duration: Duration) {
        #[cfg(unix)]
        let terminate = async {
            match &mut self.terminate {
                Some(signal) => {
                    signal.recv().await;
                }
                None => std::future::pending().await,
            }
        };
        #[cfg(not(unix))]
        let terminate = std::future::pending::<()>();
        tokio::select! {
            () = tokio::time::sleep(duration) => {}
            _ = tokio::signal::ctrl_c() => {}
            () = terminate => {}
        }
    }
}
