//! What the dry run adds up per interval of the run: the walked users' gauges (users online,
//! connections open) as difference arrays, and their events (requests, messages, arrivals,
//! drops) as counts.

use super::walk::{Conn, Sink};

/// Adds walked users up per interval: difference arrays for gauges, counts for events.
pub(super) struct PerInterval {
    /// End of each interval (seconds); gauges are sampled there.
    pub(super) ends: Vec<f64>,
    pub(super) users: Vec<i64>,
    pub(super) websockets: Vec<i64>,
    pub(super) http: Vec<i64>,
    /// HTTP connections the generator closes per interval (by close time): each holds its
    /// source port in TIME_WAIT afterwards (`estimate::ports`).
    pub(super) http_closes: Vec<u64>,
    pub(super) requests: Vec<u64>,
    pub(super) messages: Vec<u64>,
    /// Time spent in timed operations per interval (seconds), for `max_inflight`.
    pub(super) busy: Vec<f64>,
    pub(super) arrivals: Vec<u64>,
    pub(super) returns: Vec<u64>,
    pub(super) dropped: Vec<u64>,
}

impl PerInterval {
    pub(super) fn new(ends: Vec<f64>) -> Self {
        let n = ends.len() + 1;
        PerInterval {
            ends,
            users: vec![0; n],
            websockets: vec![0; n],
            http: vec![0; n],
            http_closes: vec![0; n],
            requests: vec![0; n],
            messages: vec![0; n],
            busy: vec![0.0; n],
            arrivals: vec![0; n],
            returns: vec![0; n],
            dropped: vec![0; n],
        }
    }

    /// The interval an event at `t` falls in (the last one for anything later).
    pub(super) fn slot(&self, t: f64) -> usize {
        self.ends
            .partition_point(|&e| e <= t)
            .min(self.ends.len().saturating_sub(1))
    }

    /// Something alive over [from, to) counts at every interval end inside it.
    fn span(v: &mut [i64], ends: &[f64], from: f64, to: f64) {
        let lo = ends.partition_point(|&e| e < from);
        let hi = ends.partition_point(|&e| e < to);
        if lo < hi {
            v[lo] += 1;
            v[hi] -= 1;
        }
    }
}

impl Sink for PerInterval {
    fn user(&mut self, start: f64, end: f64) {
        PerInterval::span(&mut self.users, &self.ends, start, end);
    }
    fn connection(&mut self, kind: Conn, open: f64, close: f64) {
        let v = match kind {
            Conn::Http => {
                // The user lets its connection go (or the run's end does): the generator's side
                // closes first. A WebSocket is not counted: after the close handshake the
                // server closes the TCP connection first (RFC 6455 §7.1.1), so its TIME_WAIT
                // is the server's.
                let i = self.slot(close);
                self.http_closes[i] += 1;
                &mut self.http
            }
            Conn::WebSocket => &mut self.websockets,
        };
        PerInterval::span(v, &self.ends, open, close);
    }
    fn request(&mut self, at: f64) {
        let i = self.slot(at);
        self.requests[i] += 1;
    }
    fn message(&mut self, at: f64) {
        let i = self.slot(at);
        self.messages[i] += 1;
    }
    fn operation(&mut self, from: f64, to: f64) {
        // Attributed to the interval it starts in: operations are short against an interval.
        let i = self.slot(from);
        self.busy[i] += (to - from).max(0.0);
    }
}
