//! Retry and throttling policy. Pure: it decides how long to wait, the
//! caller sleeps (and supplies the random bits for jitter).

use serde::Deserialize;
use serde_json::Value;

use crate::http::Method;

/// How hard to retry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// The total time spent waiting between attempts may not exceed this.
    pub max_total_wait_ms: u64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 4,
            max_total_wait_ms: 120_000,
        }
    }
}

/// What happened to one attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The server answered.
    Status {
        status: u16,
        /// The `Retry-After` header, see [`retry_after_secs`].
        retry_after_secs: Option<u64>,
        /// The error body carried a service-protection code, see [`throttling_code`].
        throttling_code: bool,
    },
    /// The connection failed after the request may have left.
    TransportFailure,
    /// No connection could be made: nothing was sent.
    Unsent { permanent: bool },
}

/// What to do next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Wait this long, then send again.
    RetryAfterMs(u64),
    GiveUp,
}

/// First backoff step and the cap of the exponential backoff.
const BASE_DELAY_MS: u64 = 1_000;
const MAX_DELAY_MS: u64 = 30_000;
/// A `Retry-After` beyond a day is a server bug, not a plan.
const MAX_RETRY_AFTER_SECS: u64 = 86_400;
/// The shortest wait after throttling. `Retry-After` counts whole seconds
/// (RFC 9110 delta-seconds), so `0` means "less than a second", not "now":
/// taken literally it spent every retry of a call in about 80 ms, each one
/// counting against the very limit that throttled it. One second is the
/// smallest wait certain to be past what the server asked for.
pub const MIN_THROTTLED_WAIT_MS: u64 = 1_000;

/// Dataverse service-protection limit codes: number of requests, execution
/// time, concurrent requests.
const THROTTLING_CODES: [i64; 3] = [-2_147_015_902, -2_147_015_903, -2_147_015_898];

/// Methods that may be sent twice without changing the outcome: a transport
/// failure or a 5xx may come after the server acted, so only these are
/// replayed then. (A throttled request was refused, so any method is.)
pub fn is_idempotent(method: Method) -> bool {
    match method {
        Method::Get | Method::Put | Method::Patch | Method::Delete => true,
        Method::Post => false,
    }
}

#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorInner,
}

#[derive(Deserialize)]
struct ErrorInner {
    code: Value,
}

/// True when an error body `{"error":{"code":…}}` carries one of the
/// service-protection codes (hex `0x80072322`, or decimal, as a string or a number).
pub fn throttling_code(body: &[u8]) -> bool {
    let Ok(ErrorBody {
        error: ErrorInner { code },
    }) = serde_json::from_slice(body)
    else {
        return false;
    };
    let number = match &code {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => parse_code(s.trim()),
        _ => None,
    };
    number.is_some_and(|n| THROTTLING_CODES.contains(&n))
}

/// `0x80072322` (read as the signed 32-bit HRESULT) or `-2147015902`.
fn parse_code(code: &str) -> Option<i64> {
    match code.strip_prefix("0x").or_else(|| code.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16)
            .ok()
            .map(|u| i64::from(u as i32)),
        None => code.parse().ok(),
    }
}

/// `Retry-After` as delta-seconds, capped at one day. HTTP-dates are
/// ignored (`None`): reading them needs a clock, and Dataverse sends seconds.
pub fn retry_after_secs(header: Option<&str>) -> Option<u64> {
    let value = header?.trim();
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // All digits: a parse failure can only be an overflow.
    Some(
        value
            .parse()
            .map_or(MAX_RETRY_AFTER_SECS, |s: u64| s.min(MAX_RETRY_AFTER_SECS)),
    )
}

/// Whether and when to retry after `attempts_made` attempts (the failed one
/// included) that have already waited `waited_ms` in total.
///
/// - below 400: nothing to retry;
/// - 429, or a service-protection code in the body: retry any method, after
///   `Retry-After` when given, else with backoff — never sooner than
///   [`MIN_THROTTLED_WAIT_MS`];
/// - 502/503/504 and transport failures: retry idempotent methods only, with
///   backoff — or after `Retry-After` when that is longer;
/// - no connection made (refused, connect timeout): retry any method with
///   backoff, since nothing was sent; an unknown host or an untrusted
///   certificate: give up at once;
/// - anything else: give up.
///
/// Backoff is exponential with jitter: base = 1 s × 2^(attempts_made−1),
/// capped at 30 s; delay = base/2 + random % (base/2 + 1).
pub fn decide(
    policy: &RetryPolicy,
    idempotent: bool,
    attempts_made: u32,
    waited_ms: u64,
    outcome: Outcome,
    random: u64,
) -> Decision {
    if attempts_made > policy.max_retries {
        return Decision::GiveUp;
    }
    let backoff = backoff_ms(attempts_made, random);
    let delay = match outcome {
        Outcome::Status { status, .. } if status < 400 => return Decision::GiveUp,
        Outcome::Status {
            status,
            retry_after_secs,
            throttling_code,
        } if status == 429 || throttling_code => retry_after_secs
            .map_or(backoff, |s| s.saturating_mul(1000))
            .max(MIN_THROTTLED_WAIT_MS),
        Outcome::Status {
            status: 502..=504,
            retry_after_secs,
            ..
        } if idempotent => backoff.max(retry_after_secs.map_or(0, |s| s.saturating_mul(1000))),
        Outcome::TransportFailure if idempotent => backoff,
        // Nothing left, so even a POST is safe to send again.
        Outcome::Unsent { permanent: false } => backoff,
        _ => return Decision::GiveUp,
    };
    if waited_ms.saturating_add(delay) > policy.max_total_wait_ms {
        Decision::GiveUp
    } else {
        Decision::RetryAfterMs(delay)
    }
}

/// [`decide`] for a request that changes nothing (tenant discovery, a token
/// request, a managed-identity or OIDC token request): idempotent.
pub fn decide_repeatable(
    policy: &RetryPolicy,
    attempts_made: u32,
    waited_ms: u64,
    outcome: Outcome,
    random: u64,
) -> Decision {
    decide(policy, true, attempts_made, waited_ms, outcome, random)
}

/// How long IMDS may answer 410 while it is being upgraded: its
/// documentation says it is available again "within 70 seconds".
pub const IMDS_UPGRADE_WINDOW_MS: u64 = 70_000;

/// [`decide_repeatable`] for the Azure Instance Metadata Service's token
/// endpoint, which asks its clients to retry more than a web service does:
///
/// - 404 (IMDS is updating) and every 5xx: backoff, as a 503;
/// - 429: as throttling ([`decide`]);
/// - 410 (IMDS is being upgraded): backoff until [`IMDS_UPGRADE_WINDOW_MS`]
///   of waiting, within the policy's `max_total_wait_ms`; not limited by
///   `max_retries` (four backoffs wait about 15 s, not 70), except that
///   `max_retries = 0` still means no retry;
/// - anything else: as [`decide_repeatable`] (other 4xx are answers).
pub fn decide_imds(
    policy: &RetryPolicy,
    attempts_made: u32,
    waited_ms: u64,
    outcome: Outcome,
    random: u64,
) -> Decision {
    match outcome {
        Outcome::Status { status: 410, .. } => {
            if policy.max_retries == 0 {
                return Decision::GiveUp;
            }
            let delay = backoff_ms(attempts_made, random);
            let window = policy.max_total_wait_ms.min(IMDS_UPGRADE_WINDOW_MS);
            if waited_ms.saturating_add(delay) > window {
                Decision::GiveUp
            } else {
                Decision::RetryAfterMs(delay)
            }
        }
        Outcome::Status {
            status: 404 | 500..=599,
            retry_after_secs,
            ..
        } => decide_repeatable(
            policy,
            attempts_made,
            waited_ms,
            Outcome::Status {
                status: 503,
                retry_after_secs,
                throttling_code: false,
            },
            random,
        ),
        other => decide_repeatable(policy, attempts_made, waited_ms, other, random),
    }
}

fn backoff_ms(attempts_made: u32, random: u64) -> u64 {
    let exponent = attempts_made.saturating_sub(1).min(16);
    let base = BASE_DELAY_MS
        .saturating_mul(1 << exponent)
        .min(MAX_DELAY_MS);
    let half = base / 2;
    half + random % (half + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(status: u16, retry_after_secs: Option<u64>, throttling_code: bool) -> Outcome {
        Outcome::Status {
            status,
            retry_after_secs,
            throttling_code,
        }
    }

    #[test]
    fn only_post_is_not_idempotent() {
        for (method, expected) in [
            (Method::Get, true),
            (Method::Put, true),
            (Method::Patch, true),
            (Method::Delete, true),
            (Method::Post, false),
        ] {
            assert_eq!(is_idempotent(method), expected, "{method:?}");
        }
    }

    #[test]
    fn service_protection_codes_are_recognised_in_any_spelling() {
        let cases = [
            (
                r#"{"error":{"code":"0x80072322","message":"Number of requests exceeded"}}"#,
                true,
            ),
            (r#"{"error":{"code":"0X80072321"}}"#, true),
            (r#"{"error":{"code":"0x80072326"}}"#, true),
            (r#"{"error":{"code":-2147015902}}"#, true),
            (r#"{"error":{"code":"-2147015898"}}"#, true),
            (r#"{"error":{"code":" 0x80072321 "}}"#, true),
            (r#"{"error":{"code":"0x80072560"}}"#, false),
            (r#"{"error":{"code":"0x80072322x"}}"#, false),
            (r#"{"error":{"code":"0x"}}"#, false),
            (r#"{"error":{"code":null}}"#, false),
            (r#"{"error":{"code":2147951906}}"#, false),
            (r#"{"error":{}}"#, false),
            (r#"{"code":"0x80072322"}"#, false),
            ("0x80072322", false),
            ("", false),
            ("\u{0}\u{ff}", false),
        ];
        for (body, expected) in cases {
            assert_eq!(throttling_code(body.as_bytes()), expected, "{body}");
        }
        assert!(!throttling_code(&[0xff, 0xfe]));
    }

    #[test]
    fn retry_after_is_read_as_seconds_and_capped() {
        let cases = [
            (None, None),
            (Some("7"), Some(7)),
            (Some(" 0 "), Some(0)),
            (Some("86401"), Some(86_400)),
            (Some("99999999999999999999999"), Some(86_400)),
            (Some("Wed, 21 Oct 2015 07:28:00 GMT"), None),
            (Some("-1"), None),
            (Some("1.5"), None),
            (Some(""), None),
            (Some("٣"), None),
        ];
        for (header, expected) in cases {
            assert_eq!(retry_after_secs(header), expected, "{header:?}");
        }
    }

    #[test]
    fn decisions_follow_the_policy() {
        let p = RetryPolicy::default();
        use Decision::{GiveUp, RetryAfterMs as Retry};
        // (idempotent, attempts_made, waited_ms, outcome, random, decision)
        let cases = [
            // Successes and ordinary errors are not retried.
            (true, 1, 0, status(200, None, false), 0, GiveUp),
            (true, 1, 0, status(304, Some(5), true), 0, GiveUp),
            (true, 1, 0, status(400, None, false), 0, GiveUp),
            (true, 1, 0, status(404, Some(1), false), 0, GiveUp),
            (true, 1, 0, status(500, None, false), 0, GiveUp),
            // Throttling: every method, Retry-After first.
            (false, 1, 0, status(429, Some(7), false), 0, Retry(7_000)),
            // Retry-After counts whole seconds: 0 means under a second.
            (false, 1, 0, status(429, Some(0), false), 0, Retry(1_000)),
            (true, 3, 0, status(429, Some(0), false), 0, Retry(1_000)),
            (false, 1, 0, status(503, Some(3), true), 0, Retry(3_000)),
            // Without Retry-After, backoff, but never under a second.
            (false, 1, 0, status(400, None, true), 0, Retry(1_000)),
            (false, 1, 0, status(429, None, false), 0, Retry(1_000)),
            (false, 2, 0, status(429, None, false), 0, Retry(1_000)),
            (false, 2, 0, status(429, None, false), 1_000, Retry(2_000)),
            (false, 2, 0, status(429, None, false), 1_001, Retry(1_000)),
            // Gateway errors and transport failures: idempotent only.
            (true, 1, 0, status(502, None, false), 0, Retry(500)),
            (true, 1, 0, status(503, None, false), 500, Retry(1_000)),
            (true, 3, 0, status(504, None, false), 3, Retry(2_003)),
            (true, 1, 0, status(503, Some(10), false), 0, Retry(10_000)),
            (false, 1, 0, status(503, None, false), 0, GiveUp),
            (true, 1, 0, Outcome::TransportFailure, 0, Retry(500)),
            (false, 1, 0, Outcome::TransportFailure, 0, GiveUp),
            // Jitter adds at most half the base.
            (
                true,
                4,
                0,
                Outcome::TransportFailure,
                u64::MAX,
                Retry(4_000 + u64::MAX % 4_001),
            ),
            // Nothing sent: any method again, unless it cannot help.
            (
                false,
                1,
                0,
                Outcome::Unsent { permanent: false },
                0,
                Retry(500),
            ),
            (
                true,
                2,
                0,
                Outcome::Unsent { permanent: false },
                0,
                Retry(1_000),
            ),
            (true, 1, 0, Outcome::Unsent { permanent: true }, 0, GiveUp),
            (false, 1, 0, Outcome::Unsent { permanent: true }, 0, GiveUp),
            (false, 5, 0, Outcome::Unsent { permanent: false }, 0, GiveUp),
            // Budgets.
            (true, 4, 0, Outcome::TransportFailure, 0, Retry(4_000)),
            (true, 5, 0, Outcome::TransportFailure, 0, GiveUp),
            (false, 5, 0, status(429, Some(1), false), 0, GiveUp),
            (true, 1, 119_500, Outcome::TransportFailure, 0, Retry(500)),
            (true, 1, 119_501, Outcome::TransportFailure, 0, GiveUp),
            (false, 1, 0, status(429, Some(121), false), 0, GiveUp),
            (
                false,
                1,
                u64::MAX,
                status(429, Some(u64::MAX), false),
                0,
                GiveUp,
            ),
            // A zeroth attempt is treated as the first.
            (true, 0, 0, Outcome::TransportFailure, 0, Retry(500)),
        ];
        for (idempotent, attempts, waited, outcome, random, expected) in cases {
            assert_eq!(
                decide(&p, idempotent, attempts, waited, outcome, random),
                expected,
                "{idempotent} {attempts} {waited} {outcome:?} {random}"
            );
        }
    }

    #[test]
    fn imds_is_retried_on_404_410_429_and_every_5xx_and_nothing_else() {
        let p = RetryPolicy::default();
        use Decision::{GiveUp, RetryAfterMs as Retry};
        let cases = [
            (1, 0, status(404, None, false), Retry(500)),
            (1, 0, status(500, None, false), Retry(500)),
            (1, 0, status(501, None, false), Retry(500)),
            (2, 0, status(599, None, false), Retry(1_000)),
            (1, 0, status(503, Some(3), false), Retry(3_000)),
            (1, 0, status(429, None, false), Retry(1_000)),
            (1, 0, status(429, Some(5), false), Retry(5_000)),
            (1, 0, status(410, None, false), Retry(500)),
            (1, 0, status(400, None, false), GiveUp),
            (1, 0, status(401, None, false), GiveUp),
            (1, 0, status(403, None, false), GiveUp),
            (1, 0, status(200, None, false), GiveUp),
            (1, 0, Outcome::TransportFailure, Retry(500)),
            (1, 0, Outcome::Unsent { permanent: false }, Retry(500)),
            (1, 0, Outcome::Unsent { permanent: true }, GiveUp),
            // 404 and 5xx count against max_retries like any retry.
            (5, 0, status(404, None, false), GiveUp),
            (5, 0, status(500, None, false), GiveUp),
            // 410 is bounded by its 70 s window, not by max_retries.
            (5, 15_000, status(410, None, false), Retry(8_000)),
            (8, 55_000, status(410, None, false), Retry(15_000)),
            (8, 55_001, status(410, None, false), GiveUp),
        ];
        for (attempts, waited, outcome, expected) in cases {
            assert_eq!(
                decide_imds(&p, attempts, waited, outcome, 0),
                expected,
                "{attempts} {waited} {outcome:?}"
            );
        }
        // A 410 waits as long as the call's own budget allows, at most.
        let short = RetryPolicy {
            max_retries: 4,
            max_total_wait_ms: 10_000,
        };
        let upgrading = status(410, None, false);
        assert_eq!(decide_imds(&short, 4, 2_000, upgrading, 0), Retry(4_000));
        assert_eq!(decide_imds(&short, 5, 7_000, upgrading, 0), GiveUp);
        let none = RetryPolicy {
            max_retries: 0,
            max_total_wait_ms: 120_000,
        };
        assert_eq!(decide_imds(&none, 1, 0, upgrading, 0), GiveUp);
    }

    #[test]
    fn imds_410_retries_add_up_to_at_most_the_upgrade_window() {
        let p = RetryPolicy::default();
        for random in [0, 1, 12_345, u64::MAX] {
            let (mut attempts, mut waited) = (1, 0u64);
            while let Decision::RetryAfterMs(ms) =
                decide_imds(&p, attempts, waited, status(410, None, false), random)
            {
                waited += ms;
                attempts += 1;
            }
            assert!(
                (45_000..=IMDS_UPGRADE_WINDOW_MS).contains(&waited),
                "{random}: {waited} ms over {attempts} attempts"
            );
        }
    }

    #[test]
    fn jittered_backoff_stays_within_half_and_full_base() {
        let p = RetryPolicy {
            max_retries: 100,
            max_total_wait_ms: u64::MAX,
        };
        for attempts in 0..=100u32 {
            let base = (1_000u64 << attempts.saturating_sub(1).min(16)).min(30_000);
            for random in [0, 1, 7, 12_345, u64::MAX / 3, u64::MAX] {
                let Decision::RetryAfterMs(ms) =
                    decide(&p, true, attempts, 0, Outcome::TransportFailure, random)
                else {
                    panic!("{attempts}")
                };
                assert!((base / 2..=base).contains(&ms), "{attempts} {random} {ms}");
            }
        }
    }
}
