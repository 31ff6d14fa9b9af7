//! Pure: statistics observed at offered rates (find-capacity's steps) become a figure, one panel
//! per statistic, each step a point coloured by its verdict, the limit a reference line and
//! the knee (last pass, first fail) a band across every panel.

use super::draw::{Figure, LegendItem, Panel, Reference, Series, Stroke, XAxis};
use super::figures::bounds;
use super::style;
use crate::metrics::timeline::PhaseSpan;

/// How a step was judged, for its point's colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepKind {
    Pass,
    Fail,
    Inconclusive,
}

impl StepKind {
    const ALL: [StepKind; 3] = [StepKind::Pass, StepKind::Fail, StepKind::Inconclusive];

    fn legend(self) -> LegendItem {
        let (label, color) = match self {
            StepKind::Pass => ("step passed", style::ACHIEVED),
            StepKind::Fail => ("step failed", style::DROPPED),
            StepKind::Inconclusive => ("step inconclusive", style::INCONCLUSIVE),
        };
        LegendItem {
            label: label.to_string(),
            color,
            stroke: Stroke::Solid(3),
        }
    }
}

/// One statistic against the offered rate.
#[derive(Debug, Clone)]
pub struct RatePanel {
    /// The statistic, e.g. `measure:verify.p99`.
    pub title: String,
    /// Its unit, e.g. `ms`.
    pub y_label: String,
    /// (offered rate, observed value, verdict of the step).
    pub points: Vec<(f64, f64, StepKind)>,
    /// The threshold's limit and its expression.
    pub limit: Option<(f64, String)>,
}

/// The figure: every panel shares the x axis (the rates tried) and the knee's band.
pub(super) fn figure(title: &str, panels: &[RatePanel], knee: Option<(f64, f64)>) -> Figure {
    let xs = panels
        .iter()
        .flat_map(|p| p.points.iter().map(|&(x, _, _)| (x, x)));
    let (lo, hi) = bounds(xs.chain(knee)).unwrap_or((0.0, 1.0));
    // A margin either side so the first and last steps' points are not cut by the axes.
    let pad = ((hi - lo) * 0.06).max(hi.abs() * 0.05).max(1e-3);
    let x_range = (lo - pad).max(0.0)..hi + pad;
    let used: Vec<StepKind> = StepKind::ALL
        .into_iter()
        .filter(|k| panels.iter().any(|p| p.points.iter().any(|q| q.2 == *k)))
        .collect();
    let mut legend: Vec<LegendItem> = used.iter().map(|k| k.legend()).collect();
    legend.push(LegendItem {
        label: "threshold".into(),
        color: style::THRESHOLD,
        stroke: Stroke::Dashed(2),
    });
    if let Some((a, b)) = knee {
        legend.push(LegendItem {
            label: format!(
                "knee: last pass {} → first fail {} users/s (shaded)",
                style::format_number(a),
                style::format_number(b)
            ),
            color: style::KNEE,
            stroke: Stroke::Solid(10),
        });
    }
    Figure {
        title: title.to_string(),
        columns: 1,
        panel_height: 320,
        legend,
        panels: panels.iter().map(|p| panel(p, &used)).collect(),
        x_range,
        x_axis: XAxis::Rate,
        phases: knee
            .map(|(a, b)| PhaseSpan {
                name: "knee".into(),
                start_s: a,
                end_s: b,
            })
            .into_iter()
            .collect(),
        allow_log: false,
    }
}

/// A panel: one series per verdict, every point on its own (a `None` between any two), so
/// each is drawn as a dot and no line suggests values between the rates tried.
fn panel(p: &RatePanel, used: &[StepKind]) -> Panel {
    let mut points: Vec<(f64, f64, StepKind)> = p.points.clone();
    points.sort_by(|a, b| a.0.total_cmp(&b.0));
    let series = used
        .iter()
        .map(|&kind| Series {
            legend: kind.legend(),
            points: points
                .iter()
                .filter(|q| q.2 == kind)
                .flat_map(|&(x, y, _)| [Some((x, y)), None])
                .collect(),
        })
        .collect();
    Panel {
        references: p
            .limit
            .iter()
            .map(|(y, expr)| Reference {
                y: *y,
                label: format!("threshold: {expr}"),
                color: style::THRESHOLD,
                span: None,
            })
            .collect(),
        ..Panel::new(p.title.clone(), p.y_label.clone(), series)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_step_is_a_lone_point_of_its_verdict_and_the_knee_a_band() {
        let p = RatePanel {
            title: "measure:verify.errors".into(),
            y_label: "count".into(),
            points: vec![
                (80.0, 0.0, StepKind::Pass),
                (160.0, 12.0, StepKind::Fail),
                (120.0, 0.0, StepKind::Pass),
                (160.0, 9.0, StepKind::Fail),
            ],
            limit: Some((0.0, "measure:verify.errors == 0".into())),
        };
        let fig = figure("t", &[p], Some((120.0, 160.0)));
        assert_eq!(fig.x_axis, XAxis::Rate);
        assert!(fig.x_range.start < 80.0 && fig.x_range.end > 160.0);
        assert_eq!(fig.phases.len(), 1);
        assert_eq!((fig.phases[0].start_s, fig.phases[0].end_s), (120.0, 160.0));
        let panel = &fig.panels[0];
        assert_eq!(panel.series.len(), 2, "no inconclusive step, no series");
        let pass = &panel.series[0].points;
        assert_eq!(
            pass,
            &vec![Some((80.0, 0.0)), None, Some((120.0, 0.0)), None],
            "sorted by rate, each on its own"
        );
        assert_eq!(panel.references[0].y, 0.0);
        assert!(fig.legend.iter().any(|l| l.label.starts_with("knee")));
    }
}
