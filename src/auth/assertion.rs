//! The client-assertion JWT a certificate credential sends instead of a
//! secret (RFC 7523; Microsoft's "certificate credentials" format). Pure: the
//! `jti` and `now` are passed in.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::EncodingKey;
use jsonwebtoken::errors::ErrorKind;
use serde::Serialize;
use sha1::{Digest, Sha1};
use sha2::Sha256;

use super::certificate::CertificateCredential;
use crate::error::Error;
use crate::secret::Secret;

/// The signature algorithm of the assertion.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Algorithm {
    /// RS256 (RSASSA-PKCS1-v1_5 + SHA-256) with `x5t` (base64url SHA-1 of
    /// the DER): what Entra ID has always accepted.
    #[default]
    Rs256,
    /// PS256 (RSASSA-PSS + SHA-256) with `x5t#S256` (base64url SHA-256 of
    /// the DER).
    Ps256,
}

/// How to build the assertion.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AssertionOptions {
    pub algorithm: Algorithm,
    /// Send the chain as `x5c` (standard base64 DER of each certificate, leaf
    /// first): needed for subject-name/issuer (SNI) authentication.
    pub send_chain: bool,
}

/// How long an assertion is valid (`exp - iat`).
pub const ASSERTION_LIFETIME_SECS: u64 = 600;

/// Stop reusing an assertion this long before its `exp`.
pub const ASSERTION_REUSE_MARGIN_SECS: u64 = 60;

#[derive(Serialize)]
struct Claims<'a> {
    aud: &'a str,
    iss: &'a str,
    sub: &'a str,
    jti: &'a str,
    nbf: u64,
    iat: u64,
    exp: u64,
}

/// The signed client assertion: header `{alg, typ:"JWT", x5t | x5t#S256,
/// x5c?}`, claims `{aud: token_endpoint (exact), iss = sub = client_id, jti,
/// nbf = iat = now, exp = now + 600}`.
pub fn sign(
    credential: &CertificateCredential,
    client_id: &str,
    token_endpoint: &str,
    jti: &str,
    now: u64,
    options: AssertionOptions,
) -> Result<Secret, Error> {
    let message = signing_input(
        credential.der(),
        credential.chain(),
        client_id,
        token_endpoint,
        jti,
        now,
        options,
    )?;
    // Messages name the certificate, never key bytes.
    let failed = |e: &dyn std::fmt::Display| {
        Error::InvalidSettings(format!(
            "could not sign the client assertion with certificate {}: {e}",
            credential.thumbprint()
        ))
    };
    let key = EncodingKey::from_rsa_der(credential.pkcs1_key());
    super::jwt_crypto::install();
    // Our provider fails with these two (the key was already read once);
    // jsonwebtoken's own Display would print other kinds with `Debug`.
    let signature =
        jsonwebtoken::crypto::sign(message.as_bytes(), &key, jose_algorithm(options.algorithm))
            .map_err(|e| match e.kind() {
                ErrorKind::InvalidRsaKey(reason) => failed(&format!("RSA key invalid: {reason}")),
                ErrorKind::Signing(reason) => failed(&format!("signing failed: {reason}")),
                _ => failed(&"the signature could not be made"),
            })?;
    Ok(Secret::new(format!("{message}.{signature}")))
}

/// What is signed: `base64url(header).base64url(claims)` for the
/// certificate `der` (and its `chain`, sent as `x5c` when asked). A host
/// that holds the key signs its SHA-256 ([`signing_digest`]).
pub fn signing_input(
    der: &[u8],
    chain: &[Vec<u8>],
    client_id: &str,
    token_endpoint: &str,
    jti: &str,
    now: u64,
    options: AssertionOptions,
) -> Result<String, Error> {
    let (x5t, x5t_s256) = match options.algorithm {
        Algorithm::Rs256 => (Some(URL_SAFE_NO_PAD.encode(Sha1::digest(der))), None),
        Algorithm::Ps256 => (None, Some(URL_SAFE_NO_PAD.encode(Sha256::digest(der)))),
    };
    let header = JoseHeader {
        typ: "JWT",
        alg: jose_algorithm(options.algorithm),
        x5c: options
            .send_chain
            .then(|| chain.iter().map(|c| STANDARD.encode(c)).collect()),
        x5t,
        x5t_s256,
    };
    let claims = Claims {
        aud: token_endpoint,
        iss: client_id,
        sub: client_id,
        jti,
        nbf: now,
        iat: now,
        exp: now.saturating_add(ASSERTION_LIFETIME_SECS),
    };
    // What jsonwebtoken::encode does, with a header of the fields we send:
    // its own `Header` serializes as a map (it flattens `extras`), which
    // links a map serializer and every JOSE field (~8 KB of the component).
    let part = |json: serde_json::Result<Vec<u8>>| {
        json.map(|j| URL_SAFE_NO_PAD.encode(j)).map_err(|e| {
            Error::InvalidSettings(format!("could not build the client assertion: {e}"))
        })
    };
    Ok(format!(
        "{}.{}",
        part(serde_json::to_vec(&header))?,
        part(serde_json::to_vec(&claims))?
    ))
}

/// The SHA-256 of the signing input: all a host that holds the key sees.
pub fn signing_digest(message: &str) -> [u8; 32] {
    Sha256::digest(message.as_bytes()).into()
}

/// The assertion from its signing input and the host's signature.
pub fn with_signature(message: &str, signature: &[u8]) -> Secret {
    Secret::new(format!("{message}.{}", URL_SAFE_NO_PAD.encode(signature)))
}

fn jose_algorithm(algorithm: Algorithm) -> jsonwebtoken::Algorithm {
    match algorithm {
        Algorithm::Rs256 => jsonwebtoken::Algorithm::RS256,
        Algorithm::Ps256 => jsonwebtoken::Algorithm::PS256,
    }
}

/// The JOSE header, fields in the order jsonwebtoken's `Header` writes them.
#[derive(Serialize)]
struct JoseHeader {
    typ: &'static str,
    alg: jsonwebtoken::Algorithm,
    #[serde(skip_serializing_if = "Option::is_none")]
    x5c: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    x5t: Option<String>,
    #[serde(rename = "x5t#S256", skip_serializing_if = "Option::is_none")]
    x5t_s256: Option<String>,
}

/// A signed assertion and when to stop reusing it (a minute before exp).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CachedAssertion {
    pub jwt: Secret,
    pub reuse_until: u64,
}

impl CachedAssertion {
    /// An assertion signed at `now` (its `iat`).
    pub fn new(jwt: Secret, now: u64) -> CachedAssertion {
        CachedAssertion {
            jwt,
            reuse_until: now.saturating_add(ASSERTION_LIFETIME_SECS - ASSERTION_REUSE_MARGIN_SECS),
        }
    }

    /// Whether it may still be sent at `now`.
    pub fn is_reusable(&self, now: u64) -> bool {
        now < self.reuse_until
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::certificate::from_pem;
    use crate::auth::certificate::tests::{CA_CRT, LEAF_CRT, LEAF_KEY, NOW};
    use der::{Decode, Encode};
    use rsa::RsaPublicKey;
    use rsa::pkcs8::DecodePublicKey;
    use rsa::signature::Verifier;
    use serde_json::{Value, json};

    const CLIENT_ID: &str = "11111111-2222-3333-4444-555555555555";
    const ENDPOINT: &str = "https://login.microsoftonline.com/tid/oauth2/v2.0/token";
    const JTI: &str = "6f1c1f3e-8a2b-4c3d-9e4f-0a1b2c3d4e5f";

    fn credential() -> CertificateCredential {
        from_pem(&format!("{LEAF_CRT}{LEAF_KEY}{CA_CRT}"), NOW).unwrap()
    }

    fn parts(jwt: &Secret) -> (Value, Value, Vec<u8>, String) {
        let jwt = jwt.expose();
        let [header, claims, signature]: [&str; 3] =
            jwt.split('.').collect::<Vec<_>>().try_into().unwrap();
        let json = |part: &str| -> Value {
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
        };
        (
            json(header),
            json(claims),
            URL_SAFE_NO_PAD.decode(signature).unwrap(),
            format!("{header}.{claims}"),
        )
    }

    /// The certificate's public key, read with x509-cert, not from our code.
    fn public_key(cert_der: &[u8]) -> RsaPublicKey {
        let cert = x509_cert::Certificate::from_der(cert_der).unwrap();
        let spki = cert
            .tbs_certificate
            .subject_public_key_info
            .to_der()
            .unwrap();
        RsaPublicKey::from_public_key_der(&spki).unwrap()
    }

    fn options(algorithm: Algorithm, send_chain: bool) -> AssertionOptions {
        AssertionOptions {
            algorithm,
            send_chain,
        }
    }

    #[test]
    fn the_default_is_rs256_without_the_chain() {
        assert_eq!(
            AssertionOptions::default(),
            options(Algorithm::Rs256, false)
        );
    }

    #[test]
    fn header_and_claims_are_exactly_what_entra_id_expects() {
        let c = credential();
        let sha1 = URL_SAFE_NO_PAD.encode(Sha1::digest(c.der()));
        let sha256 = URL_SAFE_NO_PAD.encode(Sha256::digest(c.der()));
        let cases = [
            (
                Algorithm::Rs256,
                json!({"typ": "JWT", "alg": "RS256", "x5t": sha1}),
            ),
            (
                Algorithm::Ps256,
                json!({"typ": "JWT", "alg": "PS256", "x5t#S256": sha256}),
            ),
        ];
        for (algorithm, expected_header) in cases {
            let jwt = sign(&c, CLIENT_ID, ENDPOINT, JTI, NOW, options(algorithm, false)).unwrap();
            let (header, claims, _, _) = parts(&jwt);
            assert_eq!(header, expected_header);
            assert_eq!(
                claims,
                json!({
                    "aud": ENDPOINT,
                    "iss": CLIENT_ID,
                    "sub": CLIENT_ID,
                    "jti": JTI,
                    "nbf": NOW,
                    "iat": NOW,
                    "exp": NOW + 600,
                })
            );
        }
        // x5t is the certificate's SHA-1 thumbprint, base64url.
        let hex: String = URL_SAFE_NO_PAD
            .decode(&sha1)
            .unwrap()
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect();
        assert_eq!(hex, c.thumbprint());
    }

    #[test]
    fn rs256_and_ps256_signatures_verify_with_an_independent_verifier() {
        let c = credential();
        let public = public_key(c.der());
        for algorithm in [Algorithm::Rs256, Algorithm::Ps256] {
            let jwt = sign(&c, CLIENT_ID, ENDPOINT, JTI, NOW, options(algorithm, false)).unwrap();
            let (_, _, signature, signed) = parts(&jwt);
            let mut tampered = signed.clone().into_bytes();
            tampered[10] ^= 1;
            match algorithm {
                Algorithm::Rs256 => {
                    let key = rsa::pkcs1v15::VerifyingKey::<Sha256>::new(public.clone());
                    let sig = rsa::pkcs1v15::Signature::try_from(signature.as_slice()).unwrap();
                    key.verify(signed.as_bytes(), &sig).unwrap();
                    assert!(key.verify(&tampered, &sig).is_err());
                }
                Algorithm::Ps256 => {
                    // Salt = 32 bytes (the digest's length), what Entra ID expects.
                    let key =
                        rsa::pss::VerifyingKey::<Sha256>::new_with_salt_len(public.clone(), 32);
                    let sig = rsa::pss::Signature::try_from(signature.as_slice()).unwrap();
                    key.verify(signed.as_bytes(), &sig).unwrap();
                    assert!(key.verify(&tampered, &sig).is_err());
                }
            }
        }
    }

    #[test]
    fn the_header_is_byte_for_byte_what_jsonwebtoken_writes_for_its_header() {
        let c = credential();
        for algorithm in [Algorithm::Rs256, Algorithm::Ps256] {
            for send_chain in [false, true] {
                let jwt = sign(
                    &c,
                    CLIENT_ID,
                    ENDPOINT,
                    JTI,
                    NOW,
                    options(algorithm, send_chain),
                );
                let written = URL_SAFE_NO_PAD
                    .decode(jwt.unwrap().expose().split('.').next().unwrap())
                    .unwrap();
                let mut expected = match algorithm {
                    Algorithm::Rs256 => {
                        let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
                        h.x5t = Some(URL_SAFE_NO_PAD.encode(Sha1::digest(c.der())));
                        h
                    }
                    Algorithm::Ps256 => {
                        let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::PS256);
                        h.x5t_s256 = Some(URL_SAFE_NO_PAD.encode(Sha256::digest(c.der())));
                        h
                    }
                };
                expected.typ = Some("JWT".into());
                if send_chain {
                    expected.x5c = Some(c.chain().iter().map(|d| STANDARD.encode(d)).collect());
                }
                assert_eq!(written, serde_json::to_vec(&expected).unwrap());
            }
        }
    }

    #[test]
    fn x5c_is_sent_only_when_asked() {
        let c = credential();
        for algorithm in [Algorithm::Rs256, Algorithm::Ps256] {
            let jwt = sign(&c, CLIENT_ID, ENDPOINT, JTI, NOW, options(algorithm, false)).unwrap();
            assert!(parts(&jwt).0.get("x5c").is_none());
            let jwt = sign(&c, CLIENT_ID, ENDPOINT, JTI, NOW, options(algorithm, true)).unwrap();
            let header = parts(&jwt).0;
            let x5c: Vec<Vec<u8>> = header["x5c"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| STANDARD.decode(v.as_str().unwrap()).unwrap())
                .collect();
            assert_eq!(x5c, c.chain());
            assert_eq!(x5c.len(), 2);
            assert_eq!(x5c[0], c.der());
        }
    }

    #[test]
    fn the_assertion_is_a_secret_and_is_reused_until_a_minute_before_exp() {
        let c = credential();
        let jwt = sign(
            &c,
            CLIENT_ID,
            ENDPOINT,
            JTI,
            NOW,
            AssertionOptions::default(),
        )
        .unwrap();
        assert_eq!(format!("{jwt:?} {jwt}"), "*** ***");
        let cached = CachedAssertion::new(jwt, NOW);
        assert_eq!(cached.reuse_until, NOW + 540);
        assert!(cached.is_reusable(NOW + 539));
        assert!(!cached.is_reusable(NOW + 540));
        assert!(!format!("{cached:?}").contains("eyJ"));
    }
}
