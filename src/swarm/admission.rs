//! Admission: whether an arrival may still start, and how every planned arrival is counted.
//!
//! An arrival is due at its intended time and must start before its deadline: the schedule's end
//! (plus the stop slack), or `intended + [run] max_start_lag` when that comes first. A saturated
//! worker reaches arrivals late; the ones it reaches after their deadline are dropped as
//! `behind_schedule` instead of being counted as started and then skipped. `planned` is recorded
//! in the same call as the arrival's one outcome (started, or dropped by reason), so
//! planned = started + Σ dropped holds in every interval, hence per phase and in total. Each
//! arrival is also counted by the interval it was due in (`Recorder::due`), for the charts.

use std::time::Duration;

use super::{RunState, WorkerCtx, STOP_SLACK};
use crate::compiled::Plan;
use crate::metrics::{Counter, MetricId};

/// The latest time (from the run's start) at which an arrival meant for `intended` may start.
pub fn start_deadline(plan: &Plan, intended: Duration) -> Duration {
    let end = plan.duration() + STOP_SLACK;
    match plan.max_start_lag {
        Some(lag) => end.min(intended + lag),
        None => end,
    }
}

impl WorkerCtx {
    /// Whether an arrival meant for `intended` can no longer start: the run stopped starting
    /// users, or its deadline has passed.
    pub fn too_late(&self, intended: Duration) -> bool {
        self.too_late_at(intended, self.now())
    }

    fn too_late_at(&self, intended: Duration, now: Duration) -> bool {
        *self.shared.state.borrow() != RunState::Running
            || now > start_deadline(self.plan(), intended)
    }

    /// Decides, at the moment a user would begin its flow, whether it may: true counts it as
    /// planned and started (with its schedule lag, and as returned for a returning user); false
    /// counts it as planned and dropped behind schedule.
    pub fn admit(&self, region: Option<usize>, intended: Duration, returning: bool) -> bool {
        // One reading of the clock decides and is the lag: a started arrival's lag never
        // exceeds the limit it was admitted under, however long a preemption in between.
        let now = self.now();
        if self.too_late_at(intended, now) {
            self.drop_arrival(region, intended, Counter::DroppedBehindSchedule);
            return false;
        }
        let lag = now.saturating_sub(intended);
        let due = crate::schedule::next_boundary(self.plan(), intended);
        self.record_in(region, |r| {
            r.add(Counter::ArrivalsPlanned, 1);
            r.due(due, false);
            r.add(Counter::ArrivalsStarted, 1);
            if returning {
                r.add(Counter::UsersReturned, 1);
            }
            r.value(MetricId::SCHEDULE_LAG, lag);
        });
        true
    }

    /// Counts a planned arrival, meant for `intended`, that did not start, under `reason`.
    pub fn drop_arrival(&self, region: Option<usize>, intended: Duration, reason: Counter) {
        let due = crate::schedule::next_boundary(self.plan(), intended);
        self.record_in(region, |r| {
            r.add(Counter::ArrivalsPlanned, 1);
            r.due(due, true);
            r.drop_arrival(reason, 1);
        });
    }

    /// After the run stopped starting users: an arrival meant for `intended` that was already
    /// due (before now and before the schedule's end) is counted as dropped behind schedule;
    /// a later one was never due, so it was never planned. True when it was counted.
    pub fn missed(&self, region: Option<usize>, intended: Duration) -> bool {
        let due = intended < self.now().min(self.plan().duration());
        if due {
            self.drop_arrival(region, intended, Counter::DroppedBehindSchedule);
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_deadline_is_the_schedules_end_or_the_start_lag_limit_whichever_is_first() {
        let text = "name = \"t\"\n[target]\nbuiltin = {}\n[load]\nphases = [ { name = \"a\", duration = \"10s\", rate = 1 } ]\n";
        let mut plan = crate::compiled::compile(std::path::Path::new("t.toml"), text, Some(1))
            .expect("valid scenario");
        let s = Duration::from_secs;
        assert_eq!(start_deadline(&plan, s(1)), s(10) + STOP_SLACK);
        plan.max_start_lag = Some(Duration::from_millis(500));
        assert_eq!(start_deadline(&plan, s(1)), Duration::from_millis(1500));
        // Near the end, the schedule's end still comes first.
        assert_eq!(start_deadline(&plan, s(10)), s(10) + STOP_SLACK);
    }
}
