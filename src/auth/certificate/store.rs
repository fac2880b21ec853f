//! The certificate store: reads every file of a store directory (PEM, DER,
//! PKCS#12) or one PEM text, collects the certificates and keys it holds,
//! and picks the certificate by thumbprint with the private key that
//! matches it. Files that cannot be read are reported only when nothing
//! matches.

use std::fmt;

use rsa::RsaPrivateKey;
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs8::PrivateKeyInfo;
use zeroize::Zeroizing;

use super::checks::{mismatch, not_rsa};
use super::x509::{CertInfo, CertificateRef, RSA_ENCRYPTION, algorithm_name};
use super::{CertificateCredential, RsaKey, credential, pfx};
use crate::error::Error;
use crate::secret::Secret;

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
        .find(|(_, key)| &key.key.to_public_key() == public);
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
    Ok(credential(leaf, key, &found.certs))
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
    let rsa_keys: Vec<&RsaKey> = found
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
        if let Some(key) = rsa_keys.iter().find(|k| &k.key.to_public_key() == public) {
            cert.check_validity(now)?;
            return Ok(credential(cert, key, &found.certs));
        }
    }
    let first = &found.certs[0];
    first.rsa_public_key()?;
    Err(mismatch(first, NAME))
}

/// The private key of a file, parsed.
enum PrivateKey {
    Rsa(Box<RsaKey>),
    /// A key that cannot sign Entra ID assertions: its algorithm's name.
    Other(&'static str),
}

struct KeyInfo {
    key: PrivateKey,
    file: String,
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
        if CertificateRef::from_der(bytes).is_ok() {
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
    let rsa = |key, pkcs1: &[u8]| {
        PrivateKey::Rsa(Box::new(RsaKey {
            key,
            pkcs1: Zeroizing::new(pkcs1.to_vec()),
        }))
    };
    if pkcs1 {
        return RsaPrivateKey::from_pkcs1_der(der)
            .map(|k| rsa(k, der))
            .map_err(|_| "its RSA PRIVATE KEY block is not a valid PKCS#1 key".into());
    }
    let info = PrivateKeyInfo::try_from(der)
        .map_err(|_| "its PRIVATE KEY block is not a valid PKCS#8 key".to_string())?;
    if info.algorithm.oid != RSA_ENCRYPTION {
        return Ok(PrivateKey::Other(algorithm_name(&info.algorithm.oid)));
    }
    // PKCS#8 wraps the PKCS#1 key the signer takes.
    let pkcs1 = info.private_key;
    RsaPrivateKey::try_from(info)
        .map(|k| rsa(k, pkcs1))
        .map_err(|_| "its PKCS#8 RSA key is not valid".into())
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}
