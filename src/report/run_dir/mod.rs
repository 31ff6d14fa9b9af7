//! A run directory read back whole: `summary.json`, `timeline.json` and `latency.hlog`, each
//! checked on its own and against the others before any command uses them. `report`, `merge`
//! and `compare` all read a run through [`read`], so a directory one of them refuses, every one
//! refuses, with the same message: a damaged directory never gives a report from part of it.
//! Every refusal is the input's fault (exit 2) and names the file (and the line of a text file).

mod complete;
mod coverage;
mod numbers;

use std::path::Path;

use super::files;
use super::summary::{Summary, SCHEMA};
use crate::error::Error;
use crate::metrics::hlog;
use crate::metrics::timeline::Timeline;

/// One run's saved data, read and checked.
pub struct RunDir {
    pub summary: Summary,
    pub timeline: Timeline,
    /// `latency.hlog`'s interval histograms, in the file's order.
    pub entries: Vec<hlog::Entry>,
}

/// Reads `dir` as a run directory, refusing (exit 2) one that is not a complete run of a
/// schema this version reads.
pub fn read(dir: &Path) -> Result<RunDir, Error> {
    if !dir.is_dir() {
        return Err(Error::Usage(format!(
            "{}: not a directory (give a run directory, e.g. reports/quickstart-20261125T180203Z)",
            dir.display()
        )));
    }
    let summary_path = dir.join(files::SUMMARY);
    let summary: Summary = read_json(&summary_path, check_schema)?;
    numbers::summary(&summary_path, &summary)?;
    let timeline_path = dir.join(files::TIMELINE);
    let timeline: Timeline = read_json(&timeline_path, |_, _| Ok(()))?;
    coverage::check(&timeline_path, &summary, &timeline)?;
    let hlog_path = dir.join(files::HLOG);
    let entries = read_hlog(&hlog_path)?;
    complete::check(&hlog_path, &summary, &timeline, &entries)?;
    Ok(RunDir {
        summary,
        timeline,
        entries,
    })
}

/// A run file read back. Whatever keeps it from being read whole — missing, unreadable,
/// truncated, malformed — is the input's fault and is said with the file's name. `first`
/// looks at the text before it is taken as a `T`: a summary of another schema is told as
/// such, not as whichever field it lacks.
fn read_json<T: serde::de::DeserializeOwned>(
    path: &Path,
    first: impl Fn(&Path, &str) -> Result<(), Error>,
) -> Result<T, Error> {
    let text = crate::input_file::read_to_string(path)
        .map_err(|e| Error::Usage(format!("{}: cannot read it: {e}", path.display())))?;
    first(path, &text)?;
    serde_json::from_str(&text).map_err(|e| {
        Error::Usage(format!(
            "{}:{}:{}: not a run file this version understands: {e}",
            path.display(),
            e.line(),
            e.column()
        ))
    })
}

/// `summary.json` must be of the schema this version writes: another one's fields may mean
/// something else, and a report rebuilt from them would be wrong without saying so. Text
/// that is not JSON at all is left to the full read, which says where it breaks.
fn check_schema(path: &Path, text: &str) -> Result<(), Error> {
    /// Only the schema: the rest of the file is skipped, not built.
    #[derive(serde::Deserialize)]
    struct Head {
        schema: Option<serde_json::Value>,
    }
    let Ok(head) = serde_json::from_str::<Head>(text) else {
        return Ok(());
    };
    let found = match head.schema {
        Some(serde_json::Value::String(s)) if s == SCHEMA => return Ok(()),
        Some(serde_json::Value::String(s)) => format!("schema `{s}`"),
        Some(other) => format!("schema {other}"),
        None => "no schema".to_string(),
    };
    Err(Error::Usage(format!(
        "{}: {found}, not `{SCHEMA}` that this version of inrush reads: a summary of another \
         version (or edited); rerun the scenario, or report it with the inrush that wrote it",
        path.display()
    )))
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
