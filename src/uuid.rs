//! Version-4 UUIDs from caller-supplied random bits (the core has no randomness).

/// Formats 128 random bits as a version-4, variant-1 UUID.
pub fn v4(high: u64, low: u64) -> String {
    let high = (high & !0xF000) | 0x4000; // version 4 in bits 12..16 of time_hi
    let low = (low & !(0b11 << 62)) | (0b10 << 62); // RFC 4122 variant
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        high >> 32,
        (high >> 16) & 0xFFFF,
        high & 0xFFFF,
        low >> 48,
        low & 0xFFFF_FFFF_FFFF
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn v4_uuids_have_the_version_and_variant_bits() {
        let id = super::v4(u64::MAX, u64::MAX);
        assert_eq!(id, "ffffffff-ffff-4fff-bfff-ffffffffffff");
        let id = super::v4(0, 0);
        assert_eq!(id, "00000000-0000-4000-8000-000000000000");
        assert_eq!(id.len(), 36);
    }
}
