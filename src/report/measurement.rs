//! Whether a run's measurement can be trusted: the generator's limits (`[run] overload`), the
//! ones a run exceeded, read from its summary's own figures (so `inrush report` re-derives them
//! from a saved run), and whether every operation failed. The gate turns them into a verdict.

use serde::{Deserialize, Serialize};

use super::summary::Summary;

/// Whether the generator's own numbers can be trusted: the limits of `[run] overload`, and
/// what the run exceeded (re-derived from the saved figures when `inrush report` re-gates).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Measurement {
    #[serde(default)]
    pub limits: crate::compiled::overload::OverloadLimits,
    /// Each limit the run exceeded, in words; empty when the measurement is sound.
    #[serde(default)]
    pub compromised_by: Vec<String>,
    /// `--accept-overload`: a compromised measurement is a warning, and the verdict follows the
    /// thresholds.
    #[serde(default)]
    pub overload_accepted: bool,
}

impl Measurement {
    /// One sentence for the reports, when the measurement was compromised.
    pub fn describe(&self) -> Option<String> {
        if self.compromised_by.is_empty() {
            return None;
        }
        let what = self.compromised_by.join("; ");
        Some(if self.overload_accepted {
            format!(
                "the generator could not keep up ({what}); accepted with --accept-overload, so the \
                 verdict follows the thresholds, but the figures describe the load the generator \
                 managed, not the one planned"
            )
        } else {
            format!(
                "inconclusive: the generator could not keep up ({what}), so these figures do not \
                 show how the target handles the planned load. Give the generator more CPU \
                 (--workers, more generator processes or machines, see `inrush plan`), lower the \
                 load, or pass --accept-overload to gate on the thresholds anyway"
            )
        })
    }
}

impl Summary {
    /// The limits of `measurement.limits` this run exceeded, in words: the generator's schedule
    /// lag, its loop lag and the arrivals it dropped behind schedule; in a merged run also each
    /// shard's own (a shard that fell behind is not made sound by the others' figures). Read
    /// from the summary's own figures, so a re-gated run reaches the same answer.
    pub fn overload(&self) -> Vec<String> {
        let limits = &self.measurement.limits;
        let mut why = Vec::new();
        if let Some(lag) = self.arrivals.schedule_lag_ms {
            if lag.p99 > limits.schedule_lag_p99_ms {
                why.push(format!(
                    "schedule lag p99 {:.1} ms > {} ms",
                    lag.p99, limits.schedule_lag_p99_ms
                ));
            }
        }
        if let Some(lag) = self.generator.loop_lag_ms {
            if lag.p99 > limits.loop_lag_p99_ms {
                why.push(format!(
                    "loop lag p99 {:.1} ms > {} ms",
                    lag.p99, limits.loop_lag_p99_ms
                ));
            }
        }
        let behind = self.arrivals.dropped_by.behind_schedule;
        if behind > 0 && behind as f64 > limits.behind_schedule * self.arrivals.planned as f64 {
            why.push(format!(
                "{behind} of {} planned arrivals dropped behind schedule ({:.1} %) > {} %",
                self.arrivals.planned,
                100.0 * behind as f64 / self.arrivals.planned.max(1) as f64,
                (limits.behind_schedule * 1e6).round() / 1e4
            ));
        }
        let count = self.shards.len();
        for shard in &self.shards {
            why.extend(
                (shard.compromised_by.iter())
                    .map(|w| format!("shard {}/{count}: {w}", shard.index)),
            );
        }
        why
    }

    /// Why the run did not pass whatever its thresholds say: something was tried and nothing
    /// succeeded (every operation failed, or every request was answered with a failure to
    /// retry and the run ended while the users waited to try again), or users started and
    /// every one's flow failed (sockets that open and then always break: the opens succeeded,
    /// the users did not). `None` otherwise, and when nothing was tried at all.
    pub fn failed_outright(&self) -> Option<&'static str> {
        let count: u64 = self.metrics.values().map(|m| m.count).sum();
        let errors: u64 = self.metrics.values().map(|m| m.errors).sum();
        // Requests and connects sent, retried ones included. Each one sent ends in an outcome
        // (an operation), or in a failure the retry policy would try again, its user cut off
        // by the run's end while it waited: with attempts and no operation, every answer was
        // such a failure, and the target still answered nothing right.
        let attempts: u64 = self.metrics.values().map(|m| m.attempts).sum();
        let a = &self.arrivals;
        if count > 0 && errors == count {
            Some("every operation failed")
        } else if count == 0 && attempts > 0 {
            Some("nothing succeeded: every request sent was answered with a failure to retry")
        } else if a.started > 0 && a.failed == a.started {
            Some("every user's flow failed")
        } else {
            None
        }
    }
}
