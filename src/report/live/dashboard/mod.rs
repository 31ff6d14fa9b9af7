//! `--dashboard ADDR`: a live web page served by the run itself (docs/live.md, "Dashboard").
//!
//! The sink turns each interval into one small JSON event on the run's control thread (the
//! `--stream` lines of the interval, the run's totals so far and the thresholds so far) and
//! appends it to the board; the server (`server.rs`) only copies events out of it: one short
//! lock per interval and per client wake-up, none per sample. Every event is kept (a few KB per
//! interval, so about 10 MB for an hour), so a browser that reconnects with `Last-Event-ID` and
//! a late joiner get every interval since the start.
//!
//! Read-only: nothing the page or a client sends reaches the run.

mod server;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use indexmap::IndexMap;
use serde::Serialize;

use super::stream;
use super::{IntervalSink, IntervalView};
use crate::error::Error;
use crate::metrics::recorder::ErrorClass;
use crate::metrics::MetricId;
use crate::report::summary::{self, Latency, MetricSummary, Summary, ThresholdResult};

pub use server::Dashboard;

/// The `schema` field of `/state` and of every event.
pub const SCHEMA: &str = "inrush.dashboard/1";

/// What the run knows before it starts, shown from the first paint.
#[derive(Debug, Clone, Serialize)]
pub struct Setup {
    pub scenario: String,
    /// The schedule's length, seconds (the drain comes after it).
    pub duration_s: f64,
    pub phases: Vec<PhaseMark>,
    /// The thresholds' expressions, in the scenario's order (the command line's after).
    pub thresholds: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PhaseMark {
    pub name: String,
    pub start_s: f64,
    pub end_s: f64,
}

/// One event: `interval` (one per interval) or `end` (the last, once the report is written).
struct Event {
    kind: &'static str,
    data: Arc<str>,
}

/// Everything served, behind one lock: the setup and every event so far, in order (an event's
/// id is its position), and once the run has ended the run directory served at `/report/`.
struct Board {
    setup: String,
    events: Vec<Event>,
    report_dir: Option<PathBuf>,
}

/// The board and the signal that wakes the event streams when an event is appended.
struct Shared {
    board: Mutex<Board>,
    /// The number of events; the streams wait on its changes.
    events: tokio::sync::watch::Sender<usize>,
}

impl Shared {
    fn new(setup: &Setup) -> Shared {
        Shared {
            board: Mutex::new(Board {
                setup: serde_json::to_string(setup).unwrap_or_else(|_| "null".into()),
                events: Vec::new(),
                report_dir: None,
            }),
            events: tokio::sync::watch::Sender::new(0),
        }
    }

    /// A poisoned lock only means a panic elsewhere while appending; the events are still whole.
    fn board(&self) -> MutexGuard<'_, Board> {
        self.board.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn push(&self, kind: &'static str, data: String) {
        let n = {
            let mut board = self.board();
            board.events.push(Event {
                kind,
                data: data.into(),
            });
            board.events.len()
        };
        self.events.send_replace(n);
    }

    /// `GET /state`: the setup, every interval event, and the end event once there is one.
    fn state(&self) -> String {
        let board = self.board();
        let mut intervals = Vec::with_capacity(board.events.len());
        let mut end = None;
        for e in &board.events {
            match e.kind {
                END => end = Some(&*e.data),
                _ => intervals.push(&*e.data),
            }
        }
        // `next`: the id the next event will have (an EventSource resumes from it).
        format!(
            "{{\"schema\":\"{SCHEMA}\",\"next\":{},\"setup\":{},\"latest\":{},\"end\":{},\"intervals\":[{}]}}",
            board.events.len(),
            board.setup,
            intervals.last().copied().unwrap_or("null"),
            end.unwrap_or("null"),
            intervals.join(",")
        )
    }
}

const INTERVAL: &str = "interval";
const END: &str = "end";

/// The sink feeding the dashboard's board from the run loop.
pub struct DashboardSink {
    shared: Arc<Shared>,
    /// The schedule's length: rates are per second of load, as in summary.json.
    duration_s: f64,
}

impl IntervalSink for DashboardSink {
    fn interval(&mut self, view: &IntervalView<'_>) {
        let tick = Tick::of(view, self.duration_s);
        // Plain data of numbers and names: serializing it cannot fail.
        if let Ok(data) = serde_json::to_string(&tick) {
            self.shared.push(INTERVAL, data);
        }
    }

    fn finish(&mut self) -> Result<(), Error> {
        Ok(())
    }

    fn wants_thresholds(&self) -> bool {
        true
    }
}

/// An `interval` event's data.
#[derive(Serialize)]
struct Tick<'a> {
    schema: &'static str,
    /// The interval's `--stream` line (arrivals, users, connections, messages, errors).
    interval: stream::Line<'a>,
    /// Its `--stream` metric lines (one per metric that saw anything in it).
    metrics: Vec<stream::Line<'a>>,
    /// The run so far.
    totals: Totals,
    /// The thresholds evaluated against the run so far (empty when it has none).
    thresholds: &'a [ThresholdResult],
}

/// The run from its start to the end of the interval, in summary.json's shapes.
#[derive(Serialize)]
struct Totals {
    elapsed_s: f64,
    arrivals: summary::Arrivals,
    messages: summary::Messages,
    users: Users,
    errors_by_class: BTreeMap<&'static str, u64>,
    /// Every reported metric, as summary.json's `metrics` (rates per second of load so far).
    metrics: IndexMap<String, MetricSummary>,
    schedule_lag_ms: Option<Latency>,
    loop_lag_ms: Option<Latency>,
}

#[derive(Serialize)]
struct Users {
    active: u64,
    completed: u64,
    failed: u64,
    cut_off: u64,
    open_websockets: u64,
    open_http: u64,
}

impl<'a> Tick<'a> {
    fn of(view: &IntervalView<'a>, duration_s: f64) -> Tick<'a> {
        let (iv, t) = (view.interval, view.totals);
        let elapsed_s = iv.end.as_secs_f64();
        let mut errors_by_class = BTreeMap::new();
        for m in &t.metrics {
            for c in ErrorClass::ALL {
                let n = m.errors[c as usize];
                if n > 0 {
                    *errors_by_class.entry(c.name()).or_default() += n;
                }
            }
        }
        let lag = |m: MetricId| {
            if m.index() < t.metrics.len() {
                view.total_latency(m).0
            } else {
                None
            }
        };
        Tick {
            schema: SCHEMA,
            interval: stream::interval_line(view),
            metrics: stream::metric_lines(view),
            totals: Totals {
                elapsed_s: (elapsed_s * 1000.0).round() / 1000.0,
                arrivals: summary::arrivals_of(t),
                messages: summary::messages_with(
                    t,
                    None,
                    view.total_latency(MetricId::MESSAGE_DELIVERY).0,
                ),
                users: Users {
                    active: iv.active_users,
                    completed: t.users.completed,
                    failed: t.users.failed,
                    cut_off: t.users.cut_off,
                    open_websockets: iv.open_websockets,
                    open_http: iv.open_http,
                },
                errors_by_class,
                metrics: summary::metrics_with(
                    t,
                    view.catalog,
                    elapsed_s.min(duration_s),
                    |m| view.total_latency(m).0,
                    // Not shown on the page (summary.json has it at the end): one walk of
                    // every histogram less per interval.
                    |_| None,
                ),
                schedule_lag_ms: lag(MetricId::SCHEDULE_LAG),
                loop_lag_ms: lag(MetricId::LOOP_LAG),
            },
            thresholds: view.thresholds,
        }
    }
}

/// The `end` event's data: the verdict, the final summary and where the report is.
#[derive(Serialize)]
struct End<'a> {
    schema: &'static str,
    verdict: &'a str,
    /// The run directory, as the run printed it.
    report: String,
    /// Its files served at `/report/` (the page links them).
    files: Vec<String>,
    summary: &'a Summary,
}

impl End<'_> {
    fn json(summary: &Summary, dir: &Path) -> String {
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok())
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
                    .filter_map(|e| e.file_name().into_string().ok())
                    .filter(|name| server::servable(name))
                    .collect()
            })
            .unwrap_or_default();
        files.sort();
        let end = End {
            schema: SCHEMA,
            verdict: summary.verdict.word(),
            report: dir.display().to_string(),
            files,
            summary,
        };
        serde_json::to_string(&end).unwrap_or_else(|e| {
            format!("{{\"schema\":\"{SCHEMA}\",\"error\":\"cannot serialize the summary: {e}\"}}")
        })
    }
}
