//! The collector: lines up the workers' interval snapshots, merges each interval once, and
//! accumulates the run's totals, per-phase totals and timeline. Pure data handling; the caller
//! feeds it from the channel and writes what it returns.

use std::collections::BTreeMap;
use std::time::Duration;

use super::timeline::{IntervalMetric, IntervalPoint, PeakConnections, PhaseSpan, Spool, Timeline};
use super::{Catalog, Counter, ErrorClass, Recorder};

/// One worker's recorder for one interval, moved out of the worker at the interval's end.
#[derive(Debug)]
pub struct Snapshot {
    pub worker: usize,
    pub interval: u64,
    pub start: Duration,
    pub end: Duration,
    pub recorder: Recorder,
    /// The same interval per region (empty without regions).
    pub regions: Vec<Recorder>,
    pub active_users: u64,
    /// Its users' open WebSockets and HTTP connections at the snapshot.
    pub open_websockets: u64,
    pub open_http: u64,
    /// The worker thread's CPU time over the wall time since its previous snapshot, 0 to 1.
    pub cpu_busy: f64,
    /// The worker is done: it sends nothing after this.
    pub last: bool,
}

/// One interval merged across all workers.
#[derive(Debug)]
pub struct Interval {
    pub index: u64,
    pub start: Duration,
    pub end: Duration,
    pub recorder: Recorder,
    /// Per region, in the plan's order.
    pub regions: Vec<Recorder>,
    pub active_users: u64,
    pub open_websockets: u64,
    pub open_http: u64,
    /// The busiest worker's CPU share in this interval, 0 to 1.
    pub worker_cpu_max: f64,
}

#[derive(Debug, Default, Clone, Copy)]
struct WorkerMark {
    /// The last interval this worker reported.
    last: Option<u64>,
    finished: bool,
}

/// One phase of the schedule, as the collector needs it: where its intervals go.
#[derive(Debug, Clone, PartialEq)]
pub struct PhaseWindow {
    pub name: String,
    /// From the run's start.
    pub start: Duration,
    pub end: Duration,
}

/// What the collector knows of the run, as plain data (the caller takes it from the plan).
#[derive(Debug, Clone)]
pub struct RunLayout {
    pub catalog: Catalog,
    /// The schedule's phases, in order.
    pub phases: Vec<PhaseWindow>,
    /// How many regions the snapshots' per-region recorders hold.
    pub regions: usize,
}

impl RunLayout {
    /// The phase that contains `t` (the last phase for any later time).
    pub fn phase_at(&self, t: Duration) -> usize {
        self.phases
            .iter()
            .position(|p| t < p.end)
            .unwrap_or(self.phases.len().saturating_sub(1))
    }
}

pub struct Collector {
    layout: RunLayout,
    workers: Vec<WorkerMark>,
    open: BTreeMap<u64, Interval>,
    /// Every interval merged so far.
    pub totals: Recorder,
    /// Per phase, by the phase the interval lies in (the drain counts with the last phase).
    pub phases: Vec<Recorder>,
    /// Per region, over the whole run.
    pub regions: Vec<Recorder>,
    /// The timeline's points not yet in the spool (all of them without one).
    pub timeline: Timeline,
    /// Each merged interval's length and its busiest worker's CPU share (seconds, 0..1): what
    /// the summary reads of the timeline, kept whatever the spool holds (8 bytes a second).
    pub cpu_shares: Vec<(f32, f32)>,
    /// End of the last merged interval, seconds from the start.
    pub last_end_s: f64,
    /// The most connections open at an interval's end, whatever the spool holds.
    pub peak_connections: PeakConnections,
    spool: Option<Spool>,
}

/// Points kept in memory before they go to the spool.
const SPOOL_EVERY: usize = 60;

impl Collector {
    pub fn new(layout: RunLayout, workers: usize) -> Self {
        let n = layout.catalog.len();
        let phases = layout.phases.iter().map(|_| Recorder::new(n)).collect();
        let regions = (0..layout.regions).map(|_| Recorder::new(n)).collect();
        let spans = layout
            .phases
            .iter()
            .map(|p| PhaseSpan {
                name: p.name.clone(),
                start_s: p.start.as_secs_f64(),
                end_s: p.end.as_secs_f64(),
            })
            .collect();
        Collector {
            layout,
            workers: vec![WorkerMark::default(); workers],
            open: BTreeMap::new(),
            totals: Recorder::new(n),
            phases,
            regions,
            timeline: Timeline {
                points: Vec::new(),
                phases: spans,
            },
            cpu_shares: Vec::new(),
            last_end_s: 0.0,
            peak_connections: PeakConnections::default(),
            spool: None,
        }
    }

    /// Keeps the timeline's points in `spool` as they complete, so that memory does not grow
    /// with the run's length; [`Collector::take_timeline`] reads them back.
    pub fn spool_to(&mut self, spool: Spool) {
        self.spool = Some(spool);
    }

    /// The whole timeline, spooled points first; the collector keeps none of it.
    pub fn take_timeline(&mut self) -> Result<Timeline, crate::error::Error> {
        let mut points = match self.spool.take() {
            Some(spool) => spool.read_back()?,
            None => Vec::new(),
        };
        points.append(&mut self.timeline.points);
        Ok(Timeline {
            points,
            phases: self.timeline.phases.clone(),
        })
    }

    pub fn all_finished(&self) -> bool {
        self.workers.iter().all(|w| w.finished)
    }

    /// Takes one snapshot; returns the intervals that are now complete (every worker reported
    /// them or finished before them), in order, already folded into the totals.
    pub fn ingest(&mut self, s: Snapshot) -> Vec<Interval> {
        let n = self.layout.catalog.len();
        let acc = self.open.entry(s.interval).or_insert_with(|| Interval {
            index: s.interval,
            start: s.start,
            end: s.end,
            recorder: Recorder::new(n),
            regions: Vec::new(),
            active_users: 0,
            open_websockets: 0,
            open_http: 0,
            worker_cpu_max: 0.0,
        });
        acc.start = acc.start.min(s.start);
        acc.end = acc.end.max(s.end);
        acc.recorder.merge(&s.recorder);
        if acc.regions.len() < s.regions.len() {
            acc.regions
                .resize_with(s.regions.len(), || Recorder::new(n));
        }
        for (a, b) in acc.regions.iter_mut().zip(&s.regions) {
            a.merge(b);
        }
        acc.active_users += s.active_users;
        acc.open_websockets += s.open_websockets;
        acc.open_http += s.open_http;
        acc.worker_cpu_max = acc.worker_cpu_max.max(s.cpu_busy);
        if let Some(w) = self.workers.get_mut(s.worker) {
            w.last = Some(s.interval);
            w.finished |= s.last;
        }
        let mut done = Vec::new();
        while let Some((&k, _)) = self.open.first_key_value() {
            let complete = self.workers.iter().all(|w| match w.last {
                Some(last) => last >= k || w.finished,
                None => false,
            });
            if !complete {
                break;
            }
            if let Some((_, mut iv)) = self.open.pop_first() {
                self.absorb(&mut iv);
                done.push(iv);
            }
        }
        done
    }

    fn absorb(&mut self, iv: &mut Interval) {
        // Arrivals by when they were due go to the timeline only (to this interval's point or an
        // earlier one), not into the run's totals.
        let due = std::mem::take(&mut iv.recorder.due);
        for r in &mut iv.regions {
            r.due.clear();
        }
        self.totals.merge(&iv.recorder);
        for (a, b) in self.regions.iter_mut().zip(&iv.regions) {
            a.merge(b);
        }
        let phase = self.layout.phase_at(iv.start);
        if let Some(p) = self.phases.get_mut(phase) {
            p.merge(&iv.recorder);
        }
        let p = point(&self.layout.catalog, iv);
        self.cpu_shares
            .push((p.duration_s() as f32, p.worker_cpu_max as f32));
        self.last_end_s = p.end_s;
        self.peak_connections.add(&p);
        self.timeline.points.push(p);
        if let Some(spool) = self.spool.as_mut() {
            if self.timeline.points.len() >= SPOOL_EVERY {
                spool.write(self.timeline.points.drain(..));
            }
        }
        for d in due {
            let key = d.interval_end.as_secs_f64();
            // The interval the arrivals were due in: the last one starting before its end.
            if let Some(p) = self
                .timeline
                .points
                .iter_mut()
                .rev()
                .find(|p| p.start_s < key)
            {
                p.planned_due += d.planned;
                p.dropped_due += d.dropped;
            }
        }
    }
}

fn ms(micros: u64) -> f64 {
    micros as f64 / 1000.0
}

fn point(catalog: &Catalog, iv: &Interval) -> IntervalPoint {
    let r = &iv.recorder;
    let metrics = catalog
        .all()
        .filter_map(|(m, name)| {
            let rec = r.metric(m);
            let count = rec.count();
            let retries = rec.retry_count();
            let frames = rec.frames_sent + rec.frames_received;
            (count + retries + rec.reconnects + frames > 0).then(|| {
                let h = &rec.latency;
                let ok = !h.is_empty();
                let q = |p: f64| if ok { ms(h.value_at_quantile(p)) } else { 0.0 };
                (
                    name.to_string(),
                    IntervalMetric {
                        count,
                        errors: rec.error_count(),
                        p50_ms: q(0.5),
                        p90_ms: q(0.9),
                        p99_ms: q(0.99),
                        max_ms: if ok { ms(h.max()) } else { 0.0 },
                        retries,
                        reconnects: rec.reconnects,
                        frames_sent: rec.frames_sent,
                        frames_received: rec.frames_received,
                    },
                )
            })
        })
        .collect();
    IntervalPoint {
        start_s: iv.start.as_secs_f64(),
        end_s: iv.end.as_secs_f64(),
        metrics,
        active_users: iv.active_users,
        open_connections: iv.open_websockets + iv.open_http,
        open_http: iv.open_http,
        worker_cpu_max: (iv.worker_cpu_max * 1000.0).round() / 1000.0,
        planned_arrivals: r.counter(Counter::ArrivalsPlanned),
        // Filled as the arrivals due in this interval are decided (in this or a later one).
        planned_due: 0,
        dropped_due: 0,
        started_arrivals: r.counter(Counter::ArrivalsStarted),
        dropped_arrivals: r.counter(Counter::ArrivalsDropped),
        errors_by_class: ErrorClass::ALL
            .iter()
            .map(|c| {
                let n: u64 = r.metrics.iter().map(|m| m.errors[*c as usize]).sum();
                (c.name().to_string(), n)
            })
            .filter(|(_, n)| *n > 0)
            .collect(),
        users_completed: r.users.completed,
        users_failed: r.users.failed,
        users_cut_off: r.users.cut_off,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The one step metric of the catalog below.
    fn register() -> crate::metrics::MetricId {
        crate::metrics::MetricId(crate::metrics::MetricId::FIRST_STEP)
    }

    fn snapshot(worker: usize, interval: u64, last: bool, users: u64) -> Snapshot {
        let mut recorder = Recorder::new(register().index() + 1);
        recorder.add(Counter::ArrivalsStarted, 1);
        recorder.value(register(), Duration::from_millis(10));
        Snapshot {
            worker,
            interval,
            start: Duration::from_secs(interval),
            end: Duration::from_secs(interval + 1),
            recorder,
            regions: Vec::new(),
            active_users: users,
            open_websockets: users,
            open_http: 1,
            cpu_busy: 0.5,
            last,
        }
    }

    #[test]
    fn an_interval_completes_when_every_live_worker_reported_it() {
        // As the plan of a scenario with one 3 s phase and one flow step, `register`.
        let layout = RunLayout {
            catalog: Catalog::new(["register"]),
            phases: vec![PhaseWindow {
                name: "a".into(),
                start: Duration::ZERO,
                end: Duration::from_secs(3),
            }],
            regions: 0,
        };
        let mut c = Collector::new(layout, 2);
        assert!(c.ingest(snapshot(0, 0, false, 2)).is_empty());
        let done = c.ingest(snapshot(1, 0, false, 3));
        assert_eq!(done.len(), 1);
        assert_eq!(done[0].active_users, 5);
        // Gauges add up across workers, each kind apart.
        assert_eq!((done[0].open_websockets, done[0].open_http), (5, 2));
        assert_eq!(done[0].recorder.counter(Counter::ArrivalsStarted), 2);
        // Worker 1 finishes at interval 1; worker 0 goes on alone.
        assert!(c.ingest(snapshot(1, 1, true, 0)).is_empty());
        assert_eq!(c.ingest(snapshot(0, 1, false, 1)).len(), 1);
        assert_eq!(c.ingest(snapshot(0, 2, true, 0)).len(), 1);
        assert!(c.all_finished());
        assert_eq!(c.totals.counter(Counter::ArrivalsStarted), 5);
        assert_eq!(c.totals.metric(register()).count(), 5);
        assert_eq!(c.timeline.points.len(), 3);
        assert_eq!(c.timeline.points[0].metrics["register"].count, 2);
        assert_eq!(
            (
                c.timeline.points[0].open_connections,
                c.timeline.points[0].open_http
            ),
            (7, 2)
        );
        // Each peak is its own: 7 connections, 5 WebSockets (interval 0), 2 HTTP.
        let peak = c.peak_connections;
        assert_eq!((peak.all, peak.websockets, peak.http), (7, 5, 2));
    }

    #[test]
    fn a_spooled_timeline_keeps_little_in_memory_and_reads_back_whole() {
        let layout = RunLayout {
            catalog: Catalog::new(["register"]),
            phases: vec![PhaseWindow {
                name: "a".into(),
                start: Duration::ZERO,
                end: Duration::from_secs(1_000),
            }],
            regions: 0,
        };
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join(".timeline.spool.jsonl");
        let mut c = Collector::new(layout, 1);
        c.spool_to(Spool::create(&path).expect("spool"));
        for i in 0..250 {
            assert_eq!(c.ingest(snapshot(0, i, i == 249, i)).len(), 1);
            assert!(
                c.timeline.points.len() < SPOOL_EVERY,
                "at most a minute in memory"
            );
        }
        assert_eq!((c.cpu_shares.len(), c.last_end_s), (250, 250.0));
        let timeline = c.take_timeline().expect("read back");
        assert_eq!(timeline.points.len(), 250);
        for (i, p) in timeline.points.iter().enumerate() {
            assert_eq!(
                (p.start_s, p.active_users),
                (i as f64, i as u64),
                "in order"
            );
        }
        assert_eq!(timeline.phases.len(), 1);
        assert!(!path.exists(), "the spool is removed once read");
    }

    #[test]
    fn arrivals_decided_late_are_charted_in_the_interval_they_were_due() {
        let layout = RunLayout {
            catalog: Catalog::new(["register"]),
            phases: vec![PhaseWindow {
                name: "a".into(),
                start: Duration::ZERO,
                end: Duration::from_secs(2),
            }],
            regions: 0,
        };
        let mut c = Collector::new(layout, 1);
        let mut first = snapshot(0, 0, false, 0);
        first.recorder.due(Duration::from_secs(1), false);
        c.ingest(first);
        // Decided in the second interval: two due in the first (one dropped), one in the second.
        let mut second = snapshot(0, 1, true, 0);
        second.recorder.due(Duration::from_secs(1), true);
        second.recorder.due(Duration::from_secs(1), false);
        second.recorder.due(Duration::from_secs(2), false);
        assert_eq!(second.recorder.due.len(), 2, "one entry per interval due");
        c.ingest(second);
        let points = &c.timeline.points;
        assert_eq!((points[0].planned_due, points[0].dropped_due), (3, 1));
        assert_eq!((points[1].planned_due, points[1].dropped_due), (1, 0));
        // Not part of the run's totals.
        assert!(c.totals.due.is_empty() && c.phases[0].due.is_empty());
    }
}
