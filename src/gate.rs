//! The gate: a run's thresholds evaluated against its `Summary` — at the end of the run, during
//! it for thresholds that abort the run early, and again when `inrush report` re-gates an old
//! run. The thresholds themselves (types and parser) are part of the compiled scenario.

use std::path::Path;

use crate::compiled::threshold::{self, MetricField, Subject, Threshold};
use crate::error::Error;
use crate::report::summary::{MetricSummary, Summary, ThresholdResult, Verdict};

fn ratio(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

fn metric_field(m: &MetricSummary, f: MetricField) -> Option<f64> {
    match f {
        MetricField::Count => Some(m.count as f64),
        MetricField::Errors => Some(m.errors as f64),
        MetricField::Rate => Some(m.rate_per_s),
        MetricField::ErrorRate => ratio(m.errors, m.count),
        MetricField::Retries => Some(m.retries as f64),
        MetricField::Reconnects => Some(m.reconnects as f64),
        MetricField::BytesSent => Some(m.bytes_sent as f64),
        MetricField::BytesReceived => Some(m.bytes_received as f64),
    }
}

/// The observed value, or `None` when there is nothing to measure (no sample, no phase).
pub fn observe(t: &Threshold, s: &Summary) -> Option<f64> {
    let (metrics, messages, arrivals, contacts) = match &t.phase {
        None => (&s.metrics, &s.messages, &s.arrivals, &s.contacts),
        Some(scope) => match s.phases.get(scope) {
            Some(p) => (&p.metrics, &p.messages, &p.arrivals, &p.contacts),
            None => {
                let r = s.regions.get(scope)?;
                (&r.metrics, &r.messages, &r.arrivals, &r.contacts)
            }
        },
    };
    match &t.subject {
        Subject::Latency(m, stat) => metrics.get(m)?.latency_ms.as_ref().map(|l| l.get(*stat)),
        Subject::MetricCount(m, f) => metric_field(metrics.get(m)?, *f),
        Subject::AllErrors(f) => {
            let count: u64 = metrics.values().map(|m| m.count).sum();
            let errors: u64 = metrics.values().map(|m| m.errors).sum();
            match f {
                // No operation, no rate: a rate over nothing has nothing to observe and fails,
                // as a metric's own `error_rate` does (every user cut off while retrying is 0 of 0).
                MetricField::ErrorRate => ratio(errors, count),
                _ => Some(errors as f64),
            }
        }
        Subject::Retries(f) => {
            let retries: u64 = metrics.values().map(|m| m.retries).sum();
            match *f {
                "count" => Some(retries as f64),
                "reconnects" => Some(metrics.values().map(|m| m.reconnects).sum::<u64>() as f64),
                // Of the requests and connects sent (retried ones included), the share that
                // failed and was tried again: message metrics and transactions, which are never
                // retried themselves, stay out of the denominator.
                _ => {
                    let attempts: u64 = metrics.values().map(|m| m.attempts).sum();
                    Some(ratio(retries, attempts).unwrap_or(0.0))
                }
            }
        }
        Subject::Messages(f) => match *f {
            "sent" => Some(messages.sent as f64),
            "acked" => Some(messages.acked as f64),
            "delivered" => Some(messages.delivered as f64),
            "duplicated" => Some(messages.duplicated as f64),
            "reordered" => Some(messages.reordered as f64),
            "pending" => messages.pending.map(|v| v as f64),
            "lost" => messages.lost.map(|v| v as f64),
            "late" => Some(messages.late as f64),
            "skipped" => Some(messages.skipped as f64),
            // Loss is defined by delivery, so its rate is of every message sent (acked or not).
            _ => ratio(messages.lost?, messages.sent).or(Some(0.0)),
        },
        Subject::Arrivals(f) => match *f {
            "planned" => Some(arrivals.planned as f64),
            "started" => Some(arrivals.started as f64),
            "dropped" => Some(arrivals.dropped as f64),
            "completed" => Some(arrivals.completed as f64),
            "failed" => Some(arrivals.failed as f64),
            "cut_off" => Some(arrivals.cut_off as f64),
            _ => Some(ratio(arrivals.dropped, arrivals.planned).unwrap_or(0.0)),
        },
        // Counts are reported for the whole run only.
        Subject::Count(name) if t.phase.is_none() => s.counts.get(name).map(|v| *v as f64),
        Subject::Count(_) => None,
        // Checks too: a pass rate is the run's (a phase's would need its own list).
        Subject::Checks(f) if t.phase.is_none() => {
            let c = &s.checks;
            match *f {
                "passed" => Some(c.passed as f64),
                "failed" => Some(c.failed as f64),
                _ => c.rate,
            }
        }
        Subject::Checks(_) => None,
        // The run's totals hold unnamed requests too; a phase or region has its metrics'.
        Subject::Bytes(f) => {
            let sent = *f == "sent";
            let total = match (&t.phase, sent) {
                (None, true) => s.bytes_sent,
                (None, false) => s.bytes_received,
                (Some(_), true) => metrics.values().map(|m| m.bytes_sent).sum(),
                (Some(_), false) => metrics.values().map(|m| m.bytes_received).sum(),
            };
            Some(total as f64)
        }
        Subject::Lag(stat) => arrivals.schedule_lag_ms.as_ref().map(|l| l.get(*stat)),
        Subject::Contacts(f) => match *f {
            "expected" => Some(contacts.expected as f64),
            "missing" => Some(contacts.missing as f64),
            _ => Some(ratio(contacts.missing, contacts.expected).unwrap_or(0.0)),
        },
    }
}

/// Evaluates a threshold. With nothing to observe it fails: a gate on a latency that never had
/// a successful sample must not pass silently.
pub fn evaluate(t: &Threshold, s: &Summary) -> ThresholdResult {
    let observed = observe(t, s);
    ThresholdResult {
        expr: t.expr.clone(),
        observed: observed.map(|v| crate::decimals::round(v, 6)),
        unit: t.subject.unit(),
        passed: observed.is_some_and(|v| t.op.holds(v, t.limit)),
    }
}

/// Re-gates a finished run: evaluates the thresholds it was run with (saved in `file`, its
/// summary.json), then `extra` (the command line's), against `summary` (rebuilt from the run
/// directory) and sets its verdict from them. An interrupted run stays interrupted.
pub fn regate(summary: &mut Summary, file: &Path, extra: &[String]) -> Result<(), Error> {
    let mut thresholds = saved(summary, file)?;
    for expr in extra {
        let t = parse_for(summary, expr)
            .map_err(|e| Error::Usage(format!("threshold '{expr}': {e}")))?;
        thresholds.push(t);
    }
    let interrupted = summary.verdict == Verdict::Interrupted;
    judge(summary, &thresholds, interrupted);
    Ok(())
}

/// The thresholds a run was gated with, as `summary` (read from `file`) saved them; one that is
/// malformed (the file edited by hand, or written by another version) is refused naming the
/// file, as any malformed run file is.
pub fn saved(summary: &Summary, file: &Path) -> Result<Vec<Threshold>, Error> {
    summary
        .thresholds
        .iter()
        .map(|t| {
            parse_for(summary, &t.expr).map_err(|e| {
                Error::Usage(format!(
                    "{}: saved threshold '{}' is malformed: {e}",
                    file.display(),
                    t.expr
                ))
            })
        })
        .collect()
}

/// Parses `expr` against what `summary` measured: its phases and regions, metrics and counts.
fn parse_for(summary: &Summary, expr: &str) -> Result<Threshold, threshold::ParseError> {
    let scopes: Vec<String> = summary
        .phases
        .keys()
        .chain(summary.regions.keys())
        .cloned()
        .collect();
    let catalog = crate::metrics::Catalog::new(summary.metrics.keys().cloned())
        .with_counters(summary.counts.keys().cloned().collect());
    threshold::parse(expr, &scopes, &catalog)
}

/// Evaluates `thresholds` into the summary and gives it its verdict, the one rule for a
/// finished run and a re-gated one:
/// 1. interrupted stays interrupted;
/// 2. a measurement the generator compromised (`[run] overload` exceeded) is inconclusive,
///    whatever the thresholds say, unless the overload was accepted (`--accept-overload`);
/// 3. a run an `abort_on_fail` threshold stopped, with any threshold failing, or in which every
///    operation failed, has failed;
/// 4. any other has passed.
pub fn judge(summary: &mut Summary, thresholds: &[Threshold], interrupted: bool) {
    summary.thresholds = thresholds.iter().map(|t| evaluate(t, summary)).collect();
    summary.measurement.compromised_by = summary.overload();
    let compromised = !summary.measurement.compromised_by.is_empty();
    summary.verdict = if interrupted {
        Verdict::Interrupted
    } else if compromised && !summary.measurement.overload_accepted {
        Verdict::Inconclusive
    } else if summary.aborted.is_some()
        || summary.thresholds.iter().any(|t| !t.passed)
        || summary.failed_outright().is_some()
    {
        Verdict::Failed
    } else {
        Verdict::Passed
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::summary::Latency;

    /// A finished run's summary: one step, `ok` of its `count` operations succeeded, schedule
    /// lag p99 `lag_p99` ms.
    fn summary(count: u64, ok: u64, lag_p99: f64) -> Summary {
        let lat = |p99: f64| serde_json::json!({"min": 0.1, "mean": 0.5, "p50": 0.4, "p90": 0.8, "p99": p99, "p999": p99, "max": p99});
        let text = serde_json::json!({
            "schema": "inrush.summary/1", "scenario": "s", "description": "", "seed": 1,
            "target": "builtin", "inrush_version": "0", "started_at": "", "duration_s": 1.0,
            "verdict": "passed",
            "metrics": {"step": {"count": count, "errors": count - ok, "errors_by_class": {},
                "rate_per_s": 1.0, "latency_ms": null, "service_time_ms": null}},
            "messages": {"sent": 0, "acked": 0, "delivered": 0, "duplicated": 0,
                "delivery_latency_ms": null},
            "contacts": {"expected": 0, "missing": 0},
            "arrivals": {"planned": count, "started": count, "dropped": 0,
                "schedule_lag_ms": lat(lag_p99)},
            "phases": {}, "thresholds": [],
            "generator": {"workers": 1, "cpu_seconds": 0.1, "peak_rss_mb": 1.0,
                "target_in_process": true,
                "host": {"hostname": "h", "cpu_model": "c", "cpus": 1, "memory_gib": 1.0}},
            "warnings": []
        });
        serde_json::from_value(text).expect("a summary")
    }

    fn failing(s: &Summary) -> Vec<Threshold> {
        let catalog = crate::metrics::Catalog::new(s.metrics.keys().cloned());
        vec![threshold::parse("step.count > 1000", &[], &catalog).expect("valid threshold")]
    }

    #[test]
    fn a_compromised_measurement_is_inconclusive_whatever_the_thresholds_say() {
        // Schedule lag p99 9 ms against the default 5 ms: inconclusive with no threshold, and
        // with a failing one.
        let mut s = summary(10, 10, 9.0);
        judge(&mut s, &[], false);
        assert_eq!(s.verdict, Verdict::Inconclusive);
        assert_eq!(s.measurement.compromised_by.len(), 1, "{:?}", s.measurement);
        let thresholds = failing(&s);
        judge(&mut s, &thresholds, false);
        assert_eq!(s.verdict, Verdict::Inconclusive);
        // Accepted, the thresholds decide; the reasons stay.
        s.measurement.overload_accepted = true;
        judge(&mut s, &thresholds, false);
        assert_eq!(s.verdict, Verdict::Failed);
        judge(&mut s, &[], false);
        assert_eq!(s.verdict, Verdict::Passed);
        assert!(!s.measurement.compromised_by.is_empty());
        // Interrupted stays interrupted.
        s.measurement.overload_accepted = false;
        judge(&mut s, &[], true);
        assert_eq!(s.verdict, Verdict::Interrupted);
        // Within the limit the measurement is sound.
        let mut sound = summary(10, 10, 4.0);
        judge(&mut sound, &[], false);
        assert_eq!(sound.verdict, Verdict::Passed);
        assert!(sound.measurement.compromised_by.is_empty());
    }

    #[test]
    fn loop_lag_and_arrivals_dropped_behind_schedule_are_limits_too() {
        let mut s = summary(1000, 1000, 1.0);
        s.generator.loop_lag_ms = s
            .arrivals
            .schedule_lag_ms
            .map(|l| Latency { p99: 6.0, ..l });
        judge(&mut s, &[], false);
        assert_eq!(s.verdict, Verdict::Inconclusive);
        assert!(s.measurement.compromised_by[0].starts_with("loop lag p99 6.0 ms"));
        s.generator.loop_lag_ms = None;
        // One arrival of 1 000 dropped behind schedule: over the default 0 %, within 0.1 %.
        s.arrivals.dropped_by.behind_schedule = 1;
        judge(&mut s, &[], false);
        assert_eq!(s.verdict, Verdict::Inconclusive);
        s.measurement.limits.behind_schedule = 0.001;
        judge(&mut s, &[], false);
        assert_eq!(s.verdict, Verdict::Passed);
    }

    #[test]
    fn users_cut_off_by_the_runs_end_can_be_gated() {
        let mut s = summary(10, 10, 1.0);
        (s.arrivals.completed, s.arrivals.failed, s.arrivals.cut_off) = (6, 1, 3);
        let catalog = crate::metrics::Catalog::new(s.metrics.keys().cloned());
        let t = |text: &str| threshold::parse(text, &[], &catalog).expect("valid threshold");
        judge(&mut s, &[t("arrivals.cut_off == 0")], false);
        assert_eq!(s.verdict, Verdict::Failed);
        assert_eq!(s.thresholds[0].observed, Some(3.0));
        judge(
            &mut s,
            &[t("arrivals.completed >= 6"), t("arrivals.failed < 2")],
            false,
        );
        assert_eq!(s.verdict, Verdict::Passed);
    }

    #[test]
    fn an_error_rate_of_no_operation_has_nothing_to_observe() {
        let none = summary(0, 0, 1.0);
        let catalog = crate::metrics::Catalog::new(none.metrics.keys().cloned());
        let t = |text: &str| threshold::parse(text, &[], &catalog).expect("valid threshold");
        let rate = evaluate(&t("errors.rate < 1%"), &none);
        assert_eq!((rate.observed, rate.passed), (None, false));
        // A count of errors is still an observation: none.
        assert_eq!(evaluate(&t("errors.count == 0"), &none).observed, Some(0.0));
        assert_eq!(
            evaluate(&t("errors.rate < 1%"), &summary(10, 10, 1.0)).observed,
            Some(0.0)
        );
    }

    #[test]
    fn a_run_that_sent_requests_and_got_only_failures_to_retry_has_failed() {
        // Every user cut off while waiting to retry: attempts, and no operation with an outcome.
        let mut s = summary(0, 0, 1.0);
        s.metrics.get_mut("step").expect("the step").attempts = 5;
        judge(&mut s, &[], false);
        assert_eq!(s.verdict, Verdict::Failed);
    }

    #[test]
    fn a_run_in_which_every_operation_failed_has_failed_without_thresholds() {
        let mut s = summary(10, 0, 1.0);
        judge(&mut s, &[], false);
        assert_eq!(s.verdict, Verdict::Failed);
        // One success is enough not to fail by this rule; nothing measured is not "all failed".
        let mut one = summary(10, 1, 1.0);
        judge(&mut one, &[], false);
        assert_eq!(one.verdict, Verdict::Passed);
        let mut none = summary(0, 0, 1.0);
        judge(&mut none, &[], false);
        assert_eq!(none.verdict, Verdict::Passed);
        // Every operation but not every user: sockets that opened, then all broke.
        let mut broken = summary(10, 5, 1.0);
        broken.arrivals.failed = broken.arrivals.started;
        judge(&mut broken, &[], false);
        assert_eq!(broken.verdict, Verdict::Failed);
        assert_eq!(broken.failed_outright(), Some("every user's flow failed"));
        // One user who did not fail (completed, or cut off by the run's end) is enough.
        broken.arrivals.failed -= 1;
        broken.arrivals.cut_off = 1;
        judge(&mut broken, &[], false);
        assert_eq!(broken.verdict, Verdict::Passed);
    }
}
