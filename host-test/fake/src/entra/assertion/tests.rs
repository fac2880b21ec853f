//! Tests of the client assertion verifier, through the token endpoint and directly.

//! End to end through the token endpoint; assertions are built and signed
//! here with the `rsa` crate directly.
use super::{CLOCK_SKEW_SECS, MAX_LIFETIME_SECS};
use crate::test_support::*;
use crate::*;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rsa::RsaPrivateKey;
use rsa::pkcs8::DecodePrivateKey;
use rsa::signature::{RandomizedSigner, SignatureEncoding, Signer};
use serde_json::{Value, json};
use sha2::Sha256;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A second certificate, registered nowhere by default.
fn other_certificate() -> &'static TestCertificate {
    static OTHER: OnceLock<TestCertificate> = OnceLock::new();
    OTHER.get_or_init(|| {
        let now = SystemTime::now();
        let day = Duration::from_secs(86_400);
        certs::generate("someone else", now - day, now + 30 * day)
    })
}

fn key(cert: &TestCertificate) -> RsaPrivateKey {
    RsaPrivateKey::from_pkcs8_pem(&cert.key_pkcs8_pem).unwrap()
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

const TOKEN_URL: &str =
    "https://login.microsoftonline.com/8f2c1f3e-5b7a-4c1d-9e3f-2a6b4c8d0e1f/oauth2/v2.0/token";

fn claims() -> Value {
    let now = now();
    json!({
        "aud": TOKEN_URL,
        "iss": CERT_CLIENT_ID,
        "sub": CERT_CLIENT_ID,
        "jti": "5f0b2a4c-8e1d-4c3b-9a7f-1e2d3c4b5a69",
        "nbf": now,
        "iat": now,
        "exp": now + 600,
    })
}

fn b64(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap())
}

/// Signs `header.claims` with `key` the way `header["alg"]` says
/// (PS256: PSS, SHA-256, salt `pss_salt`).
fn sign_with(header: &Value, claims: &Value, key: &RsaPrivateKey, pss_salt: usize) -> String {
    let input = format!("{}.{}", b64(header), b64(claims));
    let signature = match header["alg"].as_str().unwrap() {
        "PS256" => rsa::pss::BlindedSigningKey::<Sha256>::new_with_salt_len(key.clone(), pss_salt)
            .sign_with_rng(&mut rsa::rand_core::OsRng, input.as_bytes())
            .to_vec(),
        _ => rsa::pkcs1v15::SigningKey::<Sha256>::new(key.clone())
            .sign(input.as_bytes())
            .to_vec(),
    };
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

fn sign(header: &Value, claims: &Value, key: &RsaPrivateKey) -> String {
    sign_with(header, claims, key, 32)
}

fn rs256(cert: &TestCertificate) -> Value {
    json!({"alg": "RS256", "typ": "JWT", "x5t": cert.x5t()})
}

fn ps256(cert: &TestCertificate) -> Value {
    json!({"alg": "PS256", "typ": "JWT", "x5t#S256": cert.x5t_s256()})
}

fn form_for(client_id: &str, assertion: &str) -> String {
    format!(
        "grant_type=client_credentials&client_id={client_id}&scope=https%3A%2F%2F{ORG_HOST}%2F.default&client_assertion_type={}&client_assertion={assertion}",
        percent::encode(crate::entra::token::JWT_BEARER, b"", true)
    )
}

fn post(fake: &Fake, assertion: &str) -> http::Response<bytes::Bytes> {
    token_request(fake, DEMO_TENANT_ID, &form_for(CERT_CLIENT_ID, assertion))
}

fn description(body: &Value) -> &str {
    body["error_description"].as_str().unwrap()
}

/// The demo app's certificate signs a standard assertion.
fn good_rs256() -> String {
    let cert = demo_certificate();
    sign(&rs256(cert), &claims(), &key(cert))
}

#[test]
fn rs256_with_x5t_gets_a_token_that_works() {
    let fake = Fake::demo();
    let resp = post(&fake, &good_rs256());
    assert_eq!(resp.status(), 200, "{:?}", resp.body());
    let body = json(&resp);
    assert_eq!(body["token_type"], "Bearer");
    let token = body["access_token"].as_str().unwrap();
    let me = json(&api_get(&fake, token, "/api/data/v9.2/WhoAmI"));
    assert_eq!(me["UserId"], CERT_USER_ID);
    assert_eq!(
        fake.verified_assertions(),
        [VerifiedAssertion {
            client_id: CERT_CLIENT_ID.into(),
            alg: "RS256".into(),
            thumbprint_header: "x5t".into(),
            had_x5c: false,
            aud: TOKEN_URL.into(),
            lifetime_secs: 600,
        }]
    );
    let log = fake.token_request_log();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].credential, CredentialKind::Certificate);
    assert_eq!(log[0].client_id.as_deref(), Some(CERT_CLIENT_ID));
    assert_eq!((log[0].status, log[0].error_code), (200, None));
}

#[test]
fn ps256_with_x5t_s256_and_x5c_gets_a_token() {
    let fake = Fake::demo();
    let cert = demo_certificate();
    let mut header = ps256(cert);
    header["x5c"] = json!([
        STANDARD.encode(&cert.der),
        STANDARD.encode(&other_certificate().der)
    ]);
    let resp = post(&fake, &sign(&header, &claims(), &key(cert)));
    assert_eq!(resp.status(), 200, "{:?}", resp.body());
    let seen = fake.verified_assertions().pop().unwrap();
    assert_eq!(
        (
            seen.alg.as_str(),
            seen.thumbprint_header.as_str(),
            seen.had_x5c
        ),
        ("PS256", "x5t#S256", true)
    );
    // Both thumbprints at once: x5t#S256 is the one recorded.
    let mut both = ps256(cert);
    both["x5t"] = json!(cert.x5t());
    assert_eq!(
        post(&fake, &sign(&both, &claims(), &key(cert))).status(),
        200
    );
    assert_eq!(fake.verified_assertions()[1].thumbprint_header, "x5t#S256");
}

#[test]
fn audience_may_name_the_path_tenant_or_the_tenant_id() {
    let fake = Fake::demo();
    let cert = demo_certificate();
    let by_domain = format!("https://{LOGIN_HOST}/{DEMO_TENANT_DOMAIN}/oauth2/v2.0/token");
    for aud in [by_domain.as_str(), TOKEN_URL] {
        let mut c = claims();
        c["aud"] = json!(aud);
        let jwt = sign(&rs256(cert), &c, &key(cert));
        let resp = token_request(&fake, DEMO_TENANT_DOMAIN, &form_for(CERT_CLIENT_ID, &jwt));
        assert_eq!(resp.status(), 200, "{aud}: {:?}", resp.body());
    }
    // A one-element array is the same audience.
    let mut c = claims();
    c["aud"] = json!([TOKEN_URL]);
    assert_eq!(
        post(&fake, &sign(&rs256(cert), &c, &key(cert))).status(),
        200
    );
    // But the domain form is not accepted when the path names the id.
    let mut c = claims();
    c["aud"] = json!(by_domain);
    let resp = post(&fake, &sign(&rs256(cert), &c, &key(cert)));
    assert_entra_error(&resp, 401, "invalid_client", 700023);
}

#[test]
fn wrong_audience_is_aadsts700023() {
    let fake = Fake::demo();
    let cert = demo_certificate();
    for aud in [
        format!("https://{LOGIN_HOST}/{DEMO_TENANT_ID}/oauth2/token"),
        format!("https://{LOGIN_HOST}/common/oauth2/v2.0/token"),
        format!("{TOKEN_URL}/"),
        format!("https://{LOGIN_HOST}/{DEMO_TENANT_ID}/v2.0"),
        "https://contoso.crm.dynamics.com/".to_string(),
    ] {
        let mut c = claims();
        c["aud"] = json!(aud);
        let resp = post(&fake, &sign(&rs256(cert), &c, &key(cert)));
        let body = assert_entra_error(&resp, 401, "invalid_client", 700023);
        assert!(
            description(&body).starts_with(
                "AADSTS700023: Client assertion audience claim does not match Realm issuer."
            ),
            "{aud}"
        );
    }
    let mut c = claims();
    c["aud"] = json!([TOKEN_URL, "https://login.microsoftonline.com/v2.0"]);
    let resp = post(&fake, &sign(&rs256(cert), &c, &key(cert)));
    let body = assert_entra_error(&resp, 401, "invalid_client", 5002741);
    assert!(description(&body).contains("2 audience values provided, maximum allowed is 1."));
    assert!(fake.verified_assertions().is_empty());
}

#[test]
fn signature_from_another_key_is_aadsts700027() {
    let fake = Fake::demo();
    let cert = demo_certificate();
    for header in [rs256(cert), ps256(cert)] {
        let jwt = sign(&header, &claims(), &key(other_certificate()));
        let body = assert_entra_error(&post(&fake, &jwt), 401, "invalid_client", 700027);
        let d = description(&body);
        assert!(d.starts_with("AADSTS700027: Client assertion failed signature validation. [Reason - The provided signature value did not match the expected signature value., Thumbprint of key used by client: '"), "{d}");
        assert!(d.contains("Found key 'Start="), "{d}");
    }
    let body = assert_entra_error(
        &post(
            &fake,
            &sign(&rs256(cert), &claims(), &key(other_certificate())),
        ),
        401,
        "invalid_client",
        700027,
    );
    assert!(description(&body).contains(&format!("by client: '{}'", cert.thumbprint)));
}

#[test]
fn tampered_or_mismatched_signatures_are_aadsts700027() {
    let fake = Fake::demo();
    let cert = demo_certificate();
    // Claims changed after signing.
    let jwt = good_rs256();
    let mut parts: Vec<String> = jwt.split('.').map(str::to_string).collect();
    let mut c = claims();
    c["exp"] = json!(now() + 900);
    parts[1] = b64(&c);
    assert_entra_error(
        &post(&fake, &parts.join(".")),
        401,
        "invalid_client",
        700027,
    );
    // A PSS signature under an RS256 header, and the other way round.
    let mut liar = ps256(cert);
    let pss = sign(&liar, &claims(), &key(cert));
    liar["alg"] = json!("RS256");
    let relabelled = format!("{}.{}", b64(&liar), pss.split_once('.').unwrap().1);
    assert_entra_error(&post(&fake, &relabelled), 401, "invalid_client", 700027);
    let mut liar = rs256(cert);
    let pkcs1 = sign(&liar, &claims(), &key(cert));
    liar["alg"] = json!("PS256");
    let relabelled = format!("{}.{}", b64(&liar), pkcs1.split_once('.').unwrap().1);
    assert_entra_error(&post(&fake, &relabelled), 401, "invalid_client", 700027);
    // PS256 must use a 32-byte salt.
    let short_salt = sign_with(&ps256(cert), &claims(), &key(cert), 20);
    assert_entra_error(&post(&fake, &short_salt), 401, "invalid_client", 700027);
    assert!(fake.verified_assertions().is_empty());
}

#[test]
fn unregistered_certificate_is_aadsts700027() {
    let fake = Fake::demo();
    let other = other_certificate();
    for header in [rs256(other), ps256(other)] {
        let resp = post(&fake, &sign(&header, &claims(), &key(other)));
        let body = assert_entra_error(&resp, 401, "invalid_client", 700027);
        let d = description(&body);
        assert!(d.starts_with("AADSTS700027: The certificate with identifier used to sign the client assertion is not registered on application. [Reason - The key was not found., Thumbprint of key used by client: '"), "{d}");
        assert!(d.contains(&format!("for app Id '{CERT_CLIENT_ID}'")), "{d}");
    }
    let body = assert_entra_error(
        &post(&fake, &sign(&rs256(other), &claims(), &key(other))),
        401,
        "invalid_client",
        700027,
    );
    assert!(description(&body).contains(&format!("by client: '{}'", other.thumbprint)));
    // No thumbprint header at all.
    let bare = json!({"alg": "RS256", "typ": "JWT", "kid": "whatever"});
    let resp = post(&fake, &sign(&bare, &claims(), &key(demo_certificate())));
    assert_entra_error(&resp, 401, "invalid_client", 700027);
    // An app with secrets only has no certificate to match.
    let mut c = claims();
    c["iss"] = json!(DEMO_CLIENT_ID);
    c["sub"] = json!(DEMO_CLIENT_ID);
    let jwt = sign(&rs256(demo_certificate()), &c, &key(demo_certificate()));
    let resp = token_request(&fake, DEMO_TENANT_ID, &form_for(DEMO_CLIENT_ID, &jwt));
    assert_entra_error(&resp, 401, "invalid_client", 700027);
}

#[test]
fn x5c_must_start_with_the_named_registered_certificate() {
    let fake = Fake::demo();
    let cert = demo_certificate();
    let mut header = rs256(cert);
    header["x5c"] = json!([STANDARD.encode(&other_certificate().der)]);
    let resp = post(&fake, &sign(&header, &claims(), &key(cert)));
    assert_entra_error(&resp, 401, "invalid_client", 700027);
    // x5t#S256 and x5t naming different certificates.
    let mut split = ps256(cert);
    split["x5t"] = json!(other_certificate().x5t());
    let resp = post(&fake, &sign(&split, &claims(), &key(cert)));
    assert_entra_error(&resp, 401, "invalid_client", 700027);
    // x5c must be standard base64 in an array.
    for bad in [
        json!(STANDARD.encode(&cert.der)),
        json!([]),
        json!(["%%%"]),
        json!([URL_SAFE_NO_PAD.encode(&cert.der) + "-_"]),
    ] {
        let mut header = rs256(cert);
        header["x5c"] = bad.clone();
        let resp = post(&fake, &sign(&header, &claims(), &key(cert)));
        assert_entra_error(&resp, 401, "invalid_client", 50027);
    }
}

#[test]
fn expired_or_premature_assertions_are_aadsts700024() {
    let fake = Fake::demo();
    let cert = demo_certificate();
    let now = now();
    let mut expired = claims();
    expired["nbf"] = json!(now - 1200);
    expired["iat"] = json!(now - 1200);
    expired["exp"] = json!(now - 600);
    let resp = post(&fake, &sign(&rs256(cert), &expired, &key(cert)));
    let body = assert_entra_error(&resp, 401, "invalid_client", 700024);
    let d = description(&body);
    assert!(
        d.starts_with(
            "AADSTS700024: Client assertion is not within its valid time range. Current time: "
        ),
        "{d}"
    );
    let exp_iso = crate::ids::iso_timestamp(now - 600, 0);
    assert!(d.contains(&format!(", expiry time of assertion {exp_iso}. Review the documentation at https://learn.microsoft.com/entra/identity-platform/certificate-credentials .")), "{d}");
    assert!(
        d.contains(&format!(
            ", assertion valid from {}",
            crate::ids::iso_timestamp(now - 1200, 0)
        )),
        "{d}"
    );

    let mut premature = claims();
    premature["nbf"] = json!(now + CLOCK_SKEW_SECS + 60);
    premature["exp"] = json!(now + CLOCK_SKEW_SECS + 660);
    let resp = post(&fake, &sign(&rs256(cert), &premature, &key(cert)));
    assert_entra_error(&resp, 401, "invalid_client", 700024);

    // Within the skew both ways is fine.
    let mut skewed = claims();
    skewed["nbf"] = json!(now + CLOCK_SKEW_SECS - 60);
    skewed["exp"] = json!(now + CLOCK_SKEW_SECS + 540);
    assert_eq!(
        post(&fake, &sign(&rs256(cert), &skewed, &key(cert))).status(),
        200
    );
    let mut just_expired = claims();
    just_expired["nbf"] = json!(now - 660);
    just_expired["exp"] = json!(now - 60);
    assert_eq!(
        post(&fake, &sign(&rs256(cert), &just_expired, &key(cert))).status(),
        200
    );

    // exp before nbf, and a lifetime over the fake's bound.
    let mut backwards = claims();
    backwards["exp"] = json!(now - 10);
    backwards["nbf"] = json!(now);
    let resp = post(&fake, &sign(&rs256(cert), &backwards, &key(cert)));
    assert_entra_error(&resp, 401, "invalid_client", 700024);
    let mut long = claims();
    long["nbf"] = json!(now);
    long["iat"] = json!(now);
    long["exp"] = json!(now + MAX_LIFETIME_SECS + 1);
    let resp = post(&fake, &sign(&rs256(cert), &long, &key(cert)));
    let body = assert_entra_error(&resp, 401, "invalid_client", 700024);
    assert!(description(&body).contains("the fake accepts at most 3600"));
    let mut millis = claims();
    millis["exp"] = json!((now + 600) * 1000);
    let resp = post(&fake, &sign(&rs256(cert), &millis, &key(cert)));
    assert_entra_error(&resp, 401, "invalid_client", 700024);

    // Without nbf the lifetime runs from iat; validity starts at the epoch.
    let mut no_nbf = claims();
    no_nbf.as_object_mut().unwrap().remove("nbf");
    no_nbf["iat"] = json!(now - 100);
    // Pin exp to this test's clock reading: claims() reads the clock again.
    no_nbf["exp"] = json!(now + 600);
    assert_eq!(
        post(&fake, &sign(&rs256(cert), &no_nbf, &key(cert))).status(),
        200
    );
    assert_eq!(
        fake.verified_assertions().last().unwrap().lifetime_secs,
        700
    );
    assert_eq!(fake.verified_assertions().len(), 3);
}

#[test]
fn issuer_and_subject_must_be_the_client() {
    let fake = Fake::demo();
    let cert = demo_certificate();
    let mut c = claims();
    c["iss"] = json!(DEMO_CLIENT_ID);
    let resp = post(&fake, &sign(&rs256(cert), &c, &key(cert)));
    assert_entra_error(&resp, 401, "invalid_client", 700021);
    let mut c = claims();
    c["sub"] = json!(DEMO_CLIENT_ID);
    let resp = post(&fake, &sign(&rs256(cert), &c, &key(cert)));
    assert_entra_error(&resp, 401, "invalid_client", 50048);
    // GUID case does not matter.
    let mut c = claims();
    c["iss"] = json!(CERT_CLIENT_ID.to_uppercase());
    c["sub"] = json!(CERT_CLIENT_ID.to_uppercase());
    assert_eq!(
        post(&fake, &sign(&rs256(cert), &c, &key(cert))).status(),
        200
    );
}

#[test]
fn malformed_assertions_are_aadsts50027() {
    let fake = Fake::demo();
    let cert = demo_certificate();
    let good = good_rs256();
    let (head, rest) = good.split_once('.').unwrap();
    let (payload, signature) = rest.split_once('.').unwrap();
    let mut cases = vec![
        "not-a-jwt".to_string(),
        format!("{head}.{payload}"),
        format!("{good}.extra"),
        format!("{head}.{payload}."),
        format!("{head}=.{payload}.{signature}"),
        format!("{}.{payload}.{signature}", URL_SAFE_NO_PAD.encode("[1,2]")),
        format!("{head}.{}.{signature}", URL_SAFE_NO_PAD.encode("not json")),
        format!(
            "{}.{payload}.{signature}",
            URL_SAFE_NO_PAD.encode(r#"{"typ":"JWT"}"#)
        ),
    ];
    // Correctly signed but missing or mistyped claims.
    for (claim, value) in [
        ("jti", Value::Null),
        ("jti", json!("")),
        ("exp", Value::Null),
        ("exp", json!("soon")),
        ("iss", json!(42)),
        ("aud", json!([])),
    ] {
        let mut c = claims();
        if value.is_null() {
            c.as_object_mut().unwrap().remove(claim);
        } else {
            c[claim] = value;
        }
        cases.push(sign(&rs256(cert), &c, &key(cert)));
    }
    let mut bad_x5t = rs256(cert);
    bad_x5t["x5t"] = json!("not base64url!");
    cases.push(sign(&bad_x5t, &claims(), &key(cert)));
    for jwt in &cases {
        let form = format!(
            "grant_type=client_credentials&client_id={CERT_CLIENT_ID}&scope=https%3A%2F%2F{ORG_HOST}%2F.default&client_assertion_type={}&client_assertion={}",
            percent::encode(crate::entra::token::JWT_BEARER, b"", true),
            percent::encode(jwt, b"", true),
        );
        let resp = token_request(&fake, DEMO_TENANT_ID, &form);
        let body = assert_entra_error(&resp, 401, "invalid_client", 50027);
        assert!(
            description(&body).starts_with("AADSTS50027: JWT token is invalid or malformed."),
            "{jwt}"
        );
    }
    assert!(fake.verified_assertions().is_empty());
}

#[test]
fn unsupported_algorithms_are_aadsts5002730() {
    let fake = Fake::demo();
    let cert = demo_certificate();
    for alg in ["HS256", "none", "RS512", "ES256"] {
        let mut header = rs256(cert);
        header["alg"] = json!(alg);
        let jwt = format!("{}.{}.c2ln", b64(&header), b64(&claims()));
        let resp = post(&fake, &jwt);
        assert_entra_error(&resp, 400, "invalid_request", 5002730);
    }
}

#[test]
fn assertion_type_is_required_and_checked() {
    let fake = Fake::demo();
    let scope = format!("scope=https%3A%2F%2F{ORG_HOST}%2F.default");
    let base = format!("grant_type=client_credentials&client_id={CERT_CLIENT_ID}&{scope}");
    let jwt = good_rs256();
    let resp = token_request(
        &fake,
        DEMO_TENANT_ID,
        &format!("{base}&client_assertion={jwt}"),
    );
    let body = assert_entra_error(&resp, 400, "invalid_request", 900144);
    assert!(description(&body).contains("'client_assertion_type'"));
    let resp = token_request(
        &fake,
        DEMO_TENANT_ID,
        &format!(
            "{base}&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Asaml2-bearer&client_assertion={jwt}"
        ),
    );
    assert_entra_error(&resp, 400, "invalid_request", 90011);
    // Secret and assertion together are refused.
    let both = format!("{}&client_secret=x", form_for(CERT_CLIENT_ID, &jwt));
    let resp = token_request(&fake, DEMO_TENANT_ID, &both);
    assert_entra_error(&resp, 401, "invalid_client", 7000218);
    let kinds: Vec<_> = fake
        .token_request_log()
        .iter()
        .map(|r| r.credential)
        .collect();
    assert_eq!(
        kinds,
        [
            CredentialKind::Certificate,
            CredentialKind::Certificate,
            CredentialKind::SecretAndCertificate
        ]
    );
}

#[test]
fn a_secret_is_refused_for_the_certificate_app() {
    let fake = Fake::demo();
    let form = format!(
        "grant_type=client_credentials&client_id={CERT_CLIENT_ID}&client_secret=anything&scope=https%3A%2F%2F{ORG_HOST}%2F.default"
    );
    let resp = token_request(&fake, DEMO_TENANT_ID, &form);
    assert_entra_error(&resp, 401, "invalid_client", 7000215);
    assert_eq!(
        fake.token_request_log()[0].credential,
        CredentialKind::Secret
    );
}

#[test]
fn a_verified_assertion_is_recorded_even_if_the_scope_then_fails() {
    let fake = Fake::demo();
    let form =
        form_for(CERT_CLIENT_ID, &good_rs256()).replace("%2F.default", "%2Fuser_impersonation");
    let resp = token_request(&fake, DEMO_TENANT_ID, &form);
    assert_entra_error(&resp, 400, "invalid_scope", 1002012);
    assert_eq!(fake.verified_assertions().len(), 1);
}

#[test]
fn certificates_can_be_registered_on_any_app() {
    let other = other_certificate();
    let mut config = FakeConfig::default();
    let app = config
        .apps
        .iter_mut()
        .find(|a| a.client_id == DEMO_CLIENT_ID)
        .unwrap();
    app.certificates.push(other.der.clone());
    let fake = Fake::new(config);
    let mut c = claims();
    c["iss"] = json!(DEMO_CLIENT_ID);
    c["sub"] = json!(DEMO_CLIENT_ID);
    let jwt = sign(&ps256(other), &c, &key(other));
    let resp = token_request(&fake, DEMO_TENANT_ID, &form_for(DEMO_CLIENT_ID, &jwt));
    assert_eq!(resp.status(), 200, "{:?}", resp.body());
    // …and the secret keeps working next to it.
    token_for(&fake, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET);
    assert_eq!(fake.token_requests_for(DEMO_CLIENT_ID), 2);
}
