//! The fake's OIDC issuers — the "other issuers" of workload identity
//! federation: a Kubernetes cluster's service account token issuer (AKS)
//! and GitHub Actions' — each with its own RSA signing key, a JWKS
//! (`GET {issuer}/openid/v1/jwks`, and `/.well-known/openid-configuration`
//! pointing at it), and GitHub's OIDC token endpoint:
//!
//! `GET https://{github_oidc_host}/…/idtoken?api-version=2.0&audience=…`
//! with `Authorization: bearer {request token}` → `{"count":…,"value":"<jwt>"}`
//! (401 `{"message":"Bad credentials"}` without the right request token;
//! the audience defaults to `https://github.com/{owner}`, as GitHub's).
//!
//! Tokens are RS256 JWTs with `kid`, `iss`, `sub`, `aud`, `nbf`, `iat`,
//! `exp` and `jti`; [`Fake::mint_federated_token`] makes one for a test
//! (the projected service account token a pod would find in its file).

use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http::{Request, Response, StatusCode, header};
use rsa::RsaPrivateKey;
use rsa::signature::{SignatureEncoding, Signer};
use rsa::traits::PublicKeyParts;
use serde_json::{Value, json};
use sha2::Sha256;

use crate::{Fake, FakeConfig, State, percent};

/// The AKS cluster whose service accounts the workload app trusts.
pub const AKS_ISSUER: &str = "https://eastus.oic.prod-aks.azure.com/8f2c1f3e-5b7a-4c1d-9e3f-2a6b4c8d0e1f/4b9e2c7a-1d3f-4e6a-8b5c-0f2e4d6a8c1e/";
/// Another cluster, with keys of its own, that no app trusts.
pub const OTHER_CLUSTER_ISSUER: &str = "https://westeurope.oic.prod-aks.azure.com/8f2c1f3e-5b7a-4c1d-9e3f-2a6b4c8d0e1f/9d1f3b5a-7c2e-4a6b-8d0f-1e3c5a7b9d2f/";
/// The service account the workload app's federated credential names.
pub const AKS_SUBJECT: &str = "system:serviceaccount:dataverse:sync";
/// GitHub Actions' issuer.
pub const GITHUB_ISSUER: &str = "https://token.actions.githubusercontent.com";
/// The workflow the workload app's GitHub federated credential names.
pub const GITHUB_SUBJECT: &str = "repo:contoso/dataverse-sync:ref:refs/heads/main";
/// The audience federated credentials expect by default.
pub const TOKEN_EXCHANGE_AUDIENCE: &str = "api://AzureADTokenExchange";
/// Where GitHub's OIDC token endpoint answers.
pub const GITHUB_OIDC_HOST: &str = "pipelinesghubeus1.actions.githubusercontent.com";
/// The job's `ACTIONS_ID_TOKEN_REQUEST_TOKEN` (a secret).
pub const GITHUB_REQUEST_TOKEN: &str = "ghr_FakeJobRequestToken.0123456789abcdefABCDEF";

/// The job's `ACTIONS_ID_TOKEN_REQUEST_URL` at `host`.
pub fn github_request_url(host: &str) -> String {
    format!(
        "https://{host}/2c4e6a8b/00000000-0000-0000-0000-000000000000/_apis/distributedtask/hubs/Actions/plans/7a1c3e5d/jobs/9b2d4f6a/idtoken?api-version=2.0"
    )
}

/// An issuer the fake signs for: its URL (the `iss` claim), and a key.
#[derive(Clone)]
pub struct FakeOidcIssuer {
    pub issuer: String,
    pub kid: String,
    pub(crate) key: Arc<RsaPrivateKey>,
}

impl fmt::Debug for FakeOidcIssuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeOidcIssuer")
            .field("issuer", &self.issuer)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl FakeOidcIssuer {
    /// An issuer with a fresh 2048-bit key.
    pub fn new(issuer: &str) -> FakeOidcIssuer {
        let key = RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).expect("RSA key generation");
        FakeOidcIssuer::with_key(issuer, Arc::new(key))
    }

    fn with_key(issuer: &str, key: Arc<RsaPrivateKey>) -> FakeOidcIssuer {
        let kid = crate::ids::stable_guid(issuer);
        FakeOidcIssuer {
            issuer: issuer.to_string(),
            kid,
            key,
        }
    }

    /// The issuer's URL without the trailing slash (where its documents live).
    fn base(&self) -> &str {
        self.issuer.trim_end_matches('/')
    }

    /// `{"keys":[{"kty":"RSA","use":"sig","alg":"RS256","kid","n","e"}]}`.
    pub fn jwks(&self) -> Value {
        let public = self.key.to_public_key();
        json!({"keys": [{
            "kty": "RSA",
            "use": "sig",
            "alg": "RS256",
            "kid": self.kid,
            "n": URL_SAFE_NO_PAD.encode(public.n().to_bytes_be()),
            "e": URL_SAFE_NO_PAD.encode(public.e().to_bytes_be()),
        }]})
    }

    /// An RS256 JWT with these claims (and `kid` in its header).
    pub fn sign(&self, claims: &Value) -> String {
        let header = json!({"alg": "RS256", "typ": "JWT", "kid": self.kid});
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signer = rsa::pkcs1v15::SigningKey::<Sha256>::new((*self.key).clone());
        let signature = signer.sign(signing_input.as_bytes()).to_bytes();
        format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature))
    }

    /// Whether `signature` over `signed` is this issuer's.
    pub(crate) fn verifies(&self, signed: &[u8], signature: &[u8]) -> bool {
        use rsa::signature::Verifier;
        let key = rsa::pkcs1v15::VerifyingKey::<Sha256>::new(self.key.to_public_key());
        rsa::pkcs1v15::Signature::try_from(signature)
            .is_ok_and(|sig| key.verify(signed, &sig).is_ok())
    }
}

/// The default issuers, their keys made once per process (key generation
/// is the slow part of a fake).
pub(crate) fn default_issuers() -> Vec<FakeOidcIssuer> {
    static KEYS: OnceLock<[Arc<RsaPrivateKey>; 3]> = OnceLock::new();
    let keys = KEYS.get_or_init(|| {
        std::array::from_fn(|_| {
            Arc::new(
                RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).expect("RSA key generation"),
            )
        })
    });
    [AKS_ISSUER, OTHER_CLUSTER_ISSUER, GITHUB_ISSUER]
        .iter()
        .zip(keys)
        .map(|(issuer, key)| FakeOidcIssuer::with_key(issuer, key.clone()))
        .collect()
}

/// Unix seconds now.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// What a minted token says (times are Unix seconds).
#[derive(Clone, Debug)]
pub struct TokenClaims {
    pub issuer: String,
    pub subject: String,
    pub audience: String,
    pub not_before: i64,
    pub expires: i64,
}

impl TokenClaims {
    /// A service account token of the trusted AKS cluster's workload, valid
    /// for an hour from now (what AKS projects into the pod).
    pub fn aks() -> TokenClaims {
        let now = unix_now();
        TokenClaims {
            issuer: AKS_ISSUER.into(),
            subject: AKS_SUBJECT.into(),
            audience: TOKEN_EXCHANGE_AUDIENCE.into(),
            not_before: now,
            expires: now + 3600,
        }
    }
}

impl Fake {
    /// A federated token signed by the configured issuer `claims.issuer`
    /// (panics for an issuer the fake has no key for: a test mistake).
    pub fn mint_federated_token(&self, claims: &TokenClaims) -> String {
        let issuer = self
            .config()
            .oidc_issuers
            .iter()
            .find(|i| i.issuer == claims.issuer)
            .unwrap_or_else(|| panic!("the fake has no key for issuer {}", claims.issuer));
        let jti = self.lock().ids.guid();
        issuer.sign(&json!({
            "iss": claims.issuer,
            "sub": claims.subject,
            "aud": [claims.audience],
            "nbf": claims.not_before,
            "iat": claims.not_before,
            "exp": claims.expires,
            "jti": jti,
            "kubernetes.io": {"namespace": "dataverse", "serviceaccount": {"name": "sync"}},
        }))
    }
}

/// The issuer a request's host names, if any (its documents are served).
pub(crate) fn issuer_for<'a>(config: &'a FakeConfig, host: &str) -> Option<&'a FakeOidcIssuer> {
    config.oidc_issuers.iter().find(|i| {
        crate::host_name(
            i.base()
                .trim_start_matches("https://")
                .split('/')
                .next()
                .unwrap_or(""),
        ) == host
    })
}

/// An issuer's discovery document or JWKS.
pub(crate) fn documents(issuer: &FakeOidcIssuer, req: &Request<Bytes>) -> Response<Bytes> {
    let base_path = issuer
        .base()
        .trim_start_matches("https://")
        .split_once('/')
        .map_or(String::new(), |(_, p)| format!("/{p}"));
    let path = req.uri().path();
    let rest = path.strip_prefix(base_path.as_str()).unwrap_or(path);
    match rest {
        "/.well-known/openid-configuration" => json_response(
            StatusCode::OK,
            json!({
                "issuer": issuer.issuer,
                "jwks_uri": format!("{}/openid/v1/jwks", issuer.base()),
                "response_types_supported": ["id_token"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
            }),
        ),
        "/openid/v1/jwks" => json_response(StatusCode::OK, issuer.jwks()),
        _ => json_response(StatusCode::NOT_FOUND, json!({"message": "Not Found"})),
    }
}

/// GitHub's OIDC token endpoint (see the module docs).
pub(crate) fn github(
    config: &FakeConfig,
    state: &mut State,
    req: &Request<Bytes>,
) -> Response<Bytes> {
    if !req.uri().path().ends_with("/idtoken") {
        return json_response(StatusCode::NOT_FOUND, json!({"message": "Not Found"}));
    }
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    if presented != Some(config.github_request_token.0.as_str()) {
        return json_response(
            StatusCode::UNAUTHORIZED,
            json!({"message": "Bad credentials"}),
        );
    }
    let query = req.uri().query().unwrap_or("");
    let audience = percent::parse_pairs(query)
        .into_iter()
        .rev()
        .find(|(k, _)| k == "audience")
        .map(|(_, v)| v)
        .unwrap_or_else(|| "https://github.com/contoso".into());
    let Some(issuer) = config
        .oidc_issuers
        .iter()
        .find(|i| i.issuer == GITHUB_ISSUER)
    else {
        return json_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({"message": "no GitHub issuer"}),
        );
    };
    let now = unix_now();
    let jti = state.ids.guid();
    let token = issuer.sign(&json!({
        "jti": jti,
        "sub": config.github_subject,
        "aud": audience,
        "ref": "refs/heads/main",
        "repository": "contoso/dataverse-sync",
        "repository_owner": "contoso",
        "event_name": "push",
        "iss": GITHUB_ISSUER,
        "nbf": now - 5,
        "iat": now - 5,
        "exp": now + 300,
    }));
    state.github_tokens_issued += 1;
    json_response(
        StatusCode::OK,
        json!({"count": 1800 + state.github_tokens_issued, "value": token}),
    )
}

pub(crate) fn json_response(status: StatusCode, body: Value) -> Response<Bytes> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json; charset=utf-8")
        .body(Bytes::from(body.to_string()))
        .expect("response parts are valid")
}
