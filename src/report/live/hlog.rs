//! The `latency.hlog` writer as a live sink: each merged interval is appended as it completes, so
//! the log is complete when the run ends (and mostly there if it is killed).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use hdrhistogram::serialization::interval_log::IntervalLogWriter;
use hdrhistogram::serialization::V2DeflateSerializer;

use super::{IntervalSink, IntervalView};
use crate::error::Error;
use crate::metrics::hlog;

/// The open log file and its serializer. The hdrhistogram writer borrows both, so they live
/// here, in the run's frame, and [`HlogFile::sink`] lends them to the sink.
pub struct HlogFile {
    path: PathBuf,
    out: BufWriter<File>,
    serializer: V2DeflateSerializer,
}

impl HlogFile {
    /// Creates `latency.hlog` in the run directory.
    pub fn create(dir: &Path) -> Result<Self, Error> {
        let path = dir.join(super::super::files::HLOG);
        let file = File::create(&path).map_err(|e| Error::io("cannot create", &path, e))?;
        Ok(HlogFile {
            path,
            out: BufWriter::new(file),
            serializer: V2DeflateSerializer::new(),
        })
    }

    /// Writes the header (the run's start time, units) and returns the sink that appends the
    /// intervals; `regions` are the run's region names, in the recorders' order.
    pub fn sink(
        &mut self,
        started_at: SystemTime,
        regions: Vec<String>,
    ) -> Result<HlogSink<'_>, Error> {
        let log = hlog::begin(&mut self.out, &mut self.serializer, started_at)
            .map_err(|e| Error::io("cannot write", &self.path, e))?;
        Ok(HlogSink {
            path: &self.path,
            log: Some(log),
            regions,
            error: None,
        })
    }

    /// Flushes the file once the sink is gone.
    pub fn close(mut self) -> Result<(), Error> {
        self.out
            .flush()
            .map_err(|e| Error::io("cannot write", &self.path, e))
    }
}

pub struct HlogSink<'a> {
    path: &'a Path,
    log: Option<IntervalLogWriter<'a, 'a, BufWriter<File>, V2DeflateSerializer>>,
    regions: Vec<String>,
    /// The first write error: later intervals are not written, the run goes on.
    error: Option<std::io::Error>,
}

impl IntervalSink for HlogSink<'_> {
    fn interval(&mut self, view: &IntervalView<'_>) {
        if self.error.is_some() {
            return;
        }
        if let Some(log) = &mut self.log {
            self.error =
                hlog::write_interval(log, view.catalog, &self.regions, view.interval).err();
        }
    }

    fn finish(&mut self) -> Result<(), Error> {
        self.log = None;
        match self.error.take() {
            Some(e) => Err(Error::io("cannot write", self.path, e)),
            None => Ok(()),
        }
    }
}
