//! What a decision rests on, in words, as `compare.md` and `compare.html` state it: "p99 rose
//! 31 % (4.10 → 5.40 ms, +1.30 ms), higher in 18 of 20 intervals, Mann–Whitney p < 0.001". Every
//! number in a sentence is one of `compare.json`'s, formatted as `index.html` formats it.

use super::{Check, Confidence, Decision, Side, MIN_INTERVALS, MIN_INTERVAL_SAMPLES};
use crate::report::html::format::{int, ms};

/// A check's name as people write it: `p99.9` for `p999`, `error rate`, `rate/s`.
pub fn label(what: &str) -> &str {
    match what {
        "p999" => "p99.9",
        "p9999" => "p99.99",
        "errors" => "error rate",
        "rate" => "rate/s",
        other => other,
    }
}

/// A value in its check's unit, without the unit: `4.10` (ms), `0.31` (%), `40.0` (/s), `5`.
pub fn number(v: f64, unit: &str) -> String {
    match unit {
        "ms" => ms(v),
        "%" => format!("{v:.2}"),
        "/s" => format!("{v:.1}"),
        _ => int(v.round().max(0.0) as u64),
    }
}

/// A value with its unit: `4.10 ms`, `0.31 %`, `40.0/s`, `5 messages`; `–` when absent.
pub fn value(v: Option<f64>, unit: &str) -> String {
    match (v, unit) {
        (None, _) => "–".into(),
        (Some(v), "/s") => format!("{}/s", number(v, unit)),
        (Some(v), _) => format!("{} {unit}", number(v, unit)),
    }
}

/// NEW relative to BASE in the check's change unit, signed: `+31.7 %`, `+3.13 pp`, `+5`.
pub fn change(c: &Check) -> String {
    match (c.change, c.change_unit) {
        (None, _) => "–".into(),
        (Some(v), "%") => format!("{v:+.1} %"),
        (Some(v), "pp") => format!("{v:+.2} pp"),
        (Some(v), _) => format!("{v:+.0}"),
    }
}

/// NEW − BASE in the check's own unit, signed: `+1.30 ms`, `-4.8/s`.
fn difference(base: f64, new: f64, unit: &str) -> String {
    let sign = if new >= base { "+" } else { "-" };
    let size = number((new - base).abs(), unit);
    match unit {
        "/s" => format!("{sign}{size}/s"),
        _ => format!("{sign}{size} {unit}"),
    }
}

/// A relative size without sign, to two significant digits or so: `31 %`, `4.5 %`.
fn percent(v: f64) -> String {
    let v = v.abs();
    if v >= 10.0 {
        format!("{v:.0} %")
    } else {
        format!("{v:.1} %")
    }
}

/// `p < 0.001`, `p = 0.004`, `p = 0.31`.
pub fn p_value(p: f64) -> String {
    if p < 0.001 {
        "p < 0.001".into()
    } else if p < 0.01 {
        format!("p = {p:.3}")
    } else {
        format!("p = {p:.2}")
    }
}

/// The sentence for a regression or an improvement (the check's reason for anything else).
/// `sides` are the metric's BASE and NEW counts, for the error rate's "3 of 320".
pub fn evidence(c: &Check, sides: Option<[&Side; 2]>) -> String {
    let (Some(b), Some(n)) = (c.base, c.new) else {
        return c.reason.clone();
    };
    if !matches!(c.decision, Decision::Regression | Decision::Improved) {
        return c.reason.clone();
    }
    let moved = if n >= b { "rose" } else { "fell" };
    let (from, to) = (value(Some(b), c.unit), value(Some(n), c.unit));
    match c.what.as_str() {
        "errors" => {
            let counts = sides.map_or(String::new(), |[sb, sn]| {
                format!(
                    "; {} of {} → {} of {} operations",
                    int(sb.errors),
                    int(sb.count),
                    int(sn.errors),
                    int(sn.count)
                )
            });
            format!(
                "error rate {moved} {} ({from} → {to}{counts}), Fisher's exact test {}",
                change(c).trim_start_matches(['+', '-']),
                c.p_value.map_or("not run".into(), p_value)
            )
        }
        "rate" => format!(
            "throughput {moved} {} ({from} → {to}, {}), Poisson test {}",
            c.change.map_or("–".into(), percent),
            difference(b, n, c.unit),
            c.p_value.map_or("not run".into(), p_value)
        ),
        "lost" => format!(
            "lost messages {moved} by {} ({} → {}; {} allowed); no test: a lost message is a defect, not noise",
            int((n - b).abs().round() as u64),
            number(b, c.unit),
            number(n, c.unit),
            c.tolerance.map_or("–".into(), |t| number(t, c.unit))
        ),
        stat => {
            let size = match c.change {
                Some(ch) => format!(
                    "{} {moved} {} ({from} → {to}, {})",
                    label(stat),
                    percent(ch),
                    difference(b, n, c.unit)
                ),
                None => format!("{} {moved} from {from} to {to}", label(stat)),
            };
            format!("{size}{}", intervals(c))
        }
    }
}

/// The interval test in words: how many of the worse run's intervals were higher than the other
/// run's median interval, and the test's p-value; or why there was no test.
fn intervals(c: &Check) -> String {
    let Some([base, new]) = c.intervals else {
        return String::new();
    };
    if c.confidence == Some(Confidence::Low) {
        return format!(
            "; low confidence: only {base} (BASE) and {new} (NEW) intervals of at least \
             {MIN_INTERVAL_SAMPLES} samples, fewer than the {MIN_INTERVALS} the interval test \
             needs, so the whole-run values alone decided"
        );
    }
    let p = c
        .p_value
        .map_or(String::new(), |p| format!(", Mann–Whitney {}", p_value(p)));
    match (c.decision, c.higher_intervals) {
        (Decision::Regression, Some(h)) => format!(", higher in {h} of {new} intervals{p}"),
        (Decision::Improved, Some(h)) => {
            format!(", lower throughout (BASE higher in {h} of its {base} intervals){p}")
        }
        _ => p,
    }
}

/// What "higher in k of n intervals" counts, as a note under a list of findings.
pub const INTERVALS_MEANING: &str = "“higher in k of n intervals” counts NEW's intervals with a \
    larger share of samples above BASE's whole-run value of the statistic than BASE's median \
    interval (for the mean: a larger interval mean)";

#[cfg(test)]
mod tests {
    use super::*;

    fn latency(decision: Decision) -> Check {
        Check {
            what: "p99".into(),
            unit: "ms",
            base: Some(4.1),
            new: Some(5.4),
            change: Some(31.707),
            change_unit: "%",
            tolerance: Some(10.0),
            floor_ms: Some(1.0),
            decision,
            confidence: Some(Confidence::High),
            p_value: Some(0.000_02),
            intervals: Some([20, 20]),
            higher_intervals: Some(18),
            reason: "the reason".into(),
        }
    }

    #[test]
    fn a_latency_regression_reads_as_one_sentence() {
        assert_eq!(
            evidence(&latency(Decision::Regression), None),
            "p99 rose 32 % (4.10 ms → 5.40 ms, +1.30 ms), higher in 18 of 20 intervals, \
             Mann–Whitney p < 0.001"
        );
        let mut low = latency(Decision::Regression);
        low.confidence = Some(Confidence::Low);
        low.intervals = Some([3, 2]);
        low.p_value = None;
        let text = evidence(&low, None);
        assert!(
            text.contains("low confidence: only 3 (BASE) and 2 (NEW)"),
            "{text}"
        );
        // Anything but a regression or an improvement keeps its reason.
        assert_eq!(evidence(&latency(Decision::Ok), None), "the reason");
    }

    #[test]
    fn error_rate_and_throughput_say_their_counts_and_tests() {
        let side = |errors, count| Side {
            count,
            errors,
            error_rate: errors as f64 / count as f64,
            rate_per_s: 40.0,
            latency_ms: None,
        };
        let mut c = latency(Decision::Regression);
        c.what = "errors".into();
        c.unit = "%";
        c.base = Some(0.0);
        c.new = Some(3.4375);
        c.change = Some(3.4375);
        c.change_unit = "pp";
        c.p_value = Some(0.0012);
        assert_eq!(
            evidence(&c, Some([&side(0, 320), &side(11, 320)])),
            "error rate rose 3.44 pp (0.00 % → 3.44 %; 0 of 320 → 11 of 320 operations), \
             Fisher's exact test p = 0.001"
        );
        c.what = "rate".into();
        c.unit = "/s";
        c.base = Some(40.0);
        c.new = Some(35.2);
        c.change = Some(-12.0);
        c.change_unit = "%";
        c.p_value = Some(0.2);
        assert_eq!(
            evidence(&c, None),
            "throughput fell 12 % (40.0/s → 35.2/s, -4.8/s), Poisson test p = 0.20"
        );
        assert_eq!(p_value(0.004_2), "p = 0.004");
    }
}
