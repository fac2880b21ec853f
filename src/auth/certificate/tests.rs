//! The certificate store against the fixtures in `src/auth/testdata`: every
//! way of storing a certificate and key, chains, passwords, and each refusal.

use super::*;
use crate::error::Error;
use crate::secret::Secret;

// Fixtures made by testdata/make.sh (see testdata/README.md).
pub(crate) const LEAF_CRT: &str = include_str!("../testdata/leaf.crt.pem");
pub(crate) const LEAF_KEY: &str = include_str!("../testdata/leaf.key.pem");
const LEAF_PKCS1_KEY: &str = include_str!("../testdata/leaf.pkcs1.key.pem");
const LEAF_ENCRYPTED_KEY: &str = include_str!("../testdata/leaf.enc.key.pem");
pub(crate) const CA_CRT: &str = include_str!("../testdata/ca.crt.pem");
const EXPIRED_CRT: &str = include_str!("../testdata/expired.crt.pem");
const FUTURE_CRT: &str = include_str!("../testdata/future.crt.pem");
const OTHER_KEY: &str = include_str!("../testdata/other.key.pem");
const EC_CRT: &str = include_str!("../testdata/ec.crt.pem");
const EC_KEY: &str = include_str!("../testdata/ec.key.pem");
const LEAF_PFX: &[u8] = include_bytes!("../testdata/leaf.pfx");
const LEAF_3DES_PFX: &[u8] = include_bytes!("../testdata/leaf-3des.pfx");
const LEAF_RC2_PFX: &[u8] = include_bytes!("../testdata/leaf-rc2.pfx");
const THUMBPRINTS: &str = include_str!("../testdata/thumbprints.txt");
const PASSWORD: &str = "correct horse";

/// 2026-01-01T00:00:00Z: inside the fixtures' 2025..2035 validity.
pub(crate) const NOW: u64 = 1_767_225_600;

pub(crate) fn thumbprint(name: &str) -> String {
    THUMBPRINTS
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no thumbprint for {name}"))
        .to_string()
}

type StoreFile = (String, Vec<u8>);

fn file(name: &str, bytes: impl AsRef<[u8]>) -> StoreFile {
    (name.to_string(), bytes.as_ref().to_vec())
}

pub(crate) fn der_of(pem_text: &str) -> Vec<u8> {
    pem::parse(pem_text).unwrap().into_contents()
}

fn leaf_pkcs1_der() -> Vec<u8> {
    der_of(LEAF_PKCS1_KEY)
}

fn password() -> Secret {
    Secret::new(PASSWORD)
}

fn find(files: &[StoreFile], tp: &str, password: Option<&Secret>) -> String {
    match find_in_store(files, tp, password, NOW) {
        Ok(c) => panic!("expected an error, found {c:?}"),
        Err(Error::InvalidSettings(m)) => {
            assert!(!m.contains(PASSWORD), "{m}");
            m
        }
        Err(e) => panic!("expected InvalidSettings, got {e:?}"),
    }
}

fn assert_is_leaf(c: &CertificateCredential) {
    assert_eq!(c.thumbprint(), thumbprint("leaf"));
    assert_eq!(c.der(), der_of(LEAF_CRT));
    assert_eq!(c.pkcs1_key(), leaf_pkcs1_der());
    assert_eq!(c.not_before(), 1_735_689_600); // 2025-01-01
    assert_eq!(c.not_after(), 2_051_222_400); // 2035-01-01
    assert_eq!(c.subject(), "CN=dataverse-wasm test app");
}

#[test]
fn each_way_of_storing_the_certificate_and_key_is_found() {
    let combined_pkcs8 = format!("{LEAF_CRT}{LEAF_KEY}{CA_CRT}");
    // `openssl pkcs12 -nodes` writes "Bag Attributes" text around blocks.
    let combined_with_text = format!(
        "Bag Attributes\n    localKeyID: 01 02\nsubject=CN = x\n{LEAF_CRT}Bag Attributes\n{LEAF_PKCS1_KEY}"
    );
    let cases: Vec<(&str, Vec<StoreFile>, Option<Secret>)> = vec![
        (
            "separate PEM certificate and PKCS#8 key files",
            vec![
                file("other.key", OTHER_KEY),
                file("app.crt", LEAF_CRT),
                file("ca.crt", CA_CRT),
                file("app.key", LEAF_KEY),
            ],
            None,
        ),
        (
            "PKCS#1 key file",
            vec![
                file("app.pem", LEAF_CRT),
                file("app-key.pem", LEAF_PKCS1_KEY),
            ],
            None,
        ),
        (
            "combined file",
            vec![file("app.pem", &combined_pkcs8)],
            None,
        ),
        (
            "combined file with bag attributes",
            vec![file("app.pem", &combined_with_text)],
            None,
        ),
        (
            "encrypted PKCS#8 key opened with the password",
            vec![
                file("app.crt", LEAF_CRT),
                file("app.key", LEAF_ENCRYPTED_KEY),
            ],
            Some(password()),
        ),
        (
            "DER certificate and DER PKCS#8 key",
            vec![
                file("app.cer", der_of(LEAF_CRT)),
                file("app.key.der", der_of(LEAF_KEY)),
            ],
            None,
        ),
        (
            "PFX, AES-256 + PBKDF2-SHA256 (OpenSSL 3, Windows AES256-SHA256)",
            vec![file("app.pfx", LEAF_PFX)],
            Some(password()),
        ),
        (
            "PFX, 3DES + SHA-1 MAC (Windows TripleDES-SHA1)",
            vec![file("app.p12", LEAF_3DES_PFX)],
            Some(password()),
        ),
        (
            "PFX, RC2-40 certificates + 3DES key (openssl -legacy)",
            vec![file("app.pfx", LEAF_RC2_PFX)],
            Some(password()),
        ),
    ];
    for (case, files, password) in cases {
        let c = find_in_store(&files, &thumbprint("leaf"), password.as_ref(), NOW)
            .unwrap_or_else(|e| panic!("{case}: {e}"));
        assert_is_leaf(&c);
    }
}

#[test]
fn the_chain_is_the_leaf_then_its_issuers_found_with_it() {
    let files = [
        file("ca.crt", CA_CRT),
        file("app.crt", LEAF_CRT),
        file("app.key", LEAF_KEY),
    ];
    let c = find_in_store(&files, &thumbprint("leaf"), None, NOW).unwrap();
    assert_eq!(c.chain(), [der_of(LEAF_CRT), der_of(CA_CRT)]);
    let c = find_in_store(
        &[file("app.pfx", LEAF_PFX)],
        &thumbprint("leaf"),
        Some(&password()),
        NOW,
    )
    .unwrap();
    assert_eq!(c.chain(), [der_of(LEAF_CRT), der_of(CA_CRT)]);
    let alone = [file("app.crt", LEAF_CRT), file("app.key", LEAF_KEY)];
    let c = find_in_store(&alone, &thumbprint("leaf"), None, NOW).unwrap();
    assert_eq!(c.chain(), [der_of(LEAF_CRT)]);
}

#[test]
fn a_wrong_or_missing_pfx_password_names_the_file() {
    let files = [file("app.pfx", LEAF_PFX), file("legacy.pfx", LEAF_3DES_PFX)];
    for password in [Some(Secret::new("wrong")), Some(Secret::new("")), None] {
        let m = find(&files, &thumbprint("leaf"), password.as_ref());
        assert!(m.contains("'app.pfx' could not be opened"), "{m}");
        assert!(m.contains("'legacy.pfx' could not be opened"), "{m}");
        assert!(m.contains("CertificatePassword is wrong"), "{m}");
        assert!(!m.contains("wrong\""), "{m}");
    }
}

#[test]
fn a_pfx_the_password_does_not_open_is_ignored_when_another_file_matches() {
    let files = [
        file("old.pfx", LEAF_PFX),
        file("app.crt", LEAF_CRT),
        file("app.key", LEAF_KEY),
    ];
    let c = find_in_store(&files, &thumbprint("leaf"), Some(&Secret::new("nope")), NOW).unwrap();
    assert_is_leaf(&c);
}

#[test]
fn an_unknown_thumbprint_lists_the_thumbprints_found() {
    let wanted = "0000000000000000000000000000000000000000";
    let files = [
        file("app.crt", LEAF_CRT),
        file("app.key", LEAF_KEY),
        file("ca.crt", CA_CRT),
        file("copy.pem", LEAF_CRT),
    ];
    let m = find(&files, wanted, None);
    assert_eq!(
        m,
        format!(
            "no certificate with thumbprint {wanted} in the store; found: {}, {}",
            thumbprint("leaf"),
            thumbprint("ca")
        )
    );
    let m = find(&[file("notes.txt", "hello")], wanted, None);
    assert_eq!(
        m,
        format!("no certificate with thumbprint {wanted} in the store; found: none")
    );
}

#[test]
fn a_key_that_does_not_match_the_certificate_is_refused() {
    let tp = thumbprint("leaf");
    // In the certificate's own file: the key was meant for it.
    let m = find(
        &[file("app.pem", format!("{LEAF_CRT}{OTHER_KEY}"))],
        &tp,
        None,
    );
    assert!(
        m.contains("the private key in 'app.pem' does not match certificate"),
        "{m}"
    );
    assert!(m.contains(&tp), "{m}");
    // Side by side: keys are matched by public key, and none does.
    let m = find(
        &[file("app.crt", LEAF_CRT), file("app.key", OTHER_KEY)],
        &tp,
        None,
    );
    assert!(m.contains(&format!("certificate {tp}")), "{m}");
    assert!(m.contains("in 'app.crt' but no private key for it"), "{m}");
    assert!(m.contains("RSA keys found: 1"), "{m}");
    let m = find(&[file("app.crt", LEAF_CRT)], &tp, None);
    assert!(
        m.contains("no private key for it") && m.contains("RSA keys found: 0"),
        "{m}"
    );
}

#[test]
fn expired_and_not_yet_valid_certificates_are_refused_with_their_dates() {
    let cases = [
        (
            "expired",
            EXPIRED_CRT,
            "has expired: it is valid from 2020-01-01T00:00:00Z to 2021-01-01T00:00:00Z, and now is 2026-01-01T00:00:00Z",
        ),
        (
            "future",
            FUTURE_CRT,
            "is not valid yet: it is valid from 2040-01-01T00:00:00Z to 2041-01-01T00:00:00Z, and now is 2026-01-01T00:00:00Z",
        ),
    ];
    for (name, crt, expected) in cases {
        let tp = thumbprint(name);
        let m = find(
            &[file("app.crt", crt), file("app.key", LEAF_KEY)],
            &tp,
            None,
        );
        assert!(m.contains(&tp) && m.ends_with(expected), "{name}: {m}");
        let Err(Error::InvalidSettings(m)) = from_pem(&format!("{crt}{LEAF_KEY}"), NOW) else {
            panic!("{name}: from_pem accepted it")
        };
        assert!(m.ends_with(expected), "{name}: {m}");
    }
    // The bounds themselves are valid.
    let files = [file("app.crt", LEAF_CRT), file("app.key", LEAF_KEY)];
    for now in [1_735_689_600, 2_051_222_400] {
        assert!(find_in_store(&files, &thumbprint("leaf"), None, now).is_ok());
    }
    assert!(find_in_store(&files, &thumbprint("leaf"), None, 2_051_222_401).is_err());
}

#[test]
fn ec_keys_are_refused_because_entra_needs_rsa() {
    let only_rsa = "only RSA keys can sign Entra ID client assertions";
    let m = find(
        &[file("ec.crt", EC_CRT), file("ec.key", EC_KEY)],
        &thumbprint("ec"),
        None,
    );
    assert!(m.contains(only_rsa) && m.contains("has an EC key"), "{m}");
    for pem_text in [format!("{EC_CRT}{EC_KEY}"), format!("{LEAF_CRT}{EC_KEY}")] {
        let Err(Error::InvalidSettings(m)) = from_pem(&pem_text, NOW) else {
            panic!("accepted an EC key")
        };
        assert!(m.contains(only_rsa), "{m}");
    }
    // An `EC PRIVATE KEY` (SEC1) block is recognised too.
    let sec1 = "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n";
    let Err(Error::InvalidSettings(m)) = from_pem(&format!("{EC_CRT}{sec1}"), NOW) else {
        panic!("accepted an EC key")
    };
    assert!(m.contains(only_rsa), "{m}");
}

#[test]
fn files_that_are_not_certificates_are_skipped() {
    let mut noise = vec![0x30u8, 0x82, 0x01, 0x00];
    noise.extend((0..=255u8).cycle().take(300));
    let files = [
        file("README.md", "# my certificates\n"),
        file("empty", ""),
        file("random.bin", &noise),
        file(
            "broken.pem",
            "-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n",
        ),
        file("junk.pfx", b"\x30\x03\x02\x01\x03"),
        file("app.crt", LEAF_CRT),
        file("app.key", LEAF_KEY),
    ];
    assert_is_leaf(&find_in_store(&files, &thumbprint("leaf"), None, NOW).unwrap());
    // When nothing matches, the files that looked like certificates are named.
    let m = find(&files[..5], &thumbprint("leaf"), None);
    assert!(m.contains("found: none"), "{m}");
    assert!(m.contains("'broken.pem' is not valid PEM"), "{m}");
    assert!(m.contains("'junk.pfx'"), "{m}");
    assert!(
        !m.contains("README") && !m.contains("random.bin") && !m.contains("'empty'"),
        "{m}"
    );
}

#[test]
fn an_encrypted_key_without_a_password_is_named() {
    let files = [
        file("app.crt", LEAF_CRT),
        file("app.key", LEAF_ENCRYPTED_KEY),
    ];
    let m = find(&files, &thumbprint("leaf"), None);
    assert!(
        m.contains("'app.key' holds an encrypted private key and no CertificatePassword"),
        "{m}"
    );
    let m = find(&files, &thumbprint("leaf"), Some(&Secret::new("bad")));
    assert!(m.contains("'app.key' could not be opened"), "{m}");
}

#[test]
fn pem_text_gives_the_certificate_that_matches_the_key_and_its_chain() {
    for text in [
        format!("{LEAF_CRT}{LEAF_KEY}{CA_CRT}"),
        format!("{CA_CRT}{LEAF_PKCS1_KEY}{LEAF_CRT}"),
    ] {
        let c = from_pem(&text, NOW).unwrap();
        assert_is_leaf(&c);
        assert_eq!(c.chain(), [der_of(LEAF_CRT), der_of(CA_CRT)]);
    }
    let cases = [
        (
            format!("{LEAF_CRT}{OTHER_KEY}"),
            "does not match certificate",
        ),
        (LEAF_CRT.to_string(), "has no private key"),
        (LEAF_KEY.to_string(), "has no CERTIFICATE block"),
        ("not pem".to_string(), "has no CERTIFICATE block"),
        (
            format!("{LEAF_CRT}{LEAF_ENCRYPTED_KEY}"),
            "encrypted private key",
        ),
    ];
    for (text, expected) in cases {
        let Err(Error::InvalidSettings(m)) = from_pem(&text, NOW) else {
            panic!("accepted: {expected}")
        };
        assert!(m.contains(expected), "{expected}: {m}");
    }
}

#[test]
fn debug_output_never_contains_key_material() {
    let c = from_pem(&format!("{LEAF_CRT}{LEAF_KEY}"), NOW).unwrap();
    let debug = format!("{c:?} {c:#?}");
    assert!(debug.contains("key: \"***\""), "{debug}");
    let key = leaf_pkcs1_der();
    // No run of key bytes, as numbers or hex, and no PEM text.
    let as_numbers = format!("{:?}", &key[100..108]);
    let as_numbers = &as_numbers[1..as_numbers.len() - 1];
    let as_hex: String = key[100..108].iter().map(|b| format!("{b:02x}")).collect();
    for needle in [
        as_numbers,
        &as_hex,
        &as_hex.to_uppercase(),
        &LEAF_KEY.lines().nth(3).unwrap()[..20],
    ] {
        assert!(!debug.contains(needle), "{debug}");
    }
    assert!(format!("{c:?}").len() < 300, "{debug}");
}

#[test]
fn damaged_files_are_errors_not_panics() {
    let cert_der = der_of(LEAF_CRT);
    let originals: [(&str, &[u8]); 5] = [
        ("app.pfx", LEAF_PFX),
        ("rc2.pfx", LEAF_RC2_PFX),
        ("app.pem", LEAF_CRT.as_bytes()),
        ("app.key", LEAF_ENCRYPTED_KEY.as_bytes()),
        ("app.cer", &cert_der),
    ];
    let mut state = 0x9E37_79B9_7F4A_7C15_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for (name, bytes) in originals {
        let mut variants: Vec<Vec<u8>> = (0..bytes.len())
            .step_by(bytes.len() / 30 + 1)
            .map(|len| bytes[..len].to_vec())
            .collect();
        for _ in 0..30 {
            let mut v = bytes.to_vec();
            let i = next() as usize % v.len();
            v[i] ^= 1 << (next() % 8);
            variants.push(v);
        }
        for v in variants {
            let _ = find_in_store(
                &[file(name, v)],
                &thumbprint("leaf"),
                Some(&password()),
                NOW,
            );
        }
    }
}

#[test]
fn iso8601_formats_utc_dates() {
    for (unix, expected) in [
        (0, "1970-01-01T00:00:00Z"),
        (951_782_400, "2000-02-29T00:00:00Z"),
        (1_795_773_600, "2026-11-27T10:00:00Z"),
        (4_102_444_799, "2099-12-31T23:59:59Z"),
    ] {
        assert_eq!(iso8601(unix), expected);
    }
}

/// The certificate reader decodes only what it uses; on every fixture it
/// reads what x509-cert's full decoder reads.
#[test]
fn certificates_read_as_x509_cert_reads_them() {
    use der::{Decode, Encode};
    use rsa::pkcs8::DecodePublicKey;
    for text in [LEAF_CRT, CA_CRT, EXPIRED_CRT, FUTURE_CRT, EC_CRT] {
        let der = pem::parse(text).unwrap().into_contents();
        let full = x509_cert::Certificate::from_der(&der).unwrap();
        let tbs = &full.tbs_certificate;
        let info = x509::CertInfo::parse(der, "f").unwrap();
        let contents = |name: &x509_cert::name::Name| {
            let der = name.to_der().unwrap();
            der::asn1::AnyRef::from_der(&der).unwrap().value().to_vec()
        };
        assert_eq!(info.subject_name, contents(&tbs.subject));
        assert_eq!(info.issuer_name, contents(&tbs.issuer));
        assert_eq!(info.subject, tbs.subject.to_string());
        let secs = |t: &x509_cert::time::Time| t.to_unix_duration().as_secs();
        assert_eq!(info.not_before, secs(&tbs.validity.not_before));
        assert_eq!(info.not_after, secs(&tbs.validity.not_after));
        let spki = tbs.subject_public_key_info.to_der().unwrap();
        match rsa::RsaPublicKey::from_public_key_der(&spki) {
            Ok(key) => assert_eq!(info.public_key, Ok(key)),
            Err(_) => assert_eq!(info.public_key, Err("EC")),
        }
    }
}

#[test]
fn a_key_that_cannot_sign_is_an_error_naming_the_certificate() {
    let mut c = from_pem(&format!("{LEAF_CRT}{LEAF_KEY}"), NOW).unwrap();
    c.key = Zeroizing::new(b"not a PKCS#1 key".to_vec());
    let options = crate::auth::assertion::AssertionOptions::default();
    match crate::auth::assertion::sign(&c, "app", "https://login/token", "jti", NOW, options) {
        Err(Error::InvalidSettings(m)) => {
            assert!(m.starts_with("could not sign the client assertion with certificate "));
            assert!(
                m.contains(c.thumbprint()) && m.contains("RSA key invalid: "),
                "{m}"
            );
        }
        other => panic!("{other:?}"),
    }
}
