//! `--json` errors: one JSON object on stderr, so a script can branch on the
//! kind and read the wire facts without parsing a sentence. Built from the
//! component's typed error, which never holds a secret or a token.

use dataverse_wasm::error::{Error, ServiceFailure};
use serde_json::{Value, json};

use crate::Failure;

/// `{"kind", "message", "exit_code", "status", "code", "aadsts",
/// "request_id", "client_request_id", "attempts", "retry_after_seconds",
/// "trace_id", "correlation_id"}`: every key always present, `null` when
/// unknown. `kind` is the WIT `error-kind` case (`authentication`,
/// `not-found`, `invalid-response`, …), or `usage` / `host` for failures of
/// the command line or the host itself.
pub fn render(failure: &Failure) -> Value {
    let mut facts = json!({
        "kind": failure.kind(),
        "message": failure.message,
        "exit_code": failure.code,
        "status": null,
        "code": null,
        "aadsts": null,
        "request_id": null,
        "client_request_id": null,
        "attempts": null,
        "retry_after_seconds": null,
        "trace_id": null,
        "correlation_id": null,
    });
    let Some(error) = &failure.error else {
        return facts;
    };
    if let Some(call) = &error.call {
        facts["client_request_id"] = json!(call.client_request_id);
        facts["attempts"] = json!(call.attempts);
    }
    let service = |facts: &mut Value, s: &ServiceFailure| {
        facts["status"] = json!(s.status);
        facts["code"] = json!(s.code);
        facts["request_id"] = json!(s.request_id);
    };
    match &error.error {
        Error::Authentication(a) => {
            facts["status"] = json!(a.status);
            facts["aadsts"] = json!(a.code);
            facts["code"] = json!(a.error);
            facts["trace_id"] = json!(a.trace_id);
            facts["correlation_id"] = json!(a.correlation_id);
        }
        Error::AccessDenied(s)
        | Error::NotFound(s)
        | Error::PreconditionFailed(s)
        | Error::Service(s) => service(&mut facts, s),
        Error::Throttled {
            retry_after_seconds,
            failure,
        } => {
            service(&mut facts, failure);
            facts["retry_after_seconds"] = json!(retry_after_seconds);
        }
        Error::InvalidSettings(_)
        | Error::InvalidRequest(_)
        | Error::Authority(_)
        | Error::Transport(_)
        | Error::Unsent { .. }
        | Error::InvalidResponse(_) => {}
    }
    facts
}

/// The `-v` details of a failure: its wire facts as `name: value` (the
/// same facts as the JSON error, for people), or none when there are none.
pub fn details(failure: &Failure) -> Option<String> {
    let facts = render(failure);
    const ORDER: &[&str] = &[
        "status",
        "code",
        "aadsts",
        "request_id",
        "client_request_id",
        "attempts",
        "retry_after_seconds",
        "trace_id",
        "correlation_id",
    ];
    let lines: Vec<String> = ORDER
        .iter()
        .filter(|key| !facts[**key].is_null())
        .map(|key| format!("{key}: {}", crate::output::plain(&facts[*key])))
        .collect();
    (!lines.is_empty()).then(|| lines.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use dataverse_wasm::client::{CallInfo, Failure as CallFailure};
    use dataverse_wasm::error::AuthFailure;

    fn failure(error: Error, call: Option<CallInfo>) -> Failure {
        Failure::from(CallFailure { error, call })
    }

    #[test]
    fn every_key_is_present_and_null_when_unknown() {
        let usage = render(&Failure::usage("no command given"));
        assert_eq!(usage["kind"], "usage");
        assert_eq!(usage["exit_code"], 2);
        assert_eq!(usage["message"], "no command given");
        for key in ["status", "code", "aadsts", "request_id", "attempts"] {
            assert!(usage[key].is_null(), "{key}");
        }
        assert_eq!(render(&Failure::host("boom"))["kind"], "host");
    }

    #[test]
    fn service_throttling_and_authentication_facts_are_filled_in() {
        let service = ServiceFailure {
            status: 429,
            code: Some("0x80072322".into()),
            message: "Number of requests exceeded".into(),
            request_id: Some("rid-1".into()),
            hint: None,
        };
        let call = CallInfo {
            client_request_id: "cid-1".into(),
            attempts: 5,
        };
        let throttled = render(&failure(
            Error::Throttled {
                retry_after_seconds: Some(300),
                failure: service,
            },
            Some(call),
        ));
        assert_eq!(
            (
                &throttled["kind"],
                &throttled["status"],
                &throttled["code"],
                &throttled["request_id"]
            ),
            (
                &json!("throttled"),
                &json!(429),
                &json!("0x80072322"),
                &json!("rid-1")
            )
        );
        assert_eq!(
            (
                &throttled["client_request_id"],
                &throttled["attempts"],
                &throttled["retry_after_seconds"]
            ),
            (&json!("cid-1"), &json!(5), &json!(300))
        );
        assert_eq!(throttled["exit_code"], 4);

        let auth = render(&failure(
            Error::Authentication(Box::new(AuthFailure {
                status: 401,
                code: Some(7000215),
                error: "invalid_client".into(),
                description: "AADSTS7000215: Invalid client secret provided.".into(),
                trace_id: Some("t".into()),
                correlation_id: Some("c".into()),
                hint: None,
            })),
            None,
        ));
        assert_eq!(
            (&auth["kind"], &auth["aadsts"], &auth["code"]),
            (
                &json!("authentication"),
                &json!(7000215),
                &json!("invalid_client")
            )
        );
        assert_eq!(
            (
                &auth["trace_id"],
                &auth["correlation_id"],
                &auth["exit_code"]
            ),
            (&json!("t"), &json!("c"), &json!(3))
        );
        assert!(auth["attempts"].is_null());
    }

    #[test]
    fn verbose_details_are_the_facts_not_debug_output() {
        let failure = failure(
            Error::NotFound(ServiceFailure {
                status: 404,
                code: Some("0x80040217".into()),
                message: "account With Id = 1 Does Not Exist".into(),
                request_id: Some("rid-9".into()),
                hint: None,
            }),
            Some(CallInfo {
                client_request_id: "cid-9".into(),
                attempts: 1,
            }),
        );
        assert_eq!(
            failure.detail.as_deref(),
            Some(
                "status: 404, code: 0x80040217, request_id: rid-9, client_request_id: cid-9, attempts: 1"
            )
        );
        assert_eq!(details(&Failure::usage("x")), None);
    }
}
