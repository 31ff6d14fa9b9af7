//! A generator that cannot keep up: one worker against the in-process target at a rate it cannot
//! hold. Its numbers must stay true — every planned arrival started or dropped by reason, every
//! started user with an outcome.

mod common;

use common::{assert_arrivals_accounted, run_quiet, Scenario, Scratch};

/// 50 000 users/s for 0.5 s, evenly spaced: exactly 25 000 arrivals on one worker, each user
/// opening its own connection to the in-process target for one request. One worker thread
/// cannot start a user every 20 µs (a connect, a request and an accept each cost more CPU than
/// that), so most arrivals find their deadline passed.
fn saturating(extra_run: &str) -> Scenario {
    Scenario::new("saturated", 3)
        .timeout("5s")
        .run(extra_run)
        .with(
            r#"
[load]
arrivals = "uniform"
phases = [ { name = "flood", duration = "500ms", rate = 50000 } ]

[[flows.f.steps]]
name = "health"
http = "GET /healthz"
"#,
        )
}

#[test]
fn a_saturated_run_accounts_for_every_arrival_even_with_no_drain() {
    let scratch = Scratch::new();
    let out = scratch.out("run");
    // drain = "0s" (the helper's default): the run goes straight from the schedule's end to
    // its end, and arrivals the worker never reached must still be counted.
    let outcome = run_quiet(scratch.scenario("sat", saturating("")), out.clone(), None);
    let s = &outcome.summary;
    assert_eq!(s.arrivals.planned, 25_000, "{:?}", s.arrivals);
    assert_arrivals_accounted(s, &out);
    assert!(
        s.arrivals.dropped_by.behind_schedule > 0,
        "one worker cannot start 50 000 users/s: {:?}",
        s.arrivals
    );
    assert_eq!(
        s.arrivals.dropped_by.max_users + s.arrivals.dropped_by.max_inflight,
        0
    );
    // Started means the first operation was issued: each started user has exactly one outcome
    // of its one step (a success or an error), none was skipped.
    let health = &s.metrics["health"];
    assert_eq!(
        health.count, s.arrivals.started,
        "{health:?} {:?}",
        s.arrivals
    );
}

#[test]
fn max_start_lag_drops_arrivals_later_than_it_and_bounds_the_lag_of_the_rest() {
    let scratch = Scratch::new();
    let out = scratch.out("run");
    let scenario = saturating(r#"max_start_lag = "20ms""#);
    let outcome = run_quiet(scratch.scenario("lag", scenario), out.clone(), None);
    let s = &outcome.summary;
    assert_eq!(s.arrivals.planned, 25_000);
    assert_arrivals_accounted(s, &out);
    assert!(
        s.arrivals.dropped_by.behind_schedule > 0,
        "{:?}",
        s.arrivals
    );
    assert_eq!(s.metrics["health"].count, s.arrivals.started);
    // Admission and the lag sample read the same clock: no started arrival is later than the
    // limit (HdrHistogram's 3 significant digits add at most 0.1 %, the ms rounding 1 µs).
    let lag = s.arrivals.schedule_lag_ms.expect("some arrivals started");
    assert!(lag.max <= 20.0 * 1.001 + 0.001, "{lag:?}");
}
