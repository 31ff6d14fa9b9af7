//! The run's summary: plain data, built once at the end from the collector's totals, written as
//! `summary.json` (schema `inrush.summary/1`, documented in the README) and printed as a table.

use crate::compiled::threshold::Unit;
use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

pub use super::checks::Checks;
pub use super::measurement::Measurement;
pub use super::shards::{ShardRun, Start};
pub use super::warnings::warnings;
pub use super::worker_cpu::{WorkerCpu, SATURATED_SHARE, WORKER_BUSY};
use crate::metrics::recorder::MetricRecord;
pub use crate::metrics::stat::Stat;
use crate::metrics::{Catalog, Counter, ErrorClass, MetricId, Recorder};

pub const SCHEMA: &str = "inrush.summary/1";

/// Schedule lag p99 above which the summary warns that the generator fell behind.
pub const LAG_WARN_MS: f64 = 5.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Passed,
    Failed,
    Interrupted,
    /// The generator's own numbers are compromised (`Measurement::compromised_by`): the run
    /// cannot say whether the target passed.
    Inconclusive,
}

impl Verdict {
    /// As summary.json spells it.
    pub fn word(self) -> &'static str {
        match self {
            Verdict::Passed => "passed",
            Verdict::Failed => "failed",
            Verdict::Interrupted => "interrupted",
            Verdict::Inconclusive => "inconclusive",
        }
    }
}

/// Milliseconds. `null` in JSON when there was no successful sample.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    pub min: f64,
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    /// Absent from summaries written before it was added (read back as 0).
    #[serde(default)]
    pub p95: f64,
    pub p99: f64,
    pub p999: f64,
    #[serde(default)]
    pub p9999: f64,
    pub max: f64,
}

impl Latency {
    pub fn get(&self, stat: Stat) -> f64 {
        match stat {
            Stat::Min => self.min,
            Stat::Mean => self.mean,
            Stat::P50 => self.p50,
            Stat::P90 => self.p90,
            Stat::P95 => self.p95,
            Stat::P99 => self.p99,
            Stat::P999 => self.p999,
            Stat::P9999 => self.p9999,
            Stat::Max => self.max,
        }
    }

    pub fn of(h: &Histogram<u64>) -> Option<Latency> {
        Latency::of_with_mean(h).0
    }

    /// [`Latency::of`] and the histogram's unrounded mean in microseconds (0 when empty): the
    /// mean walks every bucket, so a caller that needs it too gets it from the same walk.
    pub fn of_with_mean(h: &Histogram<u64>) -> (Option<Latency>, f64) {
        if h.is_empty() {
            return (None, 0.0);
        }
        let mean = h.mean();
        (Latency::with_mean(h, mean), mean)
    }

    fn with_mean(h: &Histogram<u64>, mean: f64) -> Option<Latency> {
        // Microsecond histograms shown in milliseconds with microsecond precision.
        let ms = |us: f64| (us).round() / 1000.0;
        Some(Latency {
            min: ms(h.min() as f64),
            mean: ms(mean),
            p50: ms(h.value_at_quantile(0.5) as f64),
            p90: ms(h.value_at_quantile(0.9) as f64),
            p95: ms(h.value_at_quantile(0.95) as f64),
            p99: ms(h.value_at_quantile(0.99) as f64),
            p999: ms(h.value_at_quantile(0.999) as f64),
            p9999: ms(h.value_at_quantile(0.9999) as f64),
            max: ms(h.max() as f64),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricSummary {
    /// Operations completed, successful and failed: `errors` are included.
    pub count: u64,
    pub errors: u64,
    pub errors_by_class: BTreeMap<String, u64>,
    /// The first reason seen for each error class, e.g. "expected HTTP 202, got 503".
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub error_examples: BTreeMap<String, String>,
    /// Completed operations (`count`) per second of load: the load phases' time, the drain
    /// after the last phase left out (its completions count, its seconds do not).
    pub rate_per_s: f64,
    /// From the intended start (coordinated omission corrected): what users felt.
    pub latency_ms: Option<Latency>,
    /// From the actual start: the service time alone, as an uncorrected tool reports it. With
    /// retries, the final attempt alone.
    pub service_time_ms: Option<Latency>,
    /// Attempts that failed and were tried again (`[run] retry`); not errors, not in `count`.
    #[serde(default)]
    pub retries: u64,
    /// The same by reason: an HTTP status (`"429"`), `"connect"` or `"timeout"`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub retries_by_reason: BTreeMap<String, u64>,
    /// Sockets of this `ws` step reopened after a drop (`reconnect`).
    #[serde(default)]
    pub reconnects: u64,
    /// Requests or connects sent for this step, retried ones included (0 for other metrics).
    #[serde(default)]
    pub attempts: u64,
    /// For a `ws` step: data frames written out on its sockets, by whichever step or rule
    /// (plain sends included), and data frames read from them (0 for other metrics).
    #[serde(default)]
    pub frames_sent: u64,
    #[serde(default)]
    pub frames_received: u64,
    /// Bytes written and read for this metric (see `Summary::bytes_sent`).
    #[serde(default)]
    pub bytes_sent: u64,
    #[serde(default)]
    pub bytes_received: u64,
}

impl MetricSummary {
    pub fn of(rec: &MetricRecord, seconds: f64) -> MetricSummary {
        let (latency, service) = (Latency::of(&rec.latency), Latency::of(&rec.service));
        MetricSummary::with_latency(rec, seconds, latency, service)
    }

    /// [`MetricSummary::of`] with the latency statistics already computed.
    fn with_latency(
        rec: &MetricRecord,
        seconds: f64,
        latency: Option<Latency>,
        service: Option<Latency>,
    ) -> MetricSummary {
        let errors_by_class = ErrorClass::ALL
            .iter()
            .filter(|c| rec.errors[**c as usize] > 0)
            .map(|c| (c.name().to_string(), rec.errors[*c as usize]))
            .collect();
        let error_examples = ErrorClass::ALL
            .iter()
            .filter_map(|c| {
                let example = rec.examples[*c as usize].as_deref()?;
                Some((c.name().to_string(), example.to_string()))
            })
            .collect();
        MetricSummary {
            count: rec.count(),
            errors: rec.error_count(),
            errors_by_class,
            error_examples,
            rate_per_s: rate(rec.count(), seconds),
            latency_ms: latency,
            service_time_ms: service,
            retries: rec.retry_count(),
            retries_by_reason: rec
                .retries
                .iter()
                .map(|(reason, n)| (reason.name(), *n))
                .collect(),
            reconnects: rec.reconnects,
            attempts: rec.attempts,
            frames_sent: rec.frames_sent,
            frames_received: rec.frames_received,
            bytes_sent: rec.bytes_sent,
            bytes_received: rec.bytes_received,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Messages {
    /// Tracked messages sent (a send using `msg.id`; over HTTP once the target accepted it).
    pub sent: u64,
    pub acked: u64,
    /// Received by their recipient within their delivery deadline.
    pub delivered: u64,
    /// Undelivered at the end, for a recipient who went offline before it (held by the
    /// target), or still within their delivery deadline.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pending: Option<u64>,
    /// Not delivered within their deadline (the end of the drain by default) to a recipient
    /// who stayed online; `late` ones included.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lost: Option<u64>,
    /// Received after their delivery deadline: counted in `lost`, their latency in
    /// `delivery_latency_ms`.
    #[serde(default)]
    pub late: u64,
    /// Sends to `swarm.online.*` skipped because nobody else was online (not sent, not a
    /// success, not an error).
    #[serde(default)]
    pub skipped: u64,
    pub duplicated: u64,
    /// Delivered after a later message from the same sender.
    #[serde(default)]
    pub reordered: u64,
    pub delivery_latency_ms: Option<Latency>,
}

impl Messages {
    /// Whether the run tracked any message: reports show the messages line only then.
    pub fn measured(&self) -> bool {
        self.sent + self.acked + self.delivered + self.duplicated + self.late + self.skipped > 0
            || self.lost.unwrap_or(0) + self.pending.unwrap_or(0) > 0
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Arrivals {
    /// Arrivals that were due: each ends in exactly one of started or dropped (by reason).
    pub planned: u64,
    /// Began their flow before their deadline: their first operation was issued.
    pub started: u64,
    /// Could not start: a cap refused them, or their deadline passed first (`dropped_by`).
    pub dropped: u64,
    /// `dropped` split by reason.
    #[serde(default)]
    pub dropped_by: DroppedBy,
    /// Users who came back after leaving (each return is also a planned and started arrival).
    #[serde(default)]
    pub returned: u64,
    /// How the started users' flows ended (`metrics::outcomes`): `started = completed + failed
    /// + cut_off` over the run and per region; a phase counts the users that ended in it.
    #[serde(default)]
    pub completed: u64,
    /// Ended by a failed operation.
    #[serde(default)]
    pub failed: u64,
    /// Still mid-flow when the run stopped them (the schedule's end, the drain's, an interrupt).
    #[serde(default)]
    pub cut_off: u64,
    /// `cut_off` by the step the users were in: its name, or `<flow> step <n> (<kind>)`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub cut_off_in: BTreeMap<String, u64>,
    pub schedule_lag_ms: Option<Latency>,
}

/// Why arrivals were dropped; the three add up to `dropped`. `behind_schedule`: not started before
/// the schedule's end or `[run] max_start_lag` after their intended time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DroppedBy {
    pub max_users: u64,
    pub max_inflight: u64,
    pub behind_schedule: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Contacts {
    /// Registered phones uploaded, each of which discovery should have found.
    pub expected: u64,
    /// Of those, how many discovery did not return.
    pub missing: u64,
}

impl Contacts {
    /// Whether any contact upload was checked: reports show the contacts line only then.
    pub fn measured(&self) -> bool {
        self.expected + self.missing > 0
    }
}

/// Run-wide retries (`[run] retry`) and reconnects (`reconnect`), summed over the metrics.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Retries {
    pub total: u64,
    pub by_reason: BTreeMap<String, u64>,
    pub reconnects: u64,
}

impl Retries {
    pub fn of(metrics: &IndexMap<String, MetricSummary>) -> Retries {
        let mut r = Retries::default();
        for m in metrics.values() {
            r.total += m.retries;
            r.reconnects += m.reconnects;
            for (reason, n) in &m.retries_by_reason {
                *r.by_reason.entry(reason.clone()).or_default() += n;
            }
        }
        r
    }

    /// `429: 10, connect: 2` (`none` without retries), for the text reports.
    pub fn by_reason_text(&self) -> String {
        if self.by_reason.is_empty() {
            return "none".into();
        }
        let parts: Vec<String> = self
            .by_reason
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect();
        parts.join(", ")
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Phase {
    pub start_s: f64,
    pub end_s: f64,
    pub metrics: IndexMap<String, MetricSummary>,
    pub messages: Messages,
    pub contacts: Contacts,
    pub arrivals: Arrivals,
}

/// One region's users and what they saw: the same shapes as a phase, plus the region's
/// definition and how many users it had.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Region {
    pub share: f64,
    /// The added one-way delay (mean of the draws).
    pub latency_ms: f64,
    /// Each draw is uniform within latency ± jitter.
    pub jitter_ms: f64,
    /// Users of this region who started.
    pub users: u64,
    pub metrics: IndexMap<String, MetricSummary>,
    pub messages: Messages,
    pub contacts: Contacts,
    pub arrivals: Arrivals,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Generator {
    pub workers: usize,
    /// CPU time of the whole inrush process (user + system).
    pub cpu_seconds: f64,
    pub peak_rss_mb: f64,
    /// True when the built-in target ran inside the same process (its CPU is included above).
    pub target_in_process: bool,
    pub host: crate::resource_usage::Host,
    /// The busiest worker thread's CPU share per interval (0 to 1), over the run's intervals.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker_cpu_max: Option<WorkerCpu>,
    /// How late the workers' loop-lag probe ticks ran (`swarm::loop_lag`): the time ready work,
    /// responses included, waited for the generator. Over the whole run, all workers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loop_lag_ms: Option<Latency>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThresholdResult {
    pub expr: String,
    /// In `unit`: milliseconds, a count, per second, or a fraction (0..=1).
    pub observed: Option<f64>,
    /// What `observed` is counted in (`ms`, `count`, `per_second`, `fraction`).
    #[serde(default)]
    pub unit: Unit,
    pub passed: bool,
}

impl ThresholdResult {
    /// The observed value with its unit (`2.569 ms`, `0.5666 %`), or "nothing observed".
    pub fn observed_text(&self) -> String {
        self.observed
            .map_or("nothing observed".into(), |v| self.unit.format(v))
    }

    /// "observed 2.569 ms", or "nothing observed": a threshold's line says what it saw.
    pub fn observed_phrase(&self) -> String {
        match self.observed {
            Some(_) => format!("observed {}", self.observed_text()),
            None => self.observed_text(),
        }
    }
}

/// How the run spoke TLS to an `https://` target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsSummary {
    /// Whether server certificates were verified (`false` under `insecure = true`).
    pub verified: bool,
    /// Whether users presented a client certificate (mutual TLS).
    pub client_certificate: bool,
    /// Handshakes completed (the `tls_handshake` metric's count) and how many of them resumed
    /// the user's earlier session.
    pub handshakes: u64,
    pub resumed: u64,
}

/// The warning of a run that did not verify certificates (printed at its start, kept in its
/// report).
pub const UNVERIFIED_TLS: &str = "TLS certificates were NOT verified (`insecure = true`): the \
     target's identity is unchecked, so these results may not come from the service you meant";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub schema: String,
    pub scenario: String,
    pub description: String,
    pub seed: u64,
    pub target: String,
    /// Present when the target was `https://`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsSummary>,
    pub inrush_version: String,
    /// What the command line changed in the scenario's load profile (`--time-scale`,
    /// `--duration`, `--rate-scale`), in words; absent when it ran as written.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub overrides: Vec<String>,
    pub started_at: String,
    /// The run as measured: its load phases, then the drain.
    pub duration_s: f64,
    /// Of `duration_s`, the drain after the last phase (not in any rate's seconds).
    #[serde(default)]
    pub drain_s: f64,
    pub verdict: Verdict,
    /// Why the run stopped early, when an `abort_on_fail` threshold stopped it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aborted: Option<String>,
    pub metrics: IndexMap<String, MetricSummary>,
    pub messages: Messages,
    pub contacts: Contacts,
    pub arrivals: Arrivals,
    /// Frames counted by the flows' `count` rules, by name.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub counts: IndexMap<String, u64>,
    /// The flows' `expect` conditions, passed and failed (whole run only).
    #[serde(default, skip_serializing_if = "Checks::is_empty")]
    pub checks: Checks,
    /// Bytes the users wrote and read over HTTP and WebSocket, every request included (named
    /// or not), counted above TLS: the metrics' `bytes_*` add up to at most these.
    #[serde(default)]
    pub bytes_sent: u64,
    #[serde(default)]
    pub bytes_received: u64,
    /// The most connections open at an interval's end: all, WebSockets, HTTP (each its own
    /// peak, as `inrush plan` reports them).
    #[serde(default)]
    pub peak_connections: crate::metrics::timeline::PeakConnections,
    /// Retries and reconnects across every metric.
    #[serde(default)]
    pub retries: Retries,
    pub phases: IndexMap<String, Phase>,
    /// Per region, when the scenario declares regions.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub regions: IndexMap<String, Region>,
    pub thresholds: Vec<ThresholdResult>,
    /// Whether the generator kept up (`[run] overload`); decides `inconclusive`.
    #[serde(default)]
    pub measurement: Measurement,
    pub generator: Generator,
    pub warnings: Vec<String>,
    /// Which shard of the scenario ran (`--shard i/N`; `0/1`: the whole of it). A merged run
    /// has the count and index 0, and its shards in `shards`.
    #[serde(default)]
    pub shard: crate::compiled::shard::Shard,
    /// The scenario's identity for `inrush merge`: its file's text and the scales.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub scenario_fingerprint: String,
    /// When the schedule's time zero was on the wall clock, and `--start-at`'s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<Start>,
    /// A merged run's shards: each one's start, offset and generator (`inrush merge`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shards: Vec<ShardRun>,
}

fn rate(count: u64, seconds: f64) -> f64 {
    if seconds > 0.0 {
        (count as f64 / seconds * 1000.0).round() / 1000.0
    } else {
        0.0
    }
}

/// Every timed operation (schedule lag is reported under `arrivals`).
pub fn metrics_of(
    r: &Recorder,
    catalog: &Catalog,
    seconds: f64,
) -> IndexMap<String, MetricSummary> {
    metrics_with(
        r,
        catalog,
        seconds,
        |m| Latency::of(&r.metric(m).latency),
        |m| Latency::of(&r.metric(m).service),
    )
}

/// [`metrics_of`] with each metric's latency and service-time statistics from `latency` and
/// `service` (a live display's: computed once per interval for every output that shows them, or
/// left out).
pub fn metrics_with(
    r: &Recorder,
    catalog: &Catalog,
    seconds: f64,
    latency: impl Fn(MetricId) -> Option<Latency>,
    service: impl Fn(MetricId) -> Option<Latency>,
) -> IndexMap<String, MetricSummary> {
    catalog
        .reported()
        .map(|(m, name)| {
            let rec = r.metric(m);
            let summary = MetricSummary::with_latency(rec, seconds, latency(m), service(m));
            (name.to_string(), summary)
        })
        .collect()
}

pub use crate::metrics::Undelivered;

pub fn messages_of(r: &Recorder, delivery: Option<Undelivered>) -> Messages {
    let latency = Latency::of(&r.metric(MetricId::MESSAGE_DELIVERY).latency);
    messages_with(r, delivery, latency)
}

/// [`messages_of`] with the delivery latency statistics already computed.
pub fn messages_with(
    r: &Recorder,
    delivery: Option<Undelivered>,
    delivery_latency_ms: Option<Latency>,
) -> Messages {
    Messages {
        sent: r.counter(Counter::MessagesSent),
        acked: r.counter(Counter::MessagesAcked),
        delivered: r.counter(Counter::MessagesDelivered),
        pending: delivery.map(|d| d.pending),
        lost: delivery.map(|d| d.lost + r.counter(Counter::MessagesLate)),
        late: r.counter(Counter::MessagesLate),
        skipped: r.counter(Counter::SendsSkipped),
        duplicated: r.counter(Counter::MessagesDuplicated),
        reordered: r.counter(Counter::MessagesReordered),
        delivery_latency_ms,
    }
}

pub fn arrivals_of(r: &Recorder) -> Arrivals {
    Arrivals {
        planned: r.counter(Counter::ArrivalsPlanned),
        started: r.counter(Counter::ArrivalsStarted),
        dropped: r.counter(Counter::ArrivalsDropped),
        dropped_by: DroppedBy {
            max_users: r.counter(Counter::DroppedMaxUsers),
            max_inflight: r.counter(Counter::DroppedMaxInflight),
            behind_schedule: r.counter(Counter::DroppedBehindSchedule),
        },
        returned: r.counter(Counter::UsersReturned),
        completed: r.users.completed,
        failed: r.users.failed,
        cut_off: r.users.cut_off,
        cut_off_in: r
            .users
            .cut_off_in
            .iter()
            .map(|(step, n)| (step.to_string(), *n))
            .collect(),
        schedule_lag_ms: Latency::of(&r.metric(MetricId::SCHEDULE_LAG).latency),
    }
}

pub fn counts_of(r: &Recorder, catalog: &Catalog) -> IndexMap<String, u64> {
    catalog
        .counters()
        .iter()
        .enumerate()
        .map(|(i, name)| (name.clone(), r.named(i)))
        .collect()
}

pub fn contacts_of(r: &Recorder) -> Contacts {
    Contacts {
        expected: r.counter(Counter::ContactsExpected),
        missing: r.counter(Counter::ContactsMissing),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::timeline::{IntervalPoint, Timeline};

    fn timeline(shares: &[f64]) -> Timeline {
        Timeline {
            points: shares
                .iter()
                .enumerate()
                .map(|(i, &s)| IntervalPoint {
                    start_s: i as f64,
                    end_s: i as f64 + 1.0,
                    worker_cpu_max: s,
                    ..IntervalPoint::default()
                })
                .collect(),
            phases: Vec::new(),
        }
    }

    #[test]
    fn a_saturated_worker_is_the_generators_problem() {
        // 20 intervals, 2 of them over 90 %: a tenth of the run, saturated.
        let mut shares = vec![0.3; 18];
        shares.extend([0.95, 0.99]);
        let cpu = WorkerCpu::of(&timeline(&shares)).expect("intervals");
        assert_eq!((cpu.saturated_intervals, cpu.intervals), (2, 20));
        assert_eq!(cpu.max, 0.99);
        assert_eq!(cpu.p90, 0.3);
        assert!(cpu.saturated());
        // One busy second in twenty is not.
        shares[18] = 0.5;
        assert!(!WorkerCpu::of(&timeline(&shares))
            .expect("intervals")
            .saturated());
        assert!(WorkerCpu::of(&timeline(&[])).is_none());
    }
}
