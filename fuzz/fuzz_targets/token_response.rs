//! `token::parse_response`: what the token endpoint answered (status and
//! body). No panic; the `access_token` never shows in the error or in the
//! token's Debug; expiry arithmetic saturates instead of overflowing.

#![no_main]

use dataverse_fuzz::{access_token_values, assert_not_leaked, printed, redact_bytes, response};
use dataverse_wasm::auth::token::parse_response;
use libfuzzer_sys::fuzz_target;

/// 2026-01-01, and the end of time (`now + expires_in` must not overflow).
const NOWS: [u64; 2] = [1_767_225_600, u64::MAX];

fuzz_target!(|data: &[u8]| {
    let answer = response(data);
    let tokens = access_token_values(&answer.body);
    let mut redacted = answer.clone();
    redacted.body = redact_bytes(&answer.body, &tokens);
    for now in NOWS {
        let parsed = parse_response(&answer, now);
        if let Ok(token) = &parsed {
            assert!(token.expires_at >= now && !token.value.is_empty());
        }
        let shown = printed(&parsed);
        let shown_redacted = printed(&parse_response(&redacted, now));
        for range in &tokens {
            let token = std::str::from_utf8(&answer.body[range.clone()]).unwrap_or_default();
            assert_not_leaked("the access token", token, &shown, &shown_redacted);
        }
    }
});
