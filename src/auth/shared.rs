//! Tokens shared by the instances of one application through a key-value
//! store the host provides (the gateway's `wasi:keyvalue` bucket): what is
//! kept under which key, how a record is read back, and the lease that lets
//! one instance acquire while the others wait. Pure: the store is a trait,
//! time is passed in.
//!
//! The store is an optimisation, never a dependency: a store that fails, or
//! holds something unreadable, is a miss, and the instance acquires its own
//! token as it would without one.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::AccessToken;
use super::cache::RENEW_BEFORE_EXPIRY_SECS;
use crate::secret::Secret;

/// The operations of `wasi:keyvalue/store` and `atomics` the client uses.
/// Errors are the store's text; the client never shows them (a failing
/// store only costs the sharing).
pub trait SharedStore {
    fn get(&mut self, key: &str) -> Result<Option<Vec<u8>>, String>;
    fn set(&mut self, key: &str, value: &[u8]) -> Result<(), String>;
    fn delete(&mut self, key: &str) -> Result<(), String>;
    /// Adds `delta` to the number under `key` (0 when absent), atomically
    /// across instances, and returns the new value.
    fn increment(&mut self, key: &str, delta: u64) -> Result<u64, String>;
}

/// A lease is good for the current window of this many seconds: the key
/// holds the window's number, so a holder that dies (its instance killed
/// mid-request) blocks nobody for longer than this.
pub const LEASE_WINDOW_SECS: u64 = 30;

/// How long an instance that lost the lease waits for the holder's token
/// before it asks Entra ID itself. A token request takes well under a
/// second; this bounds the wait when the holder is slow or gone.
pub const LEASE_WAIT_MS: u64 = 5_000;

/// How often a waiting instance looks for the holder's token.
pub const LEASE_POLL_MS: u64 = 50;

/// A discovered authority is reused this long (as the native CLI's on-disk
/// authority cache does); a token request that refuses it drops it sooner.
pub const AUTHORITY_TTL_SECS: u64 = 24 * 3600;

/// Records larger than this are not ours (a token is a few KiB).
const MAX_RECORD_BYTES: usize = 64 * 1024;

/// The key of the token for `authority` + `client_id` + `scope`: a hash, so
/// the key is short, holds only characters every store accepts
/// (`[a-z0-9.-]`, NATS JetStream's rules included) and shows no URL.
pub fn token_key(authority: &str, client_id: &str, scope: &str) -> String {
    format!("dataverse-token.{}", digest(&[authority, client_id, scope]))
}

/// The key of the authority discovered for `org_url`.
pub fn authority_key(org_url: &str) -> String {
    format!("dataverse-authority.{}", digest(&[org_url]))
}

/// The lease key of `key` for the window that holds `now`.
pub fn lease_key(key: &str, now: u64) -> String {
    format!("{key}.lease.{}", now / LEASE_WINDOW_SECS)
}

fn digest(parts: &[&str]) -> String {
    let mut hash = Sha256::new();
    for part in parts {
        // Length-prefixed, so ("ab", "c") and ("a", "bc") differ.
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part.as_bytes());
    }
    hash.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[derive(Serialize, Deserialize)]
struct TokenRecord {
    access_token: String,
    expires_at: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    refresh_at: Option<u64>,
}

#[derive(Serialize, Deserialize)]
struct AuthorityRecord {
    authority: String,
    scope: String,
    expires_at: u64,
}

/// What is stored for a token (it is a secret: the store must be the
/// application's own).
pub fn encode_token(token: &AccessToken) -> Vec<u8> {
    serde_json::to_vec(&TokenRecord {
        access_token: token.value.expose().to_string(),
        expires_at: token.expires_at,
        refresh_at: token.refresh_at,
    })
    .unwrap_or_default()
}

/// The stored token, if the record is one and it may still be used at
/// `now` (the same five-minute margin as the instance's own cache).
pub fn decode_token(bytes: &[u8], now: u64) -> Option<AccessToken> {
    if bytes.len() > MAX_RECORD_BYTES {
        return None;
    }
    let record: TokenRecord = serde_json::from_slice(bytes).ok()?;
    let usable = now.saturating_add(RENEW_BEFORE_EXPIRY_SECS) < record.expires_at;
    let printable = record.access_token.bytes().all(|b| b.is_ascii_graphic());
    (usable && printable && !record.access_token.is_empty()).then(|| AccessToken {
        value: Secret::new(record.access_token),
        expires_at: record.expires_at,
        refresh_at: record.refresh_at,
    })
}

/// What is stored for a discovered authority and the scope the challenge named.
pub fn encode_authority(authority_url: &str, scope: &str, now: u64) -> Vec<u8> {
    serde_json::to_vec(&AuthorityRecord {
        authority: authority_url.to_string(),
        scope: scope.to_string(),
        expires_at: now.saturating_add(AUTHORITY_TTL_SECS),
    })
    .unwrap_or_default()
}

/// The stored authority URL and scope while the record is fresh. The caller
/// still checks the URL against the settings (trusted hosts), as it would a
/// discovered one.
pub fn decode_authority(bytes: &[u8], now: u64) -> Option<(String, String)> {
    if bytes.len() > MAX_RECORD_BYTES {
        return None;
    }
    let record: AuthorityRecord = serde_json::from_slice(bytes).ok()?;
    (now < record.expires_at).then_some((record.authority, record.scope))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(value: &str, expires_at: u64) -> AccessToken {
        AccessToken {
            value: Secret::new(value),
            expires_at,
            refresh_at: Some(expires_at - 1800),
        }
    }

    #[test]
    fn keys_are_short_store_safe_and_differ_by_each_part() {
        let key = token_key(
            "https://login.microsoftonline.com/tid",
            "app",
            "https://o.crm.dynamics.com/.default",
        );
        assert_eq!(key.len(), "dataverse-token.".len() + 32);
        assert!(
            key.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-'),
            "{key}"
        );
        assert!(!key.contains("login") && !key.contains("app"));
        assert_ne!(token_key("ab", "c", "s"), token_key("a", "bc", "s"));
        assert_ne!(token_key("a", "b", "s1"), token_key("a", "b", "s2"));
        assert_ne!(authority_key("https://a"), authority_key("https://b"));
        // A lease lasts one window: the same key within it, another after.
        assert_eq!(lease_key(&key, 60), lease_key(&key, 89));
        assert_ne!(lease_key(&key, 89), lease_key(&key, 90));
    }

    #[test]
    fn a_token_record_round_trips_while_more_than_five_minutes_remain() {
        let bytes = encode_token(&token("t0ken", 3600));
        let back = decode_token(&bytes, 0).unwrap();
        assert_eq!(
            (back.value.expose(), back.expires_at, back.refresh_at),
            ("t0ken", 3600, Some(1800))
        );
        assert!(decode_token(&bytes, 3299).is_some());
        assert!(decode_token(&bytes, 3300).is_none());
    }

    #[test]
    fn anything_else_in_the_store_is_a_miss() {
        let huge = format!(
            r#"{{"access_token":"{}","expires_at":9999}}"#,
            "a".repeat(MAX_RECORD_BYTES)
        );
        for bytes in [
            &b""[..],
            b"\x00\x00\x00\x00\x00\x00\x00\x01",
            b"not json",
            br#"{"access_token":"","expires_at":9999}"#,
            br#"{"access_token":"a b","expires_at":9999}"#,
            br#"{"access_token":"a\r\nX-Evil: 1","expires_at":9999}"#,
            br#"{"access_token":"a","expires_at":"9999"}"#,
            br#"{"access_token":"a"}"#,
            huge.as_bytes(),
        ] {
            assert!(decode_token(bytes, 0).is_none(), "{bytes:?}");
        }
    }

    #[test]
    fn an_authority_record_lives_for_its_ttl() {
        let bytes = encode_authority("https://login.microsoftonline.com/tid", "s/.default", 100);
        assert_eq!(
            decode_authority(&bytes, 100 + AUTHORITY_TTL_SECS - 1),
            Some((
                "https://login.microsoftonline.com/tid".into(),
                "s/.default".into()
            ))
        );
        assert!(decode_authority(&bytes, 100 + AUTHORITY_TTL_SECS).is_none());
        assert!(decode_authority(b"{}", 0).is_none());
    }
}
