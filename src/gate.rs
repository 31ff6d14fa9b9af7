//! The gate: a run's thresholds evaluated against its `Summary` — at the end of the run, during
//! it for thresholds that abort the run early, and again when `inrush report` re-gates an old
//! run. The thresholds themselves (types and parser) are part of the compiled scenario.

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
                MetricField::ErrorRate => Some(ratio(errors, count).unwrap_or(0.0)),
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
            _ => ratio(messages.lost?, messages.acked).or(Some(0.0)),
        },
        Subject::Arrivals(f) => match *f {
            "planned" => Some(arrivals.planned as f64),
            "started" => Some(arrivals.started as f64),
            "dropped" => Some(arrivals.dropped as f64),
            _ => Some(ratio(arrivals.dropped, arrivals.planned).unwrap_or(0.0)),
        },
        // Counts are reported for the whole run only.
        Subject::Count(name) if t.phase.is_none() => s.counts.get(name).map(|v| *v as f64),
        Subject::Count(_) => None,
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
        observed: observed.map(|v| (v * 1e6).round() / 1e6),
        passed: observed.is_some_and(|v| t.op.holds(v, t.limit)),
    }
}

/// Re-gates a finished run: evaluates the thresholds it was run with, then `extra`, against
/// `summary` (rebuilt from the run directory) and sets its verdict from them. An interrupted
/// run stays interrupted.
pub fn regate(summary: &mut Summary, extra: &[String]) -> Result<(), Error> {
    let scopes: Vec<String> = summary
        .phases
        .keys()
        .chain(summary.regions.keys())
        .cloned()
        .collect();
    let catalog = crate::metrics::Catalog::new(summary.metrics.keys().cloned())
        .with_counters(summary.counts.keys().cloned().collect());
    let mut thresholds = Vec::new();
    for expr in summary.thresholds.iter().map(|t| &t.expr).chain(extra) {
        let t = threshold::parse(expr, &scopes, &catalog)
            .map_err(|e| Error::Usage(format!("threshold '{expr}': {e}")))?;
        thresholds.push(t);
    }
    let interrupted = summary.verdict == Verdict::Interrupted;
    judge(summary, &thresholds, interrupted);
    Ok(())
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
        || summary.every_operation_failed()
    {
        Verdict::Failed
    } else {
        Verdict::Passed
    };
}
