//! Real payloads through the real component in wasmtime, in-process and over
//! loopback TLS: request bodies of every size around the host's write
//! buffers (4 KiB was where bodies used to hang), `$batch` with up to the
//! 1,000 requests Dataverse allows, and a connection reset after the server
//! read a POST (at most one row; any resend is the guest's, and counted).
//!
//! Each sweep writes its table (size × operation → outcome, ms) to
//! `target/tmp/payload-sweep-*.txt`; times are reported, never asserted.

mod common;

use std::fmt::Write as _;
use std::time::Instant;

use common::*;
use dataverse_fake::{self as fake, Fake, Fault};
use dataverse_host::session::{BatchOptions, BatchRequest, Operation, OperationKind, WebRequest};
use dataverse_host::{CallError, EntityRef, ErrorKind, Method, Session};
use serde_json::Value;

/// Around every buffer the body passes: wasi:http's 4 KiB
/// `blocking-write-and-flush`, the host's 1 MiB write budget, and 16 MiB
/// (the gateway's request limit).
const SIZES: [usize; 8] = [
    0,
    1,
    4095,
    4096,
    4097,
    64 * 1024,
    1024 * 1024,
    16 * 1024 * 1024,
];

/// `head` + padding + `tail`, exactly `size` bytes long; `None` when `size`
/// is too short to hold valid JSON of that shape.
fn padded(head: &str, tail: &str, size: usize) -> Option<String> {
    let fill = size.checked_sub(head.len() + tail.len())?;
    Some(format!("{head}{}{tail}", "x".repeat(fill)))
}

/// A body of `size` bytes: valid JSON of the operation's shape when it fits,
/// otherwise `size` bytes that are not (what a careless caller sends).
fn body(head: &str, tail: &str, size: usize) -> (String, bool) {
    match padded(head, tail, size) {
        Some(json) => (json, true),
        None => ("{".repeat(size), false),
    }
}

/// The `Content-Length` the fake received on the last org request.
fn last_content_length(fake: &Fake) -> Option<usize> {
    fake.requests()
        .iter()
        .rev()
        .find(|r| r.host == fake::ORG_HOST)
        .and_then(|r| r.header("content-length").map(|v| v.parse().unwrap()))
}

/// What a too-short, invalid body may come back as: refused by the
/// component before sending, or by Dataverse — never a hang, a transport
/// failure or a trap.
fn assert_refused_cleanly<T: std::fmt::Debug>(what: &str, result: Result<T, CallError>) -> String {
    match result {
        Ok(_) => "ok".into(),
        Err(CallError::Dataverse(e)) => match e.kind {
            ErrorKind::InvalidRequest(_) => "invalid-request".into(),
            ErrorKind::Service(s) => {
                assert_eq!(s.status, 400, "{what}: {s:?}");
                "400".into()
            }
            other => panic!("{what}: an invalid body must be refused, got {other:?}"),
        },
        Err(other) => panic!("{what}: {other:?}"),
    }
}

/// Every size through `create`, `update`, `execute` (an action) and `send`,
/// asserting that each valid body arrived whole; returns the table.
async fn sweep(session: &mut Session, fake: &Fake) -> String {
    let target = session
        .create("accounts", r#"{"name":"Sweep target"}"#, None)
        .await
        .unwrap()
        .id
        .unwrap();
    let mut table = String::from("size\toperation\toutcome\tms\n");
    for size in SIZES {
        // create
        let (json, valid) = body(r#"{"name":"Sweep","description":""#, r#""}"#, size);
        let started = Instant::now();
        let result = session.create("accounts", &json, None).await;
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        let outcome = if valid {
            let id = result
                .unwrap_or_else(|e| panic!("create {size}: {e:?}"))
                .id
                .unwrap();
            assert_eq!(last_content_length(fake), Some(size), "create {size}");
            let row = session
                .retrieve(
                    &EntityRef::new("accounts", &id),
                    &["description".into()],
                    None,
                    None,
                )
                .await
                .unwrap();
            let row: Value = serde_json::from_str(&row.json).unwrap();
            let expected = size - r#"{"name":"Sweep","description":""}"#.len();
            assert_eq!(
                row["description"].as_str().map(str::len),
                Some(expected),
                "create {size}: the stored row"
            );
            "created".to_string()
        } else {
            assert_refused_cleanly(&format!("create {size}"), result)
        };
        writeln!(table, "{size}\tcreate\t{outcome}\t{ms:.1}").unwrap();

        // update
        let (json, valid) = body(r#"{"description":""#, r#""}"#, size);
        let started = Instant::now();
        let result = session
            .update(&EntityRef::new("accounts", &target), &json, None, None)
            .await;
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        let outcome = if valid {
            result.unwrap_or_else(|e| panic!("update {size}: {e:?}"));
            assert_eq!(last_content_length(fake), Some(size), "update {size}");
            "updated".to_string()
        } else {
            assert_refused_cleanly(&format!("update {size}"), result)
        };
        writeln!(table, "{size}\tupdate\t{outcome}\t{ms:.1}").unwrap();

        // execute: an unbound action whose answer echoes the parameter
        let (json, valid) = body(r#"{"Text":""#, r#""}"#, size);
        let operation = Operation {
            name: "sample_Echo".into(),
            kind: OperationKind::Action,
            bound: None,
            parameters: Some(json),
        };
        let started = Instant::now();
        let result = session.execute(&operation, None).await;
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        let outcome = if valid {
            let echoed = result.unwrap_or_else(|e| panic!("execute {size}: {e:?}"));
            assert_eq!(last_content_length(fake), Some(size), "execute {size}");
            let echoed: Value = serde_json::from_str(echoed.json.as_deref().unwrap()).unwrap();
            assert_eq!(
                echoed["Echo"].as_str().map(str::len),
                Some(size - r#"{"Text":""}"#.len()),
                "execute {size}: the echo"
            );
            "echoed".to_string()
        } else {
            assert_refused_cleanly(&format!("execute {size}"), result)
        };
        writeln!(table, "{size}\texecute\t{outcome}\t{ms:.1}").unwrap();

        // send: the escape hatch, raw bytes
        let (json, valid) = body(r#"{"name":"Sent","description":""#, r#""}"#, size);
        let request = WebRequest {
            method: Method::Post,
            path: "accounts".into(),
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: Some(json.into_bytes()),
        };
        let started = Instant::now();
        let result = session.send(&request, None).await;
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        assert_eq!(last_content_length(fake), Some(size), "send {size}");
        let outcome = if valid {
            let response = result.unwrap_or_else(|e| panic!("send {size}: {e:?}"));
            assert_eq!(response.status, 204, "send {size}");
            "204".to_string()
        } else {
            assert_refused_cleanly(&format!("send {size}"), result)
        };
        writeln!(table, "{size}\tsend\t{outcome}\t{ms:.1}").unwrap();
    }
    table
}

fn write_table(name: &str, table: &str) {
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::write(&path, table).unwrap();
    eprintln!("{}:\n{table}", path.display());
}

#[tokio::test(flavor = "multi_thread")]
async fn request_bodies_of_every_size_arrive_whole_in_process() {
    let fake = Fake::demo();
    let mut session = connect(&fake, &demo_connection()).await.unwrap();
    let table = sweep(&mut session, &fake).await;
    write_table("payload-sweep-in-process.txt", &table);
}

#[tokio::test(flavor = "multi_thread")]
async fn request_bodies_of_every_size_arrive_whole_over_tls() {
    let fake = Fake::demo();
    let server = fake::serve_tls(fake.clone()).await.unwrap();
    let (mut session, network) = connect_over_tls(&server).await;
    let table = sweep(&mut session, &fake).await;
    write_table("payload-sweep-tls.txt", &table);
    // Every body went over the one keep-alive connection per host.
    assert_eq!(network.connections_opened(), 2);
}

/// A create with a unique account number (the alternate key) per `batch`.
fn create_request(batch: &str, n: usize) -> BatchRequest {
    BatchRequest {
        method: Method::Post,
        url: "accounts".into(),
        headers: vec![],
        body: Some(format!(
            r#"{{"name":"Batch {n}","accountnumber":"{batch}-{n}"}}"#
        )),
    }
}

async fn batch_counts(session: &mut Session, fake: &Fake) -> String {
    let mut table = String::from("requests\tchange-set\toutcome\tms\n");
    for count in [1, 20, 100, 1000] {
        for change_set in [false, true] {
            let before = fake.account_names().len();
            let tag = format!("B{count}-{change_set}");
            let requests: Vec<BatchRequest> = (0..count).map(|n| create_request(&tag, n)).collect();
            let options = BatchOptions {
                change_set,
                continue_on_error: false,
            };
            let started = Instant::now();
            let result = session
                .batch(&requests, options, None)
                .await
                .unwrap_or_else(|e| panic!("batch of {count}: {e:?}"));
            let ms = started.elapsed().as_secs_f64() * 1000.0;
            assert_eq!(result.responses.len(), count, "batch of {count}");
            assert!(
                result.responses.iter().all(|r| r.status == 204),
                "batch of {count}: every create succeeds: {:?}",
                result.responses.iter().find(|r| r.status != 204)
            );
            assert_eq!(
                fake.account_names().len(),
                before + count,
                "batch of {count}: each row exactly once"
            );
            assert_eq!(result.call.attempts, 1);
            writeln!(table, "{count}\t{change_set}\t{count} x 204\t{ms:.1}").unwrap();
        }
    }
    // One more than Dataverse allows is refused before anything is sent.
    let requests: Vec<BatchRequest> = (0..1001).map(|n| create_request("B1001", n)).collect();
    let options = BatchOptions {
        change_set: false,
        continue_on_error: false,
    };
    let sent = fake.requests().len();
    let error = full_error(session.batch(&requests, options, None).await);
    assert!(
        matches!(&error.kind, ErrorKind::InvalidRequest(m) if m.contains("1000")),
        "a batch of 1001: {:?}",
        error.kind
    );
    assert_eq!(fake.requests().len(), sent, "nothing was sent");
    writeln!(table, "1001\tfalse\tinvalid-request, not sent\t-").unwrap();
    table
}

#[tokio::test(flavor = "multi_thread")]
async fn batches_of_1_to_1000_requests_are_each_applied_once_in_process() {
    let fake = Fake::demo();
    let mut session = connect(&fake, &demo_connection()).await.unwrap();
    let table = batch_counts(&mut session, &fake).await;
    write_table("batch-sweep-in-process.txt", &table);
}

#[tokio::test(flavor = "multi_thread")]
async fn batches_of_1_to_1000_requests_are_each_applied_once_over_tls() {
    let fake = Fake::demo();
    let server = fake::serve_tls(fake.clone()).await.unwrap();
    let (mut session, _) = connect_over_tls(&server).await;
    let table = batch_counts(&mut session, &fake).await;
    write_table("batch-sweep-tls.txt", &table);
}

/// The server executes a POST, then the connection drops before any answer:
/// the row exists once, and the caller hears that the write may have
/// happened, after exactly one attempt. A GET that meets the same fault is
/// resent by the guest's policy, and the resend is counted.
async fn reset_after_the_server_read_the_request(session: &mut Session, fake: &Fake) {
    // Warm the connection, so the fault hits a reused keep-alive connection.
    session.who_am_i(None).await.unwrap();
    let before = fake.account_names().len();
    fake.inject(Fault::HangUpAfterExecuting, 1);
    let error = full_error(
        session
            .create("accounts", r#"{"name":"Reset once"}"#, None)
            .await,
    );
    assert!(
        matches!(error.kind, ErrorKind::Transport(_)),
        "{:?}",
        error.kind
    );
    assert_eq!(error.call.expect("the call was sent").attempts, 1);
    let names = fake.account_names();
    assert_eq!(names.len(), before + 1, "the server committed it once");
    assert_eq!(
        names.iter().filter(|n| *n == "Reset once").count(),
        1,
        "never twice"
    );

    // A GET is idempotent: the guest resends it, and says so.
    fake.inject(Fault::HangUpAfterExecuting, 1);
    let me = session.who_am_i(None).await.unwrap();
    assert_eq!(me.call.attempts, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reset_after_the_server_read_a_post_never_duplicates_it_in_process() {
    let fake = Fake::demo();
    let mut session = connect(&fake, &demo_connection()).await.unwrap();
    reset_after_the_server_read_the_request(&mut session, &fake).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reset_after_the_server_read_a_post_never_duplicates_it_over_tls() {
    let fake = Fake::demo();
    let server = fake::serve_tls(fake.clone()).await.unwrap();
    let (mut session, _) = connect_over_tls(&server).await;
    reset_after_the_server_read_the_request(&mut session, &fake).await;
    // The dropped connection was replaced, not resent on by the host.
    let posts = fake
        .requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path_and_query.ends_with("/accounts"))
        .count();
    assert_eq!(posts, 1, "the host never resent the POST");
}

/// A server that hangs up on an idle keep-alive connection before reading
/// anything (what load balancers do): the host replaces the connection and
/// the POST is sent on the new one once — nothing of it was written, so
/// that is safe — and it is still one attempt.
#[tokio::test(flavor = "multi_thread")]
async fn a_connection_closed_before_the_request_was_written_is_replaced_over_tls() {
    let fake = Fake::demo();
    let server = fake::serve_tls(fake.clone()).await.unwrap();
    let (mut session, network) = connect_over_tls(&server).await;
    session.who_am_i(None).await.unwrap();
    let opened = network.connections_opened();
    // The server drops every open connection: the pooled one is stale. The
    // pause lets the client's connection task see the close (a request
    // written before it does is the case the test above covers).
    server.close_connections();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let created = session
        .create("accounts", r#"{"name":"After idle close"}"#, None)
        .await
        .unwrap();
    assert_eq!(created.call.attempts, 1);
    assert_eq!(network.connections_opened(), opened + 1);
    let names = fake.account_names();
    assert_eq!(names.iter().filter(|n| *n == "After idle close").count(), 1);
}
