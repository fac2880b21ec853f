//! What this crate tells `tracing`, and what it keeps out of it.
//!
//! - One span `dataverse.call` per call of the [`crate::Dataverse`] handle
//!   (one per page for a row stream): `operation`, `entity_set`, then, once
//!   it ended, `client_request_id`, `attempts` and `outcome` (`ok`, or the
//!   error's kind such as `not_found`, `trapped`, `decode`).
//! - One event `dataverse.http` per HTTP exchange of a guest (emitted where
//!   the exchange log is produced, in `upstream`), a child of the call that
//!   caused it: `method`, `host`, `path`, `status` or `error`, `ms`,
//!   `attempt`.
//!
//! Never a header, a body, a token or a secret: tokens and the client
//! secret travel only in headers and bodies, which are not read here. Error
//! messages are left out too (a service message may quote the row it
//! refused): `outcome` is the error's kind alone.
//!
//! The path is cut at `?`, and a key or function argument in parentheses
//! becomes `(…)` unless it is a GUID. A query string holds `$filter`
//! values and an alternate key holds column values
//! (`contacts(emailaddress1='jane@contoso.com')`): either may be personal
//! data, and a trace is kept and shipped far more widely than the terminal
//! of the CLI's `-v` (which keeps path and query, cut to 160 characters).

use tracing::Span;
use tracing::field::Empty;

use crate::decode::Error;
use crate::session::{
    BatchOutcome, BatchResult, BulkResult, CallError, CallInfo, ChangePage, Created, ErrorKind,
    FetchPage, OperationResult, Page, Row, TableInfo, TokenInfo, WebResponse, WhoAmIResponse,
    Written,
};
use crate::upstream::Exchange;

/// The span of one call of `operation` (the WIT export's name), on
/// `entity_set` when the call names one.
pub(crate) fn call_span(operation: &'static str, entity_set: Option<&str>) -> Span {
    tracing::info_span!(
        "dataverse.call",
        operation,
        entity_set,
        client_request_id = Empty,
        attempts = Empty,
        outcome = Empty,
    )
}

/// Records how the call of `span` ended: the call record `call` (the
/// answer's, or the error's) and the outcome of `result`.
pub(crate) fn record<R, E: Outcome>(span: &Span, call: Option<&CallInfo>, result: &Result<R, E>) {
    if let Some(call) = call {
        span.record("client_request_id", call.client_request_id.as_str());
        span.record("attempts", call.attempts);
    }
    span.record(
        "outcome",
        match result {
            Ok(_) => "ok",
            Err(error) => error.outcome(),
        },
    );
}

/// The call record of a component call's answer or error.
pub(crate) fn call_of<W: Called>(answer: &Result<W, CallError>) -> Option<CallInfo> {
    match answer {
        Ok(answer) => answer.call_info().cloned(),
        Err(error) => error_call(error).cloned(),
    }
}

/// The call record of a failed call, when the component reported one.
pub(crate) fn error_call(error: &CallError) -> Option<&CallInfo> {
    match error {
        CallError::Dataverse(error) => error.call.as_ref(),
        CallError::Trapped(_) | CallError::Host(_) => None,
    }
}

/// One HTTP exchange, as a child of `parent` (the span that was current
/// when the guest sent the request; the exchange itself runs on a task of
/// its own, outside it).
pub(crate) fn exchange(parent: &Span, exchange: &Exchange, uri: &http::Uri) {
    let path = traced_path(uri.path());
    let ms = exchange.elapsed.as_secs_f64() * 1000.0;
    match &exchange.outcome {
        Ok(status) => tracing::debug!(
            parent: parent,
            method = exchange.method.as_str(),
            host = exchange.host.as_str(),
            path = path.as_str(),
            status,
            ms,
            attempt = exchange.attempt,
            "dataverse.http"
        ),
        Err(error) => tracing::debug!(
            parent: parent,
            method = exchange.method.as_str(),
            host = exchange.host.as_str(),
            path = path.as_str(),
            error = error.as_str(),
            ms,
            attempt = exchange.attempt,
            "dataverse.http"
        ),
    }
}

/// `path` with every parenthesised key or argument list that is not empty
/// and not a GUID replaced by `(…)`: `/api/data/v9.2/accounts(accountnumber='A-1')`
/// → `/api/data/v9.2/accounts(…)`.
pub(crate) fn traced_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut rest = path;
    while let Some(open) = rest.find('(') {
        out.push_str(&rest[..=open]);
        rest = &rest[open + 1..];
        let (inside, after) = match rest.find(')') {
            Some(close) => (&rest[..close], &rest[close..]),
            None => (rest, ""),
        };
        if inside.is_empty() || is_guid(inside) {
            out.push_str(inside);
        } else {
            out.push('…');
        }
        rest = after;
    }
    out.push_str(rest);
    out
}

fn is_guid(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() == 36
        && bytes.iter().enumerate().all(|(i, &b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

/// A call's answer that says what happened on the wire.
pub(crate) trait Called {
    fn call_info(&self) -> Option<&CallInfo>;
}

macro_rules! called_by_field {
    ($($answer:ty),*) => {
        $(impl Called for $answer {
            fn call_info(&self) -> Option<&CallInfo> {
                Some(&self.call)
            }
        })*
    };
}

called_by_field!(
    ChangePage,
    Page,
    FetchPage,
    Row,
    Created,
    Written,
    OperationResult,
    BatchResult,
    WebResponse,
    WhoAmIResponse
);

impl Called for CallInfo {
    fn call_info(&self) -> Option<&CallInfo> {
        Some(self)
    }
}

/// A table lookup may answer from the instance's cache: no call to record.
impl Called for TableInfo {
    fn call_info(&self) -> Option<&CallInfo> {
        None
    }
}

/// A bulk call is many requests: the span records the last batch's.
impl Called for BulkResult {
    fn call_info(&self) -> Option<&CallInfo> {
        self.batches.iter().rev().find_map(|b| match &b.outcome {
            BatchOutcome::Written(w) => Some(&w.call),
            BatchOutcome::Failed(e) => e.call.as_ref(),
            BatchOutcome::NotSent => None,
        })
    }
}

impl Called for TokenInfo {
    fn call_info(&self) -> Option<&CallInfo> {
        self.call.as_ref()
    }
}

impl<T: Called> Called for Option<T> {
    fn call_info(&self) -> Option<&CallInfo> {
        self.as_ref().and_then(Called::call_info)
    }
}

/// A failed call's `outcome` field.
pub(crate) trait Outcome {
    fn outcome(&self) -> &'static str;
}

impl Outcome for CallError {
    fn outcome(&self) -> &'static str {
        match self {
            CallError::Dataverse(e) => kind_name(&e.kind),
            CallError::Trapped(_) => "trapped",
            CallError::Host(_) => "host",
        }
    }
}

impl Outcome for Error {
    fn outcome(&self) -> &'static str {
        match self {
            Error::Call(e) => e.outcome(),
            Error::Decode(_) => "decode",
            Error::Encode(_) => "encode",
        }
    }
}

/// The WIT case name of an error kind, without its payload.
fn kind_name(kind: &ErrorKind) -> &'static str {
    match kind {
        ErrorKind::InvalidSettings(_) => "invalid_settings",
        ErrorKind::InvalidRequest(_) => "invalid_request",
        ErrorKind::Authentication(_) => "authentication",
        ErrorKind::Authority(_) => "authority",
        ErrorKind::AccessDenied(_) => "access_denied",
        ErrorKind::NotFound(_) => "not_found",
        ErrorKind::PreconditionFailed(_) => "precondition_failed",
        ErrorKind::Throttled(_) => "throttled",
        ErrorKind::Service(_) => "service",
        ErrorKind::Transport(_) => "transport",
        ErrorKind::InvalidResponse(_) => "invalid_response",
    }
}

#[cfg(test)]
mod tests {
    use super::traced_path;

    #[test]
    fn traced_paths_keep_guids_and_names_but_not_key_values() {
        let guid = "0b6f3d2a-7c1e-4a59-8e24-93d1f05c6b7a";
        let cases = [
            (
                "/api/data/v9.2/accounts",
                "/api/data/v9.2/accounts".to_string(),
            ),
            (
                "/api/data/v9.2/WhoAmI()",
                "/api/data/v9.2/WhoAmI()".to_string(),
            ),
            (
                &*format!("/api/data/v9.2/accounts({guid})/contact_customer_accounts/$ref"),
                format!("/api/data/v9.2/accounts({guid})/contact_customer_accounts/$ref"),
            ),
            (
                "/api/data/v9.2/contacts(emailaddress1='jane@contoso.com')",
                "/api/data/v9.2/contacts(…)".to_string(),
            ),
            (
                "/api/data/v9.2/sample_Add(A=1,B=2)",
                "/api/data/v9.2/sample_Add(…)".to_string(),
            ),
            (
                "/api/data/v9.2/accounts(name='unclosed",
                "/api/data/v9.2/accounts(…".to_string(),
            ),
        ];
        for (path, traced) in cases {
            assert_eq!(traced_path(path), traced, "{path}");
        }
    }
}
