//! The thresholds while the run goes on: those marked `abort_on_fail`, checked each interval,
//! and all of them for a live display (`--dashboard`). The verdict itself is the end's
//! (`gate::judge`).

use std::time::{Duration, SystemTime};

use super::summary::build_summary;
use crate::compiled::Plan;
use crate::metrics::collector::Collector;
use crate::swarm::Registry;

/// Every threshold evaluated against the run so far (for a live display; the verdict is the
/// end's). Message loss is decided at the end: the swarm's registry is only read then (reading
/// it walks every user under the locks the workers take), so here a loss threshold sees the
/// late messages alone.
pub(super) fn so_far(
    plan: &Plan,
    c: &Collector,
    workers: usize,
) -> Vec<crate::report::summary::ThresholdResult> {
    let summary = build_summary(
        plan,
        c,
        &Registry::default(),
        SystemTime::now(),
        String::new(),
        workers,
    );
    plan.thresholds
        .iter()
        .map(|t| crate::gate::evaluate(t, &summary))
        .collect()
}

/// Evaluates the thresholds marked `abort_on_fail` whose grace period is over against the totals
/// so far; returns why the run must stop, if it must. As in [`so_far`], the registry is not read
/// mid-run (its walk races the workers, and costs a pass over every user each interval): a loss
/// threshold aborts on late messages, and judges the rest at the end.
pub(super) fn check_abort(
    plan: &Plan,
    c: &Collector,
    elapsed: Duration,
    workers: usize,
) -> Option<String> {
    let due: Vec<_> = plan
        .thresholds
        .iter()
        .filter(|t| t.abort_on_fail && elapsed >= t.grace)
        .collect();
    if due.is_empty() {
        return None;
    }
    let summary = build_summary(
        plan,
        c,
        &Registry::default(),
        SystemTime::now(),
        String::new(),
        workers,
    );
    due.iter().find_map(|t| {
        let r = crate::gate::evaluate(t, &summary);
        (!r.passed).then(|| {
            format!(
                "threshold `{}` failed at {:.1}s ({}); abort_on_fail stopped the run",
                r.expr,
                elapsed.as_secs_f64(),
                r.observed_phrase()
            )
        })
    })
}
