//! What is measured and how it is recorded: per-worker recorders (plain histograms, no locks),
//! snapshots sent once per interval, and the collector that merges them.

pub mod collector;
pub mod hlog;
pub mod outcomes;
pub mod recorder;
pub mod stat;
pub mod timeline;

pub use recorder::{Counter, ErrorClass, Recorder};

/// The names of the message metrics (`MetricId::MESSAGE_ACK`, `MetricId::MESSAGE_DELIVERY`): every
/// run has them, but only flows that send tracked messages fill them.
pub const MESSAGE_METRICS: [&str; 2] = ["message_ack", "message_delivery"];

/// A metric's index in the run's [`Catalog`]: one histogram and one hlog tag each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MetricId(pub u16);

impl MetricId {
    /// Actual minus intended start of every timer-driven operation: how far the generator lagged.
    pub const SCHEDULE_LAG: MetricId = MetricId(0);
    /// A chat message's send → ack from the target.
    pub const MESSAGE_ACK: MetricId = MetricId(1);
    /// A chat message's send → receipt by its recipient, on the generator's one clock.
    pub const MESSAGE_DELIVERY: MetricId = MetricId(2);
    /// How late each worker's periodic probe tick ran: how long ready work (a response, a
    /// frame) waited for the generator's event loop.
    pub const LOOP_LAG: MetricId = MetricId(3);
    /// Where the flow's own step metrics start.
    pub const FIRST_STEP: u16 = 4;

    pub fn index(self) -> usize {
        self.0 as usize
    }

    /// The generator's measurements of itself (schedule lag, loop lag): one value per sample,
    /// no service time, not an operation.
    pub fn is_generator(self) -> bool {
        self == MetricId::SCHEDULE_LAG || self == MetricId::LOOP_LAG
    }
}

/// Every TLS handshake's time, from the TCP connection being up to the session being
/// established (also part of the latency of the step that opened the connection).
pub const TLS_HANDSHAKE: &str = "tls_handshake";
/// How many of those handshakes resumed an earlier session of the same user.
pub const TLS_RESUMED: &str = "tls_resumed";

/// With `[run] connections = { pool = N }`: the connections the pool opened, and of them those
/// that replaced an idle one the server had closed.
pub const HTTP_POOL_OPENED: &str = "http_pool_opened";
pub const HTTP_POOL_REPLACED: &str = "http_pool_replaced";

/// The names of every metric of a run, fixed when the plan is compiled: the four built-in
/// ones, then one per named step in flow order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Catalog {
    names: Vec<String>,
    /// Named counts (frames counted by a flow's `count` rules), by index.
    counters: Vec<String>,
    /// The flows' checks (`expect` conditions), by index: `<step> <condition>`.
    checks: Vec<String>,
}

impl Catalog {
    pub fn new<I: IntoIterator<Item = S>, S: Into<String>>(steps: I) -> Catalog {
        let mut names: Vec<String> = [
            "schedule_lag",
            MESSAGE_METRICS[0],
            MESSAGE_METRICS[1],
            "loop_lag",
        ]
        .into_iter()
        .map(String::from)
        .collect();
        for s in steps {
            let s = s.into();
            if !names.contains(&s) {
                names.push(s);
            }
        }
        Catalog {
            names,
            counters: Vec::new(),
            checks: Vec::new(),
        }
    }

    /// The same catalog with the flows' checks, named `<step> <condition>`.
    pub fn with_checks(mut self, checks: Vec<String>) -> Catalog {
        self.checks = checks;
        self
    }

    pub fn checks(&self) -> &[String] {
        &self.checks
    }

    /// The same catalog with named counters.
    pub fn with_counters(mut self, counters: Vec<String>) -> Catalog {
        self.counters = counters;
        self
    }

    /// The same catalog with the TLS figures of a run whose target speaks TLS: the
    /// `tls_handshake` metric after the steps, and the `tls_resumed` count.
    pub fn with_tls(mut self) -> Catalog {
        if !self.names.iter().any(|n| n == TLS_HANDSHAKE) {
            self.names.push(TLS_HANDSHAKE.to_string());
        }
        if !self.counters.iter().any(|n| n == TLS_RESUMED) {
            self.counters.push(TLS_RESUMED.to_string());
        }
        self
    }

    /// The same catalog with the counts of a run that pools its HTTP connections.
    pub fn with_pool(mut self) -> Catalog {
        for name in [HTTP_POOL_OPENED, HTTP_POOL_REPLACED] {
            if !self.counters.iter().any(|n| n == name) {
                self.counters.push(name.to_string());
            }
        }
        self
    }

    /// Where the pool's connections opened and replaced are counted, when the run pools them.
    pub fn pool(&self) -> Option<(usize, usize)> {
        let at = |name| self.counters.iter().position(|n| n == name);
        Some((at(HTTP_POOL_OPENED)?, at(HTTP_POOL_REPLACED)?))
    }

    /// Where TLS handshakes are recorded (the metric, and the counter of resumed ones), when
    /// the run speaks TLS.
    pub fn tls(&self) -> Option<(MetricId, usize)> {
        let counter = self.counters.iter().position(|n| n == TLS_RESUMED)?;
        Some((self.id(TLS_HANDSHAKE)?, counter))
    }

    pub fn counters(&self) -> &[String] {
        &self.counters
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    pub fn name(&self, id: MetricId) -> &str {
        self.names.get(id.index()).map_or("", String::as_str)
    }

    pub fn id(&self, name: &str) -> Option<MetricId> {
        self.names
            .iter()
            .position(|n| n == name)
            .map(|i| MetricId(i as u16))
    }

    /// Every metric with its name, schedule lag and loop lag included.
    pub fn all(&self) -> impl Iterator<Item = (MetricId, &str)> {
        self.names
            .iter()
            .enumerate()
            .map(|(i, n)| (MetricId(i as u16), n.as_str()))
    }

    /// The metrics a summary reports, in reading order: the flow's steps, then the message
    /// metrics (schedule lag is reported under arrivals, loop lag under the generator).
    pub fn reported(&self) -> impl Iterator<Item = (MetricId, &str)> {
        let steps = self.all().skip(MetricId::FIRST_STEP as usize);
        let messages = self.all().skip(1).take(2);
        steps.chain(messages)
    }
}

/// The messages a run's end left undelivered, counted by the swarm's registry at the end.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Undelivered {
    /// Sent to a recipient that stayed online, never received, their delivery deadline passed.
    /// (Those received after their deadline are counted apart, as `Counter::MessagesLate`.)
    pub lost: u64,
    /// Sent to a recipient that went offline before the end (held by the target), or still
    /// within their delivery deadline when the run ended.
    pub pending: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_orders_steps_before_message_metrics() {
        let c = Catalog::new(["register", "verify", "register"]);
        assert_eq!(c.len(), 6);
        assert_eq!(c.id("verify"), Some(MetricId(5)));
        assert_eq!(c.id("loop_lag"), Some(MetricId::LOOP_LAG));
        assert_eq!(c.name(MetricId::MESSAGE_DELIVERY), "message_delivery");
        let reported: Vec<&str> = c.reported().map(|(_, n)| n).collect();
        assert_eq!(
            reported,
            ["register", "verify", "message_ack", "message_delivery"]
        );
    }
}
