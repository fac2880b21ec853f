//! A 200 MiB response without a `Content-Length` (so it cannot be refused up
//! front): the component stops reading at its cap and the host stops with
//! it, so the process's peak memory grows by less than twice the cap.
//!
//! Its own test binary, with one test: it measures the whole process's peak
//! resident memory (`VmHWM`, reset through `/proc/self/clear_refs`), which
//! another test running alongside would disturb.

mod common;

use common::*;
use dataverse_fake::{self as fake, Fake, Fault};
use dataverse_host::{ErrorKind, Session};

const RESPONSE_BYTES: u64 = 200 * 1024 * 1024;
/// The component's default `max-response-bytes`.
const CAP: u64 = 64 * 1024 * 1024;

/// A field of `/proc/self/status`, in bytes.
fn status_bytes(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with(field))
        .unwrap_or_else(|| panic!("no {field} in /proc/self/status"));
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap();
    kib * 1024
}

/// How far the peak resident memory rose above the current one while
/// the endless query ran, which must fail as too large.
async fn peak_growth_of_an_endless_query(session: &mut Session, fake: &Fake) -> u64 {
    session.who_am_i(None).await.unwrap();
    fake.inject(
        Fault::Endless {
            bytes: RESPONSE_BYTES,
        },
        1,
    );
    std::fs::write("/proc/self/clear_refs", "5").expect("resetting VmHWM");
    let before = status_bytes("VmRSS:");
    let error = full_error(session.retrieve_multiple(&accounts_query(None), None).await);
    let peak = status_bytes("VmHWM:");
    match error.kind {
        ErrorKind::InvalidResponse(message) => {
            assert!(message.contains("larger than the limit"), "{message}")
        }
        other => panic!("expected the response to be refused as too large, got {other:?}"),
    }
    // The instance is still usable, and so is the network.
    assert!(session.who_am_i(None).await.is_ok());
    peak.saturating_sub(before)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_200_mib_response_costs_less_than_twice_the_cap_in_process_and_over_tls() {
    let fake = Fake::demo();
    let mut session = connect(&fake, &demo_connection()).await.unwrap();
    let in_process = peak_growth_of_an_endless_query(&mut session, &fake).await;

    let server = fake::serve_tls(fake.clone()).await.unwrap();
    let (mut session, _) = connect_over_tls(&server).await;
    let over_tls = peak_growth_of_an_endless_query(&mut session, &fake).await;

    eprintln!(
        "peak growth for a {} MiB response (cap {} MiB): in-process {:.1} MiB, over TLS {:.1} MiB",
        RESPONSE_BYTES >> 20,
        CAP >> 20,
        in_process as f64 / 1048576.0,
        over_tls as f64 / 1048576.0
    );
    assert!(in_process < 2 * CAP, "in-process: {in_process} bytes");
    assert!(over_tls < 2 * CAP, "over TLS: {over_tls} bytes");
}
