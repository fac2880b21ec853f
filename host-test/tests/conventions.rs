//! The CLI's conventions as a new user meets them: help and version, typos,
//! argument checks before any request, output formats, JSON that stays valid
//! on every exit path, where connection strings come from, completions and
//! the man page, and the fake server's files.

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use dataverse_fake::{self as fake, Fake};
use serde_json::Value;

mod common;
use common::*;

fn run(args: &[&str]) -> Run {
    finish(cli().args(args).output().expect("the CLI runs"))
}

/// A private temporary folder for one test's files.
fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("host-test-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[cfg(unix)]
fn chmod(path: &std::path::Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn version_help_and_per_command_help_with_an_example() {
    let version = run(&["--version"]);
    assert_eq!(version.code, 0);
    assert_eq!(
        version.stdout.trim(),
        format!("host-test {}", env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(run(&["-V"]).stdout, version.stdout);

    let help = run(&["--help"]);
    assert_eq!(help.code, 0);
    for expected in ["doctor", "Exit codes:", "DATAVERSE_CONNECTION", "--output"] {
        assert!(
            help.stdout.contains(expected),
            "{expected}:\n{}",
            help.stdout
        );
    }
    for words in [&["help", "query"][..], &["query", "--help"]] {
        let help = run(words);
        assert_eq!(help.code, 0, "{words:?}");
        assert!(help.stdout.contains("--page-size"), "{}", help.stdout);
        assert!(
            help.stdout
                .contains("host-test query accounts --select name --top 3"),
            "{}",
            help.stdout
        );
    }
}

#[test]
fn typos_exit_2_with_a_suggestion() {
    let command = run(&["whoamy"]);
    assert_eq!(command.code, 2);
    assert!(command.stderr.contains("'whoami'"), "{}", command.stderr);
    let option = run(&["query", "accounts", "--selct", "name"]);
    assert_eq!(option.code, 2);
    assert!(option.stderr.contains("--select"), "{}", option.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn argument_mistakes_exit_2_before_any_request() {
    let fake = Fake::demo();
    let server = fake::serve_tls(fake.clone()).await.unwrap();
    let demo = fake::demo_connection_string();
    let cases: &[&[&str]] = &[
        &["query", "accounts", "--top", "0"],
        &["query", "accounts", "--page-size", "9000"],
        &["query", "accounts", "--filter", " "],
        &["query", "account s"],
        &["get", "accounts", "not a key"],
        &["get", "accounts", "--", "-1"],
        &["delete", "accounts", "name='unclosed"],
        &["send", "FETCH", "accounts"],
        &["--suppress-duplicate-detection", "maybe", "whoami"],
        &["create", "accounts", "--data", "{not json"],
        &["execute", "X", "--action", "--function"],
        &["query", "accounts", "--max-rows", "3"],
    ];
    for args in cases {
        let run = run_against(&server, Some(&demo), args).await;
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        assert!(!run.stderr.is_empty(), "{args:?}");
    }
    let stats = fake.stats();
    assert_eq!(
        (
            stats.discovery_requests,
            stats.token_requests,
            stats.api_requests
        ),
        (0, 0, 0),
        "nothing may reach the service for a local mistake"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_equals_sign_and_a_double_dash_work_as_everywhere() {
    let fake = Fake::demo();
    let server = fake::serve_tls(fake.clone()).await.unwrap();
    let demo = fake::demo_connection_string();
    let run = run_against(
        &server,
        Some(&demo),
        &["query", "accounts", "--top=3", "--select=name"],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout.lines().count(), 3, "{}", run.stdout);
}

#[tokio::test(flavor = "multi_thread")]
async fn json_output_is_valid_on_every_exit_path() {
    let fake = Fake::demo();
    let server = fake::serve_tls(fake.clone()).await.unwrap();
    let demo = fake::demo_connection_string();

    // A usage error: nothing on stdout, one object on stderr.
    let usage = run_against(
        &server,
        Some(&demo),
        &["--json", "query", "accounts", "--top", "0"],
    )
    .await;
    assert_eq!(usage.code, 2);
    assert!(usage.stdout.is_empty());
    let error: Value = serde_json::from_str(usage.stderr.trim()).expect(&usage.stderr);
    assert_eq!(
        (error["kind"].as_str(), error["exit_code"].as_u64()),
        (Some("usage"), Some(2))
    );

    // A failure before the first row: stdout stays empty.
    let wrong = demo.replace(fake::DEMO_CLIENT_SECRET, "Wr0ng~Value");
    let auth = run_against(&server, Some(&wrong), &["--json", "query", "accounts"]).await;
    assert_eq!(auth.code, 3);
    assert!(auth.stdout.is_empty(), "{}", auth.stdout);
    let error: Value = serde_json::from_str(auth.stderr.trim()).expect(&auth.stderr);
    assert_eq!(error["aadsts"], 7000215);

    // A failure half-way through a stream: every line written is whole.
    fake.set_paging_bug(Some(fake::PagingBug::RepeatNextLink));
    let args = ["--json", "query", "accounts", "--page-size", "5", "--all"];
    let broken = run_against(&server, Some(&demo), &args).await;
    fake.set_paging_bug(None);
    assert_eq!(broken.code, 4, "{}", broken.stderr);
    let rows: Vec<Value> = broken
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect(l))
        .collect();
    assert_eq!(rows.len(), 10, "two pages, once each");
    let error: Value = serde_json::from_str(broken.stderr.trim()).expect(&broken.stderr);
    assert_eq!(error["kind"], "invalid-response");

    // One page: one object, printed only once it is complete.
    let page = run_against(
        &server,
        Some(&demo),
        &["--json", "query", "accounts", "--page-size", "10"],
    )
    .await;
    assert_eq!(page.code, 0, "{}", page.stderr);
    let page: Value = serde_json::from_str(page.stdout.trim()).unwrap();
    assert_eq!(page["value"].as_array().unwrap().len(), 10);
    assert!(
        page["@odata.nextLink"]
            .as_str()
            .unwrap()
            .contains("accounts")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn fetchxml_json_keeps_more_records_and_the_paging_cookie() {
    let fake = Fake::demo();
    let server = fake::serve_tls(fake.clone()).await.unwrap();
    let dir = temp_dir("fetch-json");
    let file = dir.join("query.xml");
    std::fs::write(
        &file,
        r#"<fetch count="10"><entity name="account"><attribute name="name"/><order attribute="accountnumber"/></entity></fetch>"#,
    )
    .unwrap();
    let demo = fake::demo_connection_string();
    let run = run_against(
        &server,
        Some(&demo),
        &["--json", "fetchxml", "accounts", file.to_str().unwrap()],
    )
    .await;
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let page: Value = serde_json::from_str(run.stdout.trim()).unwrap();
    assert_eq!(page["value"].as_array().unwrap().len(), 10);
    assert_eq!(page["moreRecords"], true);
    assert!(
        page["pagingCookie"].as_str().unwrap().contains("<cookie"),
        "{page}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn table_output_token_dates_and_verbose_details_read_as_text() {
    let fake = Fake::demo();
    let server = fake::serve_tls(fake.clone()).await.unwrap();
    let demo = fake::demo_connection_string();

    let table = run_against(
        &server,
        Some(&demo),
        &[
            "-o", "table", "query", "accounts", "--select", "name", "--top", "3",
        ],
    )
    .await;
    assert_eq!(table.code, 0, "{}", table.stderr);
    assert!(
        table.stdout.contains('│') && table.stdout.contains("name"),
        "{}",
        table.stdout
    );
    for name in &fake.account_names()[..3] {
        assert!(
            table.stdout.contains(name.as_str()),
            "{name}: {}",
            table.stdout
        );
    }
    assert!(!table.stdout.contains("etag"), "{}", table.stdout);

    let token = run_against(&server, Some(&demo), &["token"]).await;
    assert_eq!(token.code, 0, "{}", token.stderr);
    let expires = token
        .stdout
        .lines()
        .find(|l| l.starts_with("expires_at:"))
        .expect(&token.stdout);
    let date = expires.split_whitespace().nth(1).unwrap();
    assert!(
        date.len() == 20 && date.ends_with('Z') && date.contains('T'),
        "{date}"
    );
    assert!(
        token.stdout.contains("expires_in:") && token.stdout.contains("min"),
        "{}",
        token.stdout
    );
    assert!(!token.stdout.contains("from_cache"), "{}", token.stdout);
    let json = run_against(&server, Some(&demo), &["--json", "token"]).await;
    let json: Value = serde_json::from_str(json.stdout.trim()).unwrap();
    // Another process, another token: its expiry may be a second later, so
    // the date is checked against the run's own Unix time.
    let unix = json["expires_at_unix"].as_u64().unwrap();
    let parsed = time::OffsetDateTime::parse(
        json["expires_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert_eq!(parsed.unix_timestamp(), unix as i64);
    assert!(unix > 1_700_000_000);
    assert!(json.get("access_token").is_none());

    let missing = run_against(
        &server,
        Some(&demo),
        &[
            "-v",
            "get",
            "accounts",
            "00000000-0000-0000-0000-000000000001",
        ],
    )
    .await;
    assert_eq!(missing.code, 4);
    let details = missing
        .stderr
        .lines()
        .find(|l| l.starts_with("details: "))
        .expect(&missing.stderr);
    assert!(
        details.contains("status: 404") && details.contains("client_request_id: "),
        "{details}"
    );
    assert!(
        !details.contains("NotFound(") && !details.contains("ServiceFailure"),
        "{details}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn connection_strings_from_files_env_files_and_profiles() {
    let fake = Fake::demo();
    let server = fake::serve_tls(fake.clone()).await.unwrap();
    let demo = fake::demo_connection_string();
    let dir = temp_dir("connections");

    // --connection @FILE, private: no warning.
    let private = dir.join("private.conn");
    std::fs::write(&private, format!("{demo}\n")).unwrap();
    chmod(&private, 0o600);
    let flag = format!("@{}", private.display());
    let run = run_against(&server, None, &["--connection", &flag, "whoami"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains(fake::DEMO_USER_ID));
    assert!(run.stderr.is_empty(), "{}", run.stderr);

    // Readable by others: it works, with a warning that names the fix.
    let shared = dir.join("shared.conn");
    std::fs::write(&shared, &demo).unwrap();
    chmod(&shared, 0o644);
    let (mut command, ca_dir) = command_against(&server, None, &["whoami"]);
    command.env("DATAVERSE_CONNECTION_FILE", &shared);
    let run = finish(
        tokio::task::spawn_blocking(move || command.output().unwrap())
            .await
            .unwrap(),
    );
    let _ = std::fs::remove_dir_all(ca_dir);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("mode 644") && run.stderr.contains("chmod 600"),
        "{}",
        run.stderr
    );

    // A profile whose secret comes from the environment.
    let config = dir.join("config.toml");
    let by_reference = demo.replace(fake::DEMO_CLIENT_SECRET, "${env:DEMO_SECRET}");
    std::fs::write(
        &config,
        format!(
            "default = \"dev\"\n[profiles.dev]\nconnection = \"{by_reference}\"\n\n[profiles.literal]\nconnection = \"{demo}\"\n"
        ),
    )
    .unwrap();
    chmod(&config, 0o600);
    let with_config = |args: &[&str]| {
        let (mut command, ca_dir) = command_against(&server, None, args);
        command
            .env("DATAVERSE_CONFIG", &config)
            .env("DEMO_SECRET", fake::DEMO_CLIENT_SECRET);
        (command, ca_dir)
    };
    for args in [
        &["whoami"][..],
        &["--profile", "dev", "whoami"],
        &["--profile", "literal", "whoami"],
    ] {
        let (mut command, ca_dir) = with_config(args);
        let run = finish(
            tokio::task::spawn_blocking(move || command.output().unwrap())
                .await
                .unwrap(),
        );
        let _ = std::fs::remove_dir_all(ca_dir);
        assert_eq!(run.code, 0, "{args:?}: {}", run.stderr);
        assert!(run.stdout.contains(fake::DEMO_USER_ID), "{args:?}");
    }
    for args in [
        &["profile", "list"][..],
        &["profile", "show", "literal"],
        &["--json", "profile", "show", "literal"],
    ] {
        let (mut command, ca_dir) = with_config(args);
        let run = finish(
            tokio::task::spawn_blocking(move || command.output().unwrap())
                .await
                .unwrap(),
        );
        let _ = std::fs::remove_dir_all(ca_dir);
        assert_eq!(run.code, 0, "{args:?}: {}", run.stderr);
        assert!(
            !run.stdout.contains(fake::DEMO_CLIENT_SECRET),
            "{args:?}: {}",
            run.stdout
        );
        assert!(
            !run.stderr.contains(fake::DEMO_CLIENT_SECRET),
            "{args:?}: {}",
            run.stderr
        );
    }
    let (mut command, ca_dir) = with_config(&["profile", "list"]);
    let list = finish(command.output().unwrap());
    let _ = std::fs::remove_dir_all(ca_dir);
    assert!(
        list.stdout.contains("* dev") && list.stdout.contains("literal"),
        "{}",
        list.stdout
    );
    assert!(
        list.stdout
            .contains(&format!("https://{}/", fake::ORG_HOST)),
        "{}",
        list.stdout
    );
    let (mut command, ca_dir) = with_config(&["profile", "show", "literal"]);
    let show = finish(command.output().unwrap());
    let _ = std::fs::remove_dir_all(ca_dir);
    assert!(show.stdout.contains("ClientSecret=****"), "{}", show.stdout);

    // A secret on the command line works, with a warning that never shows it.
    let run = run_against(&server, None, &["--connection", &demo, "whoami"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("warning: --connection holds a secret"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains(fake::DEMO_CLIENT_SECRET));

    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn completions_and_the_man_page_generate() {
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let run = run(&["completions", shell]);
        assert_eq!(run.code, 0, "{shell}: {}", run.stderr);
        assert!(
            run.stdout.contains("host-test") && run.stdout.contains("doctor"),
            "{shell}"
        );
    }
    let man = run(&["man"]);
    assert_eq!(man.code, 0, "{}", man.stderr);
    assert!(
        man.stdout.starts_with(".ie") || man.stdout.starts_with(".TH"),
        "{}",
        &man.stdout[..80]
    );
    assert!(
        man.stdout.contains(".SH NAME") && man.stdout.contains("host\\-test"),
        "{}",
        man.stdout
    );
}

/// `fake-server` keeps the secret off the `try:` line (the connection string
/// is in a private file) and removes its files when it is stopped.
#[cfg(unix)]
#[test]
fn fake_server_keeps_the_secret_off_the_try_line_and_cleans_up_on_sigterm() {
    let mut child = cli()
        .args(["fake-server", "--seconds", "60"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let _banner = lines.next().unwrap().unwrap();
    let try_line = lines.next().unwrap().unwrap();
    assert!(
        try_line.starts_with("try: host-test --connection @"),
        "{try_line}"
    );
    assert!(!try_line.contains(fake::DEMO_CLIENT_SECRET), "{try_line}");
    let file = try_line
        .split_whitespace()
        .find_map(|w| w.strip_prefix('@'))
        .unwrap()
        .to_string();
    let dir = std::path::Path::new(&file).parent().unwrap().to_path_buf();
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        fake::demo_connection_string()
    );
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    // The shell's own `kill`: no procps needed on the test machine.
    let status = std::process::Command::new("sh")
        .args(["-c", &format!("kill -TERM {}", child.id())])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    assert!(exit.success(), "{exit:?}");
    assert!(!dir.exists(), "{} is left behind", dir.display());
    // Its last line counts what it served (a load test reads its token count).
    let served = lines.next().unwrap().unwrap();
    assert_eq!(
        served,
        r#"served: {"token_requests":0,"discovery_requests":0,"api_requests":0}"#
    );
}

/// `HTTPS_PROXY` carries every request (as a CONNECT tunnel, credentials
/// sent to the proxy and never printed), `NO_PROXY` bypasses it, and a proxy
/// that refuses is a transport failure naming the proxy, not its password.
#[tokio::test(flavor = "multi_thread")]
async fn https_proxy_carries_every_request_and_no_proxy_bypasses_it() {
    use dataverse_fake::proxy::{Answer, TestProxy};
    const PASSWORD: &str = "Pr0xy-Pa55";
    let fake = Fake::demo();
    let server = fake::serve_tls(fake.clone()).await.unwrap();
    let dir = temp_dir("proxy");
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, &server.ca_pem).unwrap();
    let whoami = |proxy: String, no_proxy: Option<String>, direct: bool| {
        let mut command = cli();
        command
            .env("DATAVERSE_CONNECTION", fake::demo_connection_string())
            .env("HTTPS_PROXY", proxy)
            .arg("--cacert")
            .arg(&ca);
        if let Some(no_proxy) = no_proxy {
            command.env("NO_PROXY", no_proxy);
        }
        if direct {
            for host in [fake::ORG_HOST, fake::LOGIN_HOST] {
                command.args([
                    "--connect-to",
                    &format!("{host}:443:127.0.0.1:{}", server.addr.port()),
                ]);
            }
        }
        command.arg("whoami");
        tokio::task::spawn_blocking(move || finish(command.output().unwrap()))
    };

    // No --connect-to: only the proxy can reach the fake.
    let tunnel = TestProxy::start(Answer::Tunnel(server.addr)).await;
    let run = whoami(tunnel.url(Some(&format!("alice:{PASSWORD}"))), None, false)
        .await
        .unwrap();
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains(fake::DEMO_USER_ID));
    let mut targets: Vec<String> = tunnel
        .seen()
        .iter()
        .map(|s| s.request_line.clone())
        .collect();
    targets.sort();
    targets.dedup();
    assert_eq!(
        targets,
        [
            format!("CONNECT {}:443 HTTP/1.1", fake::ORG_HOST),
            format!("CONNECT {}:443 HTTP/1.1", fake::LOGIN_HOST)
        ]
    );
    assert!(tunnel.seen().iter().all(|s| s.authorization.is_some()));

    // NO_PROXY lists both hosts: straight to the fake, the proxy sees nothing.
    let bypassed = TestProxy::start(Answer::Tunnel(server.addr)).await;
    let no_proxy = format!("{},.microsoftonline.com", fake::ORG_HOST);
    let run = whoami(bypassed.url(None), Some(no_proxy), true)
        .await
        .unwrap();
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(bypassed.seen().is_empty(), "{:?}", bypassed.seen());

    // A proxy that wants other credentials.
    let refusing = TestProxy::start(Answer::Refuse).await;
    let run = whoami(
        refusing.url(Some(&format!("alice:{PASSWORD}"))),
        None,
        false,
    )
    .await
    .unwrap();
    assert_eq!(run.code, 5, "{}", run.stderr);
    assert!(
        run.stderr.contains("407 Proxy Authentication Required"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(&refusing.addr.to_string()),
        "{}",
        run.stderr
    );
    assert!(
        !run.stderr.contains(PASSWORD) && !run.stderr.contains("alice"),
        "{}",
        run.stderr
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The tenant found by discovery is kept for the org (a day), so the next
/// process goes straight to the token request; when the token request says
/// the cached tenant is wrong (the org moved), the entry is dropped and
/// discovery runs again — in the same command, which still succeeds.
#[tokio::test(flavor = "multi_thread")]
async fn the_discovered_tenant_is_cached_per_org_and_dropped_when_the_tenant_moves() {
    let fake = Fake::demo();
    let server = fake::serve_tls(fake.clone()).await.unwrap();
    let cache = temp_dir("authority-cache");
    let whoami = |extra: &[&str]| {
        let mut args = extra.to_vec();
        args.push("whoami");
        let (mut command, dir) =
            command_against(&server, Some(&fake::demo_connection_string()), &args);
        command
            .env_remove("DATAVERSE_NO_AUTHORITY_CACHE")
            .env("DATAVERSE_CACHE_DIR", &cache);
        tokio::task::spawn_blocking(move || {
            let run = finish(command.output().unwrap());
            let _ = std::fs::remove_dir_all(dir);
            run
        })
    };
    let counts = || {
        let stats = fake.stats();
        (stats.discovery_requests, stats.token_requests)
    };

    let first = whoami(&[]).await.unwrap();
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert_eq!(counts(), (1, 1));
    let file = cache.join("authorities.json");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains(fake::DEMO_TENANT_ID), "{text}");
    assert!(!text.contains(fake::DEMO_CLIENT_SECRET) && !text.contains("access_token"));

    let second = whoami(&[]).await.unwrap();
    assert_eq!(second.code, 0, "{}", second.stderr);
    assert_eq!(counts(), (1, 2), "no discovery the second time");

    // The org moved to another tenant: Entra answers AADSTS90002 for the
    // cached one; the command discovers again and succeeds.
    let moved = text.replace(fake::DEMO_TENANT_ID, "0f0f0f0f-0000-4000-8000-00000000abcd");
    std::fs::write(&file, moved).unwrap();
    let third = whoami(&[]).await.unwrap();
    assert_eq!(third.code, 0, "{}", third.stderr);
    assert_eq!(counts().0, 2, "discovered again");
    assert!(
        std::fs::read_to_string(&file)
            .unwrap()
            .contains(fake::DEMO_TENANT_ID)
    );

    let opted_out = whoami(&["--no-authority-cache"]).await.unwrap();
    assert_eq!(opted_out.code, 0, "{}", opted_out.stderr);
    assert_eq!(counts().0, 3);
    let _ = std::fs::remove_dir_all(&cache);
}
