//! What a managed identity endpoint (IMDS, App Service) or GitHub's OIDC
//! endpoint answered, and a federated token file's bytes: no panic; the
//! `access_token` never shows in an error or a `Debug`; an App Service error
//! never shows the identity header, nor a GitHub error the request token,
//! even when the body echoes them; expiry arithmetic saturates.

#![no_main]

use dataverse_fuzz::{access_token_values, assert_not_leaked, printed, redact_bytes, response};
use dataverse_wasm::auth::managed_identity::{Endpoint, parse_response};
use dataverse_wasm::auth::workload_identity::{parse_github_response, read_token};
use dataverse_wasm::secret::Secret;
use dataverse_wasm::settings::ManagedIdentityId;
use libfuzzer_sys::fuzz_target;

/// 2026-01-01, and the end of time (`now + expires_in` must not overflow).
const NOWS: [u64; 2] = [1_767_225_600, u64::MAX];
/// What the endpoints were sent; a body may echo it.
const HEADER: &str = "IdentityHeaderSecret0123456789";

fuzz_target!(|data: &[u8]| {
    let answer = response(data);
    let tokens = access_token_values(&answer.body);
    let mut redacted = answer.clone();
    redacted.body = redact_bytes(&answer.body, &tokens);
    let endpoints = [
        Endpoint::Imds,
        Endpoint::AppService {
            url: "http://127.0.0.1:41741/msi/token".into(),
            header: Secret::new(HEADER),
        },
    ];
    for endpoint in &endpoints {
        for now in NOWS {
            let id = ManagedIdentityId::SystemAssigned;
            let parsed = parse_response(endpoint, &id, &answer, now);
            if let Ok(issued) = &parsed {
                assert!(!issued.token.value.is_empty());
            }
            let shown = printed(&parsed);
            let shown_redacted = printed(&parse_response(endpoint, &id, &redacted, now));
            for range in &tokens {
                let token = std::str::from_utf8(&answer.body[range.clone()]).unwrap_or_default();
                assert_not_leaked("the access token", token, &shown, &shown_redacted);
            }
            if matches!(endpoint, Endpoint::AppService { .. }) {
                assert!(
                    !shown.contains(HEADER),
                    "the identity header shows: {shown}"
                );
            }
        }
    }
    let github = parse_github_response(&answer, &Secret::new(HEADER));
    if let Err(error) = &github {
        assert!(!format!("{error} {error:?}").contains(HEADER));
    }
    let _ = printed(&github);
    if let Ok(token) = read_token("/var/run/token", &answer.body) {
        assert!(!token.is_empty());
    }
});
