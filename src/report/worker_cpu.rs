//! How busy the busiest generator worker thread was over a run: the figure behind the
//! summary's saturation warning and `generator.worker_cpu_max`.

use serde::{Deserialize, Serialize};

/// A worker thread busier than this share of an interval was saturated: it had no spare CPU to
/// start users or read frames on time.
pub const WORKER_BUSY: f64 = 0.9;

/// The summary warns when the busiest worker was saturated in at least this share of the
/// intervals (one busy second among many is noise, a tenth of the run is not).
pub const SATURATED_SHARE: f64 = 0.1;

/// Intervals shorter than this (slivers at phase ends) say little about CPU use.
const MIN_CPU_INTERVAL_S: f64 = 0.5;

/// How busy the busiest generator worker thread was, interval by interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct WorkerCpu {
    pub p90: f64,
    pub max: f64,
    /// Intervals in which it was over [`WORKER_BUSY`], and intervals considered.
    pub saturated_intervals: u64,
    pub intervals: u64,
}

impl WorkerCpu {
    /// From a run's timeline (intervals of at least half a second); `None` without any.
    pub fn of(timeline: &crate::metrics::timeline::Timeline) -> Option<WorkerCpu> {
        WorkerCpu::of_shares(
            timeline
                .points
                .iter()
                .map(|p| (p.duration_s(), p.worker_cpu_max)),
        )
    }

    /// From (interval seconds, busiest worker's CPU share) per interval.
    pub fn of_shares(intervals: impl IntoIterator<Item = (f64, f64)>) -> Option<WorkerCpu> {
        let mut shares: Vec<f64> = intervals
            .into_iter()
            .filter(|(d, _)| *d >= MIN_CPU_INTERVAL_S)
            .map(|(_, share)| share)
            .collect();
        if shares.is_empty() {
            return None;
        }
        shares.sort_by(f64::total_cmp);
        let n = shares.len();
        let round = |v: f64| (v * 1000.0).round() / 1000.0;
        Some(WorkerCpu {
            p90: round(shares[((n as f64 * 0.9).ceil() as usize).clamp(1, n) - 1]),
            max: round(shares[n - 1]),
            saturated_intervals: shares.iter().filter(|s| **s > WORKER_BUSY).count() as u64,
            intervals: n as u64,
        })
    }

    pub fn saturated(&self) -> bool {
        self.intervals > 0
            && self.saturated_intervals as f64 >= SATURATED_SHARE * self.intervals as f64
    }
}
