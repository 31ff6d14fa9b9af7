//! The capacity chart: each gated statistic against the offered rate, one panel each, the
//! steps as points by that threshold's result (grey: the step was inconclusive), the
//! threshold's limit as a line and the knee shaded.

use std::path::Path;

use super::report::CapacityReport;
use super::step::Gates;
use crate::compiled::threshold::Unit;
use crate::error::Error;
use crate::report::chart::{render_rates, RatePanel, StepKind};

/// `capacity.png` and `capacity.svg`.
pub const STEM: &str = "capacity";

/// The statistic a threshold expression gates: the expression up to its comparison
/// (`measure:verify.p99 < 250ms` → `measure:verify.p99`).
pub fn statistic(expr: &str) -> &str {
    expr.find(['<', '>', '=', '!'])
        .map_or(expr, |at| &expr[..at])
        .trim()
}

/// A value in `unit` as the chart's axis shows it (a fraction as a percentage), and the axis's
/// name for it.
fn shown(unit: Unit, v: f64) -> f64 {
    match unit {
        Unit::Fraction => v * 100.0,
        _ => v,
    }
}

fn unit_label(unit: Unit) -> &'static str {
    match unit {
        Unit::Millis => "ms",
        Unit::Fraction => "%",
        Unit::Count => "count",
        Unit::PerSecond => "per second",
        Unit::Bytes => "bytes",
    }
}

/// One panel per applied threshold, from every step's observed value.
pub fn panels(r: &CapacityReport, gates: &Gates) -> Vec<RatePanel> {
    gates
        .applied
        .iter()
        .map(|t| {
            let mut unit = Unit::default();
            let points = r
                .steps
                .iter()
                .filter_map(|s| {
                    let seen = s.thresholds.iter().find(|x| x.expr == t.expr)?;
                    unit = seen.unit;
                    Some((
                        s.rate,
                        shown(seen.unit, seen.observed?),
                        dot(s.verdict, seen.passed),
                    ))
                })
                .collect();
            RatePanel {
                title: statistic(&t.expr).to_string(),
                y_label: unit_label(unit).to_string(),
                points,
                limit: Some((shown(unit, t.limit), t.expr.clone())),
            }
        })
        .collect()
}

/// A step's dot in one threshold's panel: that threshold's own result — a step that failed on
/// another threshold is a pass here, so each panel shows where its own SLO breaks — or grey when
/// the step as a whole said nothing (inconclusive).
fn dot(step_verdict: &str, threshold_passed: bool) -> StepKind {
    match (step_verdict, threshold_passed) {
        ("pass" | "fail", true) => StepKind::Pass,
        ("pass" | "fail", false) => StepKind::Fail,
        _ => StepKind::Inconclusive,
    }
}

/// Draws the chart into `dir`.
pub fn write(dir: &Path, r: &CapacityReport, gates: &Gates) -> Result<(), Error> {
    let knee = match (r.bracket.last_pass, r.bracket.first_fail) {
        (Some(a), Some(b)) => Some((a, b)),
        _ => None,
    };
    render_rates(
        dir,
        STEM,
        &format!("Gated statistics against the offered rate — {}", r.scenario),
        &panels(r, gates),
        knee,
    )
    .map(|_| ())
    .map_err(|e| Error::Run(format!("cannot draw the capacity chart: {e}")))
}

#[cfg(test)]
mod tests {
    use super::{dot, statistic, StepKind};

    #[test]
    fn each_panel_colours_a_step_by_its_own_thresholds_result() {
        assert_eq!(
            dot("fail", true),
            StepKind::Pass,
            "failed on another threshold"
        );
        assert_eq!(dot("fail", false), StepKind::Fail);
        assert_eq!(dot("pass", true), StepKind::Pass);
        assert_eq!(dot("inconclusive", false), StepKind::Inconclusive);
        assert_eq!(dot("inconclusive", true), StepKind::Inconclusive);
    }

    #[test]
    fn the_statistic_is_the_expression_before_its_comparison() {
        assert_eq!(
            statistic("measure:verify.p99 < 250ms"),
            "measure:verify.p99"
        );
        assert_eq!(statistic("messages.lost == 0"), "messages.lost");
        assert_eq!(statistic("errors.rate != 1%"), "errors.rate");
        assert_eq!(statistic("odd"), "odd");
    }
}
