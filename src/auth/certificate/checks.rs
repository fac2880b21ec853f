//! The refusals of a certificate credential: a certificate outside its
//! validity dates, a key Entra ID cannot verify (not RSA), a key that does
//! not belong to the certificate. Each message names the certificate and
//! its dates, never key material.

use rsa::RsaPublicKey;

use super::x509::CertInfo;
use crate::error::Error;

impl CertInfo {
    pub(super) fn rsa_public_key(&self) -> Result<&RsaPublicKey, Error> {
        self.public_key.as_ref().map_err(|alg| {
            not_rsa(&format!(
                "certificate {} ({}) in '{}' has an {alg} key",
                self.thumbprint, self.subject, self.file
            ))
        })
    }

    pub(super) fn check_validity(&self, now: u64) -> Result<(), Error> {
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

pub(super) fn not_rsa(what: &str) -> Error {
    Error::InvalidSettings(format!(
        "{what}: only RSA keys can sign Entra ID client assertions; create an RSA certificate (2048 bits or more)"
    ))
}

pub(super) fn mismatch(cert: &CertInfo, key_file: &str) -> Error {
    Error::InvalidSettings(format!(
        "the private key in '{key_file}' does not match certificate {} ({}): key and certificate do not belong together",
        cert.thumbprint, cert.subject
    ))
}

/// Unix seconds → `2026-11-27T10:00:00Z`.
pub(super) fn iso8601(unix: u64) -> String {
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
