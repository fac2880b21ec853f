//! A shared token store (the gateway's `wasi:keyvalue` bucket) that holds
//! anything: whoever can write the bucket, or a store that corrupts it,
//! must not crash an instance, redirect the application's credential, or
//! get a value other than a well-formed token into an `Authorization`
//! header. Sections: the authority record, the token record, the lease
//! counter; the client then connects and calls WhoAmI against a scripted
//! Entra ID and Dataverse.

#![no_main]

use dataverse_fuzz::sections;
use dataverse_wasm::Client;
use dataverse_wasm::auth::shared;
use dataverse_wasm::client::{CallOptions, ClientConfig};
use dataverse_wasm::scripted::{MemoryStore, Scripted, StoreSlot, response, who_am_i};
use libfuzzer_sys::fuzz_target;

const ORG: &str = "https://contoso.crm.dynamics.com";
const AUTHORITY: &str = "https://login.microsoftonline.com/tid";
const SCOPE: &str = "https://contoso.crm.dynamics.com/.default";
const SECRET: &str = "s3cret-Value";
const NOW: u64 = 1_767_225_600;

fuzz_target!(|data: &[u8]| {
    let parts = sections(data);
    let store = MemoryStore::default();
    {
        let mut entries = store.entries();
        let token_key = shared::token_key(AUTHORITY, "app", SCOPE);
        let keys = [
            shared::authority_key(ORG),
            token_key.clone(),
            shared::lease_key(&token_key, NOW),
        ];
        for (key, value) in keys.into_iter().zip(parts) {
            entries.entries.insert(key, value.to_vec());
        }
    }
    let challenge = response(
        401,
        &[(
            "WWW-Authenticate",
            "Bearer authorization_uri=https://login.microsoftonline.com/tid/oauth2/authorize, resource_id=https://contoso.crm.dynamics.com/",
        )],
        "",
    );
    let token = response(
        200,
        &[],
        r#"{"token_type":"Bearer","expires_in":3600,"access_token":"fresh"}"#,
    );
    let mut t = Scripted::new(NOW, [challenge, token, who_am_i(), who_am_i()]);
    t.store = Some(StoreSlot(Box::new(store.clone())));
    let settings = dataverse_wasm::settings::parse(&format!(
        "AuthType=ClientSecret;Url={ORG}/;ClientId=app;ClientSecret={SECRET}"
    ))
    .unwrap();
    if let Ok(mut client) = Client::connect(settings, &mut t, ClientConfig::default()) {
        let _ = client.who_am_i(&CallOptions::default());
    }
    // Bounded: one lease wait at most.
    assert!(t.slept.iter().sum::<u64>() <= shared::LEASE_WAIT_MS + shared::LEASE_POLL_MS);
    for sent in &t.sent {
        // Any tenant (the store may name one, as a challenge may), but only
        // at the trusted login host.
        let to_login = sent.url.starts_with("https://login.microsoftonline.com/");
        let to_org = sent.url.starts_with(&format!("{ORG}/"));
        assert!(to_login || to_org, "sent to {}", sent.url);
        let body = String::from_utf8_lossy(&sent.body);
        if body.contains(SECRET) {
            assert!(to_login, "the secret went to {}", sent.url);
            assert!(
                body.contains("scope=https%3A%2F%2Fcontoso.crm.dynamics.com%2F.default"),
                "{body}"
            );
        }
        if let Some(bearer) = sent.header_value("authorization") {
            let value = bearer.strip_prefix("Bearer ").expect("a bearer token");
            assert!(to_org, "a token went to {}", sent.url);
            assert!(
                !value.is_empty() && value.bytes().all(|b| b.is_ascii_graphic()),
                "{value:?}"
            );
        }
    }
});
