//! `inrush report DIR`: rebuilds every artifact of a finished run from what the run saved —
//! latency statistics from `latency.hlog`, counts from `summary.json`, the curves from
//! `timeline.json` — so an old run can be re-rendered (and, by the caller, re-gated) without
//! running it again.

use std::collections::HashMap;
use std::path::Path;

use hdrhistogram::Histogram;

use super::files;
use super::summary::{Latency, MetricSummary, Summary};
use crate::error::Error;
use crate::metrics::hlog;
use crate::metrics::recorder::new_histogram;
use crate::metrics::timeline::Timeline;

/// A run file read back. Whatever keeps it from being read whole — missing, unreadable,
/// truncated, malformed — is the input's fault (exit 2) and is said with the file's name.
fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, Error> {
    let text = crate::input_file::read_to_string(path)
        .map_err(|e| Error::Usage(format!("{}: cannot read it: {e}", path.display())))?;
    serde_json::from_str(&text).map_err(|e| {
        Error::Usage(format!(
            "{}:{}:{}: not a run file this version understands: {e}",
            path.display(),
            e.line(),
            e.column()
        ))
    })
}

/// Reads a run's hlog, refusing one that cannot be a run's: every run writes the log's header
/// first, so an empty file is a log that was lost.
fn read_hlog(path: &Path) -> Result<Vec<hlog::Entry>, Error> {
    if std::fs::metadata(path).is_ok_and(|m| m.len() == 0) {
        return Err(Error::Usage(format!(
            "{}: empty (every run writes at least its header); the run's latencies are lost",
            path.display()
        )));
    }
    hlog::read(path).map_err(Error::Usage)
}

/// Histograms of one run, merged per tag: the whole run and each phase.
pub struct RunHistograms {
    pub total: HashMap<String, Histogram<u64>>,
    pub phases: Vec<HashMap<String, Histogram<u64>>>,
    /// Per region (in the summary's order), from the `<region>:<tag>` entries.
    pub regions: Vec<HashMap<String, Histogram<u64>>>,
}

/// Reads a run's hlog and merges its intervals, per phase by the interval's midpoint (an
/// interval never straddles two phases; intervals after the last phase belong to it).
pub fn histograms(dir: &Path, summary: &Summary) -> Result<RunHistograms, Error> {
    let entries = read_hlog(&dir.join(files::HLOG))?;
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
    Ok(out)
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

/// The hlog must hold every latency sample the summary counts (each metric's operations less
/// its errors): a log cut short, or another run's, would otherwise rewrite the summary's
/// latencies from part of the data.
fn check_complete(dir: &Path, summary: &Summary, hist: &RunHistograms) -> Result<(), Error> {
    for (name, m) in &summary.metrics {
        let counted = m.count.saturating_sub(m.errors);
        let logged = hist.total.get(name).map_or(0, Histogram::len);
        if logged != counted {
            return Err(Error::Usage(format!(
                "{}: holds {logged} latency samples of `{name}` where {} counts {counted}: the \
                 log is truncated or from another run",
                dir.join(files::HLOG).display(),
                files::SUMMARY
            )));
        }
    }
    Ok(())
}

/// Rebuilds the summary's statistics from the hlog; the thresholds and the verdict are left as
/// the run wrote them (re-gating is the gate's job: `inrush::rebuild`). Refuses (exit 2) a run
/// directory it cannot read whole, before anything is written.
pub fn rebuild(dir: &Path) -> Result<(Summary, Timeline, RunHistograms), Error> {
    if !dir.is_dir() {
        return Err(Error::Usage(format!(
            "{}: not a directory (give a run directory, e.g. reports/quickstart-20261125T180203Z)",
            dir.display()
        )));
    }
    let mut summary: Summary = read_json(&dir.join(files::SUMMARY))?;
    let timeline: Timeline = read_json(&dir.join(files::TIMELINE))?;
    let hist = histograms(dir, &summary)?;
    check_complete(dir, &summary, &hist)?;

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
