//! `host-test schedule` end to end: the real binary, the component in
//! wasmtime, the fake on loopback TLS. The schedules fire every second, so
//! each test runs a few seconds; `--max-ticks` bounds every run.

mod common;

use std::time::{Duration, Instant};

use common::*;
use dataverse_fake::{self as fake, Fake, Fault, TlsFakeServer};
use serde_json::Value;

const EVERY_SECOND: &str = "* * * * * *";

/// The JSON lines the worker logged on stderr.
fn log_lines(run: &Run) -> Vec<Value> {
    run.stderr
        .lines()
        .map(|line| {
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"))
        })
        .collect()
}

fn ticks(lines: &[Value]) -> Vec<&Value> {
    lines.iter().filter(|l| l.get("tick").is_some()).collect()
}

async fn schedule(server: &TlsFakeServer, args: &[&str]) -> Run {
    let connection = fake::demo_connection_string();
    run_against(server, Some(&connection), args).await
}

#[tokio::test]
async fn five_ticks_make_five_queries_with_one_token() {
    let fake = Fake::demo();
    let server = fake::serve_tls(fake.clone()).await.unwrap();
    let run = schedule(
        &server,
        &[
            "schedule",
            EVERY_SECOND,
            "--max-ticks",
            "5",
            "--",
            "query",
            "accounts",
            "--select",
            "name",
            "--top",
            "3",
        ],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let lines = log_lines(&run);
    let ticks = ticks(&lines);
    assert_eq!(ticks.len(), 5, "{}", run.stderr);
    for (i, tick) in ticks.iter().enumerate() {
        assert_eq!(tick["tick"], i as u64 + 1);
        assert_eq!(tick["outcome"], "ok", "{tick}");
        assert_eq!(tick["rows"], 3, "{tick}");
        assert_eq!(tick["attempts"], 1, "{tick}");
    }
    // The names, three per tick, on stdout.
    let names = &fake.account_names()[..3];
    let printed: Vec<String> = run
        .stdout
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["name"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let expected: Vec<String> = (0..5).flat_map(|_| names.iter().cloned()).collect();
    assert_eq!(printed, expected);
    let stats = fake.stats();
    assert_eq!(
        (stats.token_requests, stats.api_requests),
        (1, 5),
        "one warm client: one token for the whole run"
    );
    assert_eq!(lines.last().unwrap()["ticks"], 5);
}

#[tokio::test]
async fn a_tick_slowed_past_the_period_makes_the_next_one_skip() {
    let fake = Fake::demo();
    let server = fake::serve_tls(fake.clone()).await.unwrap();
    fake.inject(Fault::Slow { millis: 1500 }, 1);
    let run = schedule(
        &server,
        &["schedule", EVERY_SECOND, "--max-ticks", "3", "--", "whoami"],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let lines = log_lines(&run);
    let skipped: Vec<&Value> = lines
        .iter()
        .filter(|l| l.get("skipped").is_some())
        .collect();
    assert!(!skipped.is_empty(), "{}", run.stderr);
    assert_eq!(skipped[0]["reason"], "tick 1 was still running");
    let ticks = ticks(&lines);
    assert_eq!(ticks.len(), 3);
    assert!(ticks[0]["duration_ms"].as_u64().unwrap() >= 1500);
    // Never side by side: each tick starts after the one before ended.
    for pair in ticks.windows(2) {
        let start =
            |t: &Value| chrono::DateTime::parse_from_rfc3339(t["start"].as_str().unwrap()).unwrap();
        let ended = start(pair[0])
            + chrono::Duration::milliseconds(pair[0]["duration_ms"].as_i64().unwrap());
        assert!(start(pair[1]) >= ended, "{} then {}", pair[0], pair[1]);
    }
    assert_eq!(fake.stats().api_requests, 3);
}

#[tokio::test]
async fn a_failed_tick_is_logged_and_the_next_succeeds() {
    let fake = Fake::demo();
    let server = fake::serve_tls(fake.clone()).await.unwrap();
    fake.inject(Fault::Status(500), 1);
    let run = schedule(
        &server,
        &["schedule", EVERY_SECOND, "--max-ticks", "2", "--", "whoami"],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let lines = log_lines(&run);
    let ticks = ticks(&lines);
    assert_eq!(ticks.len(), 2, "{}", run.stderr);
    assert_eq!(ticks[0]["outcome"], "failed");
    assert_eq!(ticks[0]["error"]["kind"], "service");
    assert_eq!(ticks[0]["error"]["exit_code"], 4);
    assert!(
        ticks[0]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("HTTP 500")
    );
    assert_eq!(ticks[1]["outcome"], "ok");
    assert_eq!(fake.stats().token_requests, 1);
}

#[tokio::test]
async fn a_refused_secret_fails_each_tick_and_the_schedule_goes_on() {
    let fake = Fake::demo();
    let server = fake::serve_tls(fake.clone()).await.unwrap();
    let wrong =
        fake::demo_connection_string().replace(fake::DEMO_CLIENT_SECRET, "wrong-secret-3a9e");
    let run = run_against(
        &server,
        Some(&wrong),
        &["schedule", EVERY_SECOND, "--max-ticks", "2", "--", "whoami"],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let lines = log_lines(&run);
    let ticks = ticks(&lines);
    assert_eq!(ticks.len(), 2);
    for tick in ticks {
        assert_eq!(tick["error"]["kind"], "authentication", "{tick}");
        assert_eq!(tick["error"]["exit_code"], 3);
    }
    assert!(!run.stderr.contains("wrong-secret-3a9e"));
    // The client was never ready: each tick tried again.
    assert_eq!(fake.stats().token_requests, 2);
}

#[tokio::test]
async fn bad_settings_stop_it_before_the_first_tick() {
    let fake = Fake::demo();
    let server = fake::serve_tls(fake.clone()).await.unwrap();
    let cases: &[(Option<&str>, &[&str])] = &[
        (
            Some("AuthType=ClientSecret;Url=not-a-url;ClientId=x;ClientSecret=y"),
            &["schedule", EVERY_SECOND, "--", "whoami"],
        ),
        (None, &["schedule", EVERY_SECOND, "--", "whoami"]),
        (Some("x"), &["schedule", "*/5 * * * *", "--", "whoami"]),
        (Some("x"), &["schedule", EVERY_SECOND, "--", "whoamy"]),
        (
            Some("x"),
            &[
                "schedule",
                EVERY_SECOND,
                "--",
                "query",
                "accounts",
                "--top",
                "0",
            ],
        ),
        (Some("x"), &["schedule", EVERY_SECOND]),
    ];
    for (connection, args) in cases {
        let started = Instant::now();
        let run = run_against(&server, *connection, args).await;
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        assert!(!run.stderr.contains("\"tick\""), "{args:?}: {}", run.stderr);
        assert!(started.elapsed() < Duration::from_secs(5), "{args:?}");
    }
    let stats = fake.stats();
    assert_eq!((stats.discovery_requests, stats.token_requests), (0, 0));
}

#[cfg(unix)]
#[tokio::test]
async fn sigterm_mid_tick_lets_the_tick_finish_then_exits_0() {
    let fake = Fake::demo();
    let server = fake::serve_tls(fake.clone()).await.unwrap();
    fake.inject(Fault::Slow { millis: 2000 }, 1);
    let connection = fake::demo_connection_string();
    let (mut command, dir) = command_against(
        &server,
        Some(&connection),
        &[
            "schedule",
            "@every 1h",
            "--run-on-startup",
            "--",
            "whoami",
            "--json",
        ],
    );
    command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = command.spawn().expect("the CLI starts");
    // The tick's request is at the fake (and held there for 2 s): now.
    let deadline = Instant::now() + Duration::from_secs(60);
    while fake
        .requests()
        .iter()
        .all(|r| !r.path_and_query.contains("WhoAmI"))
    {
        assert!(Instant::now() < deadline, "the tick never reached the fake");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let pid = i32::try_from(child.id()).unwrap();
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let output = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    let _ = std::fs::remove_dir_all(dir);
    let run = finish(output);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let lines = log_lines(&run);
    let ticks = ticks(&lines);
    assert_eq!(ticks.len(), 1, "{}", run.stderr);
    assert_eq!(ticks[0]["outcome"], "ok", "the running tick finished");
    assert!(ticks[0]["duration_ms"].as_u64().unwrap() >= 1500);
    let who: Value = serde_json::from_str(run.stdout.trim()).expect("the tick's output");
    assert!(who["UserId"].is_string());
    assert_eq!(lines.last().unwrap()["ticks"], 1);
}
