//! The secretless credentials through the client, against a scripted
//! transport and environment: what is sent, in what order, how often a
//! token file is read, and which errors come back.

use super::*;
use crate::auth::managed_identity::{IDENTITY_ENDPOINT, IDENTITY_HEADER, IMDS_TOKEN_URL};
use crate::auth::workload_identity::{
    ACTIONS_ID_TOKEN_REQUEST_TOKEN, ACTIONS_ID_TOKEN_REQUEST_URL, AZURE_CLIENT_ID,
    AZURE_FEDERATED_TOKEN_FILE, AZURE_TENANT_ID,
};
use crate::error::AuthFailure;
use crate::scripted::{Scripted, response, who_am_i};

const ORG: &str = "https://contoso.crm.dynamics.com";
const HEADER_SECRET: &str = "identity-header-S3cr3t";
const TOKEN_FILE: &str = "/var/run/secrets/azure/tokens/azure-identity-token";
const FIRST_JWT: &str = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxIn0.Zmlyc3Q";
const ROTATED_JWT: &str = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIyIn0.c2Vjb25k";
const ENTRA_TOKEN_URL: &str = "https://login.microsoftonline.com/tid/oauth2/v2.0/token";

fn settings(connection: &str) -> Settings {
    crate::settings::parse(connection).unwrap()
}

fn imds_token(value: &str, expires_in: u64) -> Response {
    response(
        200,
        &[],
        &format!(
            r#"{{"access_token":"{value}","refresh_token":"","expires_in":"{expires_in}","expires_on":"1","not_before":"1","resource":"{ORG}","token_type":"Bearer","client_id":"mi-client"}}"#
        ),
    )
}

fn entra_token(value: &str, expires_in: u64) -> Response {
    response(
        200,
        &[],
        &format!(r#"{{"token_type":"Bearer","expires_in":{expires_in},"access_token":"{value}"}}"#),
    )
}

fn transport(answers: Vec<Response>, env: &[(&str, &str)]) -> Scripted {
    let mut t = Scripted::new(1_000, answers);
    t.env = env
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    t
}

fn none() -> CallOptions {
    CallOptions::default()
}

fn auth_failure(failure: Failure) -> (AuthFailure, Option<CallInfo>) {
    match failure.error {
        Error::Authentication(f) => (*f, failure.call),
        other => panic!("expected an authentication error, got {other:?}"),
    }
}

#[test]
fn a_managed_identity_on_imds_asks_no_discovery_and_no_entra_request() {
    let mut t = transport(vec![imds_token("mi-1", 86_399), who_am_i()], &[]);
    let mut client = Client::connect(
        settings(&format!("AuthType=ManagedIdentity;Url={ORG}/")),
        &mut t,
        ClientConfig::default(),
    )
    .unwrap();
    client.who_am_i(&none()).unwrap();
    let info = client.token_info().unwrap();
    drop(client);
    assert_eq!(
        t.sent_urls(),
        [
            format!("{IMDS_TOKEN_URL}?api-version=2018-02-01&resource={ORG}"),
            format!("{ORG}/api/data/v9.2/WhoAmI"),
        ]
    );
    assert_eq!(t.sent[0].header_value("metadata"), Some("true"));
    assert_eq!(t.sent[1].header_value("authorization"), Some("Bearer mi-1"));
    assert_eq!(info.expires_at, 1_000 + 86_399);
    assert_eq!(info.authority, IMDS_TOKEN_URL);
    assert_eq!(
        (info.client_id.as_str(), info.scope.as_str()),
        ("mi-client", ORG)
    );
    assert_eq!(info.acquired_by.unwrap().attempts, 1);
}

#[test]
fn imds_upgrading_410_is_waited_out_and_the_token_taken() {
    let upgrading = response(410, &[], "");
    let mut t = transport(
        vec![upgrading.clone(), upgrading, imds_token("mi-1", 3_600)],
        &[],
    );
    let client = Client::connect(
        settings(&format!("AuthType=ManagedIdentity;Url={ORG}/;ClientId=c-1")),
        &mut t,
        ClientConfig::default(),
    )
    .unwrap();
    assert_eq!(client.last_acquisition.as_ref().unwrap().attempts, 3);
    drop(client);
    assert_eq!(t.slept.len(), 2);
    assert!(
        t.sent[0].url.ends_with("&client_id=c-1"),
        "{}",
        t.sent[0].url
    );
}

#[test]
fn imds_identity_not_found_is_an_authentication_error_at_connect_without_retries() {
    let not_found = response(
        400,
        &[("Content-Type", "application/json")],
        r#"{"error":"invalid_request","error_description":"Identity not found"}"#,
    );
    let mut t = transport(vec![not_found], &[]);
    let failure = Client::connect(
        settings(&format!("AuthType=ManagedIdentity;Url={ORG}/;ObjectId=o-1")),
        &mut t,
        ClientConfig::default(),
    )
    .err()
    .unwrap();
    let (f, call) = auth_failure(failure);
    assert_eq!(f.description, "Identity not found");
    assert!(f.hint.unwrap().contains("ObjectId"));
    assert_eq!(call.unwrap().attempts, 1);
    assert!(t.slept.is_empty());
}

#[test]
fn app_service_gets_the_header_and_its_expires_on() {
    let env = [
        (IDENTITY_ENDPOINT, "http://127.0.0.1:41741/msi/token/"),
        (IDENTITY_HEADER, HEADER_SECRET),
    ];
    let answer = response(
        200,
        &[],
        r#"{"access_token":"as-1","expires_on":"99999","resource":"https://contoso.crm.dynamics.com","token_type":"Bearer","client_id":"as-client"}"#,
    );
    let mut t = transport(vec![answer], &env);
    let mut client = Client::connect(
        settings(&format!("AuthType=ManagedIdentity;Url={ORG}/")),
        &mut t,
        ClientConfig::default(),
    )
    .unwrap();
    let info = client.token_info().unwrap();
    drop(client);
    assert_eq!(t.sent.len(), 1);
    let sent = &t.sent[0];
    assert_eq!(
        sent.url,
        format!("http://127.0.0.1:41741/msi/token/?api-version=2019-08-01&resource={ORG}")
    );
    assert_eq!(sent.header_value("x-identity-header"), Some(HEADER_SECRET));
    assert!(sent.allow_plain_http);
    assert_eq!(
        (info.expires_at, info.client_id.as_str()),
        (99_999, "as-client")
    );
    assert_eq!(info.authority, "http://127.0.0.1:41741/msi/token/");
}

#[test]
fn the_token_file_is_read_again_for_every_token_and_a_rotated_one_is_sent() {
    let env = [
        (AZURE_CLIENT_ID, "wi-app"),
        (AZURE_TENANT_ID, "tid"),
        (AZURE_FEDERATED_TOKEN_FILE, TOKEN_FILE),
    ];
    // A token that is renewed at the next call: it has 400 s, the cache 300.
    let mut t = transport(
        vec![
            entra_token("e-1", 400),
            entra_token("e-2", 3_600),
            who_am_i(),
        ],
        &env,
    );
    t.files
        .insert(TOKEN_FILE.into(), format!("{FIRST_JWT}\n").into_bytes());
    let mut client = Client::connect(
        settings(&format!("AuthType=WorkloadIdentity;Url={ORG}/")),
        &mut t,
        ClientConfig::default(),
    )
    .unwrap();
    client
        .transport
        .files
        .insert(TOKEN_FILE.into(), ROTATED_JWT.as_bytes().to_vec());
    client.transport.now += 150;
    client.who_am_i(&none()).unwrap();
    let info = client.token_info().unwrap();
    drop(client);
    assert_eq!(t.read, [TOKEN_FILE, TOKEN_FILE]);
    let assertions: Vec<String> = t
        .sent
        .iter()
        .filter(|r| r.url == ENTRA_TOKEN_URL)
        .map(|r| String::from_utf8(r.body.clone()).unwrap())
        .collect();
    assert_eq!(
        assertions.len(),
        2,
        "no discovery: the tenant came from AZURE_TENANT_ID"
    );
    for (body, jwt) in assertions.iter().zip([FIRST_JWT, ROTATED_JWT]) {
        assert!(
            body.starts_with("client_id=wi-app&grant_type=client_credentials&scope="),
            "{body}"
        );
        assert!(body.ends_with(&format!(
            "&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion={jwt}"
        )), "{body}");
    }
    assert_eq!(t.sent[2].header_value("authorization"), Some("Bearer e-2"));
    assert_eq!(
        (info.client_id.as_str(), info.tenant_id.as_str()),
        ("wi-app", "tid")
    );
}

#[test]
fn github_actions_is_asked_for_a_fresh_oidc_token_with_its_request_token() {
    let url = "https://pipelines.actions.githubusercontent.com/x/idtoken?api-version=2.0";
    let env = [
        (ACTIONS_ID_TOKEN_REQUEST_URL, url),
        (ACTIONS_ID_TOKEN_REQUEST_TOKEN, "gh-request-token"),
    ];
    let oidc = response(200, &[], &format!(r#"{{"count":2,"value":"{FIRST_JWT}"}}"#));
    let mut t = transport(vec![oidc, entra_token("e-1", 3_600)], &env);
    Client::connect(
        settings(&format!(
            "AuthType=WorkloadIdentity;Url={ORG}/;ClientId=gh-app;TenantId=tid;FederatedToken=GitHubActions"
        )),
        &mut t,
        ClientConfig::default(),
    )
    .unwrap();
    assert_eq!(
        t.sent_urls(),
        [
            format!("{url}&audience=api%3A%2F%2FAzureADTokenExchange"),
            ENTRA_TOKEN_URL.to_string()
        ]
    );
    assert_eq!(
        t.sent[0].header_value("authorization"),
        Some("bearer gh-request-token")
    );
    assert_eq!(t.sent[1].header_value("authorization"), None);
    let body = String::from_utf8(t.sent[1].body.clone()).unwrap();
    assert!(
        body.ends_with(&format!("&client_assertion={FIRST_JWT}")),
        "{body}"
    );
    assert!(!body.contains("gh-request-token"));
}

#[test]
fn a_subject_mismatch_comes_back_with_the_federated_credential_hint() {
    let refused = response(
        401,
        &[],
        r#"{"error":"invalid_client","error_description":"AADSTS700213: No matching federated identity record found for presented assertion subject 'system:serviceaccount:default:other'.\r\nTrace ID: t","error_codes":[700213]}"#,
    );
    let mut t = transport(vec![refused], &[(AZURE_FEDERATED_TOKEN_FILE, TOKEN_FILE)]);
    t.files
        .insert(TOKEN_FILE.into(), FIRST_JWT.as_bytes().to_vec());
    let failure = Client::connect(
        settings(&format!(
            "AuthType=WorkloadIdentity;Url={ORG}/;ClientId=a;TenantId=tid"
        )),
        &mut t,
        ClientConfig::default(),
    )
    .err()
    .unwrap();
    let (f, _) = auth_failure(failure);
    assert_eq!(f.code, Some(700213));
    assert!(f.hint.unwrap().contains("Subject identifier"));
}

#[test]
fn an_unreadable_token_file_or_missing_variables_fail_before_entra_is_asked() {
    let mut t = transport(vec![], &[(AZURE_FEDERATED_TOKEN_FILE, TOKEN_FILE)]);
    let failure = Client::connect(
        settings(&format!(
            "AuthType=WorkloadIdentity;Url={ORG}/;ClientId=a;TenantId=tid"
        )),
        &mut t,
        ClientConfig::default(),
    )
    .err()
    .unwrap();
    assert!(
        matches!(&failure.error, Error::InvalidSettings(m) if m.contains(TOKEN_FILE)),
        "{failure:?}"
    );
    assert!(t.sent.is_empty());
    let mut t = transport(vec![], &[]);
    let failure = Client::connect(
        settings(&format!(
            "AuthType=WorkloadIdentity;Url={ORG}/;TenantId=tid;TokenFile=/t"
        )),
        &mut t,
        ClientConfig::default(),
    )
    .err()
    .unwrap();
    assert!(matches!(&failure.error, Error::InvalidSettings(m) if m.contains("AZURE_CLIENT_ID")));
    assert!(t.sent.is_empty());
}

#[test]
fn the_auth_interface_refuses_the_secretless_credentials() {
    let authority = Authority::parse("https://login.microsoftonline.com/tid").unwrap();
    for connection in [
        format!("AuthType=ManagedIdentity;Url={ORG}/"),
        format!("AuthType=WorkloadIdentity;Url={ORG}/;ClientId=a;TokenFile=/t"),
    ] {
        let mut t = transport(vec![], &[]);
        let error = token_request(
            &settings(&connection),
            &authority,
            "s",
            &mut &mut t,
            AssertionOptions::default(),
        )
        .unwrap_err();
        assert!(
            matches!(&error, Error::InvalidSettings(m) if m.contains("client.connect")),
            "{error:?}"
        );
    }
}

mod host_key {
    use super::*;
    use crate::auth::assertion::Algorithm;
    use crate::auth::certificate::tests::{LEAF_CRT, NOW, der_of};
    use crate::scripted::ScriptedSigner;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    const VAULT_KEY: &str = "https://v.vault.azure.net/certificates/app-cert";
    const SIGNATURE: &[u8] = &[7; 256];

    fn connection() -> String {
        format!(
            "AuthType=Certificate;Url={ORG}/;ClientId=app;TenantId=tid;\
             KeyVaultUrl=https://V.vault.azure.net/;CertificateName=app-cert"
        )
    }

    fn signing(answers: Vec<Response>) -> Scripted {
        let mut t = Scripted::new(NOW, answers);
        t.signer = Some(ScriptedSigner {
            certificate: vec![der_of(LEAF_CRT)],
            signatures: [Ok(SIGNATURE.to_vec())].into(),
            signed: Vec::new(),
        });
        t
    }

    #[test]
    fn the_key_vault_settings_name_the_certificate_and_need_no_thumbprint() {
        let s = settings(&connection());
        assert_eq!(s.credential, Credential::HostKey(VAULT_KEY.into()));
        let s = settings(&format!("{};CertificateVersion=0a1b2c", connection()));
        assert_eq!(
            s.credential,
            Credential::HostKey(format!("{VAULT_KEY}/0a1b2c"))
        );
        for (extra, expected) in [
            (
                ";Thumbprint=0000000000000000000000000000000000000000",
                "not both",
            ),
            (";CertificateName=", "CertificateName is required"),
            (";CertificateName=a/b", "letters, digits and dashes"),
            (";KeyVaultUrl=http://v.vault.azure.net", "https, no path"),
            (
                ";KeyVaultUrl=https://v.vault.azure.net/keys",
                "https, no path",
            ),
        ] {
            let e = crate::settings::parse(&format!("{}{extra}", connection())).unwrap_err();
            assert!(e.to_string().contains(expected), "{extra}: {e}");
        }
    }

    #[test]
    fn the_host_signs_the_sha256_of_header_and_claims_and_the_component_holds_no_key() {
        let mut t = signing(vec![entra_token("e-1", 3_600)]);
        let client =
            Client::connect(settings(&connection()), &mut t, ClientConfig::default()).unwrap();
        drop(client);
        let signer = t.signer.as_ref().unwrap();
        let [(key_id, algorithm, digest)] = signer.signed.as_slice() else {
            panic!("one signature: {:?}", signer.signed);
        };
        assert_eq!((key_id.as_str(), *algorithm), (VAULT_KEY, Algorithm::Rs256));
        let body = String::from_utf8(t.sent[0].body.clone()).unwrap();
        let jwt = body.split("client_assertion=").nth(1).unwrap();
        let [header, claims, signature]: [&str; 3] =
            jwt.split('.').collect::<Vec<_>>().try_into().unwrap();
        use sha2::Digest;
        let expected = sha2::Sha256::digest(format!("{header}.{claims}").as_bytes());
        assert_eq!(digest.as_slice(), expected.as_slice());
        assert_eq!(URL_SAFE_NO_PAD.decode(signature).unwrap(), SIGNATURE);
        let header: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap();
        let x5t = URL_SAFE_NO_PAD.encode(sha1::Sha1::digest(der_of(LEAF_CRT)));
        assert_eq!(
            header,
            serde_json::json!({"typ": "JWT", "alg": "RS256", "x5t": x5t})
        );
    }

    #[test]
    fn a_transport_without_a_signer_names_the_signing_component_before_anything_is_sent() {
        let mut t = Scripted::new(NOW, []);
        let failure = Client::connect(settings(&connection()), &mut t, ClientConfig::default())
            .err()
            .unwrap();
        assert!(
            matches!(&failure.error, Error::InvalidSettings(m)
                if m.contains(crate::transport::SIGNING_COMPONENT)
                    && m.contains(crate::transport::SIGNER_INTERFACE)),
            "{:?}",
            failure.error
        );
        assert!(t.sent.is_empty());
    }

    #[test]
    fn a_parser_without_host_keys_refuses_key_vault_settings_naming_the_signing_component() {
        let names_it = |e: &Error| {
            matches!(e, Error::InvalidSettings(m)
                if m.contains(crate::transport::SIGNING_COMPONENT)
                    && m.contains(crate::transport::SIGNER_INTERFACE))
        };
        let e = crate::settings::parse_as::<false>(&connection()).unwrap_err();
        assert!(names_it(&e), "{e:?}");
        let fields = settings(&connection());
        let e = fields.clone().validate_as::<false>().unwrap_err();
        assert!(names_it(&e), "{e:?}");
        assert_eq!(fields.clone().validate_as::<true>(), Ok(fields));
        // Every other credential parses the same either way.
        let secret = format!("AuthType=ClientSecret;Url={ORG}/;ClientId=app;ClientSecret=s");
        assert_eq!(
            crate::settings::parse_as::<false>(&secret),
            crate::settings::parse(&secret)
        );
    }

    #[test]
    fn a_signature_of_the_wrong_length_is_refused_and_no_assertion_is_sent() {
        for (signature, shown) in [(Vec::new(), "0-byte"), (vec![7; 255], "255-byte")] {
            let mut t = signing(vec![entra_token("e-1", 3_600)]);
            t.signer.as_mut().unwrap().signatures = [Ok(signature)].into();
            let failure = Client::connect(settings(&connection()), &mut t, ClientConfig::default())
                .err()
                .unwrap();
            assert!(
                matches!(&failure.error, Error::InvalidResponse(m)
                    if m.contains(shown) && m.contains("2048-bit") && m.contains(VAULT_KEY)),
                "{:?}",
                failure.error
            );
            assert!(t.sent.is_empty(), "no token request with a bad signature");
        }
    }

    #[test]
    fn an_expired_host_certificate_or_a_refused_signature_fails_connect() {
        let mut t = signing(vec![]);
        t.now = 4_000_000_000;
        let failure = Client::connect(settings(&connection()), &mut t, ClientConfig::default())
            .err()
            .unwrap();
        assert!(
            failure.error.to_string().contains("has expired"),
            "{}",
            failure.error
        );
        let mut t = signing(vec![]);
        t.signer.as_mut().unwrap().signatures =
            [Err(Error::InvalidSettings("denied: keys/sign".into()))].into();
        let failure = Client::connect(settings(&connection()), &mut t, ClientConfig::default())
            .err()
            .unwrap();
        assert!(failure.error.to_string().contains("keys/sign"));
        assert!(t.sent.is_empty(), "no token request without a signature");
    }
}
