//! One X.509 certificate, read from DER: what choosing it (thumbprint,
//! public key), checking it (validity) and chaining it (subject, issuer) need.

use der::asn1::{AnyRef, BitStringRef, IntRef, ObjectIdentifier, SequenceRef};
use der::{Decode, Reader, Sequence, Tag, TagNumber, Tagged};
use rsa::RsaPublicKey;
use rsa::pkcs8::SubjectPublicKeyInfoRef;
use sha1::{Digest, Sha1};
use x509_cert::time::Validity;

pub(super) const RSA_ENCRYPTION: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");

/// RFC 5280 `Certificate`, decoded only as far as the client reads it: the
/// fields it does not use are checked for their ASN.1 type and skipped.
/// (x509-cert's `Certificate` decodes and copies every field and extension:
/// ~40 KB more in the component; the derive's optional fields ~5 KB.) The
/// names are kept as they are, never re-encoded: an encoder would be linked
/// for that alone.
pub(super) struct CertificateRef<'a> {
    issuer: AnyRef<'a>,
    validity: Validity,
    subject: AnyRef<'a>,
    subject_public_key_info: SubjectPublicKeyInfoRef<'a>,
}

impl<'a> Decode<'a> for CertificateRef<'a> {
    fn decode<R: Reader<'a>>(reader: &mut R) -> der::Result<Self> {
        // Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue }
        reader.sequence(|certificate| {
            let tbs = certificate.sequence(read_tbs_certificate)?;
            certificate.decode::<SequenceRef<'a>>()?;
            certificate.decode::<BitStringRef<'a>>()?;
            Ok(tbs)
        })
    }
}

/// The contents of a `TBSCertificate`.
fn read_tbs_certificate<'a, R: Reader<'a>>(tbs: &mut R) -> der::Result<CertificateRef<'a>> {
    let context = |number, constructed| Tag::ContextSpecific {
        constructed,
        number: TagNumber::new(number),
    };
    // version [0] EXPLICIT INTEGER DEFAULT v1
    if tbs.peek_tag()? == context(0, true) {
        IntRef::from_der(tbs.decode::<AnyRef<'a>>()?.value())?;
    }
    tbs.decode::<IntRef<'a>>()?; // serialNumber
    tbs.decode::<SequenceRef<'a>>()?; // signature AlgorithmIdentifier
    let certificate = CertificateRef {
        issuer: tbs.decode()?,
        validity: tbs.decode()?,
        subject: tbs.decode()?,
        subject_public_key_info: tbs.decode()?,
    };
    // issuerUniqueID [1] IMPLICIT, subjectUniqueID [2] IMPLICIT, extensions
    // [3] EXPLICIT: each optional, at most once, in this order.
    let mut next = 1;
    while !tbs.is_finished() {
        let tag = tbs.decode::<AnyRef<'a>>()?.tag();
        match (next..=3).find(|&n| tag == context(n, n == 3)) {
            Some(n) => next = n + 1,
            None => return Err(tag.unexpected_error(None)),
        }
    }
    Ok(certificate)
}

pub(super) struct CertInfo {
    pub(super) der: Vec<u8>,
    pub(super) thumbprint: String,
    /// The subject and issuer names (the DER of the `Name` SEQUENCE's
    /// contents), to follow the chain.
    pub(super) subject_name: Vec<u8>,
    pub(super) issuer_name: Vec<u8>,
    pub(super) subject: String,
    pub(super) not_before: u64,
    pub(super) not_after: u64,
    /// The RSA public key, or the name of the certificate's key algorithm.
    pub(super) public_key: Result<RsaPublicKey, &'static str>,
    pub(super) file: String,
}

impl CertInfo {
    pub(super) fn parse(der: Vec<u8>, file: &str) -> Result<CertInfo, String> {
        let invalid =
            |e: der::Error| format!("'{file}' holds a certificate that is not valid X.509 ({e})");
        let cert = CertificateRef::from_der(&der).map_err(invalid)?;
        let spki = &cert.subject_public_key_info;
        let public_key = if spki.algorithm.oid == RSA_ENCRYPTION {
            Ok(RsaPublicKey::try_from(spki.clone())
                .map_err(|e| format!("'{file}': unreadable RSA public key ({e})"))?)
        } else {
            Err(algorithm_name(&spki.algorithm.oid))
        };
        let subject = name_contents(cert.subject).map_err(invalid)?;
        let issuer = name_contents(cert.issuer).map_err(invalid)?;
        Ok(CertInfo {
            thumbprint: thumbprint_of(&der),
            subject: name_text(subject).map_err(invalid)?,
            subject_name: subject.to_vec(),
            issuer_name: issuer.to_vec(),
            not_before: cert.validity.not_before.to_unix_duration().as_secs(),
            not_after: cert.validity.not_after.to_unix_duration().as_secs(),
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

/// The contents of a `Name`, which is a SEQUENCE.
fn name_contents(name: AnyRef<'_>) -> der::Result<&[u8]> {
    name.tag().assert_eq(Tag::Sequence)?;
    Ok(name.value())
}

/// `AttributeTypeAndValue`, its value kept as it is (a string of some type).
#[derive(Sequence)]
struct AttributeRef<'a> {
    oid: ObjectIdentifier,
    value: AnyRef<'a>,
}

/// A distinguished name (the contents of its `Name` SEQUENCE) for messages,
/// RFC 4514 style (`CN=app,O=Contoso`). Written here because x509-cert's
/// `Display` pulls in const-oid's whole OID-name database (~100 KiB of the
/// component), and its `Name` type in a decoder of its own (~8 KB).
fn name_text(name: &[u8]) -> der::Result<String> {
    use der::SliceReader;
    // Name ::= SEQUENCE OF RelativeDistinguishedName (a SET OF attributes).
    let mut reader = SliceReader::new(name)?;
    let mut rdns = Vec::new();
    while !reader.is_finished() {
        rdns.push(reader.decode::<AnyRef<'_>>()?);
    }
    let mut parts = Vec::new();
    for rdn in rdns.iter().rev() {
        rdn.tag().assert_eq(Tag::Set)?;
        let mut attributes = SliceReader::new(rdn.value())?;
        while !attributes.is_finished() {
            let atv: AttributeRef<'_> = attributes.decode()?;
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
    Ok(parts.join(","))
}

/// SHA-1 of the DER, upper-case hex.
fn thumbprint_of(der: &[u8]) -> String {
    Sha1::digest(der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut out = vec![tag, u8::try_from(content.len()).unwrap()];
        out.extend_from_slice(content);
        out
    }

    fn attribute(oid: &[u8], tag: u8, value: &[u8]) -> Vec<u8> {
        tlv(0x30, &[tlv(0x06, oid), tlv(tag, value)].concat())
    }

    const CN: &[u8] = &[0x55, 4, 3];
    const O: &[u8] = &[0x55, 4, 10];
    const C: &[u8] = &[0x55, 4, 6];
    const UNKNOWN: &[u8] = &[0x55, 4, 99];
    const UTF8: u8 = 0x0c;
    const PRINTABLE: u8 = 0x13;
    const BMP: u8 = 0x1e;

    #[test]
    fn names_read_most_specific_first_with_known_keys_and_bmp_strings() {
        let rdn = |attributes: &[Vec<u8>]| tlv(0x31, &attributes.concat());
        let cases: [(Vec<Vec<u8>>, &str); 4] = [
            (
                vec![
                    rdn(&[attribute(C, PRINTABLE, b"US")]),
                    rdn(&[attribute(O, UTF8, b"Contoso")]),
                    rdn(&[attribute(CN, UTF8, b"app")]),
                ],
                "CN=app,O=Contoso,C=US",
            ),
            (vec![rdn(&[attribute(CN, BMP, &[0, 0xe9])])], "CN=\u{e9}"),
            (vec![rdn(&[attribute(UNKNOWN, UTF8, b"x")])], "2.5.4.99=x"),
            (
                vec![rdn(&[attribute(O, UTF8, b"a"), attribute(CN, UTF8, b"b")])],
                "O=a,CN=b",
            ),
        ];
        for (rdns, expected) in cases {
            assert_eq!(name_text(&rdns.concat()).unwrap(), expected);
        }
    }

    /// A certificate whose TBSCertificate has `version` (if any), then the
    /// required fields, then `tail`.
    fn certificate(version: &[u8], tail: &[u8]) -> Vec<u8> {
        let time = tlv(0x17, b"250101000000Z");
        let rsa = tlv(
            0x30,
            &[
                tlv(0x06, &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 1, 1, 1]),
                tlv(0x05, &[]),
            ]
            .concat(),
        );
        let tbs = [
            version,
            &tlv(0x02, &[1]),
            &tlv(0x30, &[]),
            &tlv(0x30, &[]),
            &tlv(0x30, &[time.clone(), time].concat()),
            &tlv(0x30, &[]),
            &tlv(0x30, &[rsa, tlv(0x03, &[0])].concat()),
            tail,
        ]
        .concat();
        tlv(
            0x30,
            &[tlv(0x30, &tbs), tlv(0x30, &[]), tlv(0x03, &[0])].concat(),
        )
    }

    #[test]
    fn a_tbs_certificate_has_an_optional_version_and_unique_ids_then_extensions_in_order() {
        let version = tlv(0xa0, &tlv(0x02, &[2]));
        let (id1, id2, extensions) = (tlv(0x81, &[0]), tlv(0x82, &[0]), tlv(0xa3, &tlv(0x30, &[])));
        for (version, tail) in [
            (vec![], vec![]),
            (version.clone(), vec![]),
            (version.clone(), extensions.clone()),
            (version.clone(), [id1.clone(), extensions.clone()].concat()),
            (
                version.clone(),
                [id1.clone(), id2.clone(), extensions.clone()].concat(),
            ),
        ] {
            let der = certificate(&version, &tail);
            assert!(CertificateRef::from_der(&der).is_ok(), "{der:02x?}");
        }
        for (version, tail) in [
            (tlv(0xa0, &tlv(0x04, &[2])), vec![]),
            (version.clone(), [extensions.clone(), id1.clone()].concat()),
            (version.clone(), [id1.clone(), id1.clone()].concat()),
            (version.clone(), tlv(0xa1, &tlv(0x03, &[0]))),
            (version.clone(), tlv(0x83, &[0])),
            (version.clone(), tlv(0x04, &[0])),
        ] {
            let der = certificate(&version, &tail);
            assert!(CertificateRef::from_der(&der).is_err(), "{der:02x?}");
        }
    }

    #[test]
    fn malformed_names_are_errors() {
        let atv = attribute(CN, UTF8, b"app");
        let not_a_set = tlv(0x30, &atv);
        let not_an_attribute = tlv(0x31, &tlv(0x0c, b"app"));
        let mut truncated = tlv(0x31, &atv);
        truncated.pop();
        for name in [not_a_set, not_an_attribute, truncated] {
            assert!(name_text(&name).is_err(), "{name:02x?}");
        }
    }
}
