//! What `inrush merge` refuses, each with a one-line reason naming the directory (exit 2):
//! a directory that is not a run, a merged run, shards of different scenarios, seeds or shard
//! counts, a shard given twice, a shard missing, shards that started days apart.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::Error;
use crate::metrics::timeline::Timeline;
use crate::report::summary::Summary;

/// One shard's run directory, read back whole (its statistics rebuilt from its hlog).
pub struct ShardDir {
    pub dir: PathBuf,
    pub summary: Summary,
    pub timeline: Timeline,
    /// Its schedule's time zero, µs since the Unix epoch.
    pub start_us: u64,
}

/// Reads a shard's run directory; a directory that is not a complete run is refused.
pub fn read(dir: &Path) -> Result<ShardDir, Error> {
    if !dir.join(crate::report::files::SUMMARY).is_file() {
        return Err(Error::Usage(format!(
            "{}: not a run directory (no {}): give the directories `inrush run --shard i/N` wrote",
            dir.display(),
            crate::report::files::SUMMARY
        )));
    }
    let (summary, timeline, _) = crate::report::rebuild::rebuild(dir)?;
    if !summary.shards.is_empty() {
        // Its counts are already the sum of its shards': merged again, they would count twice.
        return Err(Error::Usage(format!(
            "{}: a merged run (of {} shards), not a shard: give the shards' own directories",
            dir.display(),
            summary.shards.len()
        )));
    }
    // Its thresholds are gated again on the merged data: one that is malformed is refused here,
    // naming the shard's file rather than the merged one.
    crate::gate::saved(&summary, &dir.join(crate::report::files::SUMMARY))?;
    let start_us = start_us(&summary).ok_or_else(|| {
        Error::Usage(format!(
            "{}: summary.json says no start time (started_at `{}`)",
            dir.display(),
            summary.started_at
        ))
    })?;
    Ok(ShardDir {
        dir: dir.to_path_buf(),
        summary,
        timeline,
        start_us,
    })
}

/// The run's time zero: `start.unix_us`, or for a run from before it was recorded, its
/// `started_at` (to the millisecond).
fn start_us(s: &Summary) -> Option<u64> {
    if let Some(start) = &s.start {
        return Some(start.unix_us);
    }
    let t = humantime::parse_rfc3339_weak(&s.started_at).ok()?;
    Some(crate::run::start::unix_us(t))
}

/// Refuses shards that are not the N shards of one run; returns them ordered by index.
pub fn one_run(mut shards: Vec<ShardDir>) -> Result<Vec<ShardDir>, Error> {
    let Some(first) = shards.first() else {
        return Err(Error::Usage(
            "merge: give the shards' run directories, e.g. inrush merge reports/run-0 reports/run-1"
                .into(),
        ));
    };
    let (s0, d0) = (first.summary.clone(), first.dir.display().to_string());
    for sh in &shards[1..] {
        let (s, d) = (&sh.summary, sh.dir.display());
        let differs = if s.scenario != s0.scenario {
            Some(format!(
                "scenario `{}`, not `{}` as {d0}",
                s.scenario, s0.scenario
            ))
        } else if s.scenario_fingerprint != s0.scenario_fingerprint {
            Some(format!(
                "the scenario file or its scales differ from {d0}'s (fingerprint {} vs {})",
                or_none(&s.scenario_fingerprint),
                or_none(&s0.scenario_fingerprint)
            ))
        } else if s.seed != s0.seed {
            Some(format!("seed {}, not {} as {d0}", s.seed, s0.seed))
        } else if s.shard.count != s0.shard.count {
            Some(format!(
                "shard {} of a run split {} ways, not {} as {d0} ({})",
                s.shard.label(),
                s.shard.count,
                s0.shard.count,
                s0.shard.label()
            ))
        } else {
            None
        };
        if let Some(why) = differs {
            return Err(Error::Usage(format!(
                "{d}: not a shard of the same run: {why}"
            )));
        }
    }
    shards.sort_by_key(|s| s.summary.shard.index);
    for pair in shards.windows(2) {
        if pair[0].summary.shard.index == pair[1].summary.shard.index {
            return Err(Error::Usage(format!(
                "{}: shard {} given twice (also {}): a duplicated shard",
                pair[1].dir.display(),
                pair[1].summary.shard.label(),
                pair[0].dir.display()
            )));
        }
    }
    let count = s0.shard.count;
    let have: Vec<u64> = shards.iter().map(|s| s.summary.shard.index).collect();
    let missing: Vec<String> = (0..count)
        .filter(|i| !have.contains(i))
        .map(|i| format!("{i}/{count}"))
        .collect();
    if !missing.is_empty() {
        return Err(Error::Usage(format!(
            "shard {} missing ({} of {count} given, the first {}): rerun the missing index with \
             `inrush run … --shard {}` and merge again",
            missing.join(", "),
            shards.len(),
            shards
                .first()
                .map_or(String::new(), |s| s.dir.display().to_string()),
            missing.first().map_or("", String::as_str)
        )));
    }
    Ok(shards)
}

/// The furthest apart the shards of one run may have started. `--start-at` is at most 24 h
/// ahead and shards given one start within milliseconds of each other (seconds on a bad
/// clock); a shard rerun after a failure (docs/distributed.md) starts later, within the day.
/// Beyond that the start is not a run's — a `start.unix_us` edited or a clock years off — and
/// the merged timeline, one interval per second from the earliest start, would grow with the
/// gap (~40 bytes a second: 144 MB of RSS for 30 days, gigabytes for years; docs/distributed.md).
pub const MAX_START_SPREAD: Duration = Duration::from_secs(24 * 3600);

/// Refuses shards that started more than [`MAX_START_SPREAD`] apart, naming the earliest and
/// the latest (either may be the odd one).
pub fn started_together(shards: &[ShardDir]) -> Result<(), Error> {
    let (Some(first), Some(last)) = (
        shards.iter().min_by_key(|s| s.start_us),
        shards.iter().max_by_key(|s| s.start_us),
    ) else {
        return Ok(());
    };
    let spread = Duration::from_micros(last.start_us - first.start_us);
    if spread <= MAX_START_SPREAD {
        return Ok(());
    }
    Err(Error::Usage(format!(
        "{}: shard {} started {} after shard {} ({}; start.unix_us {} and {}), over the {} h \
         that shards of one run can be apart: a summary.json edited, or a machine's clock far off",
        last.dir.display(),
        last.summary.shard.label(),
        spread_text(spread),
        first.summary.shard.label(),
        first.dir.display(),
        last.start_us,
        first.start_us,
        MAX_START_SPREAD.as_secs() / 3600,
    )))
}

/// A spread in days, or in seconds and hours when under two days (24.0 h may be just over).
fn spread_text(d: Duration) -> String {
    let hours = d.as_secs_f64() / 3600.0;
    if hours < 48.0 {
        format!("{:.1} s ({hours:.1} h)", d.as_secs_f64())
    } else {
        format!("{:.1} days", hours / 24.0)
    }
}

fn or_none(s: &str) -> &str {
    if s.is_empty() {
        "none"
    } else {
        s
    }
}
