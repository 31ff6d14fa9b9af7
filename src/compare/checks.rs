//! The single checks behind a comparison: a latency statistic (size, floor and the interval
//! test), the error rate, the throughput and lost messages. The rule is documented in the
//! parent module.

use hdrhistogram::Histogram;

use super::{
    stats, Check, Confidence, Decision, Run, Side, Stat, ALPHA, MIN_INTERVALS, MIN_INTERVAL_SAMPLES,
};
use crate::report::summary::Summary;

/// The smallest latency change that counts for `stat`: the configured floor, or the schedule lag
/// of either run at the same statistic if larger. Latency counts from the intended start, so the
/// generator's lateness is part of every measurement; a change smaller than it may be the
/// generator's, not the service's.
pub(super) fn floor(stat: Stat, configured_ms: f64, base: &Run, new: &Run) -> Floor {
    let lag = |run: &Run| {
        run.summary
            .arrivals
            .schedule_lag_ms
            .map_or(0.0, |l| l.get(stat))
    };
    let (b, n) = (lag(base), lag(new));
    if configured_ms >= b.max(n) {
        Floor {
            ms: configured_ms,
            why: "floor".into(),
        }
    } else {
        let role = if b >= n { "BASE" } else { "NEW" };
        Floor {
            ms: b.max(n),
            why: format!("floor (schedule lag {} of {role})", stat.name()),
        }
    }
}

pub(super) struct Floor {
    ms: f64,
    why: String,
}

pub(super) fn intervals_of<'a>(run: &'a Run, name: &str) -> &'a [Histogram<u64>] {
    run.intervals.get(name).map_or(&[], Vec::as_slice)
}

/// A statistic of a histogram, in microseconds.
fn stat_us(h: &Histogram<u64>, stat: Stat) -> f64 {
    match stat.quantile() {
        None => h.mean(),
        Some(q) if q >= 1.0 => h.max() as f64,
        Some(q) => h.value_at_quantile(q) as f64,
    }
}

/// One value per usable interval: the fraction of samples above `threshold_us` for a quantile,
/// the mean for the mean.
fn interval_values(intervals: &[Histogram<u64>], stat: Stat, threshold_us: f64) -> Vec<f64> {
    intervals
        .iter()
        .filter(|h| h.len() >= MIN_INTERVAL_SAMPLES)
        .map(|h| match stat.quantile() {
            None => h.mean(),
            Some(_) => {
                let at_or_below = h.count_between(0, threshold_us as u64);
                (h.len() - at_or_below.min(h.len())) as f64 / h.len() as f64
            }
        })
        .collect()
}

fn ms(us: f64) -> f64 {
    us.round() / 1000.0
}

fn pct(v: f64) -> String {
    format!("{:+.1}%", v)
}

/// Is `worse` beyond `better` by the tolerance and the floor, and consistently across
/// intervals? Returns the decision's parts: (large, test outcome).
struct Shift {
    large: bool,
    p: Option<f64>,
    intervals: [usize; 2],
    /// Of the worse run's intervals, how many are above the better run's median interval.
    higher: Option<usize>,
}

/// The median of `values` (the mean of the middle two for an even count); `None` when empty.
fn median(values: &[f64]) -> Option<f64> {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    match v.len() {
        0 => None,
        n if n % 2 == 1 => Some(v[mid]),
        _ => Some((v[mid - 1] + v[mid]) / 2.0),
    }
}

fn shift(
    stat: Stat,
    t: f64,
    floor_ms: f64,
    better: (f64, &[Histogram<u64>]),
    worse: (f64, &[Histogram<u64>]),
) -> Shift {
    let large = worse.0 > better.0 * (1.0 + t) && (worse.0 - better.0) / 1000.0 > floor_ms;
    let from = interval_values(better.1, stat, better.0);
    let to = interval_values(worse.1, stat, better.0);
    let intervals = [from.len(), to.len()];
    let p = (from.len() >= MIN_INTERVALS && to.len() >= MIN_INTERVALS)
        .then(|| stats::mann_whitney_greater(&from, &to).p);
    // The test's evidence in a form one can say: "higher in 18 of 20 intervals".
    let higher = median(&from).map(|m| to.iter().filter(|&&v| v > m).count());
    Shift {
        large,
        p,
        intervals,
        higher,
    }
}

// Long on purpose: the decision rule for one latency statistic, read as the documented steps
// (floor, tolerance, noise across intervals, verdict) in one place.
pub(super) fn latency_check(
    stat: Stat,
    t: Option<f64>,
    floor: Floor,
    h: [Option<&Histogram<u64>>; 2],
    ivs: [&[Histogram<u64>]; 2],
) -> Check {
    let values = h.map(|h| h.filter(|h| !h.is_empty()).map(|h| stat_us(h, stat)));
    let mut check = Check {
        what: stat.name().into(),
        unit: "ms",
        base: values[0].map(ms),
        new: values[1].map(ms),
        change: None,
        change_unit: "%",
        tolerance: t.map(|t| t * 100.0),
        floor_ms: None,
        decision: Decision::NotChecked,
        confidence: None,
        p_value: None,
        intervals: None,
        higher_intervals: None,
        reason: String::new(),
    };
    let (Some(b), Some(n)) = (values[0], values[1]) else {
        check.reason = "no successful sample on one side".into();
        if t.is_some() {
            check.decision = Decision::Ok;
        }
        return check;
    };
    check.change = (b > 0.0).then(|| (n - b) / b * 100.0);
    let Some(t) = t else {
        return check;
    };
    let name = stat.name();
    let delta_ms = (n - b) / 1000.0;
    let change = check.change.map_or_else(|| "new".into(), pct);
    let floor_ms = floor.ms;
    let why = &floor.why;
    check.floor_ms = Some(floor_ms);
    let up = shift(stat, t, floor_ms, (b, ivs[0]), (n, ivs[1]));
    let down = shift(stat, t, floor_ms, (n, ivs[1]), (b, ivs[0]));
    let (s, verdict, word) = if up.large {
        (up, Decision::Regression, "above")
    } else if down.large {
        (down, Decision::Improved, "below")
    } else {
        check.decision = Decision::Ok;
        check.reason = if delta_ms.abs() <= floor_ms {
            format!("{change} ({delta_ms:+.2} ms) is within the {floor_ms:.2} ms {why}")
        } else {
            format!("{change} ({delta_ms:+.2} ms) is within ±{}%", t * 100.0)
        };
        return check;
    };
    check.intervals = Some(s.intervals);
    check.p_value = s.p;
    check.higher_intervals = s.higher;
    let size = format!(
        "{change} ({delta_ms:+.2} ms) beyond {}% and the {floor_ms:.2} ms {why}",
        t * 100.0
    );
    let what = match stat.quantile() {
        Some(_) => format!("share of samples {word} the other run's {name}"),
        None => "interval means".to_string(),
    };
    match s.p {
        Some(p) if p < ALPHA => {
            check.decision = verdict;
            check.confidence = Some(Confidence::High);
            check.reason = format!(
                "{size}; consistent across intervals ({what}, {} vs {} intervals): \
                 Mann-Whitney p = {p:.2e} < {ALPHA}",
                s.intervals[0], s.intervals[1]
            );
        }
        Some(p) => {
            check.decision = Decision::Ok;
            check.reason = format!(
                "{size}, but not consistent across intervals ({what}, {} vs {} intervals): \
                 Mann-Whitney p = {p:.3} >= {ALPHA}; treated as noise",
                s.intervals[0], s.intervals[1]
            );
        }
        None => {
            check.decision = verdict;
            check.confidence = Some(Confidence::Low);
            check.reason = format!(
                "{size}; low confidence: only {} vs {} intervals with >= {MIN_INTERVAL_SAMPLES} \
                 samples (< {MIN_INTERVALS}), decided on the whole-run values alone",
                s.intervals[0], s.intervals[1]
            );
        }
    }
    check
}

pub(super) fn error_check(b: &Side, n: &Side, tol_pp: Option<f64>) -> Check {
    let delta_pp = (n.error_rate - b.error_rate) * 100.0;
    let mut check = Check {
        what: "errors".into(),
        unit: "%",
        base: Some(b.error_rate * 100.0),
        new: Some(n.error_rate * 100.0),
        change: Some(delta_pp),
        change_unit: "pp",
        tolerance: tol_pp,
        floor_ms: None,
        decision: Decision::NotChecked,
        confidence: None,
        p_value: None,
        intervals: None,
        higher_intervals: None,
        reason: String::new(),
    };
    let Some(t) = tol_pp else {
        return check;
    };
    let counts = format!("{} of {} vs {} of {}", b.errors, b.count, n.errors, n.count);
    check.decision = Decision::Ok;
    if delta_pp > t {
        let p = stats::fisher_greater(b.errors, b.count, n.errors, n.count);
        check.p_value = Some(p);
        if p < ALPHA {
            check.decision = Decision::Regression;
            check.reason = format!(
                "error rate {delta_pp:+.2} pp ({counts}) beyond {t} pp; Fisher p = {p:.2e} < {ALPHA}"
            );
        } else {
            check.reason = format!(
                "error rate {delta_pp:+.2} pp ({counts}), but not significant: Fisher p = {p:.3} >= {ALPHA}"
            );
        }
    } else if -delta_pp > t {
        let p = stats::fisher_greater(n.errors, n.count, b.errors, b.count);
        check.p_value = Some(p);
        if p < ALPHA {
            check.decision = Decision::Improved;
        }
        check.reason = format!("error rate {delta_pp:+.2} pp ({counts}); Fisher p = {p:.3}");
    } else {
        check.reason = format!("error rate {delta_pp:+.2} pp ({counts}) within {t} pp");
    }
    check
}

pub(super) fn rate_check(b: &Side, n: &Side, tol: Option<f64>) -> Check {
    let change = (b.rate_per_s > 0.0).then(|| (n.rate_per_s - b.rate_per_s) / b.rate_per_s);
    let mut check = Check {
        what: "rate".into(),
        unit: "/s",
        base: Some(b.rate_per_s),
        new: Some(n.rate_per_s),
        change: change.map(|c| c * 100.0),
        change_unit: "%",
        tolerance: tol.map(|t| t * 100.0),
        floor_ms: None,
        decision: Decision::NotChecked,
        confidence: None,
        p_value: None,
        intervals: None,
        higher_intervals: None,
        reason: String::new(),
    };
    let (Some(t), Some(c)) = (tol, change) else {
        return check;
    };
    check.decision = Decision::Ok;
    if -c > t {
        // Each count over the span its rate was computed on.
        let span = |s: &Side| {
            if s.rate_per_s > 0.0 {
                s.count as f64 / s.rate_per_s
            } else {
                0.0
            }
        };
        let p = stats::poisson_rate_lower(b.count, span(b), n.count, span(n));
        check.p_value = Some(p);
        if p < ALPHA {
            check.decision = Decision::Regression;
            check.reason = format!(
                "throughput {} beyond -{}%; Poisson test p = {p:.2e} < {ALPHA}",
                pct(c * 100.0),
                t * 100.0
            );
        } else {
            check.reason = format!(
                "throughput {}, but not significant: p = {p:.3} >= {ALPHA}",
                pct(c * 100.0)
            );
        }
    } else {
        check.reason = format!("throughput {} within -{}%", pct(c * 100.0), t * 100.0);
    }
    check
}

pub(super) fn lost_check(base: &Summary, new: &Summary, tol: u64) -> Check {
    let (b, n) = (base.messages.lost, new.messages.lost);
    let mut check = Check {
        what: "lost".into(),
        unit: "messages",
        base: b.map(|v| v as f64),
        new: n.map(|v| v as f64),
        change: None,
        change_unit: "messages",
        tolerance: Some(tol as f64),
        floor_ms: None,
        decision: Decision::Ok,
        confidence: None,
        p_value: None,
        intervals: None,
        higher_intervals: None,
        reason: String::new(),
    };
    let (Some(b), Some(n)) = (b, n) else {
        check.reason = "loss not measured in one of the runs".into();
        return check;
    };
    let delta = n as i64 - b as i64;
    check.change = Some(delta as f64);
    if delta > tol as i64 {
        check.decision = Decision::Regression;
        check.reason = format!("{delta:+} lost messages ({b} → {n}) beyond {tol}");
    } else {
        check.reason = format!("{delta:+} lost messages ({b} → {n}) within {tol}");
    }
    check
}

#[cfg(test)]
mod tests {
    use super::median;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
    }
}
