//! The command component (`dataverse-cli.wasm`) end to end, as users run
//! it: under the real `wasmtime run` and under `jco run` in Node.js, as
//! child processes, against the fake served in plain HTTP on loopback (the
//! connection string's `AllowHttpLoopback=true`; neither runner can be told
//! to trust a test CA). The connection string reaches the guest through the
//! environment, by name, never on the command line.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use dataverse_fake::{self as fake, Fake, HttpFakeServer};

/// `$WASMTIME`, else `<repo>/target/tools/bin/wasmtime` (what
/// `scripts/install-test-tools` installs). Missing is a failure, not a skip.
fn wasmtime_binary() -> PathBuf {
    let path = std::env::var_os("WASMTIME")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target/tools/bin/wasmtime"));
    assert!(
        path.is_file(),
        "no wasmtime CLI at {}: run scripts/install-test-tools (or set WASMTIME to a wasmtime 48 binary)",
        path.display()
    );
    path
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("cli lives in the workspace root")
        .to_path_buf()
}

/// jco from the Node example's pinned dependencies.
fn jco_binary() -> PathBuf {
    let path = root().join("examples/node/node_modules/.bin/jco");
    assert!(
        path.exists(),
        "no jco at {}: run scripts/install-node-deps first",
        path.display()
    );
    path
}

async fn plain_fake() -> HttpFakeServer {
    fake::serve_http(|port| Fake::new(fake::loopback_config(port)))
        .await
        .expect("the plain-HTTP fake starts")
}

/// Which runner runs the component.
#[derive(Clone, Copy, Debug)]
enum Runner {
    Wasmtime,
    Jco,
}

/// Runs the command component under `wasmtime run` with `args`, passing
/// `env` by name too and preopening `dirs`.
async fn run_with_env(
    connection: &str,
    args: &[&str],
    env: &[(&str, &str)],
    dirs: &[String],
) -> Output {
    let mut command = Command::new(wasmtime_binary());
    command.args(["run", "-S", "http", "--env", "DATAVERSE_CONNECTION"]);
    for (name, value) in env {
        command.args(["--env", name]).env(name, value);
    }
    for dir in dirs {
        command.args(["--dir", dir]);
    }
    command
        .arg(dataverse_artifacts::COMMAND_PATH)
        .args(args)
        .env("DATAVERSE_CONNECTION", connection);
    tokio::task::spawn_blocking(move || command.output().expect("the runner starts"))
        .await
        .expect("the runner's thread")
}

/// Runs the command component with `args`, the connection string in
/// `DATAVERSE_CONNECTION` and `dirs` preopened (`host::guest`), waiting in a
/// blocking thread so the fake keeps serving.
async fn run(runner: Runner, connection: &str, args: &[&str], dirs: &[String]) -> Output {
    let mut command = match runner {
        Runner::Wasmtime => {
            let mut c = Command::new(wasmtime_binary());
            c.args(["run", "-S", "http", "--env", "DATAVERSE_CONNECTION"]);
            for dir in dirs {
                c.args(["--dir", dir]);
            }
            c.arg(dataverse_artifacts::COMMAND_PATH);
            c
        }
        Runner::Jco => {
            // jco's Node shim hands the guest the whole environment and
            // preopens the current directory; no other directory is needed here.
            assert!(
                dirs.is_empty(),
                "jco run preopens only its working directory"
            );
            let mut c = Command::new(jco_binary());
            c.arg("run").arg(dataverse_artifacts::COMMAND_PATH);
            c
        }
    };
    command
        .args(args)
        .env("DATAVERSE_CONNECTION", connection)
        .env_remove("DATAVERSE_PROFILE")
        .env_remove("DATAVERSE_CONNECTION_FILE");
    tokio::task::spawn_blocking(move || command.output().expect("the runner starts"))
        .await
        .expect("the runner's thread")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

async fn prints_three_names_and_maps_a_wrong_secret_to_3(runner: Runner) {
    let server = plain_fake().await;
    let connection = server.connection_string();
    let out = run(
        runner,
        &connection,
        &["query", "accounts", "--select", "name", "--top", "3"],
        &[],
    )
    .await;
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "{runner:?}: {}\n{stdout}{}",
        out.status,
        text(&out.stderr)
    );
    let names: Vec<String> = stdout
        .lines()
        .map(|line| {
            let row: serde_json::Value = serde_json::from_str(line).expect("one JSON row per line");
            row["name"].as_str().expect("a name").to_string()
        })
        .collect();
    assert_eq!(names, server.fake.account_names()[..3], "{runner:?}");
    let stats = server.fake.stats();
    assert_eq!(
        (
            stats.discovery_requests,
            stats.token_requests,
            stats.api_requests
        ),
        (1, 1, 1),
        "{runner:?}: a run pays discovery, one token and the call"
    );

    let wrong = connection.replace(fake::DEMO_CLIENT_SECRET, "not-the-secret-8c1f");
    let out = run(runner, &wrong, &["whoami"], &[]).await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{runner:?}: {stderr}");
    assert!(stderr.contains("AADSTS7000215"), "{runner:?}: {stderr}");
    assert!(
        !stderr.contains("not-the-secret-8c1f"),
        "{runner:?}: {stderr}"
    );
}

#[tokio::test]
async fn wasmtime_run_prints_the_names_and_a_wrong_secret_exits_3() {
    prints_three_names_and_maps_a_wrong_secret_to_3(Runner::Wasmtime).await;
}

#[tokio::test]
async fn jco_run_prints_the_names_and_a_wrong_secret_exits_3() {
    prints_three_names_and_maps_a_wrong_secret_to_3(Runner::Jco).await;
}

#[tokio::test]
async fn the_native_clis_exit_codes_and_json_errors() {
    let server = plain_fake().await;
    let connection = server.connection_string();
    // A mistake in the arguments: 2, before any request.
    let out = run(
        Runner::Wasmtime,
        &connection,
        &["query", "accounts", "--top", "0"],
        &[],
    )
    .await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let out = run(
        Runner::Wasmtime,
        &connection,
        &["get", "accounts", "not a key", "--json"],
        &[],
    )
    .await;
    assert_eq!(out.status.code(), Some(2));
    let error: serde_json::Value =
        serde_json::from_str(text(&out.stderr).trim()).expect("one JSON object on stderr");
    assert_eq!(error["kind"], "invalid-request");
    assert_eq!(server.fake.stats().discovery_requests, 0);

    // Not found: 4, with the wire facts in the JSON error.
    let missing = "00000000-0000-0000-0000-00000000abcd";
    let out = run(
        Runner::Wasmtime,
        &connection,
        &["get", "accounts", missing, "--json"],
        &[],
    )
    .await;
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    let error: serde_json::Value =
        serde_json::from_str(text(&out.stderr).trim()).expect("one JSON object on stderr");
    assert_eq!(
        (error["kind"].as_str(), error["status"].as_u64()),
        (Some("not-found"), Some(404))
    );

    // --help and --version: 0.
    let out = run(Runner::Wasmtime, &connection, &["--version"], &[]).await;
    assert!(out.status.success());
    assert!(
        text(&out.stdout).starts_with("dataverse-cli "),
        "{}",
        text(&out.stdout)
    );
    // A command's help shows examples for this program, not the native CLI.
    let out = run(Runner::Wasmtime, &connection, &["query", "--help"], &[]).await;
    assert!(out.status.success());
    let help = text(&out.stdout);
    assert!(help.contains("dataverse-cli query accounts"), "{help}");
    assert!(!help.contains("host-test"), "{help}");
}

#[tokio::test]
async fn create_then_get_with_json_output() {
    let server = plain_fake().await;
    let connection = server.connection_string();
    let out = run(
        Runner::Wasmtime,
        &connection,
        &[
            "create",
            "accounts",
            "--data",
            r#"{"name":"Made by the command"}"#,
            "--json",
        ],
        &[],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let created: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let id = created["id"].as_str().expect("the new id").to_string();
    let out = run(
        Runner::Wasmtime,
        &connection,
        &["get", "accounts", &id, "--select", "name", "--json"],
        &[],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let row: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(row["name"], "Made by the command");
    assert!(
        server
            .fake
            .account_names()
            .contains(&"Made by the command".to_string())
    );
}

#[tokio::test]
async fn a_certificate_store_comes_through_a_preopened_directory() {
    let server = plain_fake().await;
    let cert = fake::demo_certificate();
    let store = std::env::temp_dir().join(format!("dataverse-cli-store-{}", std::process::id()));
    std::fs::create_dir_all(&store).unwrap();
    std::fs::write(store.join("app.pem"), &cert.cert_pem).unwrap();
    std::fs::write(store.join("app.key"), &cert.key_pkcs8_pem).unwrap();
    let connection = format!(
        "AuthType=Certificate;Url=http://{}/;ClientId={};Thumbprint={};AllowHttpLoopback=true",
        server.addr,
        fake::CERT_CLIENT_ID,
        cert.thumbprint
    );
    let mapped = format!("{}::/certificates", store.display());
    let out = run(
        Runner::Wasmtime,
        &connection,
        &["whoami", "--json"],
        &[mapped],
    )
    .await;
    let without = run(Runner::Wasmtime, &connection, &["whoami"], &[]).await;
    std::fs::remove_dir_all(&store).unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let who: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert!(who["UserId"].is_string(), "{who}");
    assert_eq!(server.fake.verified_assertions().len(), 1);
    // No store mapped: a settings error that says what to map, exit 2.
    assert_eq!(without.status.code(), Some(2), "{}", text(&without.stderr));
    assert!(
        text(&without.stderr).contains("/certificates"),
        "{}",
        text(&without.stderr)
    );
}

#[tokio::test]
async fn aks_workload_identity_from_a_token_file_in_a_preopened_directory() {
    let server = plain_fake().await;
    let dir = std::env::temp_dir().join(format!("dataverse-cli-aks-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("azure-identity-token");
    std::fs::write(
        &file,
        server
            .fake
            .mint_federated_token(&fake::oidc::TokenClaims::aks()),
    )
    .unwrap();
    let connection = format!(
        "AuthType=WorkloadIdentity;Url=http://{}/;AllowHttpLoopback=true",
        server.addr
    );
    let authority_host = format!("http://localhost:{}/", server.addr.port());
    let file_path = file.to_str().unwrap().to_string();
    let mapped = format!("{}::{}", dir.display(), dir.display());
    let env = [
        ("AZURE_CLIENT_ID", fake::WORKLOAD_CLIENT_ID),
        ("AZURE_TENANT_ID", fake::DEMO_TENANT_ID),
        ("AZURE_FEDERATED_TOKEN_FILE", file_path.as_str()),
        ("AZURE_AUTHORITY_HOST", authority_host.as_str()),
    ];
    let out = run_with_env(&connection, &["whoami", "--json"], &env, &[mapped]).await;
    let unmapped = run_with_env(&connection, &["whoami"], &env, &[]).await;
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let who: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(who["UserId"], fake::WORKLOAD_USER_ID);
    assert_eq!(server.fake.federated_assertions().len(), 1);
    // The directory not mapped: a settings error naming the file, exit 2,
    // and no token request.
    assert_eq!(
        unmapped.status.code(),
        Some(2),
        "{}",
        text(&unmapped.stderr)
    );
    assert!(
        text(&unmapped.stderr).contains("azure-identity-token"),
        "{}",
        text(&unmapped.stderr)
    );
}

/// The data-sync commands inside the component: `import` reads its file
/// and writes its checkpoint through a preopened directory and sends its
/// batches concurrently over `wasi:http`; `export --delta` keeps its
/// state there; `upload` / `download` move a file column's file in chunks.
#[tokio::test]
async fn wasmtime_run_imports_exports_and_moves_a_file_through_a_preopened_directory() {
    let server = plain_fake().await;
    let connection = server.connection_string();
    let dir = std::env::temp_dir().join(format!("dataverse-cli-sync-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let rows: String = (0..1_000)
        .map(|i| format!("{{\"name\":\"Guest {i:04}\"}}\n"))
        .collect();
    std::fs::write(dir.join("rows.ndjson"), rows).unwrap();
    let dirs = [format!("{}::/data", dir.display())];
    let import = run(
        Runner::Wasmtime,
        &connection,
        &[
            "--json",
            "import",
            "account",
            "/data/rows.ndjson",
            "--batch-size",
            "100",
            "--parallel",
            "4",
        ],
        &dirs,
    )
    .await;
    assert!(
        import.status.success(),
        "{}{}",
        text(&import.stdout),
        text(&import.stderr)
    );
    let summary: serde_json::Value =
        serde_json::from_str(text(&import.stdout).lines().last().unwrap()).unwrap();
    assert_eq!(summary["Created"], 1_000);
    let names = server.fake.account_names();
    assert_eq!(names.len(), 25 + 1_000);
    let unique: std::collections::HashSet<&String> = names.iter().collect();
    assert_eq!(unique.len(), names.len(), "no row twice");
    let checkpoint = std::fs::read_to_string(dir.join("rows.ndjson.checkpoint")).unwrap();
    assert!(checkpoint.contains("\"done\": true"), "{checkpoint}");

    let export = [
        "--json",
        "export",
        "accounts",
        "--select",
        "name",
        "--delta",
        "/data/state.json",
    ];
    let first = run(Runner::Wasmtime, &connection, &export, &dirs).await;
    assert!(first.status.success(), "{}", text(&first.stderr));
    assert_eq!(text(&first.stdout).lines().count(), 1_025);
    let again = run(Runner::Wasmtime, &connection, &export, &dirs).await;
    assert!(again.status.success(), "{}", text(&again.stderr));
    assert_eq!(text(&again.stdout), "", "nothing changed since");

    let bytes: Vec<u8> = (0..5 * 1024 * 1024 + 9).map(|i| (i % 253) as u8).collect();
    std::fs::write(dir.join("big.bin"), &bytes).unwrap();
    let key = "accountnumber='A-0001'";
    let up = run(
        Runner::Wasmtime,
        &connection,
        &[
            "upload",
            "accounts",
            key,
            "sample_filecolumn",
            "/data/big.bin",
        ],
        &dirs,
    )
    .await;
    assert!(up.status.success(), "{}", text(&up.stderr));
    let down = run(
        Runner::Wasmtime,
        &connection,
        &[
            "download",
            "accounts",
            key,
            "sample_filecolumn",
            "--out",
            "/data/copy.bin",
        ],
        &dirs,
    )
    .await;
    assert!(down.status.success(), "{}", text(&down.stderr));
    assert!(std::fs::read(dir.join("copy.bin")).unwrap() == bytes);
    let _ = std::fs::remove_dir_all(&dir);
}
