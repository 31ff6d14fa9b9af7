//! A run's place among shards (`--shard i/N`, `--start-at`): when its schedule started on the
//! wall clock, and in a merged run, each shard's start and generator.

use serde::{Deserialize, Serialize};

use super::summary::{Generator, Verdict};

/// When a run's schedule started (its time zero), on the wall clock.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Start {
    /// Microseconds since the Unix epoch (UTC).
    pub unix_us: u64,
    /// `--start-at` as given (RFC 3339), when it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested: Option<String>,
    /// How far the start was from `--start-at`, in ms (positive: late). A `--start-at` already
    /// past when the run was ready starts it at once, this late.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset_ms: Option<f64>,
}

/// One shard of a merged run, as its own run directory recorded it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardRun {
    pub index: u64,
    /// The shard's run directory, as given to `inrush merge`.
    pub dir: String,
    pub started_at: String,
    /// The shard's schedule start, µs since the Unix epoch.
    pub start_unix_us: u64,
    /// Its start after the earliest shard's, ms: the merged timeline's offset for it.
    pub offset_ms: f64,
    /// How late it started against `--start-at`, when it had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub late_ms: Option<f64>,
    /// The shard's own verdict, on its own data.
    pub verdict: Verdict,
    /// Its planned and started arrivals.
    pub planned: u64,
    pub started: u64,
    /// Its generator: workers, CPU, memory, host.
    pub generator: Generator,
    /// The limits of `[run] overload` the shard exceeded on its own data (its
    /// `measurement.compromised_by`). They compromise the merged run too: a shard whose
    /// generator fell behind sent a load other than the planned one, whatever the other shards'
    /// figures make of the merged percentiles.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub compromised_by: Vec<String>,
}

impl super::summary::Summary {
    /// Which part of a sharded run this is, for the reports: `shard 1/4 of the scenario`, or
    /// for a merged run its shards and how far apart they started. `None` for a whole run.
    pub fn shard_text(&self) -> Option<String> {
        if !self.shards.is_empty() {
            let spread = self.shards.iter().map(|s| s.offset_ms).fold(0.0, f64::max);
            let late = self
                .shards
                .iter()
                .filter_map(|s| s.late_ms)
                .fold(0.0, f64::max);
            return Some(format!(
                "merged from {} shards (inrush merge); starts within {spread:.1} ms of each \
                 other{}",
                self.shards.len(),
                if late > 0.0 {
                    format!(", at most {late:.1} ms after --start-at")
                } else {
                    String::new()
                }
            ));
        }
        (!self.shard.is_whole()).then(|| {
            format!(
                "shard {} of the scenario (arrivals k with k mod {} = {}); `inrush merge` joins \
                 the shards",
                self.shard.label(),
                self.shard.count,
                self.shard.index
            )
        })
    }
}
