//! A worker's recorder: plain HdrHistograms and counters owned by one worker thread. Recording is
//! a couple of array writes; no lock, no atomic, no allocation in the common case. Once per
//! interval the worker moves its recorder out as a snapshot and starts a fresh one.

use std::time::Duration;

use hdrhistogram::Histogram;

use super::outcomes::{Outcome, Outcomes};
use super::MetricId;

/// Why an operation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// TCP connect or HTTP/WebSocket handshake failed.
    Connect,
    /// No answer within the operation's timeout.
    Timeout,
    /// The server answered with an unexpected HTTP status.
    HttpStatus,
    /// The WebSocket closed while the user still needed it.
    WsClosed,
    /// The answer could not be understood (bad JSON, missing field, error frame).
    Protocol,
    /// The answer was understood but wrong (e.g. a check on its content failed).
    CheckFailed,
}

impl ErrorClass {
    pub const ALL: [ErrorClass; 6] = [
        ErrorClass::Connect,
        ErrorClass::Timeout,
        ErrorClass::HttpStatus,
        ErrorClass::WsClosed,
        ErrorClass::Protocol,
        ErrorClass::CheckFailed,
    ];
    pub const COUNT: usize = Self::ALL.len();

    pub fn name(self) -> &'static str {
        match self {
            ErrorClass::Connect => "connect",
            ErrorClass::Timeout => "timeout",
            ErrorClass::HttpStatus => "http_status",
            ErrorClass::WsClosed => "ws_closed",
            ErrorClass::Protocol => "protocol",
            ErrorClass::CheckFailed => "check_failed",
        }
    }
}

/// Why an attempt was tried again: the key of `retries_by_reason` in the summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RetryReason {
    /// The response had this HTTP status (429, 503, …).
    Status(u16),
    /// Connection refused or reset, or a failed handshake.
    Connect,
    /// No answer within the step's timeout.
    Timeout,
}

impl RetryReason {
    pub fn name(self) -> String {
        match self {
            RetryReason::Status(s) => s.to_string(),
            RetryReason::Connect => "connect".into(),
            RetryReason::Timeout => "timeout".into(),
        }
    }
}

/// Plain counts, summed across workers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counter {
    ArrivalsPlanned,
    ArrivalsStarted,
    /// Every dropped arrival; the three counters below split it by reason.
    ArrivalsDropped,
    /// Dropped because `max_users` users were active.
    DroppedMaxUsers,
    /// Dropped because `max_inflight` operations were in flight.
    DroppedMaxInflight,
    /// Not started before its deadline (the schedule's end, or `max_start_lag` after its intended
    /// time): the generator fell behind.
    DroppedBehindSchedule,
    /// Users who came back after leaving and started their return flow (counted in started).
    UsersReturned,
    MessagesSent,
    MessagesAcked,
    MessagesDelivered,
    MessagesDuplicated,
    /// Delivered after a later message of the same sender.
    MessagesReordered,
    ContactsExpected,
    ContactsMissing,
    /// Delivered after the message's delivery deadline (counted as lost, not delivered).
    MessagesLate,
    /// Sends to `swarm.online.*` skipped because nobody else was online.
    SendsSkipped,
    /// Bytes every user wrote and read on its HTTP connections and sockets (above TLS), named
    /// steps or not: the run's totals, of which each metric's `bytes_*` are a part.
    BytesSent,
    BytesReceived,
}

impl Counter {
    pub const COUNT: usize = 18;
}

/// Latency of one metric: from the intended start (what users feel, coordinated omission
/// corrected) and from the actual start (the service time, as an uncorrected tool would report).
#[derive(Debug, Clone)]
pub struct MetricRecord {
    pub latency: Histogram<u64>,
    pub service: Histogram<u64>,
    pub errors: [u64; ErrorClass::COUNT],
    /// The first reason seen for each error class, to show the user what went wrong.
    pub examples: [Option<Box<str>>; ErrorClass::COUNT],
    /// Attempts that failed and were tried again, by reason (a handful of reasons per run, so a
    /// short list; it allocates once per reason, not per retry). A retry is not an error.
    pub retries: Vec<(RetryReason, u64)>,
    /// Sockets opened by this `ws` step that were reopened after a drop.
    pub reconnects: u64,
    /// Requests and connects sent, retried ones included: what `retries.rate` divides by.
    pub attempts: u64,
    /// Data frames written out on the sockets this `ws` step opened, whichever step or rule
    /// sent them (plain sends included), and data frames read from them.
    pub frames_sent: u64,
    pub frames_received: u64,
    /// Bytes written and read for this metric's operations: HTTP requests and responses as
    /// the HTTP client wrote and read them (head and body), a socket's upgrade and frames with their
    /// headers. Counted above TLS.
    pub bytes_sent: u64,
    pub bytes_received: u64,
}

impl MetricRecord {
    fn new() -> Self {
        MetricRecord {
            latency: new_histogram(),
            service: new_histogram(),
            errors: [0; ErrorClass::COUNT],
            examples: Default::default(),
            retries: Vec::new(),
            reconnects: 0,
            attempts: 0,
            frames_sent: 0,
            frames_received: 0,
            bytes_sent: 0,
            bytes_received: 0,
        }
    }

    pub fn retry_count(&self) -> u64 {
        self.retries.iter().map(|(_, n)| n).sum()
    }

    fn add_retries(&mut self, reason: RetryReason, n: u64) {
        match self.retries.iter_mut().find(|(r, _)| *r == reason) {
            Some((_, count)) => *count += n,
            None => self.retries.push((reason, n)),
        }
    }

    pub fn error_count(&self) -> u64 {
        self.errors.iter().sum()
    }

    /// Successful and failed operations.
    pub fn count(&self) -> u64 {
        self.latency.len() + self.error_count()
    }

    pub fn merge(&mut self, other: &MetricRecord) {
        // Both histograms auto-resize, so adding cannot fail for range reasons.
        let _ = self.latency.add(&other.latency);
        let _ = self.service.add(&other.service);
        for (a, b) in self.errors.iter_mut().zip(other.errors) {
            *a += b;
        }
        for (a, b) in self.examples.iter_mut().zip(&other.examples) {
            if a.is_none() {
                a.clone_from(b);
            }
        }
        for (reason, n) in &other.retries {
            self.add_retries(*reason, *n);
        }
        self.reconnects += other.reconnects;
        self.attempts += other.attempts;
        self.frames_sent += other.frames_sent;
        self.frames_received += other.frames_received;
        self.bytes_sent += other.bytes_sent;
        self.bytes_received += other.bytes_received;
    }
}

/// Microseconds, 3 significant digits, growing to whatever range the run needs: memory follows
/// the largest latency seen, not the number of samples.
pub fn new_histogram() -> Histogram<u64> {
    let mut h = Histogram::new(3).unwrap_or_else(|_| unreachable!("3 significant digits is valid"));
    h.auto(true);
    h
}

/// Records into an auto-resizing histogram (growing it when a value is beyond its range, which
/// happens a few times per run, not per sample).
fn put(h: &mut Histogram<u64>, v: u64) {
    if h.record(v).is_err() {
        h.saturating_record(v);
    }
}

/// Microseconds of a duration, at least 1 (HdrHistogram's lowest trackable value).
pub fn micros(d: Duration) -> u64 {
    (d.as_micros() as u64).max(1)
}

/// Arrivals counted by when they were due, not by when their fate was decided: charts draw the
/// planned rate by intended time, and a worker that fell behind decides late.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Due {
    /// The end of the interval the arrivals' intended time lies in (intervals end on the
    /// schedule's boundaries, the same for every worker).
    pub interval_end: Duration,
    pub planned: u64,
    pub dropped: u64,
}

#[derive(Debug, Clone)]
pub struct Recorder {
    pub metrics: Vec<MetricRecord>,
    pub counters: [u64; Counter::COUNT],
    /// Counts named by the flow (`count` rules), by the catalog's counter index; grows on use.
    pub named: Vec<u64>,
    /// This interval's arrivals by the interval they were due in: one entry per such interval
    /// (arrivals come in time order, so usually one or two), taken out by the collector.
    pub due: Vec<Due>,
    /// Started users whose flow ended in this interval, by how it ended.
    pub users: Outcomes,
    /// Each check's [passed, failed] evaluations, by the catalog's check index; grows on use.
    pub checks: Vec<[u64; 2]>,
}

impl Recorder {
    /// A recorder for `metrics` metrics (the catalog's length).
    pub fn new(metrics: usize) -> Self {
        Recorder {
            metrics: (0..metrics).map(|_| MetricRecord::new()).collect(),
            counters: [0; Counter::COUNT],
            named: Vec::new(),
            due: Vec::new(),
            users: Outcomes::default(),
            checks: Vec::new(),
        }
    }

    /// An arrival due in the interval ending at `interval_end`, dropped or not.
    pub fn due(&mut self, interval_end: Duration, dropped: bool) {
        self.add_due(Due {
            interval_end,
            planned: 1,
            dropped: u64::from(dropped),
        });
    }

    fn add_due(&mut self, d: Due) {
        match self
            .due
            .iter_mut()
            .rev()
            .find(|e| e.interval_end == d.interval_end)
        {
            Some(e) => {
                e.planned += d.planned;
                e.dropped += d.dropped;
            }
            None => self.due.push(d),
        }
    }

    pub fn count(&mut self, index: usize) {
        if self.named.len() <= index {
            self.named.resize(index + 1, 0);
        }
        self.named[index] += 1;
    }

    /// `n` more of named count `index`.
    pub fn add_named(&mut self, index: usize, n: u64) {
        if self.named.len() <= index {
            self.named.resize(index + 1, 0);
        }
        self.named[index] += n;
    }

    pub fn named(&self, index: usize) -> u64 {
        self.named.get(index).copied().unwrap_or(0)
    }

    /// One evaluation of check `index` (the catalog's), passed or failed.
    pub fn check(&mut self, index: usize, passed: bool) {
        if self.checks.len() <= index {
            self.checks.resize(index + 1, [0, 0]);
        }
        self.checks[index][usize::from(!passed)] += 1;
    }

    /// Check `index`'s evaluations: [passed, failed].
    pub fn check_counts(&self, index: usize) -> [u64; 2] {
        self.checks.get(index).copied().unwrap_or([0, 0])
    }

    /// Bytes written and read for `m` (`None`: an unnamed request's), into the run's totals
    /// and, with a metric, into the metric's.
    pub fn bytes(&mut self, m: Option<MetricId>, sent: u64, received: u64) {
        self.add(Counter::BytesSent, sent);
        self.add(Counter::BytesReceived, received);
        if let Some(rec) = m.and_then(|m| self.metrics.get_mut(m.index())) {
            rec.bytes_sent += sent;
            rec.bytes_received += received;
        }
    }

    /// A successful operation that was meant to start at `intended`, started at `started` and
    /// ended at `ended` (offsets from the run's start).
    pub fn ok(&mut self, m: MetricId, intended: Duration, started: Duration, ended: Duration) {
        let rec = &mut self.metrics[m.index()];
        put(&mut rec.latency, micros(ended.saturating_sub(intended)));
        put(&mut rec.service, micros(ended.saturating_sub(started)));
    }

    /// A value with no separate service time (delivery latency, schedule lag).
    pub fn value(&mut self, m: MetricId, value: Duration) {
        let rec = &mut self.metrics[m.index()];
        let v = micros(value);
        put(&mut rec.latency, v);
        put(&mut rec.service, v);
    }

    pub fn error(&mut self, m: MetricId, class: ErrorClass) {
        self.metrics[m.index()].errors[class as usize] += 1;
    }

    /// An error with its reason; the first reason per metric and class is kept (made and
    /// allocated only then: `reason` masks the run's secrets).
    pub fn error_because<R: AsRef<str>>(
        &mut self,
        m: MetricId,
        class: ErrorClass,
        reason: impl FnOnce() -> R,
    ) {
        let rec = &mut self.metrics[m.index()];
        rec.errors[class as usize] += 1;
        let example = &mut rec.examples[class as usize];
        if example.is_none() {
            *example = Some(reason().as_ref().into());
        }
    }

    /// An attempt of `m` that failed for `reason` and is tried again (not an error).
    pub fn retry(&mut self, m: MetricId, reason: RetryReason) {
        self.metrics[m.index()].add_retries(reason, 1);
    }

    /// One request or connect of `m` sent (a retried one counts once per try).
    pub fn attempt(&mut self, m: MetricId) {
        self.metrics[m.index()].attempts += 1;
    }

    /// A data frame sent (`sent`) or received on a socket of the `ws` step `m`.
    pub fn frame(&mut self, m: MetricId, sent: bool) {
        let rec = &mut self.metrics[m.index()];
        if sent {
            rec.frames_sent += 1;
        } else {
            rec.frames_received += 1;
        }
    }

    /// A started user's flow ended with `outcome` (`step`: where a cut-off user was).
    pub fn user_ended(&mut self, outcome: Outcome, step: &str) {
        self.users.add(outcome, step);
    }

    /// A socket of `m` reopened after the server or the network dropped it.
    pub fn reconnect(&mut self, m: MetricId) {
        self.metrics[m.index()].reconnects += 1;
    }

    pub fn add(&mut self, c: Counter, n: u64) {
        self.counters[c as usize] += n;
    }

    /// An arrival that could not start, counted in the total and under its reason.
    pub fn drop_arrival(&mut self, reason: Counter, n: u64) {
        self.add(Counter::ArrivalsDropped, n);
        self.add(reason, n);
    }

    pub fn counter(&self, c: Counter) -> u64 {
        self.counters[c as usize]
    }

    pub fn metric(&self, m: MetricId) -> &MetricRecord {
        &self.metrics[m.index()]
    }

    pub fn merge(&mut self, other: &Recorder) {
        // Recorders of one run share a catalog; a longer one only adds metrics.
        if self.metrics.len() < other.metrics.len() {
            self.metrics
                .resize_with(other.metrics.len(), MetricRecord::new);
        }
        for (a, b) in self.metrics.iter_mut().zip(&other.metrics) {
            a.merge(b);
        }
        for (a, b) in self.counters.iter_mut().zip(other.counters) {
            *a += b;
        }
        if self.named.len() < other.named.len() {
            self.named.resize(other.named.len(), 0);
        }
        for (a, b) in self.named.iter_mut().zip(&other.named) {
            *a += b;
        }
        for d in &other.due {
            self.add_due(*d);
        }
        if self.checks.len() < other.checks.len() {
            self.checks.resize(other.checks.len(), [0, 0]);
        }
        for (a, b) in self.checks.iter_mut().zip(&other.checks) {
            a[0] += b[0];
            a[1] += b[1];
        }
        self.users.merge(&other.users);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corrected_latency_counts_from_the_intended_start() {
        let reg = MetricId(3);
        let mut r = Recorder::new(4);
        let ms = Duration::from_millis;
        // Meant to start at 0, started 900 ms late (a stalled generator), took 100 ms.
        r.ok(reg, ms(0), ms(900), ms(1000));
        let m = r.metric(reg);
        assert!(m.latency.equivalent(m.latency.max(), 1_000_000));
        assert!(m.service.equivalent(m.service.max(), 100_000));
        r.error(reg, ErrorClass::Timeout);
        assert_eq!(r.metric(reg).count(), 2);
        let mut total = Recorder::new(4);
        total.merge(&r);
        total.merge(&r);
        assert_eq!(total.metric(reg).count(), 4);
        assert_eq!(total.metric(reg).errors[ErrorClass::Timeout as usize], 2);
    }

    #[test]
    fn retries_are_counted_by_reason_apart_from_errors() {
        let m = MetricId(3);
        let mut r = Recorder::new(4);
        r.retry(m, RetryReason::Status(429));
        r.retry(m, RetryReason::Status(429));
        r.retry(m, RetryReason::Connect);
        r.reconnect(m);
        assert_eq!(r.metric(m).count(), 0, "a retry is not an operation");
        assert_eq!(r.metric(m).error_count(), 0, "a retry is not an error");
        let mut total = Recorder::new(4);
        total.merge(&r);
        total.merge(&r);
        let rec = total.metric(m);
        assert_eq!(rec.retry_count(), 6);
        assert!(rec.retries.contains(&(RetryReason::Status(429), 4)));
        assert!(rec.retries.contains(&(RetryReason::Connect, 2)));
        assert_eq!(rec.reconnects, 2);
    }

    #[test]
    fn checks_and_bytes_add_up_across_recorders() {
        let m = MetricId(4);
        let mut r = Recorder::new(5);
        r.check(2, true);
        r.check(2, false);
        r.check(0, true);
        r.bytes(Some(m), 100, 250);
        r.bytes(None, 10, 20);
        let mut total = Recorder::new(5);
        total.merge(&r);
        total.merge(&r);
        assert_eq!(total.check_counts(0), [2, 0]);
        assert_eq!(total.check_counts(1), [0, 0], "a check never evaluated");
        assert_eq!(total.check_counts(2), [2, 2]);
        assert_eq!(total.check_counts(9), [0, 0]);
        assert_eq!(total.metric(m).bytes_sent, 200);
        assert_eq!(total.metric(m).bytes_received, 500);
        // An unnamed request's bytes are in the totals, not in any metric.
        assert_eq!(total.counter(Counter::BytesSent), 220);
        assert_eq!(total.counter(Counter::BytesReceived), 540);
    }
}
