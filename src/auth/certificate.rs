//! The certificate credential: finds a certificate and its RSA private key
//! among the files of a certificate store (PEM, DER, PKCS#12) or in PEM text,
//! and checks that they belong together and are valid now.
//!
//! Pure: the files' bytes, the password and `now` are passed in. Messages name
//! files and thumbprints, never key material or the password.

use std::fmt;

use der::Encode;
use der::asn1::ObjectIdentifier;
use rsa::pkcs1::{DecodeRsaPrivateKey, EncodeRsaPrivateKey};
use rsa::pkcs8::{DecodePublicKey, PrivateKeyInfo};
use rsa::{RsaPrivateKey, RsaPublicKey};
use sha1::{Digest, Sha1};
use x509_cert::Certificate;
use zeroize::Zeroizing;

use crate::error::Error;
use crate::secret::Secret;

/// Issuers followed when building the chain sent as `x5c`.
const MAX_CHAIN_LEN: usize = 8;

const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");

/// A certificate and its RSA private key, ready to sign assertions. Debug
/// never shows key material.
#[derive(Clone)]
pub struct CertificateCredential {
    thumbprint: String,
    der: Vec<u8>,
    chain: Vec<Vec<u8>>,
    subject: String,
    not_before: u64,
    not_after: u64,
    /// The RSA private key, PKCS#1 DER (what jsonwebtoken signs with).
    key: Zeroizing<Vec<u8>>,
}

impl CertificateCredential {
    /// SHA-1 of the DER, upper-case hex, 40 characters.
    pub fn thumbprint(&self) -> &str {
        &self.thumbprint
    }

    /// The leaf certificate, DER.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// Leaf first, then the issuers found with it (for `x5c`).
    pub fn chain(&self) -> &[Vec<u8>] {
        &self.chain
    }

    /// The certificate's subject, RFC 4514 (`CN=…`).
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// Unix seconds.
    pub fn not_before(&self) -> u64 {
        self.not_before
    }

    /// Unix seconds.
    pub fn not_after(&self) -> u64 {
        self.not_after
    }

    /// The private key as PKCS#1 DER. Only the assertion signer uses it.
    pub(crate) fn pkcs1_key(&self) -> &[u8] {
        &self.key
    }
}

impl fmt::Debug for CertificateCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertificateCredential")
            .field("thumbprint", &self.thumbprint)
            .field("subject", &self.subject)
            .field("not_before", &iso8601(self.not_before))
            .field("not_after", &iso8601(self.not_after))
            .field("chain_len", &self.chain.len())
            .field("key", &"***")
            .finish()
    }
}

/// Picks, among the files of a certificate store directory (file name,
/// bytes), the certificate whose SHA-1 thumbprint equals `thumbprint`
/// (already normalised: upper-case hex) and its private key: PEM files
/// (certificate and PKCS#8 or PKCS#1 RSA key, in one file or side by side —
/// a key file is matched to the certificate by public key), DER certificates
/// and keys, and PKCS#12 files (.pfx/.p12) opened with `password`.
///
/// Files that are neither are skipped. A file that cannot be read, or a PFX
/// that the password does not open, is an error only if no other file
/// matches; the error then names it.
pub fn find_in_store(
    files: &[(String, Vec<u8>)],
    thumbprint: &str,
    password: Option<&Secret>,
    now: u64,
) -> Result<CertificateCredential, Error> {
    let password = password.map(Secret::expose).unwrap_or("");
    let mut found = Found::default();
    for (name, bytes) in files {
        read_file(name, bytes, password, &mut found);
    }

    let wanted = thumbprint.trim();
    let Some(leaf) = found
        .certs
        .iter()
        .find(|c| c.thumbprint.eq_ignore_ascii_case(wanted))
    else {
        let mut message = format!(
            "no certificate with thumbprint {wanted} in the store; found: {}",
            found.thumbprints()
        );
        found.append_problems(&mut message);
        return Err(Error::InvalidSettings(message));
    };
    let public = leaf.rsa_public_key()?;
    leaf.check_validity(now)?;

    let key = found
        .keys
        .iter()
        .filter_map(|k| match &k.key {
            PrivateKey::Rsa(key) => Some((k, key)),
            PrivateKey::Other(_) => None,
        })
        .find(|(_, key)| &key.to_public_key() == public);
    let Some((_, key)) = key else {
        // A key in a file that also holds the certificate was meant for it.
        let files_with_cert: Vec<&str> = found
            .certs
            .iter()
            .filter(|c| c.thumbprint == leaf.thumbprint)
            .map(|c| c.file.as_str())
            .collect();
        if let Some(k) = found.keys.iter().find(|k| {
            matches!(k.key, PrivateKey::Rsa(_)) && files_with_cert.contains(&k.file.as_str())
        }) {
            return Err(mismatch(leaf, &k.file));
        }
        let mut message = format!(
            "certificate {} ({}) is in '{}' but no private key for it is in the store \
             (a key file is matched by public key; RSA keys found: {}). Put its PKCS#8 or PKCS#1 \
             PEM key next to it, or use a .pfx that holds both",
            leaf.thumbprint,
            leaf.subject,
            leaf.file,
            found.rsa_key_count()
        );
        found.append_problems(&mut message);
        return Err(Error::InvalidSettings(message));
    };
    credential(leaf, key, &found.certs)
}

/// Certificate + key given directly as PEM text (structured settings). The
/// leaf is the certificate that matches the key; other certificates in the
/// text are its chain.
pub fn from_pem(pem: &str, now: u64) -> Result<CertificateCredential, Error> {
    const NAME: &str = "the certificate PEM";
    let mut found = Found::default();
    read_file(NAME, pem.as_bytes(), "", &mut found);
    if let Some(problem) = found.problems.first() {
        return Err(Error::InvalidSettings(problem.to_string()));
    }
    if found.certs.is_empty() {
        return Err(Error::InvalidSettings(format!(
            "{NAME} has no CERTIFICATE block"
        )));
    }
    let rsa_keys: Vec<&RsaPrivateKey> = found
        .keys
        .iter()
        .filter_map(|k| match &k.key {
            PrivateKey::Rsa(key) => Some(key.as_ref()),
            PrivateKey::Other(_) => None,
        })
        .collect();
    if rsa_keys.is_empty() {
        if let Some(KeyInfo {
            key: PrivateKey::Other(alg),
            ..
        }) = found.keys.first()
        {
            return Err(not_rsa(&format!("{NAME} holds an {alg} private key")));
        }
        return Err(Error::InvalidSettings(format!(
            "{NAME} has no private key: add the certificate's PKCS#8 (PRIVATE KEY) or PKCS#1 (RSA PRIVATE KEY) block"
        )));
    }
    for cert in &found.certs {
        let Ok(public) = &cert.public_key else {
            continue;
        };
        if let Some(key) = rsa_keys.iter().find(|k| &k.to_public_key() == public) {
            cert.check_validity(now)?;
            return credential(cert, key, &found.certs);
        }
    }
    let first = &found.certs[0];
    first.rsa_public_key()?;
    Err(mismatch(first, NAME))
}

/// The private key of a file, parsed.
enum PrivateKey {
    Rsa(Box<RsaPrivateKey>),
    /// A key that cannot sign Entra ID assertions: its algorithm's name.
    Other(&'static str),
}

struct KeyInfo {
    key: PrivateKey,
    file: String,
}

struct CertInfo {
    der: Vec<u8>,
    thumbprint: String,
    /// DER of the subject and issuer names, to follow the chain.
    subject_der: Vec<u8>,
    issuer_der: Vec<u8>,
    subject: String,
    not_before: u64,
    not_after: u64,
    /// The RSA public key, or the name of the certificate's key algorithm.
    public_key: Result<RsaPublicKey, &'static str>,
    file: String,
}

impl CertInfo {
    fn parse(der: Vec<u8>, file: &str) -> Result<CertInfo, String> {
        use der::Decode;
        let cert = Certificate::from_der(&der)
            .map_err(|e| format!("'{file}' holds a certificate that is not valid X.509 ({e})"))?;
        let tbs = &cert.tbs_certificate;
        let spki = &tbs.subject_public_key_info;
        let public_key = if spki.algorithm.oid == RSA_ENCRYPTION {
            let spki_der = spki
                .to_der()
                .map_err(|e| format!("'{file}': unreadable public key ({e})"))?;
            Ok(RsaPublicKey::from_public_key_der(&spki_der)
                .map_err(|e| format!("'{file}': unreadable RSA public key ({e})"))?)
        } else {
            Err(algorithm_name(&spki.algorithm.oid))
        };
        let name_der = |n: &x509_cert::name::Name| n.to_der().unwrap_or_default();
        Ok(CertInfo {
            thumbprint: thumbprint_of(&der),
            subject_der: name_der(&tbs.subject),
            issuer_der: name_der(&tbs.issuer),
            subject: name_text(&tbs.subject),
            not_before: tbs.validity.not_before.to_unix_duration().as_secs(),
            not_after: tbs.validity.not_after.to_unix_duration().as_secs(),
            public_key,
            file: file.to_string(),
            der,
        })
    }

    fn rsa_public_key(&self) -> Result<&RsaPublicKey, Error> {
        self.public_key.as_ref().map_err(|alg| {
            not_rsa(&format!(
                "certificate {} ({}) in '{}' has an {alg} key",
                self.thumbprint, self.subject, self.file
            ))
        })
    }

    fn check_validity(&self, now: u64) -> Result<(), Error> {
        let state = if now < self.not_before {
            "is not valid yet"
        } else if now > self.not_after {
            "has expired"
        } else {
            return Ok(());
        };
        Err(Error::InvalidSettings(format!(
            "certificate {} ({}) {state}: it is valid from {} to {}, and now is {}",
            self.thumbprint,
            self.subject,
            iso8601(self.not_before),
            iso8601(self.not_after),
            iso8601(now)
        )))
    }
}

/// Why a file gave nothing usable. Reported only when no file matches.
enum Problem {
    /// The message names the file and says why.
    Unreadable(String),
    WrongPassword {
        file: String,
    },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Unreadable(reason) => f.write_str(reason),
            Problem::WrongPassword { file } => write!(
                f,
                "'{file}' could not be opened: the CertificatePassword is wrong (or missing)"
            ),
        }
    }
}

#[derive(Default)]
struct Found {
    certs: Vec<CertInfo>,
    keys: Vec<KeyInfo>,
    problems: Vec<Problem>,
}

impl Found {
    fn thumbprints(&self) -> String {
        let mut seen: Vec<&str> = Vec::new();
        for c in &self.certs {
            if !seen.contains(&c.thumbprint.as_str()) {
                seen.push(&c.thumbprint);
            }
        }
        if seen.is_empty() {
            "none".into()
        } else {
            seen.join(", ")
        }
    }

    fn rsa_key_count(&self) -> usize {
        self.keys
            .iter()
            .filter(|k| matches!(k.key, PrivateKey::Rsa(_)))
            .count()
    }

    /// Wrong passwords first: they are the likeliest reason nothing matched.
    fn append_problems(&self, message: &mut String) {
        let ordered = self
            .problems
            .iter()
            .filter(|p| matches!(p, Problem::WrongPassword { .. }))
            .chain(
                self.problems
                    .iter()
                    .filter(|p| matches!(p, Problem::Unreadable(_))),
            );
        for problem in ordered {
            message.push_str("; ");
            message.push_str(&problem.to_string());
        }
    }

    fn add_key(&mut self, der: &[u8], pkcs1: bool, file: &str) {
        match parse_key(der, pkcs1) {
            Ok(key) => self.keys.push(KeyInfo {
                key,
                file: file.to_string(),
            }),
            Err(reason) => self.unreadable(format!("'{file}': {reason}")),
        }
    }

    fn add_cert(&mut self, der: Vec<u8>, file: &str) {
        match CertInfo::parse(der, file) {
            Ok(cert) => self.certs.push(cert),
            Err(reason) => self.unreadable(reason),
        }
    }

    fn unreadable(&mut self, reason: String) {
        self.problems.push(Problem::Unreadable(reason));
    }
}

/// Extensions of files that are meant to be certificates or keys: one that
/// cannot be read is reported (when nothing matches) rather than skipped.
const CERTIFICATE_EXTENSIONS: &[&str] = &[
    "pem", "crt", "cer", "cert", "der", "key", "pfx", "p12", "pkcs12",
];

fn read_file(name: &str, bytes: &[u8], password: &str, found: &mut Found) {
    if contains(bytes, b"-----BEGIN ") {
        read_pem(name, bytes, password, found);
        return;
    }
    if bytes.first() == Some(&0x30) {
        use der::Decode;
        if Certificate::from_der(bytes).is_ok() {
            found.add_cert(bytes.to_vec(), name);
            return;
        }
        match pfx::open(bytes, password) {
            Ok(contents) => {
                for der in contents.certs {
                    found.add_cert(der, name);
                }
                for der in contents.keys {
                    found.add_key(&der, false, name);
                }
                return;
            }
            Err(pfx::OpenError::NotPkcs12(_)) => {}
            Err(pfx::OpenError::WrongPassword) => {
                found.problems.push(Problem::WrongPassword {
                    file: name.to_string(),
                });
                return;
            }
            Err(pfx::OpenError::Unreadable(reason)) => {
                found.unreadable(format!("'{name}' is not a usable PKCS#12 file: {reason}"));
                return;
            }
        }
        if let Ok(key) = parse_key(bytes, false).or_else(|_| parse_key(bytes, true)) {
            found.keys.push(KeyInfo {
                key,
                file: name.to_string(),
            });
            return;
        }
    }
    let extension = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
    if extension.is_some_and(|e| CERTIFICATE_EXTENSIONS.contains(&e.as_str())) {
        found.unreadable(format!(
            "'{name}' is not a PEM, DER or PKCS#12 certificate or key"
        ));
    }
}

fn read_pem(name: &str, bytes: &[u8], password: &str, found: &mut Found) {
    let blocks = match pem::parse_many(bytes) {
        Ok(blocks) if !blocks.is_empty() => blocks,
        _ => {
            found.unreadable(format!("'{name}' is not valid PEM"));
            return;
        }
    };
    for block in blocks {
        match block.tag() {
            "CERTIFICATE" | "X509 CERTIFICATE" => found.add_cert(block.into_contents(), name),
            "PRIVATE KEY" => found.add_key(&Zeroizing::new(block.into_contents()), false, name),
            "RSA PRIVATE KEY" if block.headers().get("Proc-Type").is_some() => {
                found.unreadable(format!(
                    "'{name}' holds a key encrypted in the legacy OpenSSL format; convert it with \
                     `openssl pkcs8 -topk8 -v2 aes-256-cbc` or remove the password"
                ))
            }
            "RSA PRIVATE KEY" => found.add_key(&Zeroizing::new(block.into_contents()), true, name),
            "ENCRYPTED PRIVATE KEY" => {
                let encrypted = Zeroizing::new(block.into_contents());
                if password.is_empty() {
                    found.unreadable(
                        format!(
                            "'{name}' holds an encrypted private key and no CertificatePassword was given"
                        ),
                    );
                    continue;
                }
                match pfx::decrypt_private_key(&encrypted, password) {
                    Ok(der) => found.add_key(&der, false, name),
                    Err(pfx::OpenError::WrongPassword) => {
                        found.problems.push(Problem::WrongPassword {
                            file: name.to_string(),
                        })
                    }
                    Err(pfx::OpenError::Unreadable(reason) | pfx::OpenError::NotPkcs12(reason)) => {
                        found.unreadable(format!(
                            "'{name}' holds an encrypted private key that cannot be read: {reason}"
                        ))
                    }
                }
            }
            "EC PRIVATE KEY" => found.keys.push(KeyInfo {
                key: PrivateKey::Other("EC"),
                file: name.to_string(),
            }),
            _ => {}
        }
    }
}

/// A PKCS#8 (`pkcs1 == false`) or PKCS#1 private key.
fn parse_key(der: &[u8], pkcs1: bool) -> Result<PrivateKey, String> {
    if pkcs1 {
        return RsaPrivateKey::from_pkcs1_der(der)
            .map(|k| PrivateKey::Rsa(Box::new(k)))
            .map_err(|_| "its RSA PRIVATE KEY block is not a valid PKCS#1 key".into());
    }
    let info = PrivateKeyInfo::try_from(der)
        .map_err(|_| "its PRIVATE KEY block is not a valid PKCS#8 key".to_string())?;
    if info.algorithm.oid != RSA_ENCRYPTION {
        return Ok(PrivateKey::Other(algorithm_name(&info.algorithm.oid)));
    }
    RsaPrivateKey::try_from(info)
        .map(|k| PrivateKey::Rsa(Box::new(k)))
        .map_err(|_| "its PKCS#8 RSA key is not valid".into())
}

fn algorithm_name(oid: &ObjectIdentifier) -> &'static str {
    match oid.to_string().as_str() {
        "1.2.840.10045.2.1" => "EC",
        "1.3.101.112" => "Ed25519",
        "1.3.101.113" => "Ed448",
        "1.2.840.113549.1.1.10" => "RSA-PSS-only",
        "1.2.840.10040.4.1" => "DSA",
        _ => "unknown-algorithm",
    }
}

fn not_rsa(what: &str) -> Error {
    Error::InvalidSettings(format!(
        "{what}: only RSA keys can sign Entra ID client assertions; create an RSA certificate (2048 bits or more)"
    ))
}

fn mismatch(cert: &CertInfo, key_file: &str) -> Error {
    Error::InvalidSettings(format!(
        "the private key in '{key_file}' does not match certificate {} ({}): key and certificate do not belong together",
        cert.thumbprint, cert.subject
    ))
}

fn credential(
    leaf: &CertInfo,
    key: &RsaPrivateKey,
    pool: &[CertInfo],
) -> Result<CertificateCredential, Error> {
    let pkcs1 = key.to_pkcs1_der().map_err(|_| {
        Error::InvalidSettings(format!(
            "the private key of certificate {} cannot be encoded",
            leaf.thumbprint
        ))
    })?;
    Ok(CertificateCredential {
        thumbprint: leaf.thumbprint.clone(),
        der: leaf.der.clone(),
        chain: chain(leaf, pool),
        subject: leaf.subject.clone(),
        not_before: leaf.not_before,
        not_after: leaf.not_after,
        key: Zeroizing::new(pkcs1.as_bytes().to_vec()),
    })
}

/// Leaf first, then each issuer found in `pool` (same file first), up to a
/// self-signed certificate or one whose issuer is absent.
fn chain(leaf: &CertInfo, pool: &[CertInfo]) -> Vec<Vec<u8>> {
    let mut chain = vec![leaf.der.clone()];
    let mut current = leaf;
    while current.issuer_der != current.subject_der && chain.len() < MAX_CHAIN_LEN {
        let is_issuer =
            |c: &&CertInfo| c.subject_der == current.issuer_der && !chain.contains(&c.der);
        let issuer = pool
            .iter()
            .filter(|c| c.file == leaf.file)
            .find(is_issuer)
            .or_else(|| pool.iter().find(is_issuer));
        let Some(issuer) = issuer else { break };
        chain.push(issuer.der.clone());
        current = issuer;
    }
    chain
}

/// A distinguished name for messages, RFC 4514 style (`CN=app,O=Contoso`).
/// Written here because x509-cert's `Display` pulls in const-oid's whole
/// OID-name database (~100 KiB of the component).
fn name_text(name: &x509_cert::name::Name) -> String {
    use der::{Tag, Tagged};
    let mut parts = Vec::new();
    for rdn in name.0.iter().rev() {
        for atv in rdn.0.iter() {
            let oid = atv.oid.to_string();
            let key = match oid.as_str() {
                "2.5.4.3" => "CN",
                "2.5.4.5" => "serialNumber",
                "2.5.4.6" => "C",
                "2.5.4.7" => "L",
                "2.5.4.8" => "ST",
                "2.5.4.10" => "O",
                "2.5.4.11" => "OU",
                "0.9.2342.19200300.100.1.25" => "DC",
                "1.2.840.113549.1.9.1" => "emailAddress",
                other => other,
            };
            let bytes = atv.value.value();
            let value = match atv.value.tag() {
                Tag::BmpString => String::from_utf16_lossy(
                    &bytes
                        .chunks(2)
                        .map(|c| u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]))
                        .collect::<Vec<_>>(),
                ),
                _ => String::from_utf8_lossy(bytes).into_owned(),
            };
            parts.push(format!("{key}={value}"));
        }
    }
    parts.join(",")
}

/// SHA-1 of the DER, upper-case hex.
fn thumbprint_of(der: &[u8]) -> String {
    Sha1::digest(der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Unix seconds → `2026-11-27T10:00:00Z`.
pub(crate) fn iso8601(unix: u64) -> String {
    let days = unix / 86_400;
    let secs = unix % 86_400;
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian
/// (H. Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// PKCS#12 (RFC 7292) reading: password integrity (HMAC with the PKCS#12
/// KDF), PBES2 (PBKDF2 + AES-CBC: OpenSSL 3, Windows "AES256-SHA256") and
/// the legacy PKCS#12 PBE ciphers (3DES, RC2: Windows "TripleDES-SHA1",
/// `openssl -legacy`).
mod pfx {
    use cbc::cipher::block_padding::Pkcs7;
    use cbc::cipher::{BlockDecryptMut, InnerIvInit, KeyInit, KeyIvInit};
    use cms::content_info::ContentInfo;
    use cms::encrypted_data::EncryptedData;
    use der::asn1::{Any, ObjectIdentifier, OctetString};
    use der::{Decode, Encode, Sequence};
    use hmac::{Hmac, Mac};
    use pkcs12::cert_type::CertBag;
    use pkcs12::kdf::{Pkcs12KeyType, derive_key};
    use pkcs12::mac_data::MacData;
    use pkcs12::pbe_params::{EncryptedPrivateKeyInfo, Pkcs12PbeParams};
    use pkcs12::pfx::Pfx;
    use sha1::Sha1;
    use sha2::{Sha256, Sha384, Sha512};
    use x509_cert::spki::AlgorithmIdentifierOwned;
    use zeroize::Zeroizing;

    /// KDF rounds above this are refused: a hostile file must not hang us.
    /// OpenSSL writes 2048, Windows 2000.
    const MAX_ITERATIONS: u32 = 1_000_000;
    /// Nested SafeContents bags followed.
    const MAX_DEPTH: usize = 4;

    const ID_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.1");
    const ID_ENCRYPTED_DATA: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.6");
    const PBES2: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.5.13");
    const PBMAC1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.5.14");
    const SHA1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.14.3.2.26");
    const SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
    const SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.2");
    const SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.3");

    #[derive(Default)]
    pub(super) struct Contents {
        pub certs: Vec<Vec<u8>>,
        /// PKCS#8 PrivateKeyInfo DER.
        pub keys: Vec<Zeroizing<Vec<u8>>>,
    }

    pub(super) enum OpenError {
        /// Not PKCS#12 at all: the caller tries other formats.
        NotPkcs12(String),
        Unreadable(String),
        WrongPassword,
    }

    fn malformed(what: &str) -> impl Fn(der::Error) -> OpenError + '_ {
        move |e| OpenError::Unreadable(format!("malformed {what} ({e})"))
    }

    fn unsupported(what: String) -> OpenError {
        OpenError::Unreadable(format!("{what} is not supported"))
    }

    /// `SafeBag`: pkcs12 0.1's own type keeps the `[0]` wrapper in its value.
    #[derive(Sequence)]
    struct Bag {
        id: ObjectIdentifier,
        #[asn1(context_specific = "0", tag_mode = "EXPLICIT")]
        value: Any,
        #[asn1(optional = "true")]
        _attributes: Option<Any>,
    }

    pub(super) fn open(bytes: &[u8], password: &str) -> Result<Contents, OpenError> {
        let pfx = Pfx::from_der(bytes).map_err(|e| OpenError::NotPkcs12(e.to_string()))?;
        if pfx.auth_safe.content_type != ID_DATA {
            return Err(unsupported(
                "public-key integrity mode (a signed PKCS#12)".into(),
            ));
        }
        let auth_safe = pfx
            .auth_safe
            .content
            .decode_as::<OctetString>()
            .map_err(malformed("authenticated safe"))?;
        let auth_safe = auth_safe.as_bytes();
        let passwords = bmp_passwords(password);
        let bmp = match &pfx.mac_data {
            Some(mac) => verify_mac(mac, auth_safe, &passwords)?,
            None => &passwords[0],
        };
        let infos =
            Vec::<ContentInfo>::from_der(auth_safe).map_err(malformed("authenticated safe"))?;
        let mut contents = Contents::default();
        for info in infos {
            if info.content_type == ID_DATA {
                let data = info
                    .content
                    .decode_as::<OctetString>()
                    .map_err(malformed("safe contents"))?;
                read_bags(data.as_bytes(), password, bmp, &mut contents, 0)?;
            } else if info.content_type == ID_ENCRYPTED_DATA {
                let data = info
                    .content
                    .decode_as::<EncryptedData>()
                    .map_err(malformed("encrypted safe contents"))?;
                let Some(ciphertext) = &data.enc_content_info.encrypted_content else {
                    continue;
                };
                let plain = decrypt(
                    &data.enc_content_info.content_enc_alg,
                    ciphertext.as_bytes(),
                    password,
                    bmp,
                )?;
                read_bags(&plain, password, bmp, &mut contents, 0)?;
            }
            // Enveloped (public-key privacy) contents are not for us.
        }
        Ok(contents)
    }

    /// An `ENCRYPTED PRIVATE KEY` (PKCS#8 EncryptedPrivateKeyInfo) → PKCS#8 DER.
    pub(super) fn decrypt_private_key(
        der: &[u8],
        password: &str,
    ) -> Result<Zeroizing<Vec<u8>>, OpenError> {
        let info = EncryptedPrivateKeyInfo::from_der(der)
            .map_err(|e| OpenError::Unreadable(format!("malformed ({e})")))?;
        let passwords = bmp_passwords(password);
        decrypt(
            &info.encryption_algorithm,
            info.encrypted_data.as_bytes(),
            password,
            &passwords[0],
        )
    }

    fn read_bags(
        safe_contents: &[u8],
        password: &str,
        bmp: &[u8],
        contents: &mut Contents,
        depth: usize,
    ) -> Result<(), OpenError> {
        let bags = Vec::<Bag>::from_der(safe_contents).map_err(malformed("safe contents"))?;
        for bag in bags {
            match bag.id {
                pkcs12::PKCS_12_CERT_BAG_OID => {
                    let cert = bag
                        .value
                        .decode_as::<CertBag>()
                        .map_err(malformed("certificate bag"))?;
                    if cert.cert_id == pkcs12::PKCS_12_X509_CERT_OID {
                        contents.certs.push(cert.cert_value.as_bytes().to_vec());
                    }
                }
                pkcs12::PKCS_12_KEY_BAG_OID => {
                    let der = bag.value.to_der().map_err(malformed("key bag"))?;
                    contents.keys.push(Zeroizing::new(der));
                }
                pkcs12::PKCS_12_PKCS8_KEY_BAG_OID => {
                    let info = bag
                        .value
                        .decode_as::<EncryptedPrivateKeyInfo>()
                        .map_err(malformed("shrouded key bag"))?;
                    let der = decrypt(
                        &info.encryption_algorithm,
                        info.encrypted_data.as_bytes(),
                        password,
                        bmp,
                    )?;
                    contents.keys.push(der);
                }
                pkcs12::PKCS_12_SAFE_CONTENTS_BAG_OID if depth < MAX_DEPTH => {
                    let nested = bag.value.to_der().map_err(malformed("nested bag"))?;
                    read_bags(&nested, password, bmp, contents, depth + 1)?;
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// The password as PKCS#12 wants it: UTF-16BE with a NUL terminator. An
    /// empty password is also tried without the terminator, as OpenSSL does.
    fn bmp_passwords(password: &str) -> Vec<Zeroizing<Vec<u8>>> {
        let mut bmp = Zeroizing::new(Vec::with_capacity(password.len() * 2 + 2));
        for unit in password.encode_utf16() {
            bmp.extend_from_slice(&unit.to_be_bytes());
        }
        bmp.extend_from_slice(&[0, 0]);
        if password.is_empty() {
            vec![bmp, Zeroizing::new(Vec::new())]
        } else {
            vec![bmp]
        }
    }

    fn rounds(iterations: i64) -> Result<i32, OpenError> {
        match i32::try_from(iterations) {
            Ok(n) if n >= 1 && n as u32 <= MAX_ITERATIONS => Ok(n),
            _ => Err(OpenError::Unreadable(format!(
                "an iteration count of {iterations} is outside 1..={MAX_ITERATIONS}"
            ))),
        }
    }

    /// Checks the HMAC over the authenticated safe; returns the password form
    /// that verified it.
    fn verify_mac<'p>(
        mac_data: &MacData,
        data: &[u8],
        passwords: &'p [Zeroizing<Vec<u8>>],
    ) -> Result<&'p [u8], OpenError> {
        let rounds = rounds(mac_data.iterations.into())?;
        let salt = mac_data.mac_salt.as_bytes();
        let expected = mac_data.mac.digest.as_bytes();
        let oid = mac_data.mac.algorithm.oid;
        macro_rules! verifies {
            ($digest:ty, $pass:expr) => {{
                let key = Zeroizing::new(derive_key::<$digest>(
                    $pass,
                    salt,
                    Pkcs12KeyType::Mac,
                    rounds,
                    <$digest as sha2::Digest>::output_size(),
                ));
                let mut mac = <Hmac<$digest> as KeyInit>::new_from_slice(&key)
                    .map_err(|_| OpenError::Unreadable("bad MAC key".into()))?;
                mac.update(data);
                mac.verify_slice(expected).is_ok()
            }};
        }
        for pass in passwords {
            let ok = if oid == SHA1 {
                verifies!(Sha1, pass)
            } else if oid == SHA256 {
                verifies!(Sha256, pass)
            } else if oid == SHA384 {
                verifies!(Sha384, pass)
            } else if oid == SHA512 {
                verifies!(Sha512, pass)
            } else if oid == PBMAC1 {
                return Err(unsupported(
                    "PBMAC1 integrity (openssl -pbmac1_pbkdf2); export without it".into(),
                ));
            } else {
                return Err(unsupported(format!("MAC digest {oid}")));
            };
            if ok {
                return Ok(pass);
            }
        }
        Err(OpenError::WrongPassword)
    }

    enum LegacyCipher {
        TripleDes3,
        TripleDes2,
        Rc2 { key_len: usize },
    }

    /// Decrypts PBES2 or PKCS#12-PBE data. Padding errors mean a wrong password.
    fn decrypt(
        algorithm: &AlgorithmIdentifierOwned,
        ciphertext: &[u8],
        password: &str,
        bmp: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, OpenError> {
        let cipher = match algorithm.oid {
            PBES2 => return decrypt_pbes2(algorithm, ciphertext, password),
            pkcs12::PKCS_12_PBE_WITH_SHAAND3_KEY_TRIPLE_DES_CBC => LegacyCipher::TripleDes3,
            pkcs12::PKCS_12_PBE_WITH_SHAAND2_KEY_TRIPLE_DES_CBC => LegacyCipher::TripleDes2,
            pkcs12::PKCS_12_PBE_WITH_SHAAND128_BIT_RC2_CBC => LegacyCipher::Rc2 { key_len: 16 },
            pkcs12::PKCS_12_PBEWITH_SHAAND40_BIT_RC2_CBC => LegacyCipher::Rc2 { key_len: 5 },
            other => return Err(unsupported(format!("encryption algorithm {other}"))),
        };
        let params = algorithm
            .parameters
            .as_ref()
            .ok_or_else(|| OpenError::Unreadable("PBE parameters are missing".into()))?
            .decode_as::<Pkcs12PbeParams>()
            .map_err(malformed("PBE parameters"))?;
        let rounds = rounds(params.iterations.into())?;
        let salt = params.salt.as_bytes();
        let key_len = match cipher {
            LegacyCipher::TripleDes3 => 24,
            LegacyCipher::TripleDes2 => 16,
            LegacyCipher::Rc2 { key_len } => key_len,
        };
        let key = Zeroizing::new(derive_key::<Sha1>(
            bmp,
            salt,
            Pkcs12KeyType::EncryptionKey,
            rounds,
            key_len,
        ));
        let iv = derive_key::<Sha1>(bmp, salt, Pkcs12KeyType::Iv, rounds, 8);
        let mut buf = Zeroizing::new(ciphertext.to_vec());
        let bad_key = |_| OpenError::Unreadable("bad cipher key length".into());
        let plain_len = match cipher {
            LegacyCipher::TripleDes3 => cbc::Decryptor::<des::TdesEde3>::new_from_slices(&key, &iv)
                .map_err(bad_key)?
                .decrypt_padded_mut::<Pkcs7>(&mut buf)
                .map(|p| p.len()),
            LegacyCipher::TripleDes2 => cbc::Decryptor::<des::TdesEde2>::new_from_slices(&key, &iv)
                .map_err(bad_key)?
                .decrypt_padded_mut::<Pkcs7>(&mut buf)
                .map(|p| p.len()),
            LegacyCipher::Rc2 { key_len } => {
                let rc2 = rc2::Rc2::new_with_eff_key_len(&key, key_len * 8);
                cbc::Decryptor::inner_iv_slice_init(rc2, &iv)
                    .map_err(bad_key)?
                    .decrypt_padded_mut::<Pkcs7>(&mut buf)
                    .map(|p| p.len())
            }
        }
        .map_err(|_| OpenError::WrongPassword)?;
        buf.truncate(plain_len);
        Ok(buf)
    }

    fn decrypt_pbes2(
        algorithm: &AlgorithmIdentifierOwned,
        ciphertext: &[u8],
        password: &str,
    ) -> Result<Zeroizing<Vec<u8>>, OpenError> {
        let der = algorithm.to_der().map_err(malformed("PBES2 parameters"))?;
        let scheme = pkcs5::EncryptionScheme::try_from(der.as_slice())
            .map_err(|e| unsupported(format!("this PBES2 variant ({e})")))?;
        let params = scheme.pbes2().ok_or_else(|| unsupported("PBES1".into()))?;
        match params.kdf.pbkdf2() {
            Some(pbkdf2) => {
                rounds(pbkdf2.iteration_count.into())?;
            }
            None => return Err(unsupported("a KDF other than PBKDF2".into())),
        }
        // PBES2 takes the password's UTF-8 bytes, unlike the PKCS#12 KDF.
        scheme
            .decrypt(password.as_bytes(), ciphertext)
            .map(Zeroizing::new)
            .map_err(|_| OpenError::WrongPassword)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    // Fixtures made by testdata/make.sh (see testdata/README.md).
    pub(crate) const LEAF_CRT: &str = include_str!("testdata/leaf.crt.pem");
    pub(crate) const LEAF_KEY: &str = include_str!("testdata/leaf.key.pem");
    const LEAF_PKCS1_KEY: &str = include_str!("testdata/leaf.pkcs1.key.pem");
    const LEAF_ENCRYPTED_KEY: &str = include_str!("testdata/leaf.enc.key.pem");
    pub(crate) const CA_CRT: &str = include_str!("testdata/ca.crt.pem");
    const EXPIRED_CRT: &str = include_str!("testdata/expired.crt.pem");
    const FUTURE_CRT: &str = include_str!("testdata/future.crt.pem");
    const OTHER_KEY: &str = include_str!("testdata/other.key.pem");
    const EC_CRT: &str = include_str!("testdata/ec.crt.pem");
    const EC_KEY: &str = include_str!("testdata/ec.key.pem");
    const LEAF_PFX: &[u8] = include_bytes!("testdata/leaf.pfx");
    const LEAF_3DES_PFX: &[u8] = include_bytes!("testdata/leaf-3des.pfx");
    const LEAF_RC2_PFX: &[u8] = include_bytes!("testdata/leaf-rc2.pfx");
    const THUMBPRINTS: &str = include_str!("testdata/thumbprints.txt");
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

    fn der_of(pem_text: &str) -> Vec<u8> {
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
        let c =
            find_in_store(&files, &thumbprint("leaf"), Some(&Secret::new("nope")), NOW).unwrap();
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
}
