//! Reports: plain data about a finished run and one file per output format.

pub mod chart;
pub mod html;
pub mod junit;
pub mod markdown;
pub mod progress;
pub mod rebuild;
pub mod summary;
pub mod terminal;

use std::path::Path;

use crate::error::Error;

pub const SUMMARY_FILE: &str = "summary.json";
/// The run over time (interval points for the charts), saved so `inrush report` can redraw them.
pub const TIMELINE_FILE: &str = "timeline.json";

/// The report page of a run.
pub const HTML_FILE: &str = "index.html";

/// The charts `index.html` embeds, in its order: (title, file stem).
const HTML_CHARTS: [(&str, &str); 4] = [
    ("Latency percentiles over time", "latency"),
    (
        "Latency distribution (HdrHistogram percentiles)",
        "distribution",
    ),
    ("Throughput and errors", "throughput"),
    ("Users and arrivals: planned vs achieved", "users"),
];

/// The chart of a run with regions: (title, file stem).
const REGIONS_CHART: (&str, &str) = ("Latency distribution by region", "regions");

/// Writes every file of a finished run beside `latency.hlog` (which must be complete):
/// summary.json, timeline.json, junit.xml, summary.md, the charts and index.html.
pub fn write_all(
    dir: &Path,
    s: &summary::Summary,
    timeline: &crate::metrics::timeline::Timeline,
) -> Result<(), Error> {
    let path = dir.join(SUMMARY_FILE);
    let json = serde_json::to_vec_pretty(s)
        .map_err(|e| Error::Run(format!("cannot encode the summary: {e}")))?;
    std::fs::write(&path, json).map_err(|e| Error::io("cannot write", &path, e))?;
    let path = dir.join(TIMELINE_FILE);
    let json = serde_json::to_vec(timeline)
        .map_err(|e| Error::Run(format!("cannot encode the timeline: {e}")))?;
    std::fs::write(&path, json).map_err(|e| Error::io("cannot write", &path, e))?;
    for (name, text) in [
        ("junit.xml", junit::render(s)),
        ("summary.md", markdown::render(s)),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|e| Error::io("cannot write", &path, e))?;
    }
    chart::render_all(dir, timeline).map_err(|e| Error::Run(format!("cannot draw charts: {e}")))?;
    let histograms = rebuild::histograms(dir, s)?;
    chart::render_distribution(
        dir,
        "distribution",
        &format!("Latency distribution by operation — {}", s.scenario),
        &[chart::DistributionRun {
            label: &s.scenario,
            histograms: &histograms.total,
        }],
    )
    .map_err(|e| Error::Run(format!("cannot draw charts: {e}")))?;
    let mut stems = HTML_CHARTS.to_vec();
    if !s.regions.is_empty() {
        // Each region's distribution overlaid per metric: "the Americas saw it slower".
        let runs: Vec<chart::DistributionRun> = s
            .regions
            .keys()
            .zip(&histograms.regions)
            .map(|(label, histograms)| chart::DistributionRun { label, histograms })
            .collect();
        chart::render_distribution(
            dir,
            REGIONS_CHART.1,
            &format!("Latency distribution by region — {}", s.scenario),
            &runs,
        )
        .map_err(|e| Error::Run(format!("cannot draw charts: {e}")))?;
        stems.push(REGIONS_CHART);
    }
    let mut charts = Vec::with_capacity(stems.len());
    for (title, stem) in stems {
        let path = dir.join(format!("{stem}.svg"));
        let svg = std::fs::read_to_string(&path).map_err(|e| Error::io("cannot read", &path, e))?;
        charts.push((title, svg));
    }
    let path = dir.join(HTML_FILE);
    std::fs::write(&path, html::render(s, &charts))
        .map_err(|e| Error::io("cannot write", &path, e))?;
    Ok(())
}
