//! `certificate::find_in_store`, `from_pem` and `from_host`: certificate
//! store files (PEM, DER, PKCS#12) as the host maps them in, and the DER
//! chain a host's signer returns. Each section is one file:
//! its first line is the file name, the rest its bytes. No panic; the
//! CertificatePassword never shows in an error or the credential's Debug.

#![no_main]

use dataverse_fuzz::{first_line, printed, sections, text};
use dataverse_wasm::Secret;
use dataverse_wasm::auth::certificate::{find_in_store, from_host, from_pem};
use libfuzzer_sys::fuzz_target;

/// The password of the PFX and encrypted-key fixtures (src/auth/testdata).
const PASSWORD: &str = "correct horse";
/// 2026-01-01, inside the fixtures' validity.
const NOW: u64 = 1_767_225_600;
/// The fixtures' leaf certificate.
const LEAF: &str = "C51D2DE3356A0FCF9C7BD56D940B5DDC090CA7A2";

fuzz_target!(|data: &[u8]| {
    let files: Vec<(String, Vec<u8>)> = sections(data)
        .into_iter()
        .map(|file| {
            let (name, bytes) = first_line(file);
            (text(name), bytes.to_vec())
        })
        .collect();
    // A file name is echoed in messages by design; only a password that the
    // input itself does not hold can be checked.
    let check = !data
        .windows(PASSWORD.len())
        .any(|w| w == PASSWORD.as_bytes());
    let password = Secret::new(PASSWORD);

    for password in [Some(&password), None] {
        let found = find_in_store(&files, LEAF, password, NOW);
        let mut shown = printed(&found);
        // A certificate other than the leaf: try the first thumbprint the
        // error lists, so a mutated certificate reaches the key match, the
        // validity check and the chain too.
        if let Err(e) = &found
            && let Some(other) = listed_thumbprint(&e.to_string())
        {
            shown.push_str(&printed(&find_in_store(&files, &other, password, NOW)));
        }
        if check {
            assert!(!shown.contains(PASSWORD), "the password leaked: {shown:?}");
        }
    }
    if let Some((_, first)) = files.first() {
        let _ = printed(&from_pem(&text(first), NOW));
    }
    // The same files as the chain a host's signer returns (DER, leaf first).
    let chain = files.iter().map(|(_, bytes)| bytes.clone()).collect();
    let _ = printed(&from_host(
        "https://v.vault.azure.net/certificates/c",
        chain,
        NOW,
    ));
});

/// The first 40-hex-digit word after "found: " in a "no certificate" error.
fn listed_thumbprint(message: &str) -> Option<String> {
    let (_, found) = message.split_once("found: ")?;
    found
        .split([',', ';', ' '])
        .find(|w| w.len() == 40 && w.bytes().all(|b| b.is_ascii_hexdigit()) && *w != LEAF)
        .map(str::to_string)
}
