//! Azure Key Vault's certificate and sign endpoints, for certificates whose
//! private key never leaves the vault (`AuthType=Certificate` with
//! `KeyVaultUrl`): `GET /certificates/{name}[/{version}]?api-version=7.4` →
//! `{id, kid, sid, x5t, cer, attributes}`, and
//! `POST /keys/{name}/{version}/sign?api-version=7.4` with `{alg, value}`
//! (a base64url SHA-256 digest) → `{kid, value}`. Callers need a bearer
//! token the fake's identity endpoints issued for `https://vault.azure.net`
//! (401 otherwise, with Key Vault's challenge), and a managed identity in
//! [`FakeKeyVault::readers`] / [`FakeKeyVault::signers`] (403 `Forbidden` /
//! `ForbiddenByRbac` otherwise, naming the action). The vault holds the demo certificate's key.

use std::time::Instant;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use bytes::Bytes;
use http::{Request, Response, StatusCode, header};
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::{Pkcs1v15Sign, Pss, RsaPrivateKey};
use serde_json::{Value, json};
use sha1::{Digest, Sha1};
use sha2::Sha256;

use crate::entra::certs::TestCertificate;
use crate::oidc::json_response;
use crate::{FakeConfig, State};

/// The resource a vault token is issued for.
pub const KEY_VAULT_RESOURCE: &str = "https://vault.azure.net";

/// The version of the vault's one certificate (and its key).
pub const CERTIFICATE_VERSION: &str = "5d3b2a1c0e9f48a7b6c5d4e3f2a1b0c9";

/// A vault with one certificate and its key.
#[derive(Clone, PartialEq, Eq)]
pub struct FakeKeyVault {
    /// e.g. `dataverse-demo.vault.azure.net`.
    pub host: String,
    /// The certificate's name.
    pub certificate_name: String,
    /// The certificate and its private key.
    pub certificate: TestCertificate,
    /// Client ids of the managed identities granted `certificates/get`.
    pub readers: Vec<String>,
    /// Client ids of the managed identities granted `keys/sign`.
    pub signers: Vec<String>,
}

impl std::fmt::Debug for FakeKeyVault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeKeyVault")
            .field("host", &self.host)
            .field("certificate_name", &self.certificate_name)
            .field("readers", &self.readers)
            .field("signers", &self.signers)
            .finish_non_exhaustive()
    }
}

fn error(status: StatusCode, code: &str, message: &str, inner: Option<&str>) -> Response<Bytes> {
    let mut body = json!({"error": {"code": code, "message": message}});
    if let Some(inner) = inner {
        body["error"]["innererror"] = json!({"code": inner});
    }
    json_response(status, body)
}

pub(crate) fn handle(
    vault: &FakeKeyVault,
    config: &FakeConfig,
    state: &mut State,
    req: &Request<Bytes>,
) -> Response<Bytes> {
    let origin = format!("https://{}", vault.host);
    let query = req.uri().query().unwrap_or("");
    if !query.split('&').any(|p| p == "api-version=7.4") {
        return error(
            StatusCode::BAD_REQUEST,
            "BadParameter",
            "The specified version () is not recognized. Consider using the latest supported version (7.4).",
            None,
        );
    }
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let issued = token
        .and_then(|t| state.tokens.get(t))
        .filter(|t| t.resource == KEY_VAULT_RESOURCE && t.expires > Instant::now());
    let Some(issued) = issued else {
        let mut response = error(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "AKV10000: Request is missing a Bearer or PoP token.",
            None,
        );
        let challenge = format!(
            "Bearer authorization=\"https://{}/{}\", resource=\"{KEY_VAULT_RESOURCE}\"",
            config.login_host, config.tenant_id
        );
        if let Ok(v) = header::HeaderValue::from_str(&challenge) {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
        return response;
    };
    let caller = issued.client_id.clone();
    let path: Vec<&str> = req.uri().path().trim_matches('/').split('/').collect();
    let (action, is_sign) = match (req.method().as_str(), path.as_slice()) {
        ("GET", ["certificates", name] | ["certificates", name, _]) => {
            if *name != vault.certificate_name {
                return not_found(name);
            }
            ("Microsoft.KeyVault/vaults/certificates/read", false)
        }
        ("POST", ["keys", name, _, "sign"]) => {
            if *name != vault.certificate_name {
                return error(
                    StatusCode::NOT_FOUND,
                    "KeyNotFound",
                    &format!("A key with (name/id) {name} was not found in this key vault."),
                    None,
                );
            }
            ("Microsoft.KeyVault/vaults/keys/sign/action", true)
        }
        _ => {
            return error(
                StatusCode::NOT_FOUND,
                "NotFound",
                "The requested resource was not found.",
                None,
            );
        }
    };
    let granted = if is_sign {
        &vault.signers
    } else {
        &vault.readers
    };
    if !granted.contains(&caller) {
        let message = format!(
            "Caller is not authorized to perform action on resource.\r\nIf role assignments, deny \
             assignments or role definitions were changed recently, please observe propagation \
             time.\r\nCaller: appid={caller};iss=https://sts.windows.net/{}/\r\nAction: \
             '{action}'\r\nResource: '{}'\r\nAssignment: (not found)\r\n",
            config.tenant_id, vault.host
        );
        return error(
            StatusCode::FORBIDDEN,
            "Forbidden",
            &message,
            Some("ForbiddenByRbac"),
        );
    }
    let cert = &vault.certificate;
    let name = &vault.certificate_name;
    let kid = format!("{origin}/keys/{name}/{CERTIFICATE_VERSION}");
    if !is_sign {
        return json_response(
            StatusCode::OK,
            json!({
                "id": format!("{origin}/certificates/{name}/{CERTIFICATE_VERSION}"),
                "kid": kid,
                "sid": format!("{origin}/secrets/{name}/{CERTIFICATE_VERSION}"),
                "x5t": URL_SAFE_NO_PAD.encode(Sha1::digest(&cert.der)),
                "cer": STANDARD.encode(&cert.der),
                "attributes": {"enabled": true, "recoveryLevel": "Recoverable+Purgeable"},
            }),
        );
    }
    let body: Option<Value> = serde_json::from_slice(req.body()).ok();
    let alg = body.as_ref().and_then(|b| b["alg"].as_str()).unwrap_or("");
    let digest = body
        .as_ref()
        .and_then(|b| b["value"].as_str())
        .and_then(|v| URL_SAFE_NO_PAD.decode(v).ok());
    let Some(digest) = digest.filter(|d| d.len() == 32) else {
        return error(
            StatusCode::BAD_REQUEST,
            "BadParameter",
            "Invalid value: the digest must be 32 bytes, base64url, for RS256 and PS256.",
            None,
        );
    };
    let Ok(key) = RsaPrivateKey::from_pkcs1_pem(&cert.key_pkcs1_pem) else {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            "the fake's key",
            None,
        );
    };
    let signed = match alg {
        "RS256" => key.sign(Pkcs1v15Sign::new::<Sha256>(), &digest),
        "PS256" => key.sign_with_rng(
            &mut rsa::rand_core::OsRng,
            Pss::new_with_salt::<Sha256>(32),
            &digest,
        ),
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                "BadParameter",
                &format!("Invalid algorithm: {alg}"),
                None,
            );
        }
    };
    match signed {
        Ok(signature) => json_response(
            StatusCode::OK,
            json!({"kid": kid, "value": URL_SAFE_NO_PAD.encode(signature)}),
        ),
        Err(_) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            "signing failed",
            None,
        ),
    }
}

fn not_found(name: &str) -> Response<Bytes> {
    error(
        StatusCode::NOT_FOUND,
        "CertificateNotFound",
        &format!(
            "A certificate with (name/id) {name} was not found in this key vault. If you recently \
             deleted this certificate you may be able to recover it using the correct recovery \
             command."
        ),
        None,
    )
}

#[cfg(test)]
mod tests {
    use crate::{Fake, FakeConfig, KEY_VAULT_HOST, MI_CLIENT_ID};
    use bytes::Bytes;
    use http::Request;
    use serde_json::Value;

    fn send(
        fake: &Fake,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: &str,
    ) -> (u16, Value) {
        let mut req = Request::builder()
            .method(method)
            .uri(format!("https://{KEY_VAULT_HOST}{path}"));
        if let Some(token) = token {
            req = req.header("authorization", format!("Bearer {token}"));
        }
        let response = fake.handle(req.body(Bytes::from(body.to_string())).unwrap());
        let status = response.status().as_u16();
        (
            status,
            serde_json::from_slice(response.body()).unwrap_or(Value::Null),
        )
    }

    fn imds_token(fake: &Fake, resource: &str) -> String {
        let req = Request::builder()
            .uri(format!(
                "http://169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01&resource={resource}"
            ))
            .header("metadata", "true")
            .body(Bytes::new())
            .unwrap();
        let response = fake.handle(req);
        let body: Value = serde_json::from_slice(response.body()).unwrap();
        body["access_token"].as_str().unwrap().to_string()
    }

    const CERT: &str = "/certificates/dataverse-app?api-version=7.4";

    #[test]
    fn without_a_vault_token_the_vault_answers_401_with_its_challenge() {
        let fake = Fake::demo();
        let (status, body) = send(&fake, "GET", CERT, None, "");
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (401, Some("Unauthorized"))
        );
        // A token for Dataverse is not a token for the vault.
        let org_token = imds_token(&fake, "https://contoso.crm.dynamics.com");
        assert_eq!(send(&fake, "GET", CERT, Some(&org_token), "").0, 401);
        let vault_token = imds_token(&fake, "https://vault.azure.net");
        let (status, body) = send(&fake, "GET", CERT, Some(&vault_token), "");
        assert_eq!(status, 200);
        assert!(body["cer"].is_string() && body["x5t"].is_string() && body["kid"].is_string());
    }

    #[test]
    fn an_identity_without_the_permission_gets_403_naming_the_action() {
        let mut config = FakeConfig::default();
        config.key_vault.signers.clear();
        let fake = Fake::new(config);
        let token = imds_token(&fake, "https://vault.azure.net");
        assert_eq!(send(&fake, "GET", CERT, Some(&token), "").0, 200);
        let digest = "47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU";
        let (status, body) = send(
            &fake,
            "POST",
            "/keys/dataverse-app/5d3b2a1c0e9f48a7b6c5d4e3f2a1b0c9/sign?api-version=7.4",
            Some(&token),
            &format!(r#"{{"alg":"RS256","value":"{digest}"}}"#),
        );
        assert_eq!(status, 403);
        assert_eq!(body["error"]["code"], "Forbidden");
        assert_eq!(body["error"]["innererror"]["code"], "ForbiddenByRbac");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains("keys/sign/action") && message.contains(MI_CLIENT_ID));
        let (status, body) = send(
            &fake,
            "GET",
            "/certificates/other?api-version=7.4",
            Some(&token),
            "",
        );
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (404, Some("CertificateNotFound"))
        );
    }
}
