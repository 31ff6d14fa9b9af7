//! Reads what `compare` needs from a run directory: `summary.json` for counts and run facts,
//! `latency.hlog` for whole-run histograms and the per-interval ones.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use hdrhistogram::Histogram;

use crate::error::Error;
use crate::report::rebuild::{merge_entries, RunHistograms};
use crate::report::run_dir::{self, RunDir};
use crate::report::summary::Summary;

/// One run as `compare` sees it.
pub struct Run {
    pub dir: PathBuf,
    pub summary: Summary,
    /// Merged per tag over the whole run (and per phase), as `inrush report` rebuilds them.
    pub histograms: RunHistograms,
    /// Per tag, one histogram per interval in time order (only intervals with samples).
    pub intervals: HashMap<String, Vec<Histogram<u64>>>,
}

/// Loads BASE or NEW (`role` names it in errors) through the reader every command uses
/// ([`run_dir::read`]): anything missing, unreadable or inconsistent is a usage error, the
/// directory given is not a whole run this version understands.
pub fn run(dir: &Path, role: &str) -> Result<Run, Error> {
    let RunDir {
        summary,
        timeline: _,
        entries,
    } = run_dir::read(dir).map_err(|e| Error::Usage(format!("{role} {e}")))?;
    let mut intervals: HashMap<String, Vec<Histogram<u64>>> = HashMap::new();
    for e in &entries {
        intervals
            .entry(e.tag.clone().unwrap_or_default())
            .or_default()
            .push(e.histogram.clone());
    }
    let histograms = merge_entries(entries, &summary);
    Ok(Run {
        dir: dir.to_path_buf(),
        summary,
        histograms,
        intervals,
    })
}
