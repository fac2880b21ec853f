//! Dataverse error responses → typed errors.

use serde::Deserialize;

use crate::error::{Error, ServiceFailure};
use crate::http::Response;

/// The code Dataverse returns when the caller has no user in the environment:
/// for an application, no Application User was created for the app.
pub const NOT_A_MEMBER: &str = "0x80072560";

const NO_APPLICATION_USER_HINT: &str = "the app has a token but no Application User in this environment: \
     create an Application User for this app in the environment and assign it a security role";

#[derive(Deserialize)]
struct Body {
    error: Option<Inner>,
}

#[derive(Deserialize)]
struct Inner {
    code: Option<String>,
    message: Option<String>,
}

/// Turns a non-success Web API response into a typed error.
pub fn parse_error(response: &Response) -> Error {
    let (code, message) = match serde_json::from_slice::<Body>(&response.body) {
        Ok(Body { error: Some(inner) }) => (
            inner.code.filter(|c| !c.is_empty()),
            inner.message.unwrap_or_default(),
        ),
        _ => (None, fallback_message(response)),
    };
    let hint = match code.as_deref() {
        Some(c) if c.eq_ignore_ascii_case(NOT_A_MEMBER) => {
            Some(NO_APPLICATION_USER_HINT.to_string())
        }
        _ => None,
    };
    let failure = ServiceFailure {
        status: response.status,
        code,
        message,
        request_id: response
            .header("x-ms-service-request-id")
            .map(str::to_string),
        hint,
    };
    match response.status {
        403 => Error::AccessDenied(failure),
        404 => Error::NotFound(failure),
        412 => Error::PreconditionFailed(failure),
        429 => Error::Throttled {
            retry_after_seconds: response
                .header("retry-after")
                .and_then(|v| v.trim().parse().ok()),
            failure,
        },
        _ => Error::Service(failure),
    }
}

/// A short, printable description of a body that is not a Dataverse error.
fn fallback_message(response: &Response) -> String {
    let text = String::from_utf8_lossy(&response.body);
    let text: String = text.chars().filter(|c| !c.is_control()).take(200).collect();
    if text.trim().is_empty() {
        format!("HTTP {} with no error body", response.status)
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, body: &str) -> Response {
        Response {
            status,
            headers: vec![("x-ms-service-request-id".into(), "rid".into())],
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn no_application_user_is_access_denied_with_the_hint() {
        let err = parse_error(&response(
            403,
            r#"{"error":{"code":"0x80072560","message":"The user is not a member of the organization."}}"#,
        ));
        let Error::AccessDenied(f) = err else {
            panic!("{err:?}")
        };
        assert_eq!(f.code.as_deref(), Some("0x80072560"));
        assert_eq!(f.request_id.as_deref(), Some("rid"));
        assert!(f.hint.unwrap().contains("create an Application User"));
    }

    #[test]
    fn statuses_map_to_variants() {
        let body = r#"{"error":{"code":"0x80040217","message":"Does Not Exist"}}"#;
        assert!(matches!(
            parse_error(&response(404, body)),
            Error::NotFound(_)
        ));
        assert!(matches!(
            parse_error(&response(412, body)),
            Error::PreconditionFailed(_)
        ));
        assert!(
            matches!(parse_error(&response(400, body)), Error::Service(f) if f.message == "Does Not Exist")
        );
        let mut throttled = response(
            429,
            r#"{"error":{"code":"0x80072322","message":"Number of requests exceeded"}}"#,
        );
        throttled.headers.push(("Retry-After".into(), "7".into()));
        assert!(matches!(
            parse_error(&throttled),
            Error::Throttled {
                retry_after_seconds: Some(7),
                ..
            }
        ));
    }

    #[test]
    fn a_body_that_is_not_a_dataverse_error_is_summarised() {
        let Error::Service(f) = parse_error(&response(502, "<html>\nBad gateway</html>")) else {
            panic!()
        };
        assert_eq!(f.message, "<html>Bad gateway</html>");
        assert_eq!(f.code, None);
        let Error::Service(f) = parse_error(&response(500, "")) else {
            panic!()
        };
        assert_eq!(f.message, "HTTP 500 with no error body");
    }
}
