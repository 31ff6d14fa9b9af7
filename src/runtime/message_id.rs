//! Message ids: each carries its sender, its number and its intended send time, so the
//! recipient measures delivery on the sender's clock without shared state.

use std::time::Duration;

/// The id of message `seq` of `sender`, meant to be sent at `intended` (µs since the run
/// started).
pub fn message_id(sender: u64, seq: u32, intended: Duration) -> String {
    format!("{sender}-{seq}-{}", intended.as_micros())
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
        let big = message_id(u64::MAX, u32::MAX, Duration::from_secs(86_400));
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
