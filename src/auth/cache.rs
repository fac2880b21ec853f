//! Token cache policy: when a cached token may be reused.

use super::AccessToken;

/// A token is renewed when fewer than this many seconds remain, so a call
/// never starts with a token about to expire in flight.
pub const RENEW_BEFORE_EXPIRY_SECS: u64 = 300;

/// One application's token for one scope.
#[derive(Default, Debug)]
pub struct TokenCache {
    token: Option<AccessToken>,
}

impl TokenCache {
    /// The cached token if it may still be used at `now` (Unix seconds).
    pub fn usable(&self, now: u64) -> Option<&AccessToken> {
        self.token
            .as_ref()
            .filter(|t| now.saturating_add(RENEW_BEFORE_EXPIRY_SECS) < t.expires_at)
    }

    /// The cached token, however close to expiry (for metadata).
    pub fn current(&self) -> Option<&AccessToken> {
        self.token.as_ref()
    }

    pub fn store(&mut self, token: AccessToken) {
        self.token = Some(token);
    }

    /// Drops the token, e.g. after Dataverse rejected it with 401.
    pub fn clear(&mut self) {
        self.token = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;

    #[test]
    fn a_token_is_reused_only_while_more_than_five_minutes_remain() {
        let mut cache = TokenCache::default();
        assert!(cache.usable(0).is_none());
        cache.store(AccessToken {
            value: Secret::new("t"),
            expires_at: 3600,
            refresh_at: None,
        });
        assert!(cache.usable(0).is_some());
        assert!(cache.usable(3299).is_some());
        assert!(cache.usable(3300).is_none());
        assert!(cache.current().is_some());
        cache.clear();
        assert!(cache.current().is_none());
    }
}
