//! A generator that cannot keep up: one worker against the in-process target at a rate it cannot
//! hold. Its numbers must stay true — every planned arrival started or dropped by reason, every
//! started user with an outcome.

mod common;

use std::process::Command;

use common::{assert_arrivals_accounted, run_judged, run_quiet, Scenario, Scratch};
use inrush::report::summary::{Summary, Verdict};

fn inrush() -> Command {
    Command::new(env!("CARGO_BIN_EXE_inrush"))
}

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
    let outcome = run_judged(scratch.scenario("sat", saturating("")), out.clone());
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
    // No threshold failed (there are none), yet the run is not a pass: the generator's own
    // numbers say it did not apply the planned load.
    assert_eq!(s.verdict, Verdict::Inconclusive);
    assert!(
        s.measurement
            .compromised_by
            .iter()
            .any(|w| w.contains("dropped behind schedule")),
        "{:?}",
        s.measurement
    );
    // `inrush report` reaches the same verdict from the saved files alone.
    let (regated, _, _) = inrush::rebuild(&out, &[]).expect("rebuild");
    assert_eq!(regated.verdict, Verdict::Inconclusive);
    assert_eq!(regated.measurement, s.measurement);
}

fn summary(dir: &std::path::Path) -> Summary {
    let text = std::fs::read_to_string(dir.join("summary.json")).expect("summary written");
    serde_json::from_str(&text).expect("summary schema")
}

#[test]
fn an_inconclusive_run_exits_4_and_accept_overload_gates_on_the_thresholds() {
    let scratch = Scratch::new();
    let scenario = scratch.scenario("sat", saturating(""));
    let run = |out: &str, extra: &[&str]| {
        let dir = scratch.out(out);
        let status = inrush()
            .arg("run")
            .arg(&scenario)
            .args(["--workers", "1", "--quiet", "--out"])
            .arg(&dir)
            .args(extra)
            .status()
            .expect("runs");
        (status.code(), dir)
    };
    let (code, dir) = run("strict", &[]);
    assert_eq!(code, Some(4));
    assert_eq!(summary(&dir).verdict, Verdict::Inconclusive);
    let junit = std::fs::read_to_string(dir.join("junit.xml")).expect("junit.xml");
    assert!(
        junit.contains(r#"name="generator kept up"><failure message="inconclusive"#),
        "{junit}"
    );
    let md = std::fs::read_to_string(dir.join("summary.md")).expect("summary.md");
    assert!(md.contains("inconclusive"), "{md}");
    let html = std::fs::read_to_string(dir.join("index.html")).expect("index.html");
    assert!(html.contains("verdict-inconclusive"));
    let regate = inrush()
        .arg("report")
        .arg(&dir)
        .output()
        .expect("report runs");
    assert_eq!(regate.status.code(), Some(4));

    // Accepted: the overload is a warning and the verdict follows the thresholds — none here,
    // every request succeeded, so it passes; a threshold that fails makes it exit 1.
    let (code, dir) = run("accepted", &["--accept-overload"]);
    assert_eq!(code, Some(0));
    let s = summary(&dir);
    assert_eq!(s.verdict, Verdict::Passed);
    assert!(s.measurement.overload_accepted && !s.measurement.compromised_by.is_empty());
    let (code, _) = run(
        "accepted-failing",
        &["--accept-overload", "--threshold", "health.count > 1000000"],
    );
    assert_eq!(code, Some(1));
}

#[test]
fn a_run_in_which_every_operation_failed_never_passes() {
    let scratch = Scratch::new();
    let scenario = Scenario::new("all-fail", 4).with(
        r#"
[load]
arrivals = "uniform"
phases = [ { name = "a", duration = "500ms", rate = 20 } ]

[[flows.f.steps]]
name = "missing"
http = "GET /no/such/path"
expect.status = 200
"#,
    );
    let outcome = run_quiet(scratch.scenario("fail", scenario), scratch.out("run"), None);
    let s = &outcome.summary;
    assert_eq!(s.metrics["missing"].count, 10);
    assert_eq!(s.metrics["missing"].errors, 10);
    assert!(s.thresholds.is_empty());
    assert_eq!(s.verdict, Verdict::Failed);
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
