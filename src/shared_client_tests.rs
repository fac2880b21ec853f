//! Clients sharing a store (the gateway's `wasi:keyvalue` bucket): one
//! token and one discovery for all instances, the lease and its bounded
//! wait, a refused token dropped by whoever saw the refusal, and a store
//! that fails or holds junk costing only the sharing.

use super::tests::{challenge, token};
use super::*;
use crate::auth::shared::{self, LEASE_POLL_MS, LEASE_WAIT_MS};
use crate::scripted::{MemoryStore, Scripted, StoreSlot, invalid_client, response, who_am_i};

const NOW: u64 = 1_000;
const AUTHORITY: &str = "https://login.microsoftonline.com/tid";
const SCOPE: &str = "https://contoso.crm.dynamics.com/.default";

fn settings() -> Settings {
    crate::settings::parse(
        "AuthType=ClientSecret;Url=https://contoso.crm.dynamics.com/;ClientId=app;ClientSecret=s3cret",
    )
    .unwrap()
}

fn transport(answers: Vec<Response>) -> Scripted {
    Scripted::new(NOW, answers)
}

fn connect(
    t: &mut Scripted,
    store: impl SharedStore + Send + 'static,
) -> Result<Client<&mut Scripted>, Failure> {
    t.store = Some(StoreSlot(Box::new(store)));
    Client::connect(settings(), t, ClientConfig::default())
}

fn token_key() -> String {
    shared::token_key(AUTHORITY, "app", SCOPE)
}

fn stored_token(store: &MemoryStore) -> Option<String> {
    let entries = store.entries();
    let bytes = entries.entries.get(&token_key())?;
    shared::decode_token(bytes, NOW).map(|t| t.value.expose().to_string())
}

fn bearers(t: &Scripted) -> Vec<Option<String>> {
    t.sent
        .iter()
        .map(|r| r.header_value("authorization").map(str::to_string))
        .collect()
}

#[test]
fn the_second_instance_uses_the_first_ones_authority_and_token() {
    let store = MemoryStore::default();
    let mut first = transport(vec![challenge(), token("t1"), who_am_i()]);
    connect(&mut first, store.clone())
        .unwrap()
        .who_am_i(&CallOptions::default())
        .unwrap();
    assert_eq!(first.sent.len(), 3);
    assert_eq!(stored_token(&store).as_deref(), Some("t1"));

    let mut second = transport(vec![who_am_i(), who_am_i()]);
    let mut client = connect(&mut second, store.clone()).unwrap();
    client.who_am_i(&CallOptions::default()).unwrap();
    client.who_am_i(&CallOptions::default()).unwrap();
    let info = client.token_info().unwrap();
    assert_eq!(
        (info.authority.as_str(), info.scope.as_str()),
        (AUTHORITY, SCOPE)
    );
    assert!(info.from_cache);
    drop(client);
    // No discovery, no token request: only the two calls, with t1.
    assert_eq!(
        second.sent_urls(),
        vec!["https://contoso.crm.dynamics.com/api/data/v9.2/WhoAmI"; 2]
    );
    assert_eq!(bearers(&second), vec![Some("Bearer t1".to_string()); 2]);
    // The lease was taken once, by the first, and given back.
    let entries = store.entries();
    let leases: Vec<_> = entries
        .ops
        .iter()
        .filter(|op| op.contains(".lease."))
        .collect();
    assert_eq!(leases.len(), 2, "{leases:?}");
    assert!(leases[0].starts_with("increment ") && leases[1].starts_with("delete "));
    assert!(!entries.entries.keys().any(|k| k.contains(".lease.")));
}

/// A store that another instance writes into while this one waits: after
/// `polls` reads of the token key, `then` changes the entries.
struct Meanwhile {
    store: MemoryStore,
    polls: usize,
    then: fn(&mut crate::scripted::MemoryEntries),
}

impl SharedStore for Meanwhile {
    fn get(&mut self, key: &str) -> Result<Option<Vec<u8>>, String> {
        if key == token_key() {
            if self.polls == 0 {
                (self.then)(&mut self.store.entries());
            }
            self.polls = self.polls.saturating_sub(1);
        }
        self.store.get(key)
    }
    fn set(&mut self, key: &str, value: &[u8]) -> Result<(), String> {
        self.store.set(key, value)
    }
    fn delete(&mut self, key: &str) -> Result<(), String> {
        self.store.delete(key)
    }
    fn increment(&mut self, key: &str, delta: u64) -> Result<u64, String> {
        self.store.increment(key, delta)
    }
}

/// A store where another instance already found the authority and holds
/// the lease for the token.
fn contested() -> MemoryStore {
    let store = MemoryStore::default();
    {
        let mut entries = store.entries();
        entries.entries.insert(
            shared::authority_key("https://contoso.crm.dynamics.com"),
            shared::encode_authority(AUTHORITY, SCOPE, NOW),
        );
        entries
            .entries
            .insert(shared::lease_key(&token_key(), NOW), b"1".to_vec());
    }
    store
}

#[test]
fn an_instance_that_finds_the_lease_taken_waits_for_the_holders_token() {
    let store = Meanwhile {
        store: contested(),
        polls: 3,
        then: |entries| {
            let record = shared::encode_token(&AccessToken {
                value: Secret::new("t-holder"),
                expires_at: NOW + 3600,
                refresh_at: None,
            });
            entries.entries.insert(token_key(), record);
        },
    };
    let mut t = transport(vec![who_am_i()]);
    let mut client = connect(&mut t, store).unwrap();
    client.who_am_i(&CallOptions::default()).unwrap();
    drop(client);
    assert_eq!(t.slept, vec![LEASE_POLL_MS; 3]);
    assert_eq!(bearers(&t), vec![Some("Bearer t-holder".to_string())]);
}

#[test]
fn a_holder_that_never_answers_is_waited_for_a_bounded_time_then_replaced() {
    let store = contested();
    let mut t = transport(vec![token("t-own"), who_am_i()]);
    connect(&mut t, store.clone())
        .unwrap()
        .who_am_i(&CallOptions::default())
        .unwrap();
    assert_eq!(t.slept.iter().sum::<u64>(), LEASE_WAIT_MS);
    assert!(t.sent[0].url.ends_with("/oauth2/v2.0/token"));
    assert_eq!(stored_token(&store).as_deref(), Some("t-own"));
}

#[test]
fn a_holder_that_fails_lets_the_next_instance_take_the_lease_at_once() {
    // The holder gave the lease back without a token (its request failed):
    // the waiting instance contests again after one poll, not after 5 s.
    let store = Meanwhile {
        store: contested(),
        polls: 1,
        then: |entries| {
            entries.entries.retain(|key, _| !key.contains(".lease."));
        },
    };
    let mut t = transport(vec![token("t2"), who_am_i()]);
    connect(&mut t, store)
        .unwrap()
        .who_am_i(&CallOptions::default())
        .unwrap();
    assert!(
        t.slept.iter().sum::<u64>() <= 2 * LEASE_POLL_MS,
        "{:?}",
        t.slept
    );
    assert!(t.sent[0].url.ends_with("/oauth2/v2.0/token"));
}

#[test]
fn a_refused_shared_token_is_dropped_and_replaced_for_everyone() {
    let store = contested();
    store.entries().entries.clear();
    store.entries().entries.insert(
        shared::authority_key("https://contoso.crm.dynamics.com"),
        shared::encode_authority(AUTHORITY, SCOPE, NOW),
    );
    store.entries().entries.insert(
        token_key(),
        shared::encode_token(&AccessToken {
            value: Secret::new("t-revoked"),
            expires_at: NOW + 3600,
            refresh_at: None,
        }),
    );
    let mut t = transport(vec![response(401, &[], ""), token("t-fresh"), who_am_i()]);
    let mut client = connect(&mut t, store.clone()).unwrap();
    client.who_am_i(&CallOptions::default()).unwrap();
    drop(client);
    assert_eq!(
        bearers(&t),
        vec![
            Some("Bearer t-revoked".to_string()),
            None,
            Some("Bearer t-fresh".to_string())
        ]
    );
    assert_eq!(stored_token(&store).as_deref(), Some("t-fresh"));
    let ops = store.entries().ops.clone();
    assert!(ops.contains(&format!("delete {}", token_key())), "{ops:?}");
}

#[test]
fn a_store_that_is_down_or_holds_junk_only_costs_the_sharing() {
    let down = MemoryStore::default();
    down.entries().failing = true;
    let mut t = transport(vec![challenge(), token("t1"), who_am_i()]);
    connect(&mut t, down)
        .unwrap()
        .who_am_i(&CallOptions::default())
        .unwrap();
    assert_eq!(t.sent.len(), 3);
    assert!(t.slept.is_empty());

    let junk = MemoryStore::default();
    for (key, value) in [
        (
            shared::authority_key("https://contoso.crm.dynamics.com"),
            &b"\xff\xfe not json"[..],
        ),
        (
            token_key(),
            br#"{"access_token":"x\r\ny","expires_at":99999999}"#,
        ),
    ] {
        junk.entries().entries.insert(key, value.to_vec());
    }
    let mut t = transport(vec![challenge(), token("t1"), who_am_i()]);
    connect(&mut t, junk.clone())
        .unwrap()
        .who_am_i(&CallOptions::default())
        .unwrap();
    assert_eq!(t.sent.len(), 3);
    assert_eq!(stored_token(&junk).as_deref(), Some("t1"));
}

#[test]
fn an_authority_from_the_store_that_the_token_request_refuses_is_dropped() {
    let store = contested();
    store
        .entries()
        .entries
        .retain(|key, _| !key.contains(".lease."));
    let mut t = transport(vec![invalid_client()]);
    let failure = connect(&mut t, store.clone()).err().unwrap();
    assert!(matches!(failure.error, Error::Authentication(_)));
    assert!(
        !store
            .entries()
            .entries
            .contains_key(&shared::authority_key("https://contoso.crm.dynamics.com"))
    );
    assert!(stored_token(&store).is_none());
}

#[test]
fn an_untrusted_authority_or_another_scope_in_the_store_is_not_used() {
    // Whoever can write the bucket must not redirect the credential, nor get
    // the org a token meant for another resource.
    for (authority, scope) in [
        ("https://evil.example.com/tid", SCOPE),
        (AUTHORITY, "https://other.crm.dynamics.com/.default"),
    ] {
        let store = MemoryStore::default();
        store.entries().entries.insert(
            shared::authority_key("https://contoso.crm.dynamics.com"),
            shared::encode_authority(authority, scope, NOW),
        );
        let mut t = transport(vec![challenge(), token("t1")]);
        let info = connect(&mut t, store).unwrap().token_info().unwrap();
        assert_eq!(
            (info.authority.as_str(), info.scope.as_str()),
            (AUTHORITY, SCOPE)
        );
        let urls = t.sent_urls();
        assert!(
            urls[0].starts_with("https://contoso.crm.dynamics.com/"),
            "{urls:?}"
        );
        assert!(
            urls[1].starts_with("https://login.microsoftonline.com/tid/"),
            "{urls:?}"
        );
    }
}
