//! Identifiers, tokens and timestamps the fake hands out.
//!
//! The fake needs values that *look* like the real services' (GUIDs, opaque
//! tokens, `2026-11-27 10:00:00Z` timestamps) without pulling in a random-number
//! or date crate: SHA-256 over a per-process random seed and a counter gives
//! unpredictable values, SHA-256 over a label gives stable ones.

use sha2::{Digest, Sha256};
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::{SystemTime, UNIX_EPOCH};

/// A source of fresh, unpredictable identifiers (trace ids, request ids, tokens).
pub(crate) struct IdSource {
    seed: [u8; 16],
    counter: u64,
}

impl IdSource {
    pub(crate) fn new() -> Self {
        // `RandomState` is seeded from the OS on creation: good enough entropy
        // for a test double, and it keeps the dependency list short.
        let mut seed = [0u8; 16];
        for chunk in seed.chunks_mut(8) {
            let mut hasher = RandomState::new().build_hasher();
            hasher.write_u128(now_nanos());
            chunk.copy_from_slice(&hasher.finish().to_le_bytes());
        }
        IdSource { seed, counter: 0 }
    }

    fn next_block(&mut self) -> [u8; 32] {
        self.counter += 1;
        let mut hasher = Sha256::new();
        hasher.update(self.seed);
        hasher.update(self.counter.to_le_bytes());
        hasher.finalize().into()
    }

    /// A fresh random (version 4 shaped) GUID, lower case.
    pub(crate) fn guid(&mut self) -> String {
        format_guid(&self.next_block())
    }

    /// A fresh opaque access token: 86 characters of base64url, roughly the
    /// entropy and alphabet of a real one, so length limits get exercised.
    pub(crate) fn token(&mut self) -> String {
        let mut bytes = Vec::with_capacity(64);
        bytes.extend_from_slice(&self.next_block());
        bytes.extend_from_slice(&self.next_block());
        base64url(&bytes)
    }
}

/// A GUID derived from `label`: the same label always gives the same GUID.
pub(crate) fn stable_guid(label: &str) -> String {
    format_guid(&Sha256::digest(label.as_bytes()))
}

/// Formats the first 16 bytes as `xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx`.
fn format_guid(bytes: &[u8]) -> String {
    let mut b = [0u8; 16];
    b.copy_from_slice(&bytes[..16]);
    b[6] = (b[6] & 0x0f) | 0x40; // version 4
    b[8] = (b[8] & 0x3f) | 0x80; // RFC 4122 variant
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len() * 4 / 3 + 3);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | (u32::from(b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

fn now_nanos() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// Entra's timestamp format, in UTC: `2026-11-27 10:00:00Z`.
pub(crate) fn entra_timestamp(now: SystemTime) -> String {
    let secs = now
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (y, m, d, h, mi, s) = civil_time(secs as i64);
    format!("{y:04}-{m:02}-{d:02} {h:02}:{mi:02}:{s:02}Z")
}

/// ISO 8601 in UTC with seven fractional digits, the way Entra prints times
/// inside error descriptions: `2024-04-05T23:01:54.2089203Z`.
pub(crate) fn iso_timestamp(unix_secs: i64, subsec_nanos: u32) -> String {
    let (y, m, d, h, mi, s) = civil_time(unix_secs);
    format!(
        "{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{:07}Z",
        subsec_nanos / 100
    )
}

/// `MM/DD/YYYY HH:MM:SS` in UTC, the way Entra prints a key's validity.
pub(crate) fn us_timestamp(unix_secs: i64) -> String {
    let (y, m, d, h, mi, s) = civil_time(unix_secs);
    format!("{m:02}/{d:02}/{y:04} {h:02}:{mi:02}:{s:02}")
}

/// Seconds since the epoch → (year, month, day, hour, minute, second), UTC
/// (the `time` crate's calendar: the fake shares no date code with the
/// client it checks).
fn civil_time(unix_secs: i64) -> (i64, u32, u32, i64, i64, i64) {
    let t = time::OffsetDateTime::from_unix_timestamp(unix_secs)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let (h, mi, s) = t.to_hms();
    let month = u8::from(t.month());
    (
        i64::from(t.year()),
        u32::from(month),
        u32::from(t.day()),
        i64::from(h),
        i64::from(mi),
        i64::from(s),
    )
}

/// A UTC calendar time → Unix seconds; none for a date that does not exist.
pub(crate) fn unix_from_civil(y: i64, m: u32, d: u32, h: u32, mi: u32, s: u32) -> Option<i64> {
    let month = time::Month::try_from(u8::try_from(m).ok()?).ok()?;
    let date = time::Date::from_calendar_date(i32::try_from(y).ok()?, month, u8::try_from(d).ok()?)
        .ok()?;
    let clock = time::Time::from_hms(
        u8::try_from(h).ok()?,
        u8::try_from(mi).ok()?,
        u8::try_from(s).ok()?,
    )
    .ok()?;
    Some(
        time::PrimitiveDateTime::new(date, clock)
            .assume_utc()
            .unix_timestamp(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn guids_are_well_formed_and_fresh() {
        let mut ids = IdSource::new();
        let (a, b) = (ids.guid(), ids.guid());
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
        assert_eq!(stable_guid("x"), stable_guid("x"));
        assert_ne!(stable_guid("x"), stable_guid("y"));
    }

    #[test]
    fn tokens_are_base64url_and_fresh() {
        let mut ids = IdSource::new();
        let t = ids.token();
        assert_eq!(t.len(), 86);
        assert!(
            t.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
        assert_ne!(t, ids.token());
        assert_eq!(base64url(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64url(b"fo"), "Zm8");
    }

    #[test]
    fn timestamps_use_entra_format_in_utc() {
        let t = UNIX_EPOCH + Duration::from_secs(1_795_773_600); // 2026-11-27 10:00:00Z
        assert_eq!(entra_timestamp(t), "2026-11-27 10:00:00Z");
        assert_eq!(entra_timestamp(UNIX_EPOCH), "1970-01-01 00:00:00Z");
    }

    #[test]
    fn iso_and_us_timestamps_and_the_day_count_round_trip() {
        assert_eq!(
            iso_timestamp(1_795_773_600, 208_920_399),
            "2026-11-27T10:00:00.2089203Z"
        );
        assert_eq!(iso_timestamp(0, 0), "1970-01-01T00:00:00.0000000Z");
        assert_eq!(us_timestamp(1_795_773_600 + 61), "11/27/2026 10:01:01");
        assert_eq!(us_timestamp(-1), "12/31/1969 23:59:59");
        assert_eq!(unix_from_civil(2000, 3, 1, 0, 0, 0), Some(11_017 * 86_400));
        assert_eq!(
            unix_from_civil(2026, 11, 27, 10, 1, 1),
            Some(1_795_773_600 + 61)
        );
        assert_eq!(unix_from_civil(2026, 2, 30, 0, 0, 0), None, "no such day");
    }
}
