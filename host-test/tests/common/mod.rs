//! What the CLI's tests share: running the real binary against the fake
//! served on loopback TLS.

#![allow(dead_code)]

use std::process::{Command, Output};

use dataverse_fake::{self as fake, TlsFakeServer};

pub const BIN: &str = env!("CARGO_BIN_EXE_host-test");

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

pub fn finish(output: Output) -> Run {
    Run {
        code: output.status.code().expect("exited normally"),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// The CLI with none of the user's own settings in view: no connection in
/// the environment, no config file and no proxy, whatever the machine has.
pub fn cli() -> Command {
    let mut command = Command::new(BIN);
    for proxy in dataverse_host::proxy::VARIABLES {
        command.env_remove(proxy);
    }
    command
        .env_remove("DATAVERSE_CONNECTION")
        .env_remove("DATAVERSE_CONNECTION_FILE")
        .env_remove("DATAVERSE_PROFILE")
        .env("DATAVERSE_CONFIG", "/nonexistent/dataverse-config.toml")
        // Every run discovers the tenant, so exchange counts do not depend
        // on which test ran first (the cache has its own test).
        .env("DATAVERSE_NO_AUTHORITY_CACHE", "1");
    command
}

/// Runs the CLI against `server` (blocking, off the runtime the server needs).
/// The CLI pointed at the TLS fake (`--connect-to`, `--cacert`); the
/// folder holds the CA file and goes when the run is over.
pub fn command_against(
    server: &TlsFakeServer,
    connection: Option<&str>,
    args: &[&str],
) -> (Command, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!(
        "host-test-cli-{}-{}",
        std::process::id(),
        server.addr.port()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, &server.ca_pem).unwrap();
    let port = server.addr.port();
    let mut command = cli();
    command
        .args([
            "--connect-to",
            &format!("{}:443:127.0.0.1:{port}", fake::ORG_HOST),
        ])
        .args([
            "--connect-to",
            &format!("{}:443:127.0.0.1:{port}", fake::LOGIN_HOST),
        ])
        .arg("--cacert")
        .arg(&ca)
        .args(args);
    if let Some(connection) = connection {
        command.env("DATAVERSE_CONNECTION", connection);
    }
    (command, dir)
}

pub async fn run_against(server: &TlsFakeServer, connection: Option<&str>, args: &[&str]) -> Run {
    let (mut command, dir) = command_against(server, connection, args);
    let output = tokio::task::spawn_blocking(move || command.output().expect("the CLI runs"))
        .await
        .unwrap();
    let _ = std::fs::remove_dir_all(dir);
    finish(output)
}
