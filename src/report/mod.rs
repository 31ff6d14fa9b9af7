//! Reports: plain data about a finished run and one file per output format.

pub mod chart;
pub mod junit;
pub mod markdown;
pub mod progress;
pub mod rebuild;
pub mod summary;
pub mod terminal;
pub mod timeline;

use std::path::Path;

use crate::error::Error;

pub const SUMMARY_FILE: &str = "summary.json";
/// The run over time (interval points for the charts), saved so `inrush report` can redraw them.
pub const TIMELINE_FILE: &str = "timeline.json";

/// Writes every file of a finished run beside `latency.hlog`: summary.json and the charts.
pub fn write_all(
    dir: &Path,
    s: &summary::Summary,
    timeline: &timeline::Timeline,
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
    Ok(())
}
