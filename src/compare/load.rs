//! Reads what `compare` needs from a run directory: `summary.json` for counts and run facts,
//! `latency.hlog` for whole-run histograms and the per-interval ones.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use hdrhistogram::Histogram;

use crate::error::Error;
use crate::metrics::hlog;
use crate::report::files::{HLOG, SUMMARY as SUMMARY_FILE};
use crate::report::rebuild::{histograms, RunHistograms};
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

/// Loads BASE or NEW (`role` names it in errors). Anything missing or unreadable is a usage
/// error: the directory given is not a run this version understands.
pub fn run(dir: &Path, role: &str) -> Result<Run, Error> {
    let usage = |msg: String| Error::Usage(format!("{role} {}: {msg}", dir.display()));
    if !dir.is_dir() {
        return Err(usage(
            "not a directory (give a run directory, e.g. reports/quickstart-20261125T180203Z)"
                .into(),
        ));
    }
    let path = dir.join(SUMMARY_FILE);
    let text = crate::input_file::read_to_string(&path).map_err(|e| {
        usage(format!(
            "cannot read {SUMMARY_FILE}: {e} — is this a run directory?"
        ))
    })?;
    let summary: Summary = serde_json::from_str(&text).map_err(|e| {
        usage(format!(
            "{SUMMARY_FILE}:{}:{}: not a summary this version understands: {e}",
            e.line(),
            e.column()
        ))
    })?;
    let entries = hlog::read(&dir.join(HLOG)).map_err(usage)?;
    let mut intervals: HashMap<String, Vec<Histogram<u64>>> = HashMap::new();
    for e in entries {
        intervals
            .entry(e.tag.unwrap_or_default())
            .or_default()
            .push(e.histogram);
    }
    let histograms = histograms(dir, &summary).map_err(|e| usage(e.to_string()))?;
    Ok(Run {
        dir: dir.to_path_buf(),
        summary,
        histograms,
        intervals,
    })
}
