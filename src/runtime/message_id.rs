//! Message ids: each carries its sender, its number and its intended send time, so the
//! recipient measures delivery on the sender's clock without shared state.

use std::time::Duration;

/// The id of message `seq` of `sender`, meant to be sent at `intended` (µs since the run
/// started).
pub fn message_id(sender: u64, seq: u32, intended: Duration) -> String {
    let mut id = String::with_capacity(32);
    write_message_id(&mut id, sender, seq, intended);
    id
}

/// Appends the id of message `seq` to `out`: every tracked message's path, so digits are
/// written by hand rather than through `format!`'s machinery (a third of a frame's rendering).
pub fn write_message_id(out: &mut String, sender: u64, seq: u32, intended: Duration) {
    out.push_str(IdText::new(sender, seq, intended).as_str());
}

/// A message id written on the stack: an awaited echo's `expect` compares the frame's id with
/// its step's own without allocating one (the id is made on every tracked message's path).
pub struct IdText {
    /// Two u64s of 20 digits at most, a u32 of 10, two dashes.
    buf: [u8; 52],
    len: usize,
}

impl IdText {
    pub fn new(sender: u64, seq: u32, intended: Duration) -> IdText {
        let mut id = IdText {
            buf: [0; 52],
            len: 0,
        };
        id.push_decimal(sender);
        id.push(b'-');
        id.push_decimal(u64::from(seq));
        id.push(b'-');
        // In u64 arithmetic (u128 division is a library call): 584 000 years of run fit.
        id.push_decimal(u64::try_from(intended.as_micros()).unwrap_or(u64::MAX));
        id
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    pub fn as_str(&self) -> &str {
        // ASCII digits and dashes: always UTF-8.
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or_default()
    }

    fn push(&mut self, b: u8) {
        self.buf[self.len] = b;
        self.len += 1;
    }

    fn push_decimal(&mut self, mut n: u64) {
        // Straight into place, two digits per division (a table of the hundred pairs), from
        // the right: u64::MAX has 20 digits.
        let end = self.len + n.checked_ilog10().unwrap_or(0) as usize + 1;
        let mut i = end;
        while n >= 100 {
            let pair = 2 * (n % 100) as usize;
            n /= 100;
            i -= 2;
            self.buf[i..i + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
        }
        if n >= 10 {
            let pair = 2 * n as usize;
            self.buf[i - 2..i].copy_from_slice(&PAIRS[pair..pair + 2]);
        } else {
            self.buf[i - 1] = b'0' + n as u8;
        }
        self.len = end;
    }
}

/// "00", "01", … "99": the decimal digits of every number below 100.
const PAIRS: &[u8; 200] = b"\
    0001020304050607080910111213141516171819\
    2021222324252627282930313233343536373839\
    4041424344454647484950515253545556575859\
    6061626364656667686970717273747576777879\
    8081828384858687888990919293949596979899";

/// Reads an id back: sender, number, intended send time (`None` when it is not one of ours).
/// Every ack's and delivery's path, so in one pass over the bytes: three decimals between two
/// dashes, each read as `str::parse::<u64>` reads one (a leading `+`, at least one digit, no
/// overflow).
pub fn parse_message_id(id: &str) -> Option<(u64, u32, Duration)> {
    let mut fields = [0u64; 2];
    let mut field = 0;
    let mut n = 0u64;
    let mut digits = 0;
    for (i, &b) in id.as_bytes().iter().enumerate() {
        match b {
            b'0'..=b'9' => {
                n = n.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
                digits += 1;
            }
            // Only where a field starts: right at the start, or after a dash.
            b'+' if digits == 0 && (i == 0 || id.as_bytes()[i - 1] == b'-') => {}
            b'-' if digits > 0 && field < fields.len() => {
                fields[field] = n;
                field += 1;
                (n, digits) = (0, 0);
            }
            _ => return None,
        }
    }
    if field < fields.len() || digits == 0 {
        return None;
    }
    let seq = u32::try_from(fields[1]).ok()?;
    Some((fields[0], seq, Duration::from_micros(n)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids_round_trip_and_reject_garbage() {
        let at = Duration::from_micros(1_234_567);
        let id = message_id(42, 7, at);
        assert_eq!(id, "42-7-1234567");
        assert_eq!(parse_message_id(&id), Some((42, 7, at)));
        assert_eq!(message_id(0, 0, Duration::ZERO), "0-0-0");
        assert_eq!(
            message_id(10, 100, Duration::from_micros(1000)),
            "10-100-1000"
        );
        let big = message_id(u64::MAX, u32::MAX, Duration::from_secs(86_400));
        assert_eq!(
            big,
            format!("{}-{}-{}", u64::MAX, u32::MAX, 86_400_000_000u64)
        );
        assert_eq!(
            parse_message_id(&big),
            Some((u64::MAX, u32::MAX, Duration::from_secs(86_400)))
        );
        for bad in [
            "",
            "42",
            "42-7",
            "a-7-1",
            "42-x-1",
            "42-7-",
            "42-7-1-2",
            "-1-2-3",
            "+-1-2",
            "1-4294967296-0",
            "18446744073709551616-1-2",
            "1- 2-3",
            "1-2-3 ",
        ] {
            assert_eq!(parse_message_id(bad), None, "{bad:?}");
        }
        // As `str::parse` reads numbers: a leading `+` and leading zeros are accepted.
        assert_eq!(
            parse_message_id("+42-007-1"),
            Some((42, 7, Duration::from_micros(1)))
        );
        assert_eq!(
            parse_message_id("1-+2-+3"),
            Some((1, 2, Duration::from_micros(3)))
        );
        assert_eq!(IdText::new(42, 7, at).as_str(), "42-7-1234567");
        // Every digit count, and every pair of digits, as `format!` writes them.
        for n in (0..=1000)
            .chain((1..=19).map(|k| 10u64.pow(k) - 1))
            .chain([u64::MAX])
        {
            let id = IdText::new(n, 0, Duration::from_micros(n));
            assert_eq!(id.as_str(), format!("{n}-0-{n}"));
        }
    }
}
