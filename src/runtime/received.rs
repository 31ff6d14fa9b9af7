//! Which messages a user has received, per sender, in memory that does not grow with the number
//! of messages: senders number their messages 0, 1, 2, …, so everything below the first gap is
//! one integer and only messages that arrived ahead of a gap are kept individually.

use std::collections::{BTreeSet, HashMap};

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
        if seq == w.base {
            w.base += 1;
            while w.ahead.remove(&w.base) {
                w.base += 1;
            }
        } else {
            w.ahead.insert(seq);
        }
        Arrival::New { reordered }
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
