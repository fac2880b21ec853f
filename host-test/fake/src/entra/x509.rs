//! Just enough X.509 (DER) reading for the fake Entra ID: a registered
//! certificate's validity and its `SubjectPublicKeyInfo`, which the assertion
//! verifier turns into an RSA public key.
//!
//! Hand-written on purpose, like the rest of the verifier: it must not share
//! code with the client's signing path.

use crate::ids::unix_from_civil;

/// What the fake needs from a certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CertInfo<'a> {
    /// The whole `SubjectPublicKeyInfo` TLV (tag and length included).
    pub(crate) spki: &'a [u8],
    /// `notBefore`, seconds since the epoch.
    pub(crate) not_before: i64,
    /// `notAfter`, seconds since the epoch.
    pub(crate) not_after: i64,
}

const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;
/// `[0] EXPLICIT Version` in `TBSCertificate`.
const VERSION_TAG: u8 = 0xa0;

/// One DER element: its tag, its contents, the whole TLV, and what follows it.
struct Element<'a> {
    tag: u8,
    contents: &'a [u8],
    whole: &'a [u8],
    rest: &'a [u8],
}

/// Reads one definite-length DER element (single-byte tags only).
fn element(input: &[u8]) -> Option<Element<'_>> {
    let (&tag, after_tag) = input.split_first()?;
    let (&first, mut after_len) = after_tag.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let count = usize::from(first & 0x7f);
        // Indefinite lengths (0x80) are BER, not DER; 4 bytes is plenty here.
        if count == 0 || count > 4 || after_len.len() < count {
            return None;
        }
        let (bytes, rest) = after_len.split_at(count);
        after_len = rest;
        bytes.iter().fold(0usize, |n, &b| (n << 8) | usize::from(b))
    };
    if after_len.len() < len {
        return None;
    }
    let header = input.len() - after_len.len();
    let (contents, rest) = after_len.split_at(len);
    Some(Element {
        tag,
        contents,
        whole: &input[..header + len],
        rest,
    })
}

fn expect(input: &[u8], tag: u8) -> Option<Element<'_>> {
    element(input).filter(|e| e.tag == tag)
}

/// Parses a DER certificate far enough to find its validity and key.
pub(crate) fn parse(der: &[u8]) -> Option<CertInfo<'_>> {
    let certificate = expect(der, SEQUENCE)?;
    if !certificate.rest.is_empty() {
        return None;
    }
    let tbs = expect(certificate.contents, SEQUENCE)?;
    let mut fields = tbs.contents;
    if fields.first() == Some(&VERSION_TAG) {
        fields = element(fields)?.rest;
    }
    let serial = expect(fields, INTEGER)?;
    let signature = expect(serial.rest, SEQUENCE)?;
    let issuer = expect(signature.rest, SEQUENCE)?;
    let validity = expect(issuer.rest, SEQUENCE)?;
    let subject = expect(validity.rest, SEQUENCE)?;
    let spki = expect(subject.rest, SEQUENCE)?;

    let not_before = element(validity.contents)?;
    let not_after = element(not_before.rest)?;
    Some(CertInfo {
        spki: spki.whole,
        not_before: time(&not_before)?,
        not_after: time(&not_after)?,
    })
}

/// `UTCTime` (`YYMMDDHHMMSSZ`, years 1950–2049) or `GeneralizedTime`
/// (`YYYYMMDDHHMMSSZ`) → seconds since the epoch.
fn time(e: &Element<'_>) -> Option<i64> {
    let text = std::str::from_utf8(e.contents).ok()?;
    let digits = text.strip_suffix('Z')?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (year, rest) = match (e.tag, digits.len()) {
        (UTC_TIME, 12) => {
            let yy: i64 = digits[..2].parse().ok()?;
            (if yy < 50 { 2000 + yy } else { 1900 + yy }, &digits[2..])
        }
        (GENERALIZED_TIME, 14) => (digits[..4].parse().ok()?, &digits[4..]),
        _ => return None,
    };
    let field = |i: usize| rest[i..i + 2].parse::<u32>().ok();
    let (month, day) = (field(0)?, field(2)?);
    let (hour, minute, second) = (field(4)?, field(6)?, field(8)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    // A leap second (60) counts as the last second of its minute.
    unix_from_civil(year, month, day, hour, minute, second.min(59))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tlv(tag: u8, contents: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        match contents.len() {
            n if n < 0x80 => out.push(n as u8),
            n if n < 0x100 => out.extend([0x81, n as u8]),
            n => out.extend([0x82, (n >> 8) as u8, n as u8]),
        }
        out.extend_from_slice(contents);
        out
    }

    fn certificate(not_before: &[u8], not_after: &[u8], spki: &[u8]) -> Vec<u8> {
        let mut tbs = tlv(VERSION_TAG, &tlv(INTEGER, &[2]));
        tbs.extend(tlv(INTEGER, &[1]));
        tbs.extend(tlv(SEQUENCE, &[]));
        tbs.extend(tlv(SEQUENCE, &[]));
        let mut validity = not_before.to_vec();
        validity.extend_from_slice(not_after);
        tbs.extend(tlv(SEQUENCE, &validity));
        tbs.extend(tlv(SEQUENCE, &[]));
        tbs.extend_from_slice(spki);
        let mut cert = tlv(SEQUENCE, &tbs);
        cert.extend(tlv(SEQUENCE, &[]));
        cert.extend(tlv(0x03, &[0]));
        tlv(SEQUENCE, &cert)
    }

    #[test]
    fn reads_validity_and_key_of_a_hand_built_certificate() {
        let spki = tlv(SEQUENCE, &[0x05, 0x00]);
        let der = certificate(
            &tlv(UTC_TIME, b"240818193323Z"),
            &tlv(GENERALIZED_TIME, b"20290818193323Z"),
            &spki,
        );
        let info = parse(&der).unwrap();
        assert_eq!(info.spki, &spki[..]);
        assert_eq!(
            crate::ids::us_timestamp(info.not_before),
            "08/18/2024 19:33:23"
        );
        assert_eq!(
            crate::ids::us_timestamp(info.not_after),
            "08/18/2029 19:33:23"
        );
        // 1950–1999 for two-digit years.
        let old = certificate(
            &tlv(UTC_TIME, b"991231235959Z"),
            &tlv(UTC_TIME, b"000101000000Z"),
            &spki,
        );
        let info = parse(&old).unwrap();
        assert_eq!(info.not_after - info.not_before, 1);
    }

    #[test]
    fn rejects_garbage_without_panicking() {
        let spki = tlv(SEQUENCE, &[]);
        let good = certificate(
            &tlv(UTC_TIME, b"240818193323Z"),
            &tlv(UTC_TIME, b"290818193323Z"),
            &spki,
        );
        assert!(parse(&good).is_some());
        for cut in 0..good.len() {
            assert!(parse(&good[..cut]).is_none(), "truncated at {cut}");
        }
        let mut trailing = good.clone();
        trailing.push(0);
        assert!(parse(&trailing).is_none());
        let bad_time = certificate(
            &tlv(UTC_TIME, b"2408181933Z"),
            &tlv(UTC_TIME, b"290818193323Z"),
            &spki,
        );
        assert!(parse(&bad_time).is_none());
        let bad_month = certificate(
            &tlv(UTC_TIME, b"241318193323Z"),
            &tlv(UTC_TIME, b"290818193323Z"),
            &spki,
        );
        assert!(parse(&bad_month).is_none());
        assert!(parse(&[0x30, 0x80, 0, 0]).is_none());
        assert!(parse(&[0x30, 0x85, 1, 1, 1, 1, 1]).is_none());
        assert!(parse(&[]).is_none());
    }
}
