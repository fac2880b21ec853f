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

/// What to check when Dataverse refuses (401) a token Entra ID has just
/// issued: re-acquiring cannot help, the token is fine for Entra ID but not
/// for this environment. The causes Microsoft's troubleshooting guides name.
const REFUSED_FRESH_TOKEN_HINT: &str = "Dataverse refused a token Entra ID had just issued: check that the app has an \
     Application User in this environment and that it is enabled (Power Platform admin center → \
     Environment → Settings → Users + permissions → Application users), that Url is this \
     environment's URL (the token's audience), and that TenantId/Authority name the \
     environment's tenant";

/// A 401 on a token that was fresh (just acquired, or re-acquired after a
/// first 401): the error, with what to check and Dataverse's own reason
/// from `WWW-Authenticate` (`error`, `error_description`) when it gave one.
pub fn refused_fresh_token(response: &Response) -> Error {
    let mut error = parse_error(response);
    if let Error::Service(failure) = &mut error {
        let challenge = response.header("www-authenticate").unwrap_or("");
        let reason = [
            challenge_param(challenge, "error"),
            challenge_param(challenge, "error_description"),
        ];
        let reason: Vec<String> = reason.into_iter().flatten().collect();
        if failure.message.is_empty() || failure.message.starts_with("HTTP 401 with no") {
            failure.message = match reason.is_empty() {
                true => "the access token was refused".into(),
                false => format!("the access token was refused ({})", reason.join(": ")),
            };
        } else if !reason.is_empty() {
            failure.message = format!("{} ({})", failure.message, reason.join(": "));
        }
        failure.hint = Some(REFUSED_FRESH_TOKEN_HINT.into());
    }
    error
}

/// A parameter of a `WWW-Authenticate` challenge: `name=token` or
/// `name="quoted, \"string\""`, at most 300 printable characters.
fn challenge_param(header: &str, name: &str) -> Option<String> {
    let lower = header.to_ascii_lowercase();
    let mut from = 0;
    while let Some(found) = lower[from..].find(name) {
        let start = from + found;
        let end = start + name.len();
        from = end;
        let at_boundary = start == 0 || matches!(lower.as_bytes()[start - 1], b' ' | b',' | b'\t');
        let rest = header[end..].trim_start();
        let Some(value) = rest.strip_prefix('=').filter(|_| at_boundary) else {
            continue;
        };
        let value = value.trim_start();
        let text = match value.strip_prefix('"') {
            Some(quoted) => {
                let mut out = String::new();
                let mut chars = quoted.chars();
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => out.extend(chars.next()),
                        c => out.push(c),
                    }
                }
                out
            }
            None => value.split(',').next().unwrap_or("").trim().to_string(),
        };
        let text: String = text.chars().filter(|c| !c.is_control()).take(300).collect();
        return (!text.is_empty()).then_some(text);
    }
    None
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
    fn a_refused_fresh_token_names_what_to_check_and_dataverses_reason() {
        let refused = |challenge: Option<&str>, body: &str| {
            let mut r = response(401, body);
            if let Some(c) = challenge {
                r.headers.push(("WWW-Authenticate".into(), c.into()));
            }
            refused_fresh_token(&r)
        };
        let with_reason = refused(
            Some(
                r#"Bearer authorization_uri=https://login.microsoftonline.com/t/oauth2/authorize, resource_id=https://o/, error="invalid_token", error_description="The user, with id 42, is disabled.""#,
            ),
            "",
        );
        let Error::Service(f) = &with_reason else {
            panic!("{with_reason:?}")
        };
        assert_eq!(f.status, 401);
        assert_eq!(
            f.message,
            "the access token was refused (invalid_token: The user, with id 42, is disabled.)"
        );
        let hint = f.hint.as_deref().unwrap();
        for what in ["Application User", "enabled", "Url", "audience", "tenant"] {
            assert!(hint.contains(what), "{what}: {hint}");
        }
        let Error::Service(bare) = refused(None, "") else {
            panic!()
        };
        assert_eq!(bare.message, "the access token was refused");
        assert!(bare.hint.is_some());
        let Error::Service(body) = refused(
            Some("Bearer error=invalid_token"),
            r#"{"error":{"code":"0x80095ffc","message":"Access to Dataverse API is restricted for this application."}}"#,
        ) else {
            panic!()
        };
        assert_eq!(body.code.as_deref(), Some("0x80095ffc"));
        assert_eq!(
            body.message,
            "Access to Dataverse API is restricted for this application. (invalid_token)"
        );
    }

    #[test]
    fn challenge_parameters_are_read_quoted_or_bare_and_only_whole() {
        let header = r#"Bearer authorization_uri="https://x", myerror="no", error=invalid_token, error_description="a \"quoted\" reason, with a comma""#;
        assert_eq!(
            challenge_param(header, "error").as_deref(),
            Some("invalid_token")
        );
        assert_eq!(
            challenge_param(header, "error_description").as_deref(),
            Some(r#"a "quoted" reason, with a comma"#)
        );
        assert_eq!(challenge_param(header, "resource_id"), None);
        assert_eq!(challenge_param("Bearer error=", "error"), None);
        assert_eq!(challenge_param("", "error"), None);
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
