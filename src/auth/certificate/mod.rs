//! The certificate credential: a certificate and its RSA private key, found
//! among the files of a certificate store (PEM, DER, PKCS#12) or in PEM text,
//! and checked to belong together and to be valid now.
//!
//! Pure: the files' bytes, the password and `now` are passed in. Messages name
//! files and thumbprints, never key material or the password.
//!
//! One concept per module: `store` reads a store's files and picks the
//! certificate by thumbprint (or the one PEM text holds); `pfx` opens PKCS#12
//! files and encrypted PKCS#8 keys; `x509` reads one certificate; `checks`
//! holds the refusals (validity dates, key algorithm, key match).

mod checks;
mod pfx;
mod store;
mod x509;

use std::fmt;

use rsa::RsaPrivateKey;
use zeroize::Zeroizing;

use crate::error::Error;
use checks::iso8601;
pub use store::{find_in_store, from_pem};
use x509::CertInfo;

/// Issuers followed when building the chain sent as `x5c`.
const MAX_CHAIN_LEN: usize = 8;

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

/// The certificate of a key the host holds (Azure Key Vault, an HSM): what
/// the assertion's header needs, and no key. Built by [`from_host`].
#[derive(Clone, Debug)]
pub struct HostCertificate {
    /// The id the host's signer knows the key by.
    pub key_id: String,
    /// SHA-1 of the leaf's DER, upper-case hex.
    pub thumbprint: String,
    /// Leaf first, then the chain the host returned (for `x5c`).
    pub chain: Vec<Vec<u8>>,
    /// The length of every signature of the key: its modulus, in bytes
    /// (RSA signatures are exactly that long).
    pub signature_len: usize,
}

impl HostCertificate {
    /// The leaf certificate, DER.
    pub fn der(&self) -> &[u8] {
        &self.chain[0]
    }
}

/// Reads the certificate the host's signer returned for `key_id` (DER, leaf
/// first): an RSA certificate valid at `now`, or a settings error naming it.
pub fn from_host(key_id: &str, chain: Vec<Vec<u8>>, now: u64) -> Result<HostCertificate, Error> {
    let label = format!("the host's certificate for {key_id}");
    let Some(leaf) = chain.first() else {
        return Err(Error::InvalidSettings(format!("{label} is empty")));
    };
    let info = CertInfo::parse(leaf.clone(), &label).map_err(Error::InvalidSettings)?;
    let signature_len = rsa::traits::PublicKeyParts::size(info.rsa_public_key()?);
    info.check_validity(now)?;
    let mut chain = chain;
    chain.truncate(MAX_CHAIN_LEN);
    Ok(HostCertificate {
        key_id: key_id.to_string(),
        thumbprint: info.thumbprint,
        chain,
        signature_len,
    })
}

/// An RSA private key and the PKCS#1 DER it was read from (the signer takes
/// DER: keeping it spares linking a PKCS#1 encoder).
struct RsaKey {
    key: RsaPrivateKey,
    pkcs1: Zeroizing<Vec<u8>>,
}

fn credential(leaf: &CertInfo, key: &RsaKey, pool: &[CertInfo]) -> CertificateCredential {
    CertificateCredential {
        thumbprint: leaf.thumbprint.clone(),
        der: leaf.der.clone(),
        chain: chain(leaf, pool),
        subject: leaf.subject.clone(),
        not_before: leaf.not_before,
        not_after: leaf.not_after,
        key: key.pkcs1.clone(),
    }
}

/// Leaf first, then each issuer found in `pool` (same file first), up to a
/// self-signed certificate or one whose issuer is absent.
fn chain(leaf: &CertInfo, pool: &[CertInfo]) -> Vec<Vec<u8>> {
    let mut chain = vec![leaf.der.clone()];
    let mut current = leaf;
    while current.issuer_name != current.subject_name && chain.len() < MAX_CHAIN_LEN {
        let is_issuer =
            |c: &&CertInfo| c.subject_name == current.issuer_name && !chain.contains(&c.der);
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

#[cfg(test)]
pub(crate) mod tests;
