//! The `host-test` CLI as a user runs it: the real binary, the real component,
//! and the fake served on loopback TLS, reached through --connect-to/--cacert.

use std::process::Command;

use dataverse_fake::{self as fake, Fake, Fault, TlsFakeServer};

mod common;
use common::*;

/// `-v whoami` with the demo app; it must succeed.
async fn verbose_whoami(server: &TlsFakeServer) -> Run {
    let demo = fake::demo_connection_string();
    let run = run_against(server, Some(&demo), &["-v", "whoami"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    run
}

/// The exchange log's lines of a `-v` run.
fn exchange_lines(run: &Run) -> Vec<&str> {
    run.stderr
        .lines()
        .filter(|l| l.starts_with("http: "))
        .collect()
}

fn wrong_secret_connection() -> String {
    format!(
        "AuthType=ClientSecret;Url=https://{}/;ClientId={};ClientSecret=Wr0ng~Value",
        fake::ORG_HOST,
        fake::DEMO_CLIENT_ID
    )
}

#[test]
fn demo_prints_who_am_i_and_three_account_names() {
    let run = finish(
        Command::new(BIN)
            .arg("demo")
            .env_remove("DATAVERSE_CONNECTION")
            .output()
            .unwrap(),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains(fake::DEMO_USER_ID), "{}", run.stdout);
    for name in ["Contoso Ltd", "Fabrikam Inc", "Adventure Works"] {
        assert!(run.stdout.contains(name), "{}", run.stdout);
    }
    assert!(!run.stdout.contains(fake::DEMO_CLIENT_SECRET));
}

/// The binary carries both components: a copy elsewhere, with a home whose
/// cache is empty and nothing of the build tree in reach, still runs, and
/// leaves its precompiled component in the user cache directory.
#[test]
fn a_copy_of_the_binary_runs_anywhere_with_an_empty_cache() {
    let dir = std::env::temp_dir().join(format!("host-test-anywhere-{}", std::process::id()));
    let home = dir.join("home");
    std::fs::create_dir_all(&home).unwrap();
    let copy = dir.join("host-test");
    std::fs::copy(BIN, &copy).unwrap();
    let run = finish(
        Command::new(&copy)
            .arg("demo")
            .current_dir(&dir)
            .env_clear()
            .env("HOME", &home)
            .output()
            .unwrap(),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("Adventure Works"), "{}", run.stdout);
    let cached: Vec<_> = std::fs::read_dir(home.join(".cache/dataverse-wasm"))
        .expect("the cache directory was made")
        .filter_map(|entry| entry.ok())
        .filter(|entry| entry.file_name().to_string_lossy().ends_with(".cwasm"))
        .collect();
    // The client was compiled when the binary was built: its first run on
    // this machine caches that artifact rather than compiling (issue 13).
    assert_eq!(cached.len(), 1, "one precompiled component");
    assert_eq!(
        std::fs::read(cached[0].path()).unwrap(),
        dataverse_artifacts::CLIENT_PRECOMPILED
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn whoami_over_tls_prints_the_user_id() {
    let server = fake::serve_tls(Fake::demo()).await.unwrap();
    let run = run_against(&server, Some(&fake::demo_connection_string()), &["whoami"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout
            .contains(&format!("UserId:         {}", fake::DEMO_USER_ID)),
        "{}",
        run.stdout
    );

    let json = run_against(
        &server,
        Some(&fake::demo_connection_string()),
        &["--json", "whoami"],
    )
    .await;
    let value: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(value["UserId"], fake::DEMO_USER_ID);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_secret_exits_3_naming_aadsts7000215_and_never_the_secret() {
    let server = fake::serve_tls(Fake::demo()).await.unwrap();
    let run = run_against(&server, Some(&wrong_secret_connection()), &["-v", "whoami"]).await;
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(run.stderr.contains("AADSTS7000215"), "{}", run.stderr);
    assert!(!run.stderr.contains("Wr0ng~Value") && !run.stdout.contains("Wr0ng~Value"));
}

#[tokio::test(flavor = "multi_thread")]
async fn no_application_user_exits_4_with_the_hint() {
    let server = fake::serve_tls(Fake::demo()).await.unwrap();
    let connection = format!(
        "AuthType=ClientSecret;Url=https://{}/;ClientId={};ClientSecret={}",
        fake::ORG_HOST,
        fake::NO_USER_CLIENT_ID,
        fake::NO_USER_CLIENT_SECRET
    );
    let run = run_against(&server, Some(&connection), &["whoami"]).await;
    assert_eq!(run.code, 4, "{}", run.stderr);
    assert!(run.stderr.contains("0x80072560"), "{}", run.stderr);
    assert!(
        run.stderr.contains("create an Application User"),
        "{}",
        run.stderr
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_settings_and_usage_exit_2_without_the_secret() {
    let demo_fake = Fake::demo();
    let server = fake::serve_tls(demo_fake.clone()).await.unwrap();
    let bad = "AuthType=ClientSecret;Url=http://contoso.crm.dynamics.com/;ClientId=x;ClientSecret=S3cr3t!Value";
    let run = run_against(&server, Some(bad), &["-v", "whoami"]).await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("Url"), "{}", run.stderr);
    assert!(!run.stderr.contains("S3cr3t!Value"));

    let missing = run_against(&server, None, &["whoami"]).await;
    assert_eq!(missing.code, 2);
    assert!(
        missing.stderr.contains("DATAVERSE_CONNECTION"),
        "{}",
        missing.stderr
    );

    let unknown = run_against(&server, None, &["frobnicate"]).await;
    assert_eq!(unknown.code, 2);

    // A method that does not exist is refused before anything is sent.
    let before = demo_fake.requests().len();
    let demo = fake::demo_connection_string();
    let method = run_against(&server, Some(&demo), &["send", "FETCH", "accounts"]).await;
    assert_eq!(method.code, 2, "{}", method.stderr);
    assert!(
        method.stderr.contains("GET, POST, PATCH, PUT, DELETE"),
        "{}",
        method.stderr
    );
    let batch = std::env::temp_dir().join(format!("host-test-batch-{}.json", std::process::id()));
    std::fs::write(&batch, r#"[{"method":"HEAD","url":"accounts"}]"#).unwrap();
    let run = run_against(&server, Some(&demo), &["batch", batch.to_str().unwrap()]).await;
    let _ = std::fs::remove_file(&batch);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("batch request 1: method 'HEAD'"),
        "{}",
        run.stderr
    );
    assert_eq!(
        demo_fake.requests().len(),
        before,
        "nothing reached the fake"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn query_all_json_returns_every_row() {
    let fake = Fake::demo();
    let server = fake::serve_tls(fake.clone()).await.unwrap();
    let args = [
        "--json",
        "query",
        "accounts",
        "--select",
        "name",
        "--page-size",
        "10",
        "--all",
        "--count",
    ];
    let run = run_against(&server, Some(&fake::demo_connection_string()), &args).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    // A stream is NDJSON: one whole row per line, each valid on its own.
    let names: Vec<String> = run
        .stdout
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["name"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(names, fake.account_names());
    assert!(
        run.stderr.is_empty(),
        "nothing but errors on stderr with --json: {}",
        run.stderr
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn query_all_against_a_repeating_next_link_exits_4_after_every_row_once() {
    let fake = Fake::demo();
    let server = fake::serve_tls(fake.clone()).await.unwrap();
    for bug in [
        fake::PagingBug::RepeatNextLink,
        fake::PagingBug::AlternateNextLink,
    ] {
        fake.set_paging_bug(Some(bug));
        let args = [
            "query",
            "accounts",
            "--select",
            "name",
            "--page-size",
            "5",
            "--all",
        ];
        let run = run_against(&server, Some(&fake::demo_connection_string()), &args).await;
        assert_eq!(run.code, 4, "{bug:?}: {}", run.stderr);
        assert!(run.stderr.contains("invalid response"), "{}", run.stderr);
        assert!(run.stderr.contains("already followed"), "{}", run.stderr);
        let names: Vec<String> = run
            .stdout
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["name"].to_string())
            .collect();
        let pages = if bug == fake::PagingBug::RepeatNextLink {
            2
        } else {
            3
        };
        assert_eq!(names.len(), 5 * pages, "{bug:?}: each page once");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn fetchxml_all_against_a_repeating_paging_cookie_exits_4() {
    let fake = Fake::demo();
    let server = fake::serve_tls(fake.clone()).await.unwrap();
    fake.set_paging_bug(Some(fake::PagingBug::RepeatPagingCookie));
    let dir = std::env::temp_dir().join(format!("host-test-fetch-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("query.xml");
    std::fs::write(
        &file,
        r#"<fetch count="10"><entity name="account"><attribute name="name"/><order attribute="accountnumber"/></entity></fetch>"#,
    )
    .unwrap();
    let args = ["fetchxml", "accounts", file.to_str().unwrap(), "--all"];
    let run = run_against(&server, Some(&fake::demo_connection_string()), &args).await;
    let _ = std::fs::remove_dir_all(dir);
    assert_eq!(run.code, 4, "{}", run.stderr);
    assert!(run.stderr.contains("paging cookie"), "{}", run.stderr);
    assert_eq!(run.stdout.lines().count(), 20, "pages 1 and 2, once each");
}

/// `query --all | head -1`: once the reader has gone, no further page is
/// asked for (a real org's service-protection budget is not spent on rows
/// nobody reads), and the command ends quietly with 0.
#[tokio::test(flavor = "multi_thread")]
async fn query_all_stops_paging_when_stdout_is_closed() {
    use std::io::BufRead;
    let fake = Fake::demo();
    let server = fake::serve_tls(fake.clone()).await.unwrap();
    // Slow pages, so the reader closes long before the last one.
    fake.inject(Fault::Slow { millis: 150 }, 100);
    let demo = fake::demo_connection_string();
    let args = ["query", "accounts", "--all", "--page-size", "2"];
    let (mut command, dir) = command_against(&server, Some(&demo), &args);
    let (status, stderr) = tokio::task::spawn_blocking(move || {
        let mut child = command
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("the CLI runs");
        let mut first = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        assert!(first.contains("accountid"), "{first}");
        // The reader is dropped here: the pipe is closed.
        let output = child.wait_with_output().unwrap();
        (
            output.status,
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    })
    .await
    .unwrap();
    let _ = std::fs::remove_dir_all(dir);
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let pages = fake
        .requests()
        .iter()
        .filter(|r| r.path_and_query.contains("accounts"))
        .count();
    assert!(
        pages <= 3,
        "{pages} pages of 13 were fetched after the reader left"
    );
}

/// A batch whose parts did not all succeed prints every answer and exits 4.
#[tokio::test(flavor = "multi_thread")]
async fn a_batch_with_a_failed_part_exits_4_after_printing_every_answer() {
    let server = fake::serve_tls(Fake::demo()).await.unwrap();
    let batch = std::env::temp_dir().join(format!("host-test-partial-{}.json", std::process::id()));
    std::fs::write(
        &batch,
        r#"[{"method":"GET","url":"WhoAmI"},{"method":"GET","url":"accounts(accountnumber='NOPE')"}]"#,
    )
    .unwrap();
    let demo = fake::demo_connection_string();
    let path = batch.to_str().unwrap();
    let run = run_against(
        &server,
        Some(&demo),
        &["batch", path, "--continue-on-error"],
    )
    .await;
    let _ = std::fs::remove_file(&batch);
    assert_eq!(run.code, 4, "{}", run.stderr);
    assert!(run.stdout.contains("1: HTTP 200"), "{}", run.stdout);
    assert!(run.stdout.contains("2: HTTP 404"), "{}", run.stdout);
    assert!(
        run.stderr.contains("1 of 2 batch requests failed"),
        "{}",
        run.stderr
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn query_without_all_stops_after_one_page() {
    let server = fake::serve_tls(Fake::demo()).await.unwrap();
    let args = [
        "query",
        "accounts",
        "--select",
        "name",
        "--filter",
        "name eq 'Contoso Ltd'",
    ];
    let run = run_against(&server, Some(&fake::demo_connection_string()), &args).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let rows: Vec<serde_json::Value> = run
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["name"], "Contoso Ltd");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_untrusted_server_exits_5() {
    let server = fake::serve_tls(Fake::demo()).await.unwrap();
    let port = server.addr.port();
    let run = tokio::task::spawn_blocking(move || {
        cli()
            .env("DATAVERSE_CONNECTION", fake::demo_connection_string())
            .args(["--connect-to", &format!("::127.0.0.1:{port}")])
            .arg("whoami")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let run = finish(run);
    assert_eq!(run.code, 5, "{}", run.stderr);
    // At once: a handshake the certificate failed is not retried.
    assert!(run.stderr.contains("certificate"), "{}", run.stderr);
    assert!(!run.stderr.contains("attempts"), "{}", run.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_request_retried_after_503_is_logged_as_attempt_2_and_a_lasting_outage_exits_3() {
    let fake = Fake::demo();
    let server = fake::serve_tls(fake.clone()).await.unwrap();
    fake.inject_entra(fake::Fault::Status(503), 1);
    let run = verbose_whoami(&server).await;
    let lines = exchange_lines(&run);
    let token = format!(
        "POST {}/{}/oauth2/v2.0/token",
        fake::LOGIN_HOST,
        fake::DEMO_TENANT_ID
    );
    assert!(
        lines[1].contains(&format!("{token} → 503")) && lines[1].ends_with("attempt 1"),
        "{lines:?}"
    );
    assert!(
        lines[2].contains(&format!("{token} → 200")) && lines[2].ends_with("attempt 2"),
        "{lines:?}"
    );
    assert!(
        lines[3].contains("WhoAmI → 200") && lines[3].ends_with("attempt 1"),
        "{lines:?}"
    );

    fake.inject_entra(fake::Fault::Status(503), 10);
    let run = run_against(
        &server,
        Some(&fake::demo_connection_string()),
        &["--max-retries", "1", "whoami"],
    )
    .await;
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(run.stderr.contains("HTTP 503"), "{}", run.stderr);
    assert!(run.stderr.contains("(2 attempts)"), "{}", run.stderr);
    assert!(!run.stderr.contains(fake::DEMO_CLIENT_SECRET));
}

#[tokio::test(flavor = "multi_thread")]
async fn every_web_api_command_works_against_the_fake() {
    let fake = Fake::demo();
    let server = fake::serve_tls(fake.clone()).await.unwrap();
    let conn = fake::demo_connection_string();
    let run = |args: Vec<String>| {
        let server = &server;
        let conn = conn.clone();
        async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let run = run_against(server, Some(&conn), &args).await;
            assert_eq!(run.code, 0, "{args:?}: {}", run.stderr);
            run.stdout
        }
    };
    let words = |s: &str| s.split(' ').map(str::to_string).collect::<Vec<_>>();

    // get by alternate key, with --json
    let row: serde_json::Value = serde_json::from_str(
        &run(words(
            "--json get accounts accountnumber='A-0001' --select name,accountnumber",
        ))
        .await,
    )
    .unwrap();
    assert_eq!(row["name"], "Contoso Ltd");

    // create prints the new id; get by id; update with the row's ETag; upsert; delete
    let mut create = words("create accounts --data");
    create.push(r#"{"name":"CLI Co","accountnumber":"C-1"}"#.into());
    let id = run(create).await.trim().to_string();
    assert_eq!(id.len(), 36, "{id}");
    let row: serde_json::Value =
        serde_json::from_str(&run(words(&format!("--json get accounts {id}"))).await).unwrap();
    let etag = row["@odata.etag"].as_str().unwrap().to_string();
    let mut update = words(&format!("update accounts {id} --if-match"));
    update.push(etag);
    update.push("--data".into());
    update.push(r#"{"name":"CLI Co 2"}"#.into());
    assert!(run(update).await.contains("updated"));
    let mut upsert = words("upsert accounts accountnumber='C-2' --data");
    upsert.push(r#"{"name":"Upserted"}"#.into());
    assert!(run(upsert).await.contains("upserted"));

    // associate / disassociate a new contact
    let mut contact = words("create contacts --data");
    contact.push(r#"{"lastname":"Cli"}"#.into());
    let contact_id = run(contact).await.trim().to_string();
    run(words(&format!(
        "associate accounts {id} contact_customer_accounts contacts {contact_id}"
    )))
    .await;
    run(words(&format!(
        "disassociate accounts {id} contact_customer_accounts contacts {contact_id}"
    )))
    .await;
    assert!(
        run(words(&format!("delete accounts {id}")))
            .await
            .contains("deleted")
    );

    // fetchxml from a file, all pages
    let dir = std::env::temp_dir().join(format!("host-test-cli-files-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let fetch = dir.join("accounts.xml");
    std::fs::write(&fetch, r#"<fetch count="10"><entity name="account"><attribute name="name"/><order attribute="accountnumber"/></entity></fetch>"#).unwrap();
    let rows = run(words(&format!(
        "fetchxml accounts {} --all",
        fetch.display()
    )))
    .await;
    assert_eq!(
        rows.lines().count(),
        26,
        "25 seeded accounts plus the upserted one"
    );

    // execute: a function and an action
    assert!(
        run(words("execute RetrieveVersion"))
            .await
            .contains("Version")
    );
    let mut echo = words("execute sample_Echo --data");
    echo.push(r#"{"Text":"ping"}"#.into());
    assert!(run(echo).await.contains("ping"));

    // batch from a file
    let batch = dir.join("batch.json");
    std::fs::write(&batch, r#"[{"method":"GET","url":"WhoAmI"},{"method":"POST","url":"accounts","body":{"name":"In batch"}}]"#).unwrap();
    let out: serde_json::Value = serde_json::from_str(
        &run(words(&format!(
            "--json batch {} --continue-on-error",
            batch.display()
        )))
        .await,
    )
    .unwrap();
    let statuses: Vec<u64> = out
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, [200, 204]);

    // send
    assert!(
        run(words("send GET accounts?$top=1"))
            .await
            .starts_with("HTTP 200")
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dataverse_error_exits_4_with_status_code_and_message() {
    let server = fake::serve_tls(Fake::demo()).await.unwrap();
    let run = run_against(
        &server,
        Some(&fake::demo_connection_string()),
        &["get", "accounts", "00000000-0000-0000-0000-0000000000aa"],
    )
    .await;
    assert_eq!(run.code, 4, "{}", run.stderr);
    assert!(run.stderr.contains("HTTP 404"), "{}", run.stderr);
    assert!(run.stderr.contains("0x80040217"), "{}", run.stderr);
    assert!(run.stderr.contains("Does Not Exist"), "{}", run.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn certificate_auth_through_the_cli_with_a_cert_store() {
    let fake = Fake::demo();
    let server = fake::serve_tls(fake.clone()).await.unwrap();
    let cert = fake::certs::demo_certificate();
    let store = std::env::temp_dir().join(format!("host-test-cli-store-{}", std::process::id()));
    std::fs::create_dir_all(&store).unwrap();
    std::fs::write(store.join("app.pfx"), &cert.pfx).unwrap();
    let connection = format!(
        "{};CertificatePassword={}",
        fake::demo_certificate_connection_string(&cert.thumbprint),
        cert.pfx_password
    );
    let store_arg = store.display().to_string();
    let run = run_against(
        &server,
        Some(&connection),
        &["--cert-store", &store_arg, "whoami"],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains(fake::CERT_USER_ID), "{}", run.stdout);

    let token = run_against(
        &server,
        Some(&connection),
        &["--json", "--cert-store", &store_arg, "token"],
    )
    .await;
    assert_eq!(token.code, 0, "{}", token.stderr);
    let info: serde_json::Value = serde_json::from_str(&token.stdout).unwrap();
    assert_eq!(info["client_id"], fake::CERT_CLIENT_ID);
    assert!(
        info.get("access_token").is_none(),
        "the token only with --show-token"
    );
    let shown = run_against(
        &server,
        Some(&connection),
        &[
            "--json",
            "--cert-store",
            &store_arg,
            "token",
            "--show-token",
        ],
    )
    .await;
    let shown: serde_json::Value = serde_json::from_str(&shown.stdout).unwrap();
    assert!(
        shown["access_token"]
            .as_str()
            .is_some_and(|t| !t.is_empty())
    );

    let missing = run_against(&server, Some(&connection), &["whoami"]).await;
    assert_eq!(missing.code, 2, "no store mapped: {}", missing.stderr);
    assert!(!missing.stderr.contains(&cert.pfx_password));
    let _ = std::fs::remove_dir_all(store);
}

#[tokio::test]
async fn verbose_logs_each_exchange_with_attempts_and_no_secret() {
    let fake = Fake::demo();
    let server = fake::serve_tls(fake.clone()).await.unwrap();
    fake.inject(fake::Fault::Status(503), 1);
    let run = verbose_whoami(&server).await;
    let lines = exchange_lines(&run);
    let org = fake::ORG_HOST;
    let login = fake::LOGIN_HOST;
    assert!(
        lines[0].starts_with(&format!("http: GET {org}/api/data/v9.2/ → 401 in ")),
        "discovery: {lines:?}"
    );
    assert!(
        lines[1].starts_with(&format!(
            "http: POST {login}/{}/oauth2/v2.0/token → 200 in ",
            fake::DEMO_TENANT_ID
        )),
        "token: {lines:?}"
    );
    assert!(
        lines[2].contains("WhoAmI → 503") && lines[2].ends_with("attempt 1"),
        "{lines:?}"
    );
    assert!(
        lines[3].contains("WhoAmI → 200") && lines[3].ends_with("attempt 2"),
        "the retry is attempt 2: {lines:?}"
    );
    assert_eq!(lines.len(), 4, "{lines:?}");
    let bearer = fake
        .requests()
        .iter()
        .find_map(|r| r.authorization.clone())
        .expect("WhoAmI carried the token");
    let token = bearer.trim_start_matches("Bearer ");
    assert!(token.len() > 40);
    for output in [&run.stdout, &run.stderr] {
        assert!(!output.contains(fake::DEMO_CLIENT_SECRET));
        assert!(!output.contains(token), "the token is never printed");
    }
}

/// The one JSON object `--json` prints on stderr for an error.
fn json_error(run: &Run) -> serde_json::Value {
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one object, nothing else: {}", run.stderr);
    serde_json::from_str(lines[0]).unwrap_or_else(|e| panic!("{e}: {}", run.stderr))
}

#[tokio::test(flavor = "multi_thread")]
async fn with_json_an_error_is_one_object_on_stderr_with_the_same_exit_code() {
    let fake = Fake::demo();
    let server = fake::serve_tls(fake.clone()).await.unwrap();
    let demo = fake::demo_connection_string();

    let run = run_against(
        &server,
        Some(&wrong_secret_connection()),
        &["--json", "whoami"],
    )
    .await;
    assert_eq!(run.code, 3, "{}", run.stderr);
    let error = json_error(&run);
    assert_eq!(error["kind"], "authentication");
    assert_eq!(
        (&error["status"], &error["aadsts"]),
        (&401.into(), &7000215.into())
    );
    assert_eq!(error["code"], "invalid_client");
    assert_eq!(error["attempts"], 1);
    assert_eq!(error["exit_code"], 3);
    assert!(
        error["client_request_id"]
            .as_str()
            .is_some_and(|id| id.len() == 36)
    );
    assert!(error["message"].as_str().unwrap().contains("AADSTS7000215"));
    assert!(run.stdout.is_empty());
    assert!(!run.stderr.contains("Wr0ng~Value"));

    let missing = "00000000-0000-0000-0000-0000000000ff";
    let run = run_against(
        &server,
        Some(&demo),
        &["--json", "get", "accounts", missing],
    )
    .await;
    assert_eq!(run.code, 4, "{}", run.stderr);
    let error = json_error(&run);
    assert_eq!(
        (&error["kind"], &error["status"]),
        (&"not-found".into(), &404.into())
    );
    assert!(
        error["code"].as_str().is_some_and(|c| c.starts_with("0x")),
        "{error}"
    );
    assert!(error["request_id"].is_string(), "{error}");
    assert!(error["aadsts"].is_null());

    let run = run_against(&server, None, &["--json", "frobnicate"]).await;
    assert_eq!(run.code, 2);
    assert_eq!(json_error(&run)["kind"], "usage");

    // A foreign link the server sent is its fault: invalid-response, exit 4, not 2.
    fake.inject(
        fake::Fault::ForeignNextLink {
            host: "evil.example".into(),
        },
        1,
    );
    let args = ["--json", "query", "accounts", "--page-size", "5", "--all"];
    let run = run_against(&server, Some(&demo), &args).await;
    assert_eq!(run.code, 4, "{}", run.stderr);
    let error = json_error(&run);
    assert_eq!(error["kind"], "invalid-response");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("not on the organization's origin"),
        "{error}"
    );
    assert!(fake.requests().iter().all(|r| r.host != "evil.example"));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreadable_token_response_exits_3_and_a_create_cut_off_exits_5_saying_it_may_have_happened()
 {
    let fake = Fake::demo();
    let server = fake::serve_tls(fake.clone()).await.unwrap();
    let demo = fake::demo_connection_string();
    fake.inject_entra(fake::Fault::MalformedJson, 1);
    let run = run_against(&server, Some(&demo), &["whoami"]).await;
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("Entra ID answered HTTP 200 with something unreadable"),
        "{}",
        run.stderr
    );

    fake.inject(fake::Fault::DropMidBody, 1);
    let args = ["create", "accounts", "--data", r#"{"name":"Cut off"}"#];
    let run = run_against(&server, Some(&demo), &args).await;
    assert_eq!(run.code, 5, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("the request may have reached Dataverse: check before repeating it"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("x-ms-client-request-id "),
        "{}",
        run.stderr
    );
    assert_eq!(
        fake.account_names().last().map(String::as_str),
        Some("Cut off")
    );
}
