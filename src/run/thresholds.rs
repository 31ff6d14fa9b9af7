//! The thresholds while the run goes on: those marked `abort_on_fail`, checked each interval,
//! and all of them for a live display (`--dashboard`). The verdict itself is the end's
//! (`gate::judge`).

use std::time::{Duration, SystemTime};

use super::summary::build_summary;
use crate::compiled::Plan;
use crate::metrics::collector::Collector;
use crate::swarm::Registry;

/// The totals so far as a summary, without the swarm's registry: message loss is decided at
/// the end (reading the registry walks every user under the locks the workers take), so mid-run
/// a loss threshold sees the late messages alone.
fn summary_so_far(plan: &Plan, c: &Collector, workers: usize) -> crate::report::summary::Summary {
    build_summary(
        plan,
        c,
        &Registry::default(),
        SystemTime::now(),
        String::new(),
        workers,
    )
}

/// Every threshold evaluated against the run so far (for a live display; the verdict is the
/// end's).
pub(super) fn so_far(
    plan: &Plan,
    c: &Collector,
    workers: usize,
) -> Vec<crate::report::summary::ThresholdResult> {
    let summary = summary_so_far(plan, c, workers);
    plan.thresholds
        .iter()
        .map(|t| crate::gate::evaluate(t, &summary))
        .collect()
}

/// Evaluates the thresholds marked `abort_on_fail` whose grace period is over against the totals
/// so far; returns why the run must stop, if it must. Only a threshold that failed on data stops
/// the run (as k6's do): a subject with nothing observed yet (a phase not begun, a first
/// response still on its way) has not failed, and the end's gate judges it if it never is.
/// Mid-run a loss threshold aborts on late messages (see [`summary_so_far`]) and judges the rest
/// at the end.
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
    let summary = summary_so_far(plan, c, workers);
    due.iter().find_map(|t| {
        let r = crate::gate::evaluate(t, &summary);
        (r.observed.is_some() && !r.passed).then(|| {
            format!(
                "threshold `{}` failed at {:.1}s ({}); abort_on_fail stopped the run",
                r.expr,
                elapsed.as_secs_f64(),
                r.observed_phrase()
            )
        })
    })
}
