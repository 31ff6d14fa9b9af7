//! `latency.hlog` must hold every sample the run counted. Each metric's samples (operations
//! less errors) are counted twice besides the log: over the run in `summary.json`, interval by
//! interval in `timeline.json`. The generator's own measurements (`schedule_lag`, `loop_lag`)
//! have no count in the summary, only their latency; the timeline counts them per interval, so
//! the log is checked against it for every tag. A log cut short, lines removed, or another run's
//! would otherwise rewrite the latencies — and the verdict `[run] overload` takes from the lag —
//! from part of the data.

use std::collections::BTreeMap;
use std::path::Path;

use crate::error::Error;
use crate::metrics::hlog;
use crate::metrics::timeline::Timeline;
use crate::report::files;
use crate::report::summary::Summary;

/// Samples per whole-run tag (not a region's `<region>:<tag>`) in the log.
fn logged(summary: &Summary, entries: &[hlog::Entry]) -> BTreeMap<String, u64> {
    let prefixes: Vec<String> = summary
        .regions
        .keys()
        .map(|r| format!("{r}{}", hlog::REGION_SEPARATOR))
        .collect();
    let mut out = BTreeMap::new();
    for e in entries {
        let tag = e.tag.as_deref().unwrap_or_default();
        if prefixes.iter().any(|p| tag.starts_with(p.as_str())) {
            continue;
        }
        *out.entry(tag.to_string()).or_insert(0) += e.histogram.len();
    }
    out
}

/// Samples per metric the timeline's intervals count (each interval's operations less errors).
fn counted(timeline: &Timeline) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for p in &timeline.points {
        for (name, m) in &p.metrics {
            *out.entry(name.clone()).or_insert(0) += m.count.saturating_sub(m.errors);
        }
    }
    out
}

/// Refuses a log whose samples per tag are not those the summary and the timeline count.
pub fn check(
    path: &Path,
    summary: &Summary,
    timeline: &Timeline,
    entries: &[hlog::Entry],
) -> Result<(), Error> {
    let logged = logged(summary, entries);
    let refuse = |name: &str, holds: u64, file: &str, counts: u64| {
        Err(Error::Usage(format!(
            "{}: holds {holds} latency samples of `{name}` where {file} counts {counts}: the log \
             is truncated, edited or from another run",
            path.display()
        )))
    };
    let of = |name: &str| logged.get(name).copied().unwrap_or(0);
    for (name, m) in &summary.metrics {
        let counts = m.count.saturating_sub(m.errors);
        if of(name) != counts {
            return refuse(name, of(name), files::SUMMARY, counts);
        }
    }
    let counted = counted(timeline);
    // Both ways: a tag the timeline counts that the log lacks, and one the log holds that the
    // timeline never counted. A metric's `.service` tag is its service time, one per sample.
    let names = counted.keys().chain(
        logged
            .keys()
            .filter(|t| !t.ends_with(".service") && !t.is_empty()),
    );
    for name in names {
        let counts = counted.get(name).copied().unwrap_or(0);
        if of(name) != counts {
            return refuse(name, of(name), files::TIMELINE, counts);
        }
    }
    Ok(())
}
