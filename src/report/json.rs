//! The run's data as JSON: `summary.json` (the contract CI scripts read) and `timeline.json`
//! (the interval points, so `inrush report` can redraw the charts).

use super::{files, FileArtifact, FinishedRun};
use crate::error::Error;

/// `summary.json`, pretty-printed.
pub struct SummaryJson;

impl FileArtifact for SummaryJson {
    const FILE: &'static str = files::SUMMARY;

    fn render(&self, run: &FinishedRun<'_>) -> Result<Vec<u8>, Error> {
        serde_json::to_vec_pretty(run.summary)
            .map_err(|e| Error::Run(format!("cannot encode the summary: {e}")))
    }
}

/// `timeline.json`, compact: it can hold thousands of points.
pub struct TimelineJson;

impl FileArtifact for TimelineJson {
    const FILE: &'static str = files::TIMELINE;

    fn render(&self, run: &FinishedRun<'_>) -> Result<Vec<u8>, Error> {
        serde_json::to_vec(run.timeline)
            .map_err(|e| Error::Run(format!("cannot encode the timeline: {e}")))
    }
}
