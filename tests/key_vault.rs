//! A certificate whose private key never enters the component (issue 14):
//! the real signing component (world `client-signing`) in wasmtime builds
//! the assertion and asks its host to sign; the embedding crate's
//! `KeyVaultSigner` gets the certificate and the signature from the fake's
//! Key Vault as the managed identity (IMDS), and the fake's Entra ID
//! verifies the assertion against the registered certificate. The plain
//! `client` component refuses these settings itself, naming the signing one.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::*;
use dataverse_fake::{self as fake, Fake, FakeConfig};
use dataverse_host::signer::{
    SIGNER_INTERFACE, SIGNING_COMPONENT, SignatureAlgorithm, SignerError, SignerFuture,
};
use dataverse_host::{
    CallError, ErrorKind, Exchange, IdentityEnvironment, KeyVaultSigner, Runtime, Session, Signer,
};

/// The signing component, without a signer (shared: loading once is enough).
fn signing_component() -> &'static Runtime {
    static RUNTIME: std::sync::OnceLock<Runtime> = std::sync::OnceLock::new();
    RUNTIME.get_or_init(|| {
        Runtime::from_wasm(dataverse_artifacts::SIGNING_CLIENT).expect("the component loads")
    })
}

/// A runtime of the signing component with a Key Vault signer acting
/// through `fake` (IMDS: no identity variables), and the guest's exchange log.
fn signing_runtime(fake: &Arc<Fake>) -> (Runtime, Arc<Mutex<Vec<String>>>) {
    let signer = KeyVaultSigner::new(fake.clone(), IdentityEnvironment::default());
    with_signer(Arc::new(signer))
}

fn with_signer(signer: Arc<dyn Signer>) -> (Runtime, Arc<Mutex<Vec<String>>>) {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let log = lines.clone();
    let runtime = Runtime::from_wasm(dataverse_artifacts::SIGNING_CLIENT)
        .expect("the component loads")
        .with_signer(signer)
        .with_exchange_log(Arc::new(move |e: &Exchange| {
            log.lock().unwrap().push(e.to_string())
        }));
    (runtime, lines)
}

async fn connect_kv(runtime: &Runtime, fake: &Arc<Fake>) -> Result<Session, CallError> {
    // No certificate store is mapped: the guest has no file to read a key from.
    runtime
        .connect_with(
            fake.clone(),
            None,
            &fake::demo_key_vault_connection_string(),
            OPTIONS,
        )
        .await
}

fn shown<T>(result: &Result<T, CallError>) -> String {
    match result {
        Err(e) => format!("{e} {e:?}"),
        Ok(_) => String::new(),
    }
}

#[tokio::test]
async fn a_certificate_in_key_vault_signs_the_assertion_and_the_component_calls_who_am_i() {
    let fake = Fake::demo();
    let (runtime, log) = signing_runtime(&fake);
    let connection = fake::demo_key_vault_connection_string();
    assert!(
        !connection.contains("Thumbprint") && !connection.contains("PRIVATE KEY"),
        "the settings carry no key and name no store"
    );
    let mut session = connect_kv(&runtime, &fake).await.unwrap();
    assert_eq!(
        session.who_am_i(None).await.unwrap().user_id,
        fake::CERT_USER_ID
    );

    let requests = fake.requests();
    let route: Vec<(&str, &str)> = requests
        .iter()
        .map(|r| (r.method.as_str(), r.host.as_str()))
        .collect();
    assert_eq!(
        route,
        [
            ("GET", fake::IMDS_HOST),
            ("GET", fake::KEY_VAULT_HOST),
            ("GET", fake::ORG_HOST),
            ("POST", fake::KEY_VAULT_HOST),
            ("POST", fake::LOGIN_HOST),
            ("GET", fake::ORG_HOST),
        ],
        "vault token and certificate (checked before anything else), discovery, the \
         signature of the assertion, the token request, WhoAmI"
    );
    assert!(
        requests[0]
            .path_and_query
            .contains("resource=https://vault.azure.net")
    );
    assert_eq!(
        requests[1].path_and_query,
        format!(
            "/certificates/{}?api-version=7.4",
            fake::KEY_VAULT_CERTIFICATE
        )
    );
    assert_eq!(
        requests[3].path_and_query,
        format!(
            "/keys/{}/{}/sign?api-version=7.4",
            fake::KEY_VAULT_CERTIFICATE,
            fake::keyvault::CERTIFICATE_VERSION
        )
    );
    let sign: serde_json::Value = serde_json::from_slice(&requests[3].body).unwrap();
    assert_eq!(sign["alg"], "RS256");
    let digest = URL_SAFE_NO_PAD
        .decode(sign["value"].as_str().unwrap())
        .unwrap();
    assert_eq!(digest.len(), 32, "the vault sees a SHA-256 digest only");

    // The assertion Entra ID verified names the vault's certificate.
    let assertions = fake.verified_assertions();
    assert_eq!(assertions.len(), 1);
    assert_eq!(
        (
            assertions[0].client_id.as_str(),
            assertions[0].alg.as_str(),
            assertions[0].thumbprint_header.as_str()
        ),
        (fake::CERT_CLIENT_ID, "RS256", "x5t")
    );

    // The guest's own requests: never the vault or IMDS (the host signs),
    // and the vault token only ever went to the vault.
    let guest = log.lock().unwrap().join("\n");
    assert!(
        !guest.contains(fake::KEY_VAULT_HOST) && !guest.contains(fake::IMDS_HOST),
        "{guest}"
    );
    let vault_token = requests[1].authorization.clone().unwrap();
    assert!(
        requests
            .iter()
            .filter(|r| r.authorization.as_deref() == Some(&vault_token))
            .all(|r| r.host == fake::KEY_VAULT_HOST)
    );
    let summary = runtime
        .parse_settings(&fake::demo_key_vault_connection_string())
        .await
        .unwrap();
    assert_eq!(
        summary.key_id.as_deref(),
        Some(
            format!(
                "https://{}/certificates/{}",
                fake::KEY_VAULT_HOST,
                fake::KEY_VAULT_CERTIFICATE
            )
            .as_str()
        )
    );
    assert_eq!(summary.thumbprint, None);
}

#[tokio::test]
async fn a_vault_that_refuses_the_identity_is_an_authentication_error_naming_the_permission() {
    let mut config = FakeConfig::default();
    config.key_vault.readers.clear();
    let fake = Fake::new(config);
    let (runtime, _) = signing_runtime(&fake);
    let result = connect_kv(&runtime, &fake).await;
    let text = shown(&result);
    let failure = match dataverse_error(result) {
        ErrorKind::Authentication(f) => f,
        other => panic!("expected an authentication error, got {other:?}"),
    };
    assert_eq!(
        (failure.status, failure.error.as_str()),
        (403, "signer_denied")
    );
    let vault = format!("https://{}", fake::KEY_VAULT_HOST);
    for expected in [
        vault.as_str(),
        "certificates/get",
        "Key Vault Certificate User",
        "Forbidden",
    ] {
        assert!(
            failure.description.contains(expected),
            "{}",
            failure.description
        );
    }
    let vault_token = fake.requests()[1].authorization.clone().unwrap();
    let vault_token = vault_token.trim_start_matches("Bearer ");
    assert!(
        !text.contains(vault_token),
        "the vault token is never shown"
    );
    assert_eq!(fake.stats().token_requests, 0, "Entra ID was never asked");
}

/// What a scripted signer answers to `sign`.
type SignAnswer = fn() -> Result<Vec<u8>, SignerError>;

/// A signer that hands out the demo certificate and answers `sign` with
/// `answer`, counting the calls.
struct ScriptedSigner {
    answer: SignAnswer,
    calls: AtomicUsize,
}

impl ScriptedSigner {
    fn new(answer: SignAnswer) -> Arc<ScriptedSigner> {
        Arc::new(ScriptedSigner {
            answer,
            calls: AtomicUsize::new(0),
        })
    }
}

impl Signer for ScriptedSigner {
    fn certificate<'a>(&'a self, _key_id: &'a str) -> SignerFuture<'a, Vec<Vec<u8>>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Box::pin(async { Ok(vec![fake::demo_certificate().der.clone()]) })
    }

    fn sign<'a>(
        &'a self,
        _key_id: &'a str,
        _algorithm: SignatureAlgorithm,
        _digest: &'a [u8],
    ) -> SignerFuture<'a, Vec<u8>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let answer = (self.answer)();
        Box::pin(async move { answer })
    }
}

#[tokio::test]
async fn the_plain_component_refuses_key_vault_settings_naming_the_signing_component() {
    let fake = Fake::demo();
    // The plain component even under a runtime with a signer: it has no
    // import to reach one, and says which component has.
    let signer = ScriptedSigner::new(|| Ok(vec![0; 256]));
    let runtime = Runtime::from_wasm(dataverse_artifacts::CLIENT)
        .expect("the component loads")
        .with_signer(signer.clone());
    assert!(!runtime.imports_signer());
    let result = connect_kv(&runtime, &fake).await;
    match dataverse_error(result) {
        ErrorKind::InvalidSettings(message) => assert!(
            message.contains(SIGNING_COMPONENT) && message.contains(SIGNER_INTERFACE),
            "{message}"
        ),
        other => panic!("expected invalid-settings, got {other:?}"),
    }
    assert!(fake.requests().is_empty(), "nothing was sent");
    assert_eq!(signer.calls.load(Ordering::SeqCst), 0);
    // parse_settings, too: the plain component never takes the settings in.
    let parsed = runtime
        .parse_settings(&fake::demo_key_vault_connection_string())
        .await;
    assert!(matches!(
        dataverse_error(parsed),
        ErrorKind::InvalidSettings(m) if m.contains(SIGNING_COMPONENT)
    ));
}

#[tokio::test]
async fn the_signing_component_without_a_signer_says_so_and_the_other_credentials_still_work() {
    let fake = Fake::demo();
    let runtime = signing_component();
    assert!(runtime.imports_signer());
    let result = runtime
        .connect_with(
            fake.clone(),
            None,
            &fake::demo_key_vault_connection_string(),
            OPTIONS,
        )
        .await;
    match dataverse_error(result) {
        ErrorKind::InvalidSettings(message) => {
            assert!(message.contains("no signer configured"), "{message}")
        }
        other => panic!("expected invalid-settings, got {other:?}"),
    }
    assert!(fake.requests().is_empty(), "nothing was sent");
    let mut session = runtime
        .connect(fake.clone(), &demo_connection(), OPTIONS)
        .await
        .unwrap();
    assert_eq!(
        session.who_am_i(None).await.unwrap().user_id,
        fake::DEMO_USER_ID
    );
}

#[tokio::test]
async fn a_signer_that_fails_or_answers_a_bad_signature_is_a_typed_error_and_nothing_unsigned_is_sent()
 {
    let demo = fake::demo_certificate();
    let cases: [(SignAnswer, &str); 4] = [
        (|| Ok(Vec::new()), "invalid-response: 0-byte"),
        (|| Ok(vec![7; 255]), "invalid-response: 255-byte"),
        (
            || Err(SignerError::Denied("the HSM refused keys/sign".into())),
            "authentication: the HSM refused keys/sign",
        ),
        (
            || Err(SignerError::Unavailable("the HSM is offline".into())),
            "transport: the HSM is offline",
        ),
    ];
    for (answer, expected) in cases {
        let fake = Fake::demo();
        let signer = ScriptedSigner::new(answer);
        let (runtime, _) = with_signer(signer.clone());
        let result = connect_kv(&runtime, &fake).await;
        let text = shown(&result);
        let kind = dataverse_error(result);
        let (kind_name, message) = match &kind {
            ErrorKind::InvalidResponse(m) => ("invalid-response", m.clone()),
            ErrorKind::Authentication(f) => ("authentication", f.description.clone()),
            ErrorKind::Transport(m) => ("transport", m.clone()),
            other => panic!("{expected}: unexpected {other:?}"),
        };
        let (want_kind, want_text) = expected.split_once(": ").unwrap();
        assert_eq!(kind_name, want_kind, "{message}");
        assert!(message.contains(want_text), "{expected}: {message}");
        assert_eq!(
            signer.calls.load(Ordering::SeqCst),
            2,
            "certificate, then sign"
        );
        assert_eq!(
            fake.stats().token_requests,
            0,
            "{expected}: no assertion was sent unsigned"
        );
        for secret in [
            demo.key_pkcs8_pem.as_str(),
            demo.key_pkcs1_pem.as_str(),
            "PRIVATE KEY",
        ] {
            assert!(!text.contains(secret), "{expected}: a key in {text}");
        }
    }
}

#[tokio::test]
async fn an_identity_that_may_read_but_not_sign_is_told_to_grant_keys_sign() {
    let mut config = FakeConfig::default();
    config.key_vault.signers.clear();
    let fake = Fake::new(config);
    let (runtime, _) = signing_runtime(&fake);
    let failure = match dataverse_error(connect_kv(&runtime, &fake).await) {
        ErrorKind::Authentication(f) => f,
        other => panic!("expected an authentication error, got {other:?}"),
    };
    assert!(
        failure.description.contains("keys/sign")
            && failure.description.contains("Key Vault Crypto User")
            && failure.description.contains(fake::KEY_VAULT_HOST),
        "{}",
        failure.description
    );
    assert_eq!(
        fake.stats().token_requests,
        0,
        "no assertion was sent unsigned"
    );
}
