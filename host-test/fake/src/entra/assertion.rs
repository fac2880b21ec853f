//! The fake Entra ID's client assertion verifier (certificate credentials).
//!
//! Deliberately independent of the client's signing code (which uses the
//! `jsonwebtoken` crate): the JWT is split and decoded here with `base64` and
//! `serde_json`, the certificate is read by our own DER reader (`x509`), and
//! the signature is checked with the `rsa` crate's PKCS#1 v1.5 and PSS
//! verifying keys. A bug in the client's JWT handling therefore cannot be
//! mirrored by the verifier.
//!
//! What is checked, in this order (each failure is a 4xx with Entra's error
//! body; codes below):
//!
//! 1. Shape: three base64url (unpadded) segments, header and claims JSON
//!    objects → else 401 `invalid_client` AADSTS50027.
//! 2. `alg` is `RS256` or `PS256` → else 400 `invalid_request` AADSTS5002730.
//! 3. The key: `x5t#S256` (base64url SHA-256 of the DER) or `x5t` (base64url
//!    SHA-1) names a certificate registered on the app; when both are sent
//!    both must name it; when `x5c` is sent (standard base64 DERs, leaf
//!    first) its first certificate must be that same registered one → else
//!    401 `invalid_client` AADSTS700027 "…not registered on application…".
//! 4. The signature over `header.payload` with that certificate's RSA key:
//!    RS256 = RSASSA-PKCS1-v1_5 with SHA-256, PS256 = RSASSA-PSS with
//!    SHA-256, MGF1-SHA-256 and a 32-byte salt → else 401 `invalid_client`
//!    AADSTS700027 "Client assertion failed signature validation…".
//! 5. `iss` is the request's `client_id` (401 AADSTS700021) and `sub` equals
//!    `iss` (401 AADSTS50048).
//! 6. `aud` is one string (a one-element array is tolerated; more values are
//!    401 AADSTS5002741) equal, ignoring ASCII case, to
//!    `https://{login host}/{tenant}/oauth2/v2.0/token` where `{tenant}` is
//!    the tenant in the request path or the tenant id → else 401
//!    `invalid_client` AADSTS700023 "Client assertion audience claim does not
//!    match Realm issuer."
//! 7. Time: `exp` (required) and optional `nbf` with [`CLOCK_SKEW_SECS`] of
//!    leeway: `nbf - skew <= now < exp + skew`; and a lifetime (`exp` minus
//!    `nbf`, else minus `iat`, else minus now) above zero and at most
//!    [`MAX_LIFETIME_SECS`] → else 401 `invalid_client` AADSTS700024.
//! 8. `jti` is a non-empty string → else AADSTS50027.
//!
//! Missing or mistyped `iss`, `sub`, `aud` or `exp` are AADSTS50027 too.

use super::certs::upper_hex;
use super::x509;
use crate::ids::{iso_timestamp, us_timestamp};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use http::StatusCode;
use rsa::RsaPublicKey;
use rsa::pkcs8::DecodePublicKey;
use rsa::signature::Verifier;
use serde_json::{Map, Value};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use std::time::{SystemTime, UNIX_EPOCH};

/// Leeway for `nbf` and `exp` against the fake's clock (Entra's is 5 minutes too).
pub const CLOCK_SKEW_SECS: i64 = 300;

/// The longest assertion lifetime the fake accepts. Entra ID documents that
/// it "doesn't place restrictions on the exp time currently" and asks for
/// 5–10 minutes; the fake is stricter so that a client minting long-lived
/// assertions (or `exp` in milliseconds) is caught in tests.
pub const MAX_LIFETIME_SECS: i64 = 3600;

/// Where to read about certificate credentials (Entra links it from its errors).
const DOCS: &str = "https://learn.microsoft.com/entra/identity-platform/certificate-credentials";

/// What the verifier checked in an assertion it accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedAssertion {
    /// The app (as registered in the fake) the assertion authenticated.
    pub client_id: String,
    /// `RS256` or `PS256`.
    pub alg: String,
    /// The header that named the certificate: `"x5t"` or `"x5t#S256"`
    /// (`x5t#S256` when both were sent).
    pub thumbprint_header: String,
    /// Whether the header carried an `x5c` chain.
    pub had_x5c: bool,
    /// The `aud` claim, as sent.
    pub aud: String,
    /// `exp` minus `nbf` (or `iat`, or the time of the request when neither is sent).
    pub lifetime_secs: u64,
}

/// Why an assertion was refused, ready to render as an Entra error.
#[derive(Debug)]
pub(crate) struct Rejection {
    pub(crate) status: StatusCode,
    pub(crate) error: &'static str,
    pub(crate) code: u32,
    pub(crate) message: String,
}

fn invalid_client(code: u32, message: String) -> Rejection {
    Rejection {
        status: StatusCode::UNAUTHORIZED,
        error: "invalid_client",
        code,
        message,
    }
}

fn malformed() -> Rejection {
    invalid_client(50027, "JWT token is invalid or malformed.".into())
}

/// What the assertion is checked against.
pub(crate) struct Expected<'a> {
    /// The request's `client_id` (the app was found by it).
    pub(crate) client_id: &'a str,
    /// Registered certificate DERs.
    pub(crate) certificates: &'a [Vec<u8>],
    /// Accepted `aud` values.
    pub(crate) audiences: &'a [String],
    pub(crate) now: SystemTime,
}

/// Verifies a `client_assertion`; see the module docs for the rules.
pub(crate) fn verify(
    assertion: &str,
    expected: &Expected<'_>,
) -> Result<VerifiedAssertion, Rejection> {
    let mut segments = assertion.split('.');
    let (Some(header_b64), Some(claims_b64), Some(signature_b64), None) = (
        segments.next(),
        segments.next(),
        segments.next(),
        segments.next(),
    ) else {
        return Err(malformed());
    };
    let header = json_object(header_b64)?;
    let claims = json_object(claims_b64)?;
    let signature = URL_SAFE_NO_PAD
        .decode(signature_b64)
        .ok()
        .filter(|s| !s.is_empty())
        .ok_or_else(malformed)?;

    let alg = match header.get("alg").and_then(Value::as_str) {
        Some(alg @ ("RS256" | "PS256")) => alg,
        Some(_) => return Err(unsupported_alg()),
        None => return Err(malformed()),
    };

    // 3. Which registered certificate signed it.
    let s256 = thumbprint_param(&header, "x5t#S256")?;
    let s1 = thumbprint_param(&header, "x5t")?;
    let find = |hash: &dyn Fn(&[u8]) -> Vec<u8>, wanted: &[u8]| {
        expected.certificates.iter().find(|der| hash(der) == wanted)
    };
    let sha256 = |der: &[u8]| Sha256::digest(der).to_vec();
    let sha1 = |der: &[u8]| Sha1::digest(der).to_vec();
    let (thumbprint_header, named, cert) = match (&s256, &s1) {
        (Some(h256), _) => ("x5t#S256", h256.clone(), find(&sha256, h256)),
        (None, Some(h1)) => ("x5t", h1.clone(), find(&sha1, h1)),
        (None, None) => ("", Vec::new(), None),
    };
    let not_registered = || not_registered(&named, expected.client_id);
    let cert = cert.ok_or_else(not_registered)?;
    if let (Some(_), Some(h1)) = (&s256, &s1)
        && sha1(cert) != *h1
    {
        return Err(not_registered());
    }
    let had_x5c = match header.get("x5c") {
        None => false,
        Some(chain) => {
            let leaf = x5c_leaf(chain)?;
            if leaf != *cert {
                return Err(not_registered());
            }
            true
        }
    };

    // 4. The signature.
    let info = x509::parse(cert);
    let key = info.and_then(|i| RsaPublicKey::from_public_key_der(i.spki).ok());
    let signed = &assertion.as_bytes()[..header_b64.len() + 1 + claims_b64.len()];
    let valid = key.is_some_and(|key| check_signature(alg, key, signed, &signature));
    if !valid {
        let found = info.map_or_else(String::new, |i| {
            format!(
                ", Found key 'Start={}, End={}'",
                us_timestamp(i.not_before),
                us_timestamp(i.not_after)
            )
        });
        return Err(invalid_client(
            700027,
            format!(
                "Client assertion failed signature validation. [Reason - The provided signature value did not match the expected signature value., Thumbprint of key used by client: '{}'{found}].",
                upper_hex(&named)
            ),
        ));
    }

    // 5. Who it is from.
    let iss = string_claim(&claims, "iss")?;
    let sub = string_claim(&claims, "sub")?;
    if !iss.eq_ignore_ascii_case(expected.client_id) {
        return Err(invalid_client(
            700021,
            "Client assertion application identifier doesn't match 'client_id' parameter. Review the documentation at ".to_string() + DOCS + " .",
        ));
    }
    if sub != iss {
        return Err(invalid_client(
            50048,
            "Subject must match the issuer claim in the client assertion.".into(),
        ));
    }

    // 6. Who it is for.
    let aud = match claims.get("aud") {
        Some(Value::String(aud)) => aud.clone(),
        Some(Value::Array(values)) => match &values[..] {
            [Value::String(aud)] => aud.clone(),
            [] => return Err(malformed()),
            many => {
                return Err(invalid_client(
                    5002741,
                    format!(
                        "Number of audience values in the provided client credential exceed maximum allowed. {} audience values provided, maximum allowed is 1.",
                        many.len()
                    ),
                ));
            }
        },
        _ => return Err(malformed()),
    };
    if !expected
        .audiences
        .iter()
        .any(|a| a.eq_ignore_ascii_case(&aud))
    {
        return Err(invalid_client(
            700023,
            format!(
                "Client assertion audience claim does not match Realm issuer. Review the documentation at {DOCS} ."
            ),
        ));
    }

    // 7. When it is valid.
    let exp = time_claim(&claims, "exp")?.ok_or_else(malformed)?;
    let nbf = time_claim(&claims, "nbf")?;
    let iat = time_claim(&claims, "iat")?;
    let since_epoch = expected.now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let now = since_epoch.as_secs() as i64;
    let lifetime = exp.saturating_sub(nbf.or(iat).unwrap_or(now));
    let in_window = nbf.unwrap_or(0).saturating_sub(CLOCK_SKEW_SECS) <= now
        && now < exp.saturating_add(CLOCK_SKEW_SECS);
    if !in_window || lifetime <= 0 || lifetime > MAX_LIFETIME_SECS {
        let note = if in_window && lifetime > MAX_LIFETIME_SECS {
            format!(
                " [Fake Entra ID: the assertion is valid for {lifetime} seconds; the fake accepts at most {MAX_LIFETIME_SECS}.]"
            )
        } else {
            String::new()
        };
        return Err(invalid_client(
            700024,
            format!(
                "Client assertion is not within its valid time range. Current time: {}, assertion valid from {}, expiry time of assertion {}. Review the documentation at {DOCS} .{note}",
                iso_timestamp(now, since_epoch.subsec_nanos()),
                iso_timestamp(nbf.unwrap_or(0), 0),
                iso_timestamp(exp, 0),
            ),
        ));
    }

    // 8. Unique id.
    if claims
        .get("jti")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        return Err(malformed());
    }

    Ok(VerifiedAssertion {
        client_id: expected.client_id.to_string(),
        alg: alg.to_string(),
        thumbprint_header: thumbprint_header.to_string(),
        had_x5c,
        aud,
        lifetime_secs: lifetime as u64,
    })
}

fn unsupported_alg() -> Rejection {
    Rejection {
        status: StatusCode::BAD_REQUEST,
        error: "invalid_request",
        code: 5002730,
        message: "Invalid JWT token. Unsupported key for the signing algorithm.".into(),
    }
}

fn not_registered(named: &[u8], client_id: &str) -> Rejection {
    invalid_client(
        700027,
        format!(
            "The certificate with identifier used to sign the client assertion is not registered on application. [Reason - The key was not found., Thumbprint of key used by client: '{}', Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured keys for app Id '{client_id}'.]",
            upper_hex(named)
        ),
    )
}

/// A base64url JSON object segment.
fn json_object(segment: &str) -> Result<Map<String, Value>, Rejection> {
    let bytes = URL_SAFE_NO_PAD.decode(segment).map_err(|_| malformed())?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(malformed()),
    }
}

/// A thumbprint header (`x5t`, `x5t#S256`), decoded; malformed when not base64url.
fn thumbprint_param(header: &Map<String, Value>, name: &str) -> Result<Option<Vec<u8>>, Rejection> {
    match header.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => URL_SAFE_NO_PAD.decode(s).map(Some).map_err(|_| malformed()),
        Some(_) => Err(malformed()),
    }
}

/// The first certificate of an `x5c` array (RFC 7515: standard base64, not url-safe).
fn x5c_leaf(chain: &Value) -> Result<Vec<u8>, Rejection> {
    let Some(certs) = chain.as_array().filter(|c| !c.is_empty()) else {
        return Err(malformed());
    };
    let mut decoded = Vec::with_capacity(certs.len());
    for cert in certs {
        let der = cert
            .as_str()
            .and_then(|s| STANDARD.decode(s).ok())
            .ok_or_else(malformed)?;
        decoded.push(der);
    }
    Ok(decoded.swap_remove(0))
}

fn string_claim<'a>(claims: &'a Map<String, Value>, name: &str) -> Result<&'a str, Rejection> {
    claims
        .get(name)
        .and_then(Value::as_str)
        .ok_or_else(malformed)
}

/// A NumericDate claim (seconds, fractions allowed) if present.
fn time_claim(claims: &Map<String, Value>, name: &str) -> Result<Option<i64>, Rejection> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .or_else(|| {
                n.as_f64()
                    .filter(|f| f.is_finite())
                    .map(|f| f.floor() as i64)
            })
            .map(Some)
            .ok_or_else(malformed),
        Some(_) => Err(malformed()),
    }
}

fn check_signature(alg: &str, key: RsaPublicKey, signed: &[u8], signature: &[u8]) -> bool {
    match alg {
        "RS256" => rsa::pkcs1v15::Signature::try_from(signature).is_ok_and(|sig| {
            rsa::pkcs1v15::VerifyingKey::<Sha256>::new(key)
                .verify(signed, &sig)
                .is_ok()
        }),
        "PS256" => rsa::pss::Signature::try_from(signature).is_ok_and(|sig| {
            rsa::pss::VerifyingKey::<Sha256>::new_with_salt_len(key, 32)
                .verify(signed, &sig)
                .is_ok()
        }),
        _ => false,
    }
}

#[cfg(test)]
mod tests;
