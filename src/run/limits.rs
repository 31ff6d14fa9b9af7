//! The operating system's limits at the start of a run: the open-file limit raised as far as the
//! system allows, and it and the source ports compared with what the plan needs at its peak.

use crate::compiled::Plan;

/// Plans with more expected arrivals than this skip the descriptor estimate at the start of a
/// run (walking them all would delay the start); `inrush plan` still makes it.
const ESTIMATE_MAX_ARRIVALS: f64 = 2_000_000.0;

/// Raises the open-file limit as far as the system allows and compares it and the source ports
/// with what the plan needs at its peak (the estimate of `inrush plan`); returns the warnings
/// to show and keep.
pub(super) fn check(plan: &Plan) -> Vec<String> {
    use crate::estimate::DEFAULT_LATENCY;
    let mut warnings = Vec::new();
    let Some(raised) = crate::os_limits::raise_open_files() else {
        return warnings;
    };
    if let Some(e) = &raised.failure {
        warnings.push(format!(
            "could not raise the open-file limit from {} to its hard limit {}: {e}",
            raised.before.soft, raised.before.hard
        ));
    }
    // Users the estimate walks: the open schedule, plus a closed phase's users restarting at
    // most once per assumed operation latency (a bound; real flows take longer), plus returns.
    let closed: f64 = plan
        .phases
        .iter()
        .filter_map(|p| {
            let c = p.closed()?;
            Some(c.users as f64 * p.duration.as_secs_f64() / DEFAULT_LATENCY.as_secs_f64())
        })
        .sum();
    let open: f64 = plan.phases.iter().map(crate::compiled::Phase::mass).sum();
    let returning = plan.flows.cohorts.iter().any(|c| c.returns.is_some());
    let expected = (open + closed) * if returning { 10.0 } else { 1.0 };
    if expected > ESTIMATE_MAX_ARRIVALS {
        return warnings;
    }
    let estimate = crate::estimate::estimate(plan, DEFAULT_LATENCY);
    let needed = estimate.resources.descriptors;
    let limit = raised.now.soft;
    if needed > limit {
        warnings.push(format!(
            "this run needs ~{needed} file descriptors at its peak ({} sockets{}, by `inrush plan`'s \
             estimate), but the open-file limit is {limit} (hard limit {}): connections beyond it \
             will fail as `connect` errors (out of file descriptors). Split the load over {} \
             generator processes (`inrush plan` shows the count) or raise ulimit -n",
            estimate.peak.sockets,
            if estimate.resources.descriptors_per_socket > 1 {
                ", twice over with the in-process built-in target"
            } else {
                ""
            },
            raised.now.hard,
            crate::os_limits::processes_for_descriptors(needed, limit),
        ));
    }
    let r = &estimate.resources;
    let ports = estimate.machine.ports_per_address;
    let fast = crate::os_limits::connect_ports(ports);
    if r.ports_per_source_address > fast {
        warnings.push(format!(
            "this run needs ~{} source ports per source address at its peak{} (by `inrush plan`'s \
             estimate): past {} of its {} ports every connect searches the rest of the range and \
             the generator falls behind, and past {} connections fail as `connect` errors (out of \
             ephemeral ports). `inrush plan` says how to spread them",
            crate::estimate::thousands(r.ports_per_source_address),
            crate::estimate::time_wait_share(r),
            crate::estimate::thousands(fast),
            crate::estimate::thousands(ports),
            crate::estimate::thousands(ports),
        ));
    }
    warnings
}
