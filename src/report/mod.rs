//! Reports: plain data about a finished run, and the run directory's end-of-run artifacts —
//! one file per output format, each behind the [`Artifact`] trait, all written in one place
//! ([`write_all`], in the order of [`ARTIFACTS`]). Live, per-interval outputs are in [`live`].
//!
//! Adding an output format: a new file here with a type implementing [`FileArtifact`] (one file
//! whose bytes are built without I/O) or [`Artifact`] (anything else), its `mod` line, its
//! file name in [`files`], and one entry in [`ARTIFACTS`].

pub mod chart;
pub mod checks;
pub mod console;
pub mod files;
pub mod html;
pub mod json;
pub mod junit;
pub mod live;
pub mod markdown;
pub mod markup;
pub mod measurement;
pub mod rebuild;
pub mod run_dir;
pub mod shards;
pub mod summary;
pub mod terminal;
pub mod warnings;
pub mod worker_cpu;

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

/// Writes `bytes` as `dir/name`, saying which file on failure. Through a temporary file renamed
/// into place: `inrush report` rewrites a run's files, and a failure midway must not leave
/// half a file over a good one.
pub fn write_file(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), Error> {
    replace(&dir.join(name), |tmp| std::fs::write(tmp, bytes))
        .map_err(|e| Error::io("cannot write", dir.join(name), e))
}

/// Writes `path` by `write`ing its temporary sibling ([`files::partial`]) and renaming it
/// into place; on failure the temporary file is removed and `path` is left as it was.
pub fn replace<E>(path: &Path, write: impl FnOnce(&Path) -> Result<(), E>) -> Result<(), E>
where
    E: From<std::io::Error>,
{
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(files::partial(&name));
    let written = write(&tmp).and_then(|()| std::fs::rename(&tmp, path).map_err(E::from));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replacement_that_fails_leaves_the_previous_file_whole() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("summary.md");
        std::fs::write(&path, "good").expect("write");
        // The writer fails halfway: half a file went to the temporary name.
        let failed = replace(&path, |tmp| {
            std::fs::write(tmp, "ha")?;
            Err(std::io::Error::other("disk full"))
        });
        assert!(failed.is_err());
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "good");
        let left: Vec<_> = std::fs::read_dir(dir.path()).expect("dir").collect();
        assert_eq!(left.len(), 1, "the temporary file is removed");
        write_file(dir.path(), "summary.md", b"new").expect("replaced");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "new");
        assert_eq!(std::fs::read_dir(dir.path()).expect("dir").count(), 1);
    }
}
