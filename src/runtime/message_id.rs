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
    push_decimal(out, sender);
    out.push('-');
    push_decimal(out, u64::from(seq));
    out.push('-');
    // In u64 arithmetic (u128 division is a library call): 584 000 years of run fit.
    push_decimal(out, u64::try_from(intended.as_micros()).unwrap_or(u64::MAX));
}

fn push_decimal(out: &mut String, mut n: u64) {
    // u64::MAX has 20 digits.
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    // ASCII digits: always UTF-8, appended at once.
    out.push_str(std::str::from_utf8(&digits[i..]).unwrap_or_default());
}

/// Reads an id back: sender, number, intended send time (`None` when it is not one of ours).
pub fn parse_message_id(id: &str) -> Option<(u64, u32, Duration)> {
    let mut parts = id.splitn(3, '-');
    let sender = parts.next()?.parse().ok()?;
    let seq = parts.next()?.parse().ok()?;
    let micros = parts.next()?.parse().ok()?;
    Some((sender, seq, Duration::from_micros(micros)))
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
            "", "42", "42-7", "a-7-1", "42-x-1", "42-7-", "42-7-1-2", "-1-2-3",
        ] {
            assert_eq!(parse_message_id(bad), None, "{bad:?}");
        }
    }
}
