//! The shards' intervals merged onto one time axis. Every shard cuts its run at the same
//! schedule times (whole seconds and phase ends, `schedule::next_boundary`), so their intervals
//! share boundaries; each shard's are moved by its start offset (its time zero after the
//! earliest shard's, on the wall clock) and placed in the merged interval holding their
//! midpoint. With `--start-at` and synced clocks the offsets are milliseconds and every shard's
//! interval k lands in merged interval k; a shard that started seconds late lands seconds later,
//! where the target saw its load.
//!
//! Histograms are merged with HdrHistogram's `add`, interval by interval and tag by tag: the
//! merged log holds every sample of every shard, so its percentiles are exact to HDR precision.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use hdrhistogram::Histogram;

use crate::metrics::hlog::Entry;
use crate::metrics::recorder::new_histogram;
use crate::metrics::timeline::{IntervalMetric, IntervalPoint, Timeline};
use crate::report::summary::Latency;

/// The merged run's intervals, `(start_s, end_s)` in order, grown by whole seconds past the
/// shards' last one when a late shard needs it.
pub struct Grid {
    bounds: Vec<(f64, f64)>,
}

impl Grid {
    /// The shards' own intervals, unshifted: one grid for them all.
    pub fn of<'a>(timelines: impl IntoIterator<Item = &'a Timeline>) -> Grid {
        let mut all: Vec<(f64, f64)> = timelines
            .into_iter()
            .flat_map(|t| t.points.iter().map(|p| (p.start_s, p.end_s)))
            .collect();
        all.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut bounds: Vec<(f64, f64)> = Vec::new();
        for (start, end) in all {
            match bounds.last_mut() {
                // The same interval in another shard (its last one may end earlier).
                Some(last) if (start - last.0).abs() < 1e-4 => last.1 = last.1.max(end),
                Some(last) => {
                    last.1 = start;
                    bounds.push((start, end));
                }
                None => bounds.push((start, end)),
            }
        }
        Grid { bounds }
    }

    /// The interval holding `t` (seconds from the merged run's start).
    pub fn slot(&mut self, t: f64) -> usize {
        if self.bounds.is_empty() {
            self.bounds.push((0.0, 1.0));
        }
        while let Some(&(_, end)) = self.bounds.last().filter(|&&(_, end)| t >= end) {
            self.bounds.push((end, end + 1.0));
        }
        self.bounds
            .partition_point(|&(start, _)| start <= t)
            .saturating_sub(1)
    }

    /// Ends the last interval no earlier than `end`: the grid is the shards' own intervals,
    /// unshifted, so a shard that started later ends its run up to its offset after them.
    pub fn reach(&mut self, end: f64) {
        if let Some(last) = self.bounds.last_mut() {
            last.1 = last.1.max(end);
        }
    }

    pub fn bounds(&self, slot: usize) -> (f64, f64) {
        self.bounds.get(slot).copied().unwrap_or_default()
    }
}

/// Merged histograms by (interval, tag).
pub type Histograms = BTreeMap<(usize, String), Histogram<u64>>;

/// Adds one shard's hlog entries, moved by `offset_s`, into `merged`.
pub fn add_hlog(merged: &mut Histograms, grid: &mut Grid, entries: Vec<Entry>, offset_s: f64) {
    for e in entries {
        let mid = e.start.as_secs_f64() + e.duration.as_secs_f64() / 2.0 + offset_s;
        let key = (grid.slot(mid), e.tag.unwrap_or_default());
        let h = merged.entry(key).or_insert_with(new_histogram);
        // Auto-resizing histograms take any value range.
        let _ = h.add(&e.histogram);
    }
}

/// The merged log's entries, in time order.
pub fn hlog_entries(merged: Histograms, grid: &Grid) -> Vec<Entry> {
    merged
        .into_iter()
        .map(|((slot, tag), histogram)| {
            let (start, end) = grid.bounds(slot);
            Entry {
                tag: (!tag.is_empty()).then_some(tag),
                start: Duration::from_secs_f64(start.max(0.0)),
                duration: Duration::from_secs_f64((end - start).max(0.0)),
                histogram,
            }
        })
        .collect()
}

/// Merged timeline points by interval.
#[derive(Default)]
pub struct Points {
    by_slot: BTreeMap<usize, IntervalPoint>,
}

impl Points {
    /// Adds one shard's timeline, moved by `offset_s`: counts summed, gauges (users and
    /// connections open at an interval's end) summed over shards, the busiest worker's share
    /// the largest.
    pub fn add(&mut self, grid: &mut Grid, timeline: &Timeline, offset_s: f64) {
        // A shard's gauges at the end of a merged interval: its last point's in it.
        let mut gauges: HashMap<usize, (u64, u64, u64)> = HashMap::new();
        for p in &timeline.points {
            let slot = grid.slot((p.start_s + p.end_s) / 2.0 + offset_s);
            gauges.insert(slot, (p.active_users, p.open_connections, p.open_http));
            let m = self.by_slot.entry(slot).or_default();
            for (name, im) in &p.metrics {
                let x = m.metrics.entry(name.clone()).or_default();
                x.count += im.count;
                x.errors += im.errors;
                x.retries += im.retries;
                x.reconnects += im.reconnects;
                x.frames_sent += im.frames_sent;
                x.frames_received += im.frames_received;
            }
            m.worker_cpu_max = m.worker_cpu_max.max(p.worker_cpu_max);
            m.planned_arrivals += p.planned_arrivals;
            m.started_arrivals += p.started_arrivals;
            m.dropped_arrivals += p.dropped_arrivals;
            m.planned_due += p.planned_due;
            m.dropped_due += p.dropped_due;
            for (class, n) in &p.errors_by_class {
                *m.errors_by_class.entry(class.clone()).or_default() += n;
            }
            m.users_completed += p.users_completed;
            m.users_failed += p.users_failed;
            m.users_cut_off += p.users_cut_off;
        }
        for (slot, (users, open, http)) in gauges {
            let m = self.by_slot.entry(slot).or_default();
            m.active_users += users;
            m.open_connections += open;
            m.open_http += http;
        }
    }

    /// The merged timeline: each interval's bounds from the grid, its percentiles from the
    /// merged histograms.
    pub fn timeline(
        self,
        grid: &Grid,
        histograms: &Histograms,
        phases: Vec<crate::metrics::timeline::PhaseSpan>,
    ) -> Timeline {
        let points = self
            .by_slot
            .into_iter()
            .map(|(slot, mut p)| {
                (p.start_s, p.end_s) = grid.bounds(slot);
                for (name, m) in p.metrics.iter_mut() {
                    let lat = histograms.get(&(slot, name.clone())).and_then(Latency::of);
                    set_percentiles(m, lat);
                }
                p
            })
            .collect();
        Timeline { points, phases }
    }
}

fn set_percentiles(m: &mut IntervalMetric, lat: Option<Latency>) {
    let l = lat.unwrap_or(Latency {
        min: 0.0,
        mean: 0.0,
        p50: 0.0,
        p90: 0.0,
        p95: 0.0,
        p99: 0.0,
        p999: 0.0,
        p9999: 0.0,
        max: 0.0,
    });
    (m.p50_ms, m.p90_ms, m.p99_ms, m.max_ms) = (l.p50, l.p90, l.p99, l.max);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timeline(bounds: &[(f64, f64)]) -> Timeline {
        Timeline {
            points: bounds
                .iter()
                .map(|&(start_s, end_s)| IntervalPoint {
                    start_s,
                    end_s,
                    active_users: 1,
                    planned_arrivals: 2,
                    ..IntervalPoint::default()
                })
                .collect(),
            phases: Vec::new(),
        }
    }

    #[test]
    fn shards_intervals_share_the_grid_and_a_late_shard_moves_along_it() {
        let a = timeline(&[(0.0, 1.0), (1.0, 1.5), (1.5, 2.3)]);
        let b = timeline(&[(0.0, 1.0), (1.0, 1.5), (1.5, 2.5)]);
        let mut grid = Grid::of([&a, &b]);
        assert_eq!(grid.bounds, vec![(0.0, 1.0), (1.0, 1.5), (1.5, 2.5)]);
        let mut points = Points::default();
        // A few ms apart: interval k on interval k.
        points.add(&mut grid, &a, 0.0);
        points.add(&mut grid, &b, 0.004);
        // Two seconds late: moved two intervals on, the grid grown by whole seconds.
        points.add(&mut grid, &a, 2.0);
        let t = points.timeline(&grid, &Histograms::new(), Vec::new());
        let planned: Vec<u64> = t.points.iter().map(|p| p.planned_arrivals).collect();
        let users: Vec<u64> = t.points.iter().map(|p| p.active_users).collect();
        assert_eq!(t.points[0].start_s, 0.0);
        // Its first two intervals (1.5 s) both end up in the first grown second.
        assert_eq!(planned, vec![4, 4, 4, 4, 2]);
        assert_eq!(users, vec![2, 2, 2, 1, 1]);
        assert_eq!(grid.bounds(4), (3.5, 4.5));
    }
}
