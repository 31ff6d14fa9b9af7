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
}
