//! Which messages a user has received, per sender, in memory that does not grow with the number
//! of messages: senders number their messages 0, 1, 2, …, so everything below the first gap is
//! one integer and only messages that arrived ahead of a gap are kept individually — at most
//! [`AHEAD_AT_MOST`] numbers past the gap. A sender's messages to other users leave gaps here
//! that never fill; a gap that far behind the sender's latest message is given up (its numbers
//! count as received), so a message overtaken by more than that many later ones of its sender
//! is taken for a duplicate when it arrives at last: it cannot be told from one.

use std::collections::{BTreeSet, HashMap};

/// How far past a sender's first gap its received numbers are kept one by one: at most this
/// many per sender (16 KiB of a set at worst), however many messages it sends.
pub const AHEAD_AT_MOST: u32 = 1024;

#[derive(Debug, Default)]
struct Window {
    /// Every sequence number below this has been received.
    base: u32,
    /// Received sequence numbers above `base` (there is a gap before them).
    ahead: BTreeSet<u32>,
    /// The highest sequence number received.
    max: Option<u32>,
}

/// What a newly received message was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// First receipt; `reordered` when a later message of the same sender came first.
    New {
        reordered: bool,
    },
    Duplicate,
}

#[derive(Debug, Default)]
pub struct Received {
    /// Made on the first message: a user that receives none (an idle connected one) carries a
    /// pointer rather than a map's room, in its task and in what it keeps while away.
    senders: Option<Box<Senders>>,
}

#[derive(Debug, Default)]
struct Senders(HashMap<u64, Window>);

impl Received {
    pub fn record(&mut self, sender: u64, seq: u32) -> Arrival {
        let w = self
            .senders
            .get_or_insert_default()
            .0
            .entry(sender)
            .or_default();
        if seq < w.base || w.ahead.contains(&seq) {
            return Arrival::Duplicate;
        }
        let reordered = w.max.is_some_and(|m| seq < m);
        w.max = Some(w.max.map_or(seq, |m| m.max(seq)));
        if seq - w.base > AHEAD_AT_MOST {
            // The gaps this far behind are given up: the window moves up to `seq`.
            w.base = seq - AHEAD_AT_MOST;
            w.ahead = w.ahead.split_off(&w.base);
            while w.ahead.remove(&w.base) {
                w.base = w.base.saturating_add(1);
            }
        }
        if seq == w.base {
            w.base = w.base.saturating_add(1);
            while w.ahead.remove(&w.base) {
                w.base = w.base.saturating_add(1);
            }
        } else {
            w.ahead.insert(seq);
        }
        Arrival::New { reordered }
    }
}

#[cfg(test)]
impl Received {
    /// Whether nothing was received.
    pub fn is_empty(&self) -> bool {
        self.senders.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Received {
        fn window(&self, sender: u64) -> &Window {
            &self.senders.as_ref().expect("a message was received").0[&sender]
        }
    }

    #[test]
    fn in_order_messages_keep_no_per_message_state() {
        let mut r = Received::default();
        for seq in 0..10_000 {
            assert_eq!(r.record(7, seq), Arrival::New { reordered: false });
        }
        let w = r.window(7);
        assert_eq!((w.base, w.ahead.len()), (10_000, 0));
        assert_eq!(r.record(7, 42), Arrival::Duplicate);
    }

    #[test]
    fn what_arrived_past_a_gap_is_kept_within_a_bound() {
        let mut r = Received::default();
        // Every other number (the others went to other users), far past the bound.
        for seq in (0..100_000).step_by(2) {
            assert_eq!(r.record(3, seq), Arrival::New { reordered: false });
        }
        let w = r.window(3);
        assert!(w.ahead.len() <= AHEAD_AT_MOST as usize, "{}", w.ahead.len());
        // The window starts at the first gap within the bound (an even number was received).
        assert_eq!(w.base, 99_998 - AHEAD_AT_MOST + 1);
        // Within the window, a late message is new, then a duplicate.
        assert_eq!(r.record(3, 99_997), Arrival::New { reordered: true });
        assert_eq!(r.record(3, 99_997), Arrival::Duplicate);
        // Behind it, it cannot be told from a duplicate.
        assert_eq!(r.record(3, 1), Arrival::Duplicate);
        // A number far ahead moves the window at once, and nothing is lost from what is kept.
        assert_eq!(r.record(3, u32::MAX), Arrival::New { reordered: false });
        let w = r.window(3);
        assert_eq!((w.base, w.ahead.len()), (u32::MAX - AHEAD_AT_MOST, 1));
        assert_eq!(r.record(3, u32::MAX), Arrival::Duplicate);
    }

    #[test]
    fn gaps_duplicates_and_reordering() {
        let mut r = Received::default();
        assert_eq!(r.record(1, 0), Arrival::New { reordered: false });
        assert_eq!(r.record(1, 2), Arrival::New { reordered: false });
        assert_eq!(r.record(1, 2), Arrival::Duplicate);
        assert_eq!(r.record(1, 1), Arrival::New { reordered: true });
        assert_eq!(r.window(1).base, 3);
        assert!(r.window(1).ahead.is_empty());
        assert_eq!(r.record(2, 0), Arrival::New { reordered: false });
    }
}
