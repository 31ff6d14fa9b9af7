//! The run over time, reduced to what charts need: one point per interval (about a second).
//! Plain data, filled by the collector, read by the chart renderer. Memory grows with the run's
//! duration, never with the number of requests.

use std::collections::BTreeMap;

/// Latency and volume of one metric within one interval.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct IntervalMetric {
    /// Operations completed in the interval (successful and failed).
    pub count: u64,
    /// Of those, how many failed.
    pub errors: u64,
    /// Percentiles of successful operations, milliseconds, measured from the intended start.
    /// Zero when `count - errors == 0`.
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// Attempts retried in the interval (not in `count`: a retry is not an operation).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub retries: u64,
    /// Sockets reopened after a drop in the interval (each is also in `count`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub reconnects: u64,
    /// Data frames sent and received on this `ws` step's sockets in the interval.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub frames_sent: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub frames_received: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Everything recorded for one interval, seconds relative to the start of the run.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct IntervalPoint {
    pub start_s: f64,
    pub end_s: f64,
    /// Keyed by metric name (`register`, `verify`, `message_delivery`, ...).
    pub metrics: BTreeMap<String, IntervalMetric>,
    /// Users alive at the end of the interval (started and not yet finished; an arrival whose
    /// task has not run yet is not one).
    pub active_users: u64,
    /// Open connections at the end of the interval: WebSockets and HTTP keep-alive connections.
    pub open_connections: u64,
    /// Of those, HTTP connections (absent from timelines written before they were counted,
    /// whose `open_connections` are WebSockets only).
    #[serde(default)]
    pub open_http: u64,
    /// The busiest generator worker thread's CPU share in the interval (0 to 1): near 1, the
    /// generator itself was the bottleneck.
    #[serde(default)]
    pub worker_cpu_max: f64,
    /// Arrivals whose fate (started or dropped) was decided within this interval: with
    /// `started_arrivals` and `dropped_arrivals`, planned = started + dropped interval by interval.
    pub planned_arrivals: u64,
    /// Arrivals that actually started within this interval.
    pub started_arrivals: u64,
    /// Arrivals dropped (a cap, or their deadline passed) within this interval.
    pub dropped_arrivals: u64,
    /// Arrivals whose intended time lies in this interval, whenever their fate was decided: the
    /// planned rate as the schedule meant it (what `users.png` draws as planned).
    #[serde(default)]
    pub planned_due: u64,
    /// Of those, the ones dropped: drops drawn by when the arrivals were due.
    #[serde(default)]
    pub dropped_due: u64,
    /// Errors of every metric in the interval, by class (`timeout`, `http_status`, …).
    #[serde(default)]
    pub errors_by_class: BTreeMap<String, u64>,
    /// Started users whose flow ended in this interval: completed, failed, cut off by the run.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub users_completed: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub users_failed: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub users_cut_off: u64,
}

impl IntervalPoint {
    pub fn duration_s(&self) -> f64 {
        (self.end_s - self.start_s).max(1e-9)
    }
}

/// The most connections a run had open at an interval's end, as `inrush plan` reports them:
/// each figure is its own peak, so `websockets + http` may be more than `all`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PeakConnections {
    pub all: u64,
    pub websockets: u64,
    pub http: u64,
}

impl PeakConnections {
    /// Takes one more interval's gauges into the peaks.
    pub fn add(&mut self, p: &IntervalPoint) {
        self.all = self.all.max(p.open_connections);
        self.websockets = self
            .websockets
            .max(p.open_connections.saturating_sub(p.open_http));
        self.http = self.http.max(p.open_http);
    }

    /// The peaks of a whole timeline (one read back from a run directory).
    pub fn of(points: &[IntervalPoint]) -> Self {
        let mut peaks = PeakConnections::default();
        for p in points {
            peaks.add(p);
        }
        peaks
    }
}

/// A named phase of the load profile, for shading charts.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PhaseSpan {
    pub name: String,
    pub start_s: f64,
    pub end_s: f64,
}

/// The run over time.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Timeline {
    pub points: Vec<IntervalPoint>,
    pub phases: Vec<PhaseSpan>,
}

/// Where a run's timeline points wait on disk, so that the memory of a day-long run does not grow
/// with its length (a point is ~1 KB with eight metrics: 4 MB an hour). One JSON object per line;
/// read back once, at the end, for the report.
#[derive(Debug)]
pub struct Spool {
    path: std::path::PathBuf,
    out: Option<std::io::BufWriter<std::fs::File>>,
    /// The first write error: kept, so the run goes on, and returned at the end.
    error: Option<String>,
}

impl Spool {
    pub fn create(path: &std::path::Path) -> Result<Spool, crate::error::Error> {
        let file = std::fs::File::create(path)
            .map_err(|e| crate::error::Error::io("cannot create", path, e))?;
        Ok(Spool {
            path: path.to_path_buf(),
            out: Some(std::io::BufWriter::new(file)),
            error: None,
        })
    }

    /// Appends `points`, in order.
    pub fn write(&mut self, points: impl IntoIterator<Item = IntervalPoint>) {
        use std::io::Write;
        let Some(out) = self.out.as_mut() else {
            return;
        };
        for p in points {
            let line = serde_json::to_writer(&mut *out, &p)
                .map_err(|e| e.to_string())
                .and_then(|()| out.write_all(b"\n").map_err(|e| e.to_string()));
            if let Err(e) = line {
                self.error.get_or_insert(e);
                self.out = None;
                return;
            }
        }
    }

    /// Every point written, in order; the spool file is removed.
    pub fn read_back(mut self) -> Result<Vec<IntervalPoint>, crate::error::Error> {
        use std::io::{BufRead, Write};
        let failed = |why: String| {
            crate::error::Error::Run(format!(
                "the run's timeline could not be kept in {}: {why}",
                self.path.display()
            ))
        };
        if let Some(mut out) = self.out.take() {
            out.flush().map_err(|e| failed(e.to_string()))?;
        }
        if let Some(e) = self.error.take() {
            return Err(failed(e));
        }
        let file = std::fs::File::open(&self.path).map_err(|e| failed(e.to_string()))?;
        let mut points = Vec::new();
        for line in std::io::BufReader::new(file).lines() {
            let line = line.map_err(|e| failed(e.to_string()))?;
            points.push(serde_json::from_str(&line).map_err(|e| failed(e.to_string()))?);
        }
        let _ = std::fs::remove_file(&self.path);
        Ok(points)
    }
}
