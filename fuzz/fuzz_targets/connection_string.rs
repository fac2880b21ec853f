//! `settings::parse`: a ServiceClient connection string, as a user pastes it.
//! No panic; a secret value never shows in the error or the settings' Debug;
//! validating parsed settings again changes nothing.

#![no_main]

use dataverse_fuzz::{assert_not_leaked, connection_string_secrets, printed, redact, text};
use dataverse_wasm::settings;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let input = text(data);
    let parsed = settings::parse(&input);
    if let Ok(settings) = &parsed {
        // `connection.from-fields` takes what `summary` shows: already normal.
        assert_eq!(
            settings.clone().validate().as_ref(),
            Ok(settings),
            "validate is not idempotent"
        );
    }

    let secrets = connection_string_secrets(&input);
    if secrets.is_empty() {
        return;
    }
    let shown = printed(&parsed);
    let shown_redacted = printed(&settings::parse(&redact(&input, &secrets)));
    for range in secrets {
        assert_not_leaked(
            "a connection-string secret",
            &input[range],
            &shown,
            &shown_redacted,
        );
    }
});
