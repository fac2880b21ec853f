//! Workload identity federation at the fake token endpoint: a
//! `client_assertion` whose `iss` is not the app itself is another issuer's
//! token, accepted when one of the app's federated credentials names its
//! issuer, subject and audience, and it is signed by that issuer (the fake
//! knows each issuer's key: [`crate::FakeOidcIssuer`]).
//!
//! Checked in this order, each refusal in Entra's JSON error shape:
//!
//! 1. Shape: three base64url segments, JSON header and claims, string `iss`
//!    and `sub`, `aud` a string or an array of strings, numeric `exp` →
//!    else 401 `invalid_client` AADSTS50027.
//! 2. The app has no federated credential at all → 400 `invalid_request`
//!    AADSTS70021 "No matching federated identity record found for
//!    presented assertion. Assertion Issuer: '…'. Assertion Subject: '…'.
//!    Assertion Audience: '…'."
//! 3. No credential has the token's issuer → 401 `invalid_client`
//!    AADSTS700211 "…for presented assertion issuer '…'…".
//! 4. The signature is not the issuer's (RS256 with its key, by `kid`) →
//!    401 `invalid_client` AADSTS50013 "Assertion failed signature
//!    validation" (the fake's choice of code).
//! 5. Time: `nbf - skew <= now < exp + skew` → else 401 `invalid_client`
//!    AADSTS700024 "Client assertion is not within its valid time range…".
//! 6. No credential of that issuer has the subject → 401 `invalid_client`
//!    AADSTS700213 "…for presented assertion subject '…'…", or AADSTS7002138
//!    when it matches ignoring case (subjects are case-sensitive).
//! 7. None of those credentials has an audience in `aud` → 401
//!    `invalid_client` AADSTS700212 "…for presented assertion audience '…'…".

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::StatusCode;
use serde_json::{Map, Value};
use std::time::{SystemTime, UNIX_EPOCH};

use super::assertion::{CLOCK_SKEW_SECS, Rejection};
use crate::ids::iso_timestamp;
use crate::{FakeApp, FakeOidcIssuer};

/// Where Entra's federation errors send the reader.
const DOCS: &str = "https://learn.microsoft.com/entra/workload-id/workload-identity-federation";

/// A federated credential of an app registration (Certificates & secrets →
/// Federated credentials).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FederatedCredential {
    pub name: String,
    pub issuer: String,
    /// Matched case-sensitively, as Entra does.
    pub subject: String,
    pub audiences: Vec<String>,
}

/// A federated assertion the fake accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedFederation {
    pub client_id: String,
    /// The federated credential that matched.
    pub credential: String,
    pub issuer: String,
    pub subject: String,
}

/// Whether the assertion is another issuer's token: its `iss` is not the
/// app, and its header names no certificate (`x5t`, `x5t#S256`): a
/// certificate assertion with a wrong `iss` is the certificate verifier's
/// AADSTS700021.
pub(crate) fn is_federated(assertion: &str, client_id: &str) -> bool {
    let names_certificate =
        segment(assertion, 0).is_some_and(|h| h.contains_key("x5t") || h.contains_key("x5t#S256"));
    !names_certificate
        && segment(assertion, 1)
            .and_then(|c| c.get("iss").and_then(Value::as_str).map(str::to_string))
            .is_some_and(|iss| !iss.eq_ignore_ascii_case(client_id))
}

fn segment(assertion: &str, index: usize) -> Option<Map<String, Value>> {
    let segment = assertion.split('.').nth(index)?;
    let bytes = URL_SAFE_NO_PAD.decode(segment).ok()?;
    match serde_json::from_slice(&bytes).ok()? {
        Value::Object(map) => Some(map),
        _ => None,
    }
}

fn refuse(status: StatusCode, error: &'static str, code: u32, message: String) -> Rejection {
    Rejection {
        status,
        error,
        code,
        message,
    }
}

fn invalid_client(code: u32, message: String) -> Rejection {
    refuse(StatusCode::UNAUTHORIZED, "invalid_client", code, message)
}

fn malformed() -> Rejection {
    invalid_client(50027, "JWT token is invalid or malformed.".into())
}

/// Verifies a federated assertion for `app`; see the module docs.
pub(crate) fn verify(
    assertion: &str,
    app: &FakeApp,
    issuers: &[FakeOidcIssuer],
    now: SystemTime,
) -> Result<VerifiedFederation, Rejection> {
    let segments: Vec<&str> = assertion.split('.').collect();
    let [header_b64, claims_b64, signature_b64] = segments[..] else {
        return Err(malformed());
    };
    let object = |segment: &str| -> Result<Map<String, Value>, Rejection> {
        let bytes = URL_SAFE_NO_PAD.decode(segment).map_err(|_| malformed())?;
        match serde_json::from_slice(&bytes) {
            Ok(Value::Object(map)) => Ok(map),
            _ => Err(malformed()),
        }
    };
    let header = object(header_b64)?;
    let claims = object(claims_b64)?;
    let signature = URL_SAFE_NO_PAD
        .decode(signature_b64)
        .map_err(|_| malformed())?;
    let string = |name: &str| {
        claims
            .get(name)
            .and_then(Value::as_str)
            .ok_or_else(malformed)
    };
    let iss = string("iss")?;
    let sub = string("sub")?;
    let audiences: Vec<&str> = match claims.get("aud") {
        Some(Value::String(aud)) => vec![aud.as_str()],
        Some(Value::Array(values)) => values
            .iter()
            .map(|v| v.as_str().ok_or_else(malformed))
            .collect::<Result<_, _>>()?,
        _ => return Err(malformed()),
    };
    let number = |name: &str| {
        claims
            .get(name)
            .and_then(Value::as_f64)
            .map(|f| f.floor() as i64)
    };
    let exp = number("exp").ok_or_else(malformed)?;
    let nbf = number("nbf");
    let shown_aud = audiences.first().copied().unwrap_or("");

    if app.federated_credentials.is_empty() {
        return Err(refuse(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            70021,
            format!(
                "No matching federated identity record found for presented assertion. Assertion Issuer: '{iss}'. Assertion Subject: '{sub}'. Assertion Audience: '{shown_aud}'. {DOCS}"
            ),
        ));
    }
    let of_issuer: Vec<_> = app
        .federated_credentials
        .iter()
        .filter(|c| c.issuer == iss)
        .collect();
    if of_issuer.is_empty() {
        return Err(invalid_client(
            700211,
            format!(
                "No matching federated identity record found for presented assertion issuer '{iss}'. Please check your federated identity credential Subject, Audience and Issuer against the presented assertion. {DOCS}"
            ),
        ));
    }
    let kid = header.get("kid").and_then(Value::as_str);
    let signed = &assertion.as_bytes()[..header_b64.len() + 1 + claims_b64.len()];
    let signed_by_issuer = header.get("alg").and_then(Value::as_str) == Some("RS256")
        && issuers
            .iter()
            .filter(|i| i.issuer == iss && kid.is_none_or(|k| k == i.kid))
            .any(|i| i.verifies(signed, &signature));
    if !signed_by_issuer {
        return Err(invalid_client(
            50013,
            format!(
                "Assertion failed signature validation. [Reason - The key was not found., Thumbprint of key used by client: '{}', Found key 'Start=01/01/0001 00:00:00']",
                kid.unwrap_or("")
            ),
        ));
    }
    let since_epoch = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let now_secs = since_epoch.as_secs() as i64;
    let in_window = nbf.unwrap_or(0).saturating_sub(CLOCK_SKEW_SECS) <= now_secs
        && now_secs < exp.saturating_add(CLOCK_SKEW_SECS);
    if !in_window {
        return Err(invalid_client(
            700024,
            format!(
                "Client assertion is not within its valid time range. Current time: {}, assertion valid from {}, expiry time of assertion {}. Review the documentation at {DOCS} .",
                iso_timestamp(now_secs, since_epoch.subsec_nanos()),
                iso_timestamp(nbf.unwrap_or(0), 0),
                iso_timestamp(exp, 0),
            ),
        ));
    }
    let of_subject: Vec<_> = of_issuer.iter().filter(|c| c.subject == sub).collect();
    if of_subject.is_empty() {
        let ignoring_case = of_issuer
            .iter()
            .any(|c| c.subject.eq_ignore_ascii_case(sub));
        let (code, extra) = if ignoring_case {
            (
                7002138,
                " The subject matches with case-insensitive comparison, but not with case-sensitive comparison.",
            )
        } else {
            (700213, "")
        };
        return Err(invalid_client(
            code,
            format!(
                "No matching federated identity record found for presented assertion subject '{sub}'.{extra} Check your federated identity credential Subject, Audience and Issuer against the presented assertion. {DOCS}"
            ),
        ));
    }
    let matched = of_subject
        .iter()
        .find(|c| c.audiences.iter().any(|a| audiences.contains(&a.as_str())));
    let Some(credential) = matched else {
        return Err(invalid_client(
            700212,
            format!(
                "No matching federated identity record found for presented assertion audience '{shown_aud}'. Please check your federated identity credential Subject, Audience and Issuer against the presented assertion. {DOCS}"
            ),
        ));
    };
    Ok(VerifiedFederation {
        client_id: app.client_id.clone(),
        credential: credential.name.clone(),
        issuer: iss.to_string(),
        subject: sub.to_string(),
    })
}
