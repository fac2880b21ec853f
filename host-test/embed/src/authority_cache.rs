//! Tenant discovery results kept on disk, so a short-lived process (a CLI
//! call, a job run every five minutes) pays the discovery round trip once
//! per org and day, not once per start — as MSAL caches instance metadata.
//!
//! What is cached is public (which Entra ID authority an org's challenge
//! names), never a token or a secret. An entry lives [`TTL`]; a caller that
//! sees the token request refuse the tenant ([`tenant_refused`]) forgets the
//! entry and discovers again. Every failure to read or write the file is
//! ignored: the cache only ever saves a request.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::session::{DataverseError, ErrorKind};

/// How long a discovered authority is trusted without asking again.
pub const TTL: Duration = Duration::from_secs(24 * 3600);

/// AADSTS codes that mean "this tenant is not the app's": the org may have
/// moved, so the cached authority is dropped and discovery runs again.
const TENANT_CODES: &[u32] = &[90002, 90072, 700016, 500011, 50059];

#[derive(Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
struct Entries {
    /// Org URL (as the core normalises it) → entry.
    #[serde(default)]
    authorities: BTreeMap<String, Entry>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
struct Entry {
    authority: String,
    /// Unix seconds.
    discovered_at: u64,
}

/// The cache file (`authorities.json` in the host's cache directory).
pub struct AuthorityCache {
    path: PathBuf,
}

impl AuthorityCache {
    /// The file beside the precompiled components (`$DATAVERSE_CACHE_DIR`,
    /// else the user's cache directory).
    pub fn in_cache_dir() -> AuthorityCache {
        AuthorityCache::at(crate::engine::cache_dir().join("authorities.json"))
    }

    pub fn at(path: PathBuf) -> AuthorityCache {
        AuthorityCache { path }
    }

    /// The authority discovered for `org_url` less than [`TTL`] ago.
    pub fn lookup(&self, org_url: &str, now: u64) -> Option<String> {
        let entry = self.read().authorities.remove(org_url)?;
        let age = now.checked_sub(entry.discovered_at)?;
        (age < TTL.as_secs()).then_some(entry.authority)
    }

    /// Keeps `authority` for `org_url`. Only a plain `https://host/tenant`
    /// is kept: a loopback test authority (`http://127.0.0.1:PORT/…`)
    /// changes port from run to run.
    pub fn store(&self, org_url: &str, authority: &str, now: u64) {
        let host = authority
            .strip_prefix("https://")
            .and_then(|rest| rest.split('/').next());
        if host.is_none_or(|host| host.contains(':')) {
            return;
        }
        let mut entries = self.read();
        entries.authorities.insert(
            org_url.to_string(),
            Entry {
                authority: authority.to_string(),
                discovered_at: now,
            },
        );
        self.write(&entries);
    }

    pub fn forget(&self, org_url: &str) {
        let mut entries = self.read();
        if entries.authorities.remove(org_url).is_some() {
            self.write(&entries);
        }
    }

    fn read(&self) -> Entries {
        std::fs::read_to_string(&self.path)
            .ok()
            .and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or_default()
    }

    /// Write then rename: a concurrent reader sees the old file or the new.
    fn write(&self, entries: &Entries) {
        let Some(dir) = self.path.parent() else {
            return;
        };
        let Ok(text) = serde_json::to_string_pretty(entries) else {
            return;
        };
        let tmp = self
            .path
            .with_extension(format!("tmp{}", std::process::id()));
        if std::fs::create_dir_all(dir).is_ok() && std::fs::write(&tmp, text).is_ok() {
            let _ = std::fs::rename(&tmp, &self.path);
        }
    }
}

/// Whether a failed connect says the authority's tenant is wrong for this
/// app (or unusable), so a cached authority must be dropped.
pub fn tenant_refused(error: &DataverseError) -> bool {
    match &error.kind {
        ErrorKind::Authentication(failure) => failure
            .code
            .is_some_and(|code| TENANT_CODES.contains(&code)),
        ErrorKind::Authority(_) => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::AuthFailure;

    const ORG: &str = "https://contoso.crm.dynamics.com";
    const AUTHORITY: &str =
        "https://login.microsoftonline.com/8f2c1f3e-5b7a-4c1d-9e3f-2a6b4c8d0e1f";

    fn temp_cache(name: &str) -> AuthorityCache {
        let dir = std::env::temp_dir().join(format!(
            "dataverse-authority-cache-{name}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        AuthorityCache::at(dir.join("authorities.json"))
    }

    #[test]
    fn an_entry_lives_for_its_ttl_and_can_be_forgotten() {
        let cache = temp_cache("ttl");
        assert_eq!(cache.lookup(ORG, 1_000), None, "empty");
        cache.store(ORG, AUTHORITY, 1_000);
        assert_eq!(cache.lookup(ORG, 1_000).as_deref(), Some(AUTHORITY));
        let last = 1_000 + TTL.as_secs() - 1;
        assert_eq!(cache.lookup(ORG, last).as_deref(), Some(AUTHORITY));
        assert_eq!(cache.lookup(ORG, last + 1), None, "expired");
        assert_eq!(cache.lookup(ORG, 999), None, "from the future");
        assert_eq!(cache.lookup("https://other.crm.dynamics.com", 1_000), None);
        cache.forget(ORG);
        assert_eq!(cache.lookup(ORG, 1_000), None);
        for unstable in [
            "http://127.0.0.1:4000/tenant",
            "https://127.0.0.1:4000/tenant",
        ] {
            cache.store(ORG, unstable, 1_000);
            assert_eq!(cache.lookup(ORG, 1_000), None, "{unstable} is not kept");
        }
        let _ = std::fs::remove_dir_all(cache.path.parent().unwrap());
    }

    #[test]
    fn a_damaged_file_is_an_empty_cache_and_is_replaced() {
        let cache = temp_cache("damaged");
        std::fs::create_dir_all(cache.path.parent().unwrap()).unwrap();
        std::fs::write(&cache.path, "{not json").unwrap();
        assert_eq!(cache.lookup(ORG, 1), None);
        cache.store(ORG, AUTHORITY, 1);
        assert_eq!(cache.lookup(ORG, 1).as_deref(), Some(AUTHORITY));
        let _ = std::fs::remove_dir_all(cache.path.parent().unwrap());
    }

    #[test]
    fn only_tenant_refusals_drop_the_entry() {
        let auth = |code| DataverseError {
            kind: ErrorKind::Authentication(AuthFailure {
                status: 400,
                code: Some(code),
                error: "invalid_request".into(),
                description: String::new(),
                trace_id: None,
                correlation_id: None,
                hint: None,
            }),
            call: None,
        };
        assert!(tenant_refused(&auth(90002)));
        assert!(tenant_refused(&auth(700016)));
        assert!(
            !tenant_refused(&auth(7000215)),
            "a wrong secret is not the tenant's fault"
        );
        assert!(tenant_refused(&DataverseError {
            kind: ErrorKind::Authority("unknown host".into()),
            call: None
        }));
        assert!(!tenant_refused(&DataverseError {
            kind: ErrorKind::Transport("down".into()),
            call: None
        }));
    }
}
