//! Live outputs: consumers of each merged interval while the run goes on (the hlog writer, the
//! progress display, `--stream`'s JSON lines, `--metrics`' Prometheus endpoint, `--dashboard`'s
//! web page). The run loop hands every
//! interval to each registered [`IntervalSink`] and knows nothing else about them.
//!
//! Adding one: a new file here with a type implementing [`IntervalSink`], its `mod` line below,
//! and one line where `run` builds its list of sinks (`run::live_sinks`).

pub mod dashboard;
pub mod hlog;
pub mod progress;
pub mod prometheus;
pub mod stream;

use std::cell::RefCell;
use std::collections::HashMap;

use hdrhistogram::Histogram;

use crate::error::Error;
use crate::metrics::collector::Interval;
use crate::metrics::{Catalog, MetricId, Recorder};
use crate::report::summary::{Latency, ThresholdResult};

/// What a sink sees of one interval: plain data, no access to the run's machinery.
pub struct IntervalView<'a> {
    /// The interval merged across every worker.
    pub interval: &'a Interval,
    /// Every interval merged so far, this one included.
    pub totals: &'a Recorder,
    /// The names of the metrics the recorders hold.
    pub catalog: &'a Catalog,
    /// The phase the interval lies in, or "drain" once the schedule is over.
    pub phase: &'a str,
    /// The run's thresholds evaluated against the run so far, when a sink asked for them
    /// ([`IntervalSink::wants_thresholds`]) and the run has any; empty otherwise.
    pub thresholds: &'a [ThresholdResult],
    /// The interval's and the run's latency statistics, each computed once for every sink
    /// that reads them (a mean walks the whole histogram).
    pub latency: &'a LatencyCache,
}

impl IntervalView<'_> {
    /// The interval's latency statistics of metric `m` (`None`: no sample).
    pub fn interval_latency(&self, m: MetricId) -> Option<Latency> {
        self.latency
            .interval(m, || &self.interval.recorder.metric(m).latency)
    }

    /// The run's latency statistics of metric `m` so far, and the sum of its samples in seconds
    /// (HdrHistogram's mean × count, for a Prometheus `_sum`).
    pub fn total_latency(&self, m: MetricId) -> (Option<Latency>, f64) {
        self.latency.total(m, || &self.totals.metric(m).latency)
    }
}

/// Latency statistics of one interval, computed on first use and shared by the sinks.
#[derive(Debug, Default)]
pub struct LatencyCache {
    interval: RefCell<HashMap<usize, Option<Latency>>>,
    total: RefCell<HashMap<usize, (Option<Latency>, f64)>>,
}

impl LatencyCache {
    fn interval<'h>(&self, m: MetricId, h: impl FnOnce() -> &'h Histogram<u64>) -> Option<Latency> {
        *self
            .interval
            .borrow_mut()
            .entry(m.index())
            .or_insert_with(|| Latency::of(h()))
    }

    fn total<'h>(
        &self,
        m: MetricId,
        h: impl FnOnce() -> &'h Histogram<u64>,
    ) -> (Option<Latency>, f64) {
        *self.total.borrow_mut().entry(m.index()).or_insert_with(|| {
            let h = h();
            let (latency, mean_us) = Latency::of_with_mean(h);
            (latency, mean_us * h.len() as f64 / 1e6)
        })
    }
}

/// A consumer of the run's intervals, as they complete.
///
/// `interval` cannot fail the run: a sink that hits an error (a full disk) keeps its first error
/// and returns it from `finish`, so the load goes on and the run still ends in order.
pub trait IntervalSink {
    /// Called once per merged interval, in order, on the run's control thread: keep it short.
    fn interval(&mut self, view: &IntervalView<'_>);
    /// Called once after the last interval, when every worker has stopped.
    fn finish(&mut self) -> Result<(), Error>;
    /// Whether the sink shows the thresholds so far: evaluating them builds a summary of the
    /// run each interval, so the run loop does it only when a sink asks.
    fn wants_thresholds(&self) -> bool {
        false
    }
}
