//! `inrush report DIR`: rebuilds every artifact of a finished run from what the run saved —
//! latency statistics from `latency.hlog`, counts from `summary.json`, the curves from
//! `timeline.json` — so an old run can be re-rendered (and, by the caller, re-gated) without
//! running it again.

use std::collections::HashMap;
use std::path::Path;

use hdrhistogram::Histogram;

use super::files;
use super::run_dir::{self, RunDir};
use super::summary::{Latency, MetricSummary, Summary};
use crate::error::Error;
use crate::metrics::hlog;
use crate::metrics::recorder::new_histogram;
use crate::metrics::timeline::Timeline;

/// Histograms of one run, merged per tag: the whole run and each phase.
pub struct RunHistograms {
    pub total: HashMap<String, Histogram<u64>>,
    pub phases: Vec<HashMap<String, Histogram<u64>>>,
    /// Per region (in the summary's order), from the `<region>:<tag>` entries.
    pub regions: Vec<HashMap<String, Histogram<u64>>>,
}

/// Reads the hlog of a run just written (whose counts it came from) and merges its intervals
/// as [`merge_entries`] does.
pub fn histograms(dir: &Path, summary: &Summary) -> Result<RunHistograms, Error> {
    let entries = hlog::read(&dir.join(files::HLOG)).map_err(Error::Usage)?;
    Ok(merge_entries(entries, summary))
}

/// Merges a run's hlog intervals per tag, per phase by the interval's midpoint (an interval
/// never straddles two phases; intervals after the last phase belong to it).
pub fn merge_entries(entries: Vec<hlog::Entry>, summary: &Summary) -> RunHistograms {
    let spans: Vec<(f64, f64)> = summary
        .phases
        .values()
        .map(|p| (p.start_s, p.end_s))
        .collect();
    let mut out = RunHistograms {
        total: HashMap::new(),
        phases: spans.iter().map(|_| HashMap::new()).collect(),
        regions: summary.regions.keys().map(|_| HashMap::new()).collect(),
    };
    let region_prefixes: Vec<String> = summary
        .regions
        .keys()
        .map(|r| format!("{r}{}", hlog::REGION_SEPARATOR))
        .collect();
    for e in entries {
        let tag = e.tag.unwrap_or_default();
        let region = region_prefixes
            .iter()
            .enumerate()
            .find_map(|(i, p)| tag.strip_prefix(p.as_str()).map(|rest| (i, rest)));
        if let Some((i, rest)) = region {
            if let Some(map) = out.regions.get_mut(i) {
                let h = map.entry(rest.to_string()).or_insert_with(new_histogram);
                let _ = h.add(&e.histogram);
            }
            continue;
        }
        let mid = e.start.as_secs_f64() + e.duration.as_secs_f64() / 2.0;
        let phase = spans
            .iter()
            .position(|&(_, end)| mid < end)
            .unwrap_or(spans.len().saturating_sub(1));
        let merge = |map: &mut HashMap<String, Histogram<u64>>| {
            let h = map.entry(tag.clone()).or_insert_with(new_histogram);
            // Auto-resizing histograms take any value range.
            let _ = h.add(&e.histogram);
        };
        merge(&mut out.total);
        if let Some(p) = out.phases.get_mut(phase) {
            merge(p);
        }
    }
    out
}

fn latency(map: &HashMap<String, Histogram<u64>>, tag: &str) -> Option<Latency> {
    map.get(tag).and_then(Latency::of)
}

fn relatency(
    metrics: &mut indexmap::IndexMap<String, MetricSummary>,
    map: &HashMap<String, Histogram<u64>>,
) {
    for (name, m) in metrics.iter_mut() {
        m.latency_ms = latency(map, name);
        m.service_time_ms = latency(map, &format!("{name}.service"));
    }
}

/// Rebuilds the summary's statistics from the hlog; the thresholds and the verdict are left as
/// the run wrote them (re-gating is the gate's job: `inrush::rebuild`). Refuses (exit 2) a run
/// directory it cannot read whole ([`run_dir::read`]), before anything is written.
pub fn rebuild(dir: &Path) -> Result<(Summary, Timeline, RunHistograms), Error> {
    let RunDir {
        mut summary,
        timeline,
        entries,
    } = run_dir::read(dir)?;
    let hist = merge_entries(entries, &summary);

    relatency(&mut summary.metrics, &hist.total);
    summary.messages.delivery_latency_ms = latency(&hist.total, "message_delivery");
    summary.arrivals.schedule_lag_ms = latency(&hist.total, "schedule_lag");
    summary.generator.loop_lag_ms = latency(&hist.total, "loop_lag");
    // The timeline's gauges are what the peaks were taken from (a summary from before they
    // were reported has none).
    summary.peak_connections = crate::metrics::timeline::PeakConnections::of(&timeline.points);
    for (phase, map) in summary.phases.values_mut().zip(&hist.phases) {
        relatency(&mut phase.metrics, map);
        phase.messages.delivery_latency_ms = latency(map, "message_delivery");
        phase.arrivals.schedule_lag_ms = latency(map, "schedule_lag");
    }

    for (region, map) in summary.regions.values_mut().zip(&hist.regions) {
        relatency(&mut region.metrics, map);
        region.messages.delivery_latency_ms = latency(map, "message_delivery");
        region.arrivals.schedule_lag_ms = latency(map, "schedule_lag");
    }

    Ok((summary, timeline, hist))
}
