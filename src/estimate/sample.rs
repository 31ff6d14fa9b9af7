//! A plan too large to walk user by user in seconds is walked on a sample: the same profile at
//! `1/k` of its rates (a thinned Poisson process is a Poisson process at the thinned rate;
//! every k-th of evenly spaced arrivals is evenly spaced), closed phases and caps at `1/k` of
//! their users, and every count multiplied back by `k`. Exact for small plans, an estimate with
//! sampling noise of about `1/sqrt(walked users)` for the others; the plan says which.

use super::model::Counts;
use super::per_interval::PerInterval;
use crate::compiled::Plan;

/// Users the plan walks one by one before it samples: about a second of a release build's
/// walk (a few in a debug build).
pub(super) const WALK_BUDGET: f64 = 1_000_000.0;

/// Walk 1 in `k` users, `k` ≥ 1. The cost counted is the open timeline's expected arrivals
/// plus, for a closed phase, its users times its seconds (a user looping once a second: the
/// cost is not known before the walk, and a shorter-lived user makes it larger).
pub(super) fn one_in(plan: &Plan, budget: f64) -> u64 {
    let cost: f64 = plan
        .phases
        .iter()
        .map(|p| match p.closed() {
            Some(c) => c.users as f64 * p.duration.as_secs_f64().max(1.0),
            None => p.mass(),
        })
        .sum();
    if cost.is_finite() && cost > budget {
        (cost / budget).ceil() as u64
    } else {
        1
    }
}

/// What a sample of 1 in `k` users counted, as counts of the whole plan.
pub(super) fn scale_up(mut counts: Counts, per_interval: &mut PerInterval, k: u64) -> Counts {
    if k <= 1 {
        return counts;
    }
    for v in [
        &mut per_interval.users,
        &mut per_interval.websockets,
        &mut per_interval.http,
    ] {
        v.iter_mut().for_each(|x| *x *= k as i64);
    }
    for v in [
        &mut per_interval.requests,
        &mut per_interval.http_closes,
        &mut per_interval.messages,
        &mut per_interval.arrivals,
        &mut per_interval.returns,
        &mut per_interval.dropped,
    ] {
        v.iter_mut().for_each(|x| *x *= k);
    }
    per_interval.busy.iter_mut().for_each(|x| *x *= k as f64);
    for n in [
        &mut counts.scheduled,
        &mut counts.closed,
        &mut counts.returns,
        &mut counts.returned,
        &mut counts.dropped_max_users,
        &mut counts.dropped_max_inflight,
    ] {
        *n *= k;
    }
    counts.per_phase.values_mut().for_each(|n| *n *= k);
    counts
}
