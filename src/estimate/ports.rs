//! The ephemeral ports a run takes from each source address towards the target: one per open
//! connection, and one per connection the generator closed within the last minute. Linux keeps a
//! connection that this side closed first in TIME_WAIT for 60 s, and while it does, its source
//! port cannot carry a new connection to the same target address — unless the kernel may reuse
//! it (`net.ipv4.tcp_tw_reuse`: by default only towards loopback). A signup flow that lets its
//! HTTP connection go once its WebSocket is up therefore holds a port per signup for a minute:
//! ~470 signups/s exhaust the 28 232 ports of one source address against a remote target, long
//! before any descriptor or CPU limit.

use super::Point;
use crate::os_limits::{TimeWait, TIME_WAIT_S};

/// The ports the run needs from its source addresses at the peak, all addresses together.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(super) struct Need {
    /// Open connections plus the ports TIME_WAIT holds, where their sum peaks.
    pub(super) ports: u64,
    /// Of those, the ports in TIME_WAIT.
    pub(super) time_wait: u64,
}

/// Whether the connections the generator closes hold their ports in TIME_WAIT: not through a
/// pool (its connections stay open), nor where the kernel reuses such ports towards this
/// target, nor off Linux (where the settings are unknown, nothing is claimed).
pub(super) fn time_wait_holds(tw: Option<TimeWait>, loopback: bool, pooled: bool) -> bool {
    !pooled && tw.is_some_and(|t| !t.reused_towards(loopback))
}

/// The ports needed at the peak: at each interval's end, its open connections plus the HTTP
/// connections closed in the [`TIME_WAIT_S`] before it (when `holds`), the latter at most the
/// host's `max_buckets` (beyond it the kernel drops TIME_WAIT sockets at once).
pub(super) fn need(timeline: &[Point], holds: bool, max_buckets: u64) -> Need {
    let mut peak = Need::default();
    let mut in_window = 0u64;
    let mut oldest = 0;
    for (i, p) in timeline.iter().enumerate() {
        in_window += p.http_closed;
        // Closes are taken at their interval's end: those of intervals that ended a full
        // TIME_WAIT ago are free again.
        while timeline[oldest].end_s <= p.end_s - TIME_WAIT_S {
            in_window -= timeline[oldest].http_closed;
            oldest += 1;
        }
        debug_assert!(oldest <= i);
        let time_wait = if holds { in_window.min(max_buckets) } else { 0 };
        let ports = p.websockets + p.http_connections + time_wait;
        if ports > peak.ports {
            peak = Need { ports, time_wait };
        }
    }
    peak
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `seconds` one-second intervals, each closing `closes` HTTP connections with `open`
    /// sockets open at its end.
    fn steady(seconds: usize, closes: u64, open: u64) -> Vec<Point> {
        (0..seconds)
            .map(|i| Point {
                start_s: i as f64,
                end_s: i as f64 + 1.0,
                websockets: open,
                http_closed: closes,
                ..Point::default()
            })
            .collect()
    }

    #[test]
    fn a_minute_of_closes_is_held() {
        // 500 closes a second for two minutes: a minute's worth (60 intervals) held at once.
        let t = steady(120, 500, 1_000);
        let n = need(&t, true, 131_072);
        assert_eq!(n.time_wait, 30_000);
        assert_eq!(n.ports, 31_000);
        // Shorter than a minute: everything closed so far.
        let n = need(&steady(10, 500, 1_000), true, 131_072);
        assert_eq!(n.time_wait, 5_000);
        // The host's bucket limit caps what is held; reuse or a pool holds nothing.
        assert_eq!(need(&t, true, 20_000).time_wait, 20_000);
        assert_eq!(
            need(&t, false, 131_072),
            Need {
                ports: 1_000,
                time_wait: 0
            }
        );
    }

    #[test]
    fn which_connections_hold_their_ports() {
        let tw = |reuse| {
            Some(TimeWait {
                reuse,
                max_buckets: 131_072,
            })
        };
        // Linux's default (2): remote targets hold, loopback ones reuse.
        assert!(time_wait_holds(tw(2), false, false));
        assert!(!time_wait_holds(tw(2), true, false));
        assert!(!time_wait_holds(tw(1), false, false));
        assert!(time_wait_holds(tw(0), true, false));
        assert!(
            !time_wait_holds(tw(0), false, true),
            "a pool keeps its connections"
        );
        assert!(
            !time_wait_holds(None, false, false),
            "unknown settings claim nothing"
        );
    }
}
