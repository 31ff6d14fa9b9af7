//! `--stream FILE|-`: the run as JSON lines while it goes on, for tools that read a stream (a
//! log shipper, `jq`, a notebook). Per interval, one `interval` line (arrivals, users, open
//! connections, messages, errors by class) and one `metric` line per metric that saw anything
//! in it; the schema is in docs/live.md. Counts are per interval, so summing a field over the
//! lines gives the run's total in summary.json.
//!
//! Each interval's lines are written together and flushed, so a reader never waits a second
//! interval for the first; a write error (disk full, a closed pipe) stops the stream and is the
//! sink's error at the end, which the run reports as a warning (`run::run_swarm`).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{IntervalSink, IntervalView};
use crate::error::Error;
use crate::metrics::recorder::{Counter, ErrorClass};
use crate::report::summary::Latency;

/// The `schema` field of every line.
pub const SCHEMA: &str = "inrush.stream/1";

/// Where the lines go: a file, or stdout for `-`.
pub enum Destination {
    File(PathBuf),
    Stdout,
}

impl Destination {
    pub fn parse(arg: &Path) -> Destination {
        if arg == Path::new("-") {
            Destination::Stdout
        } else {
            Destination::File(arg.to_path_buf())
        }
    }

    fn label(&self) -> String {
        match self {
            Destination::File(p) => p.display().to_string(),
            Destination::Stdout => "stdout".into(),
        }
    }
}

pub struct StreamSink {
    out: Option<Box<dyn Write>>,
    label: String,
    error: Option<Error>,
}

impl StreamSink {
    /// Opens the destination (a file is created or truncated) before the run starts, so a path
    /// that cannot be written is an error before anything is sent.
    pub fn open(dest: &Destination) -> Result<StreamSink, Error> {
        let out: Box<dyn Write> = match dest {
            Destination::File(path) => {
                let file = File::create(path)
                    .map_err(|e| Error::output("cannot create the --stream file", path, e))?;
                Box::new(BufWriter::new(file))
            }
            Destination::Stdout => Box::new(BufWriter::new(io::stdout())),
        };
        Ok(StreamSink {
            out: Some(out),
            label: dest.label(),
            error: None,
        })
    }

    fn write(&mut self, view: &IntervalView<'_>) -> io::Result<()> {
        let Some(out) = self.out.as_mut() else {
            return Ok(());
        };
        for line in lines(view) {
            serde_json::to_writer(&mut *out, &line)?;
            out.write_all(b"\n")?;
        }
        out.flush()
    }
}

impl IntervalSink for StreamSink {
    fn interval(&mut self, view: &IntervalView<'_>) {
        if let Err(e) = self.write(view) {
            self.out = None;
            self.error.get_or_insert(Error::Run(format!(
                "the --stream to {} stopped: {e}",
                self.label
            )));
        }
    }

    fn finish(&mut self) -> Result<(), Error> {
        if let Some(out) = self.out.as_mut() {
            if let Err(e) = out.flush() {
                self.error.get_or_insert(Error::Run(format!(
                    "the --stream to {} stopped: {e}",
                    self.label
                )));
            }
        }
        self.out = None;
        self.error.take().map_or(Ok(()), Err)
    }
}

/// What every line starts with: which interval it belongs to.
#[derive(Serialize)]
pub(super) struct Head<'a> {
    schema: &'static str,
    #[serde(rename = "type")]
    kind: &'static str,
    interval: u64,
    start_s: f64,
    end_s: f64,
    phase: &'a str,
}

/// One line of the stream (the dashboard's events carry them too).
#[derive(Serialize)]
#[serde(untagged)]
pub(super) enum Line<'a> {
    Interval {
        #[serde(flatten)]
        head: Head<'a>,
        arrivals: Arrivals,
        users: Users,
        open_connections: Connections,
        messages: Messages,
        errors_by_class: BTreeMap<&'static str, u64>,
        /// Evaluations of the flows' checks (`expect` conditions) in the interval.
        checks: Checks,
        /// Bytes every user wrote and read (above TLS), named steps or not.
        bytes_sent: u64,
        bytes_received: u64,
        worker_cpu_max: f64,
    },
    Metric {
        #[serde(flatten)]
        head: Head<'a>,
        metric: &'a str,
        count: u64,
        errors: u64,
        #[serde(skip_serializing_if = "BTreeMap::is_empty")]
        errors_by_class: BTreeMap<&'static str, u64>,
        /// Successful operations' latency from the intended start, ms; absent when none succeeded.
        #[serde(skip_serializing_if = "Option::is_none")]
        latency_ms: Option<Latency>,
        retries: u64,
        reconnects: u64,
        frames_sent: u64,
        frames_received: u64,
        bytes_sent: u64,
        bytes_received: u64,
    },
}

#[derive(Serialize)]
pub(super) struct Checks {
    passed: u64,
    failed: u64,
}

#[derive(Serialize)]
pub(super) struct Arrivals {
    planned: u64,
    started: u64,
    dropped: u64,
    dropped_max_users: u64,
    dropped_max_inflight: u64,
    dropped_behind_schedule: u64,
}

#[derive(Serialize)]
pub(super) struct Users {
    active: u64,
    completed: u64,
    failed: u64,
    cut_off: u64,
}

#[derive(Serialize)]
pub(super) struct Connections {
    websockets: u64,
    http: u64,
}

#[derive(Serialize)]
pub(super) struct Messages {
    sent: u64,
    acked: u64,
    delivered: u64,
    duplicated: u64,
    reordered: u64,
}

/// An interval's lines: its `interval` line, then its `metric` lines.
fn lines<'a>(view: &IntervalView<'a>) -> Vec<Line<'a>> {
    let mut out = vec![interval_line(view)];
    out.extend(metric_lines(view));
    out
}

fn head<'a>(view: &IntervalView<'a>, kind: &'static str) -> Head<'a> {
    let iv = view.interval;
    Head {
        schema: SCHEMA,
        kind,
        interval: iv.index,
        start_s: crate::decimals::round(iv.start.as_secs_f64(), 3),
        end_s: crate::decimals::round(iv.end.as_secs_f64(), 3),
        phase: view.phase,
    }
}

fn by_class(errors: &[u64; ErrorClass::COUNT]) -> BTreeMap<&'static str, u64> {
    ErrorClass::ALL
        .iter()
        .map(|c| (c.name(), errors[*c as usize]))
        .filter(|(_, n)| *n > 0)
        .collect()
}

/// The interval's `interval` line.
pub(super) fn interval_line<'a>(view: &IntervalView<'a>) -> Line<'a> {
    let iv = view.interval;
    let r = &iv.recorder;
    let mut all_errors = [0u64; ErrorClass::COUNT];
    for m in &r.metrics {
        for (sum, n) in all_errors.iter_mut().zip(m.errors) {
            *sum += n;
        }
    }
    Line::Interval {
        head: head(view, "interval"),
        arrivals: Arrivals {
            planned: r.counter(Counter::ArrivalsPlanned),
            started: r.counter(Counter::ArrivalsStarted),
            dropped: r.counter(Counter::ArrivalsDropped),
            dropped_max_users: r.counter(Counter::DroppedMaxUsers),
            dropped_max_inflight: r.counter(Counter::DroppedMaxInflight),
            dropped_behind_schedule: r.counter(Counter::DroppedBehindSchedule),
        },
        users: Users {
            active: iv.active_users,
            completed: r.users.completed,
            failed: r.users.failed,
            cut_off: r.users.cut_off,
        },
        open_connections: Connections {
            websockets: iv.open_websockets,
            http: iv.open_http,
        },
        messages: Messages {
            sent: r.counter(Counter::MessagesSent),
            acked: r.counter(Counter::MessagesAcked),
            delivered: r.counter(Counter::MessagesDelivered),
            duplicated: r.counter(Counter::MessagesDuplicated),
            reordered: r.counter(Counter::MessagesReordered),
        },
        errors_by_class: by_class(&all_errors),
        checks: Checks {
            passed: r.checks.iter().map(|c| c[0]).sum(),
            failed: r.checks.iter().map(|c| c[1]).sum(),
        },
        bytes_sent: r.counter(Counter::BytesSent),
        bytes_received: r.counter(Counter::BytesReceived),
        worker_cpu_max: crate::decimals::round(iv.worker_cpu_max, 3),
    }
}

/// The interval's `metric` lines: one per metric that saw anything in it.
pub(super) fn metric_lines<'a>(view: &IntervalView<'a>) -> Vec<Line<'a>> {
    let r = &view.interval.recorder;
    let mut out = Vec::new();
    for (m, name) in view.catalog.all() {
        if m.index() >= r.metrics.len() {
            continue;
        }
        let rec = r.metric(m);
        let retries = rec.retry_count();
        let frames = rec.frames_sent + rec.frames_received + rec.bytes_sent + rec.bytes_received;
        // Every metric that saw anything in the interval; the lag probes' values count too.
        let values = rec.latency.len();
        if rec.count() + retries + rec.reconnects + frames + values == 0 {
            continue;
        }
        out.push(Line::Metric {
            head: head(view, "metric"),
            metric: name,
            count: rec.count(),
            errors: rec.error_count(),
            errors_by_class: by_class(&rec.errors),
            latency_ms: view.interval_latency(m),
            retries,
            reconnects: rec.reconnects,
            frames_sent: rec.frames_sent,
            frames_received: rec.frames_received,
            bytes_sent: rec.bytes_sent,
            bytes_received: rec.bytes_received,
        });
    }
    out
}
