//! One X.509 certificate, read from DER: what choosing it (thumbprint,
//! public key), checking it (validity) and chaining it (subject, issuer) need.

use der::Encode;
use der::asn1::ObjectIdentifier;
use rsa::RsaPublicKey;
use rsa::pkcs8::DecodePublicKey;
use sha1::{Digest, Sha1};
use x509_cert::Certificate;

pub(super) const RSA_ENCRYPTION: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");

pub(super) struct CertInfo {
    pub(super) der: Vec<u8>,
    pub(super) thumbprint: String,
    /// DER of the subject and issuer names, to follow the chain.
    pub(super) subject_der: Vec<u8>,
    pub(super) issuer_der: Vec<u8>,
    pub(super) subject: String,
    pub(super) not_before: u64,
    pub(super) not_after: u64,
    /// The RSA public key, or the name of the certificate's key algorithm.
    pub(super) public_key: Result<RsaPublicKey, &'static str>,
    pub(super) file: String,
}

impl CertInfo {
    pub(super) fn parse(der: Vec<u8>, file: &str) -> Result<CertInfo, String> {
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
}

pub(super) fn algorithm_name(oid: &ObjectIdentifier) -> &'static str {
    match oid.to_string().as_str() {
        "1.2.840.10045.2.1" => "EC",
        "1.3.101.112" => "Ed25519",
        "1.3.101.113" => "Ed448",
        "1.2.840.113549.1.1.10" => "RSA-PSS-only",
        "1.2.840.10040.4.1" => "DSA",
        _ => "unknown-algorithm",
    }
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
