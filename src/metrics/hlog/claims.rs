//! What a histogram's encoding claims about itself, checked before HdrHistogram builds it. The
//! deserializer allocates the counts its header's range and precision call for (5 significant
//! digits up to 2^62 is 49 MB from a line of a hundred bytes) and a payload buffer of the length
//! the header states, so a damaged or hostile log could exhaust memory before any check on the
//! histogram itself. inrush writes 3 significant digits (`recorder::new_histogram`), values in
//! microseconds; [`check`] refuses a header beyond that, keeping each histogram the reader holds
//! to at most [`MAX_COUNTS_BYTES`].

use std::io::Read;

/// HdrHistogram's V2 encoding, plain and deflated (`serialization` in hdrhistogram).
const V2_COOKIE: u32 = 0x1c84_9303 | 0x10;
const V2_COMPRESSED_COOKIE: u32 = 0x1c84_9304 | 0x10;
/// The V2 header: cookie, payload length, normalizing offset, digits (u32 each), lowest and
/// highest trackable value (u64), integer-to-double ratio (f64).
const HEADER: usize = 40;

/// The precision inrush records with.
pub const MAX_DIGITS: u32 = 3;
/// 2^42 µs is 51 days: no latency of a run reaches it.
pub const MAX_HIGH: u64 = 1 << 42;
/// The counts of a 3-digit histogram up to 2^42: 1024 per power of two past 2^11 (33 of
/// them) and the first bucket's 2048, 8 bytes each.
pub const MAX_COUNTS_BYTES: usize = (33 * 1024 + 1024) * 8;
/// A count is at most a 9-byte varint.
const MAX_PAYLOAD: u32 = (MAX_COUNTS_BYTES / 8 * 9) as u32;

/// Refuses, in words, a histogram encoding whose header claims more than inrush writes. An
/// encoding too short or malformed to say is left to the deserializer, which then fails before
/// allocating anything large.
pub fn check(raw: &[u8]) -> Result<(), String> {
    let Some(cookie) = raw.get(..4) else {
        return Ok(());
    };
    let mut header = [0u8; HEADER];
    let header = match u32::from_be_bytes([cookie[0], cookie[1], cookie[2], cookie[3]]) {
        V2_COOKIE => match raw.get(..HEADER) {
            Some(h) => h,
            None => return Ok(()),
        },
        V2_COMPRESSED_COOKIE => {
            let deflated = raw.get(8..).unwrap_or_default();
            let mut inflate = flate2::read::ZlibDecoder::new(deflated);
            if inflate.read_exact(&mut header).is_err() {
                return Ok(());
            }
            &header[..]
        }
        _ => return Ok(()),
    };
    let u32_at =
        |i: usize| u32::from_be_bytes([header[i], header[i + 1], header[i + 2], header[i + 3]]);
    let u64_at = |i: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&header[i..i + 8]);
        u64::from_be_bytes(b)
    };
    let (payload, digits, low, high) = (u32_at(4), u32_at(12), u64_at(16), u64_at(24));
    if digits > MAX_DIGITS {
        return Err(format!(
            "claims {digits} significant digits where inrush writes {MAX_DIGITS}"
        ));
    }
    if low == 0 || low > high {
        return Err(format!("claims the impossible value range {low}..{high}"));
    }
    if high > MAX_HIGH {
        return Err(format!(
            "claims values up to {high} µs, beyond any run's ({MAX_HIGH} µs is 51 days)"
        ));
    }
    if payload > MAX_PAYLOAD {
        return Err(format!(
            "claims {payload} bytes of counts where its range holds at most {MAX_PAYLOAD}"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use hdrhistogram::serialization::{Serializer, V2DeflateSerializer, V2Serializer};
    use hdrhistogram::Histogram;

    fn encoded(digits: u8, high: u64, deflate: bool) -> Vec<u8> {
        let mut h = Histogram::<u64>::new_with_bounds(1, high, digits).expect("histogram");
        h.record(7).expect("record");
        let mut out = Vec::new();
        if deflate {
            V2DeflateSerializer::new()
                .serialize(&h, &mut out)
                .expect("serialize");
        } else {
            V2Serializer::new()
                .serialize(&h, &mut out)
                .expect("serialize");
        }
        out
    }

    #[test]
    fn inrush_s_own_shape_passes() {
        let mut h = crate::metrics::recorder::new_histogram();
        h.record(3_600_000_000).expect("an hour in µs");
        let mut out = Vec::new();
        V2DeflateSerializer::new()
            .serialize(&h, &mut out)
            .expect("serialize");
        assert_eq!(check(&out), Ok(()));
        assert_eq!(check(&encoded(3, MAX_HIGH, true)), Ok(()));
        // The counts of the largest range allowed fit the bound the module states.
        let h = Histogram::<u64>::new_with_bounds(1, MAX_HIGH, 3).expect("histogram");
        assert!(
            h.distinct_values() * 8 <= MAX_COUNTS_BYTES,
            "{}",
            h.distinct_values()
        );
    }

    #[test]
    fn claims_beyond_inrush_s_are_refused_in_both_encodings() {
        for deflate in [true, false] {
            let digits = check(&encoded(5, 1 << 20, deflate)).expect_err("5 digits");
            assert!(digits.contains("5 significant digits"), "{digits}");
            let high = check(&encoded(2, 1 << 62, deflate)).expect_err("2^62");
            assert!(high.contains("values up to"), "{high}");
        }
    }

    #[test]
    fn a_payload_length_beyond_the_range_is_refused() {
        let mut raw = encoded(3, 1 << 20, false);
        raw[4..8].copy_from_slice(&u32::MAX.to_be_bytes());
        let e = check(&raw).expect_err("4 GB payload");
        assert!(e.contains("bytes of counts"), "{e}");
    }
}
