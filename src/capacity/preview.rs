//! What a search will take before it runs, sending nothing (`find-capacity --dry-run`, and
//! `inrush plan` for a scenario with a `[capacity]` section): how many steps the search policy
//! can take and so how long, and whether one generator process reaches `max` (the dry run's
//! verdict on a step at that rate).

use std::fmt::Write as _;
use std::time::Duration;

use super::search::{Judged, Limits, Next, Search};
use super::step::{self, Gates, Settings};
use crate::compiled::Plan;
use crate::estimate::{self, thousands};

/// A search's cost, foreseen.
#[derive(Debug, Clone, PartialEq)]
pub struct Preview {
    pub limits: Limits,
    /// One step's run: warm-up + measured window + the scenario's drain.
    pub step: Duration,
    /// The fewest and the most steps the policy takes, whatever the capacity (a target that
    /// answers each rate the same way every time; each disagreement between a fail and its
    /// repeat adds one step).
    pub steps: (usize, usize),
    /// The dry run's verdict on a step at `max`.
    pub at_max: estimate::Verdict,
    /// Generator cores a step at `max` needs at its peak.
    pub cores_at_max: f64,
    /// Users connected at once at `max`'s peak.
    pub users_at_max: u64,
}

/// Foresees the search of `base` (its thresholds already chosen into `gates`) within `limits`.
pub fn preview(
    base: &Plan,
    gates: &Gates,
    limits: Limits,
    settings: &Settings,
    workers: Option<usize>,
) -> Preview {
    let at_max = step::plan_for(base, gates, limits.max, settings);
    let latency = Duration::from_millis(10);
    let e = match workers {
        Some(n) => estimate::estimate_with_workers(&at_max, latency, n as u64),
        None => estimate::estimate(&at_max, latency),
    };
    Preview {
        limits,
        step: settings.load(base) + base.drain,
        steps: steps(limits),
        at_max: e.verdict,
        cores_at_max: e.resources.cpu_cores,
        users_at_max: e.peak.active_users,
    }
}

/// The fewest and most steps the search policy takes for a target of any capacity — from the
/// policy itself (a fake judge at capacities spread from below `from` to above `max`), not a
/// formula that could drift from it.
pub fn steps(limits: Limits) -> (usize, usize) {
    let (lo, hi) = (limits.from / 2.0, limits.max * 2.0);
    let points = 400;
    let mut fewest = usize::MAX;
    let mut most = 0;
    for k in 0..=points {
        let capacity = lo * (hi / lo).powf(k as f64 / points as f64);
        let mut search = Search::new(limits);
        let mut n = 0;
        while let Next::Run(rate) = search.next() {
            n += 1;
            let judged = if rate <= capacity {
                Judged::Pass
            } else {
                Judged::Fail
            };
            search.record(rate, judged);
            if n > 1000 {
                break; // a policy that never ends is a bug; the tests of search.rs catch it
            }
        }
        fewest = fewest.min(n);
        most = most.max(n);
    }
    (fewest, most)
}

/// The preview as `--dry-run` and `plan` print it.
pub fn text(p: &Preview) -> String {
    let mut o = String::new();
    let minutes = |steps: usize| p.step.as_secs_f64() * steps as f64 / 60.0;
    let _ = writeln!(
        o,
        "find-capacity: {} to {} users/s, bracket within {:.0} %: {} to {} steps of ~{} \
         (warm-up + measured window + drain, plus a few seconds each to start and report) = \
         {:.0} to {:.0} minutes",
        step::rate_label(p.limits.from),
        step::rate_label(p.limits.max),
        p.limits.precision * 100.0,
        p.steps.0,
        p.steps.1,
        humantime::format_duration(p.step),
        minutes(p.steps.0).max(1.0),
        minutes(p.steps.1).max(1.0),
    );
    let reach = if p.at_max.processes <= 1 && p.at_max.machines <= 1 {
        format!(
            "one generator process reaches {} users/s (~{:.1} generator cores, ~{} users \
             connected at the peak)",
            step::rate_label(p.limits.max),
            p.cores_at_max,
            thousands(p.users_at_max)
        )
    } else {
        format!(
            "one generator process does NOT reach {} users/s: {} ({}); a step beyond what it \
             holds is inconclusive, never the target's limit — lower --max",
            step::rate_label(p.limits.max),
            p.at_max.text,
            p.at_max.reasons.join("; ")
        )
    };
    let _ = writeln!(o, "  {reach}");
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_step_counts_come_from_the_policy_and_grow_with_the_range_and_the_precision() {
        let wide = steps(Limits {
            from: 10.0,
            max: 160.0,
            precision: 0.1,
        });
        // Doubling 10, 20, 40, 80, 160 passes at most; a capacity below 10 ends after the
        // lowest rate and its repeat; one between two doublings also bisects, confirming fails.
        assert_eq!(wide.0, 2, "{wide:?}");
        assert!(wide.1 >= 5 + 3 && wide.1 <= 16, "{wide:?}");
        let fine = steps(Limits {
            from: 10.0,
            max: 160.0,
            precision: 0.01,
        });
        assert!(fine.1 > wide.1, "{fine:?} vs {wide:?}");
        let narrow = steps(Limits {
            from: 10.0,
            max: 20.0,
            precision: 0.1,
        });
        assert!(narrow.1 < wide.1, "{narrow:?} vs {wide:?}");
    }
}
