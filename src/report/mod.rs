//! Reports: plain data about a finished run, and the run directory's end-of-run artifacts —
//! one file per output format, each behind the [`Artifact`] trait, all written in one place
//! ([`write_all`], in the order of [`ARTIFACTS`]). Live, per-interval outputs are in [`live`].
//!
//! Adding an output format: a new file here with a type implementing [`FileArtifact`] (one file
//! whose bytes are built without I/O) or [`Artifact`] (anything else), its `mod` line, its
//! file name in [`files`], and one entry in [`ARTIFACTS`].

pub mod chart;
pub mod files;
pub mod html;
pub mod json;
pub mod junit;
pub mod live;
pub mod markdown;
pub mod markup;
pub mod measurement;
pub mod rebuild;
pub mod summary;
pub mod terminal;

use std::cell::OnceCell;
use std::path::Path;

use crate::error::Error;
use crate::metrics::timeline::Timeline;
use rebuild::RunHistograms;
use summary::Summary;

/// Every end-of-run artifact, in the order they are written: `index.html` embeds the charts'
/// SVG files, so it comes after them.
pub const ARTIFACTS: [&dyn Artifact; 6] = [
    &json::SummaryJson,
    &json::TimelineJson,
    &junit::Junit,
    &markdown::Markdown,
    &chart::Charts,
    &html::Html,
];

/// What the artifacts are made from: a finished run, its directory holding the complete
/// `latency.hlog`.
pub struct FinishedRun<'a> {
    pub dir: &'a Path,
    pub summary: &'a Summary,
    pub timeline: &'a Timeline,
    /// Read from the hlog when an artifact first asks (only the charts do).
    histograms: OnceCell<RunHistograms>,
}

impl<'a> FinishedRun<'a> {
    pub fn new(dir: &'a Path, summary: &'a Summary, timeline: &'a Timeline) -> Self {
        FinishedRun {
            dir,
            summary,
            timeline,
            histograms: OnceCell::new(),
        }
    }

    /// With the histograms already read from `latency.hlog` (`inrush report` has them).
    pub fn with_histograms(self, histograms: RunHistograms) -> Self {
        FinishedRun {
            histograms: OnceCell::from(histograms),
            ..self
        }
    }

    /// The run's latency histograms as `latency.hlog` holds them, per run, phase and region.
    pub fn histograms(&self) -> Result<&RunHistograms, Error> {
        if let Some(h) = self.histograms.get() {
            return Ok(h);
        }
        let h = rebuild::histograms(self.dir, self.summary)?;
        Ok(self.histograms.get_or_init(|| h))
    }
}

/// One end-of-run artifact: writes its file(s) into the run directory.
pub trait Artifact {
    fn write(&self, run: &FinishedRun<'_>) -> Result<(), Error>;
}

/// An artifact that is one file whose bytes are built without I/O (hyperfine's `Exporter`);
/// every such type is an [`Artifact`] that writes [`render`](Self::render)'s bytes to
/// [`FILE`](Self::FILE).
pub trait FileArtifact {
    /// Its name in the run directory, from [`files`].
    const FILE: &'static str;
    fn render(&self, run: &FinishedRun<'_>) -> Result<Vec<u8>, Error>;
}

impl<T: FileArtifact> Artifact for T {
    fn write(&self, run: &FinishedRun<'_>) -> Result<(), Error> {
        let bytes = self.render(run)?;
        write_file(run.dir, T::FILE, &bytes)
    }
}

/// Writes `bytes` as `dir/name`, saying which file on failure.
pub fn write_file(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), Error> {
    let path = dir.join(name);
    std::fs::write(&path, bytes).map_err(|e| Error::io("cannot write", &path, e))
}

/// Writes every artifact of a finished run beside `latency.hlog` (which must be complete).
pub fn write_all(dir: &Path, summary: &Summary, timeline: &Timeline) -> Result<(), Error> {
    write_run(&FinishedRun::new(dir, summary, timeline))
}

/// Writes every artifact of `run`, in the order of [`ARTIFACTS`].
pub fn write_run(run: &FinishedRun<'_>) -> Result<(), Error> {
    for artifact in ARTIFACTS {
        artifact.write(run)?;
    }
    Ok(())
}
