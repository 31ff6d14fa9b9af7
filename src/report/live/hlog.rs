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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::metrics::collector::Interval;
    use crate::metrics::{Catalog, Recorder};

    #[test]
    fn the_sink_appends_each_interval_with_its_region_tags() {
        let dir = std::env::temp_dir().join(format!("inrush-hlog-sink-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let catalog = Catalog::new(["verify"]);
        let verify = catalog.id("verify").expect("verify");
        let mut recorder = Recorder::new(catalog.len());
        recorder.ok(
            verify,
            Duration::ZERO,
            Duration::from_millis(1),
            Duration::from_millis(2),
        );
        let iv = Interval {
            index: 0,
            start: Duration::ZERO,
            end: Duration::from_secs(1),
            regions: vec![recorder.clone()],
            recorder,
            active_users: 0,
            open_websockets: 0,
            open_http: 0,
            worker_cpu_max: 0.0,
        };
        let mut file = HlogFile::create(&dir).expect("create");
        {
            let mut sink = file
                .sink(SystemTime::UNIX_EPOCH, vec!["emea".to_string()])
                .expect("header");
            let totals = iv.recorder.clone();
            let view = IntervalView {
                interval: &iv,
                totals: &totals,
                catalog: &catalog,
                phase: "a",
                thresholds: &[],
                latency: &Default::default(),
            };
            sink.interval(&view);
            sink.finish().expect("no write error");
        }
        file.close().expect("flush");
        let entries = hlog::read(&dir.join(crate::report::files::HLOG)).expect("read back");
        let tags: Vec<_> = entries.iter().filter_map(|e| e.tag.as_deref()).collect();
        assert_eq!(
            tags,
            [
                "verify",
                "verify.service",
                "emea:verify",
                "emea:verify.service"
            ]
        );
        let _ = std::fs::remove_dir_all(dir);
    }
}
