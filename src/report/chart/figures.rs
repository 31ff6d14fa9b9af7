//! Pure: a [`Timeline`] becomes figures (data only, no drawing): the latency and lag figures and
//! the helpers every figure over time shares; throughput and users have files of their own.

use std::collections::BTreeSet;
use std::ops::Range;

use plotters::style::RGBColor;

use super::annotations::{is_generator, Annotations};
use super::draw::{Figure, LegendItem, Panel, Reference, Series, Stroke, XAxis};
use super::scale::drawable;
use super::style::{self, metric_color, shade};
use crate::metrics::timeline::{IntervalMetric, IntervalPoint, Timeline};
use crate::metrics::{Catalog, MetricId};

/// The run's points in time order, with unusable (non-finite) intervals left out.
pub(super) fn ordered_points(timeline: &Timeline) -> Vec<&IntervalPoint> {
    let mut points: Vec<&IntervalPoint> = timeline
        .points
        .iter()
        .filter(|p| drawable(p.start_s) && drawable(p.end_s) && p.end_s >= p.start_s)
        .collect();
    points.sort_by(|a, b| a.start_s.total_cmp(&b.start_s));
    points
}

fn x_range(points: &[&IntervalPoint], timeline: &Timeline) -> Range<f64> {
    let spans = points.iter().map(|p| (p.start_s, p.end_s));
    let phase_spans = timeline.phases.iter().map(|p| (p.start_s, p.end_s));
    let (lo, hi) = if points.is_empty() {
        bounds(phase_spans)
    } else {
        bounds(spans)
    }
    .unwrap_or((0.0, 1.0));
    if hi - lo > 1e-9 {
        lo..hi
    } else if lo + 1.0 > lo {
        lo..lo + 1.0
    } else {
        0.0..1.0
    }
}

pub(super) fn bounds<I: Iterator<Item = (f64, f64)>>(spans: I) -> Option<(f64, f64)> {
    spans
        .flat_map(|(a, b)| [a, b])
        .filter(|v| drawable(*v))
        .fold(None, |acc, v| match acc {
            None => Some((v, v)),
            Some((lo, hi)) => Some((f64::min(lo, v), f64::max(hi, v))),
        })
}

pub(super) fn mid(p: &IntervalPoint) -> f64 {
    (p.start_s + p.end_s) / 2.0
}

/// More metrics than this would make unreadable (and, for latency, very tall) charts.
pub(super) const MAX_METRICS: usize = 24;

/// The run's operations (every metric but the generator's own lags) in flow order, at most
/// [`MAX_METRICS`]; its index picks its colour in every chart. The second value is how many
/// operations the run has in all.
pub(super) fn operation_names<'a>(
    timeline: &'a Timeline,
    notes: &Annotations,
) -> (Vec<&'a str>, usize) {
    let names: BTreeSet<&str> = timeline
        .points
        .iter()
        .flat_map(|p| p.metrics.keys().map(String::as_str))
        .filter(|name| !is_generator(name))
        .collect();
    let total = names.len();
    let mut ordered = notes.ordered(names);
    ordered.truncate(MAX_METRICS);
    (ordered, total)
}

pub(super) fn titled(title: &str, shown: usize, total: usize) -> String {
    if shown < total {
        format!("{title} — first {shown} of {total} metrics")
    } else {
        title.to_string()
    }
}

pub(super) fn base_figure(title: String, timeline: &Timeline, points: &[&IntervalPoint]) -> Figure {
    Figure {
        title,
        columns: 1,
        panel_height: 336,
        legend: Vec::new(),
        panels: Vec::new(),
        x_range: x_range(points, timeline),
        x_axis: XAxis::Time,
        phases: timeline.phases.clone(),
        allow_log: false,
    }
}

/// The y label of every latency panel; the figure adds which scale it is on.
pub(super) const LATENCY_MS: &str = "latency, ms";

/// p50, p90, p99, max: shades of the metric's colour (darkest = median), told apart by dashes too.
type Percentile = (&'static str, f64, Stroke, fn(&IntervalMetric) -> f64);
const PERCENTILES: [Percentile; 4] = [
    ("p50", -0.4, Stroke::Solid(2), |m| m.p50_ms),
    ("p90", 0.0, Stroke::Solid(2), |m| m.p90_ms),
    ("p99", 0.3, Stroke::Dashed(2), |m| m.p99_ms),
    ("max", 0.1, Stroke::Dotted(2), |m| m.max_ms),
];

/// A panel of `name`'s percentiles over time (successful operations only), in `color`, with
/// its threshold lines.
fn percentile_panel(
    name: &str,
    title: String,
    color: RGBColor,
    points: &[&IntervalPoint],
    timeline: &Timeline,
    notes: &Annotations,
) -> Panel {
    let series = PERCENTILES
        .iter()
        .map(|&(label, t, stroke, value)| Series {
            legend: LegendItem {
                label: label.to_string(),
                color: shade(color, t),
                stroke,
            },
            points: points
                .iter()
                .map(|p| {
                    let m = p.metrics.get(name)?;
                    (m.count > m.errors).then(|| (mid(p), value(m)))
                })
                .collect(),
        })
        .collect();
    let references = notes
        .lines_on(name)
        .filter_map(|line| {
            let span = match &line.phase {
                None => None,
                // A phase the timeline does not know draws no line rather than a wrong one.
                Some(phase) => {
                    let p = timeline.phases.iter().find(|p| &p.name == phase)?;
                    Some((p.start_s, p.end_s))
                }
            };
            Some(Reference {
                y: line.limit_ms,
                label: line.label.clone(),
                color: if line.passed {
                    style::THRESHOLD
                } else {
                    style::DROPPED
                },
                span,
            })
        })
        .collect();
    Panel {
        swatch: Some(color),
        legend: true,
        references,
        ..Panel::new(title, LATENCY_MS, series)
    }
}

pub(super) fn latency(timeline: &Timeline, notes: &Annotations) -> Figure {
    let points = ordered_points(timeline);
    let (names, total) = operation_names(timeline, notes);
    let mut fig = base_figure(
        titled(
            "Latency by operation (successful operations, from the intended start)",
            names.len(),
            total,
        ),
        timeline,
        &points,
    );
    fig.columns = if names.len() > 1 { 2 } else { 1 };
    fig.panel_height = 360;
    fig.allow_log = true;
    for (i, name) in names.iter().enumerate() {
        let panel = percentile_panel(
            name,
            name.to_string(),
            metric_color(i),
            &points,
            timeline,
            notes,
        );
        fig.panels.push(panel);
    }
    with_placeholder(fig, "no operations recorded")
}

/// What each of the generator's lags measures, as its panel's title says it.
const LAGS: [(MetricId, &str, RGBColor); 2] = [
    (
        MetricId::SCHEDULE_LAG,
        "schedule_lag: how late each arrival and timed step started after its intended time",
        style::GENERATOR_CPU,
    ),
    (
        MetricId::LOOP_LAG,
        "loop_lag: how long ready work (a response, a frame) waited for a worker",
        style::ACTIVE_USERS,
    ),
];

/// The generator's own health: schedule lag and loop lag over time, apart from the operations
/// of the target (a lagging generator is not a slow target).
pub(super) fn lag(timeline: &Timeline, notes: &Annotations) -> Figure {
    let points = ordered_points(timeline);
    let mut fig = base_figure(
        "Generator health: schedule lag and loop lag (not operations of the target)".to_string(),
        timeline,
        &points,
    );
    fig.panel_height = 330;
    fig.allow_log = true;
    let builtin = Catalog::new(std::iter::empty::<&str>());
    for (id, title, color) in LAGS {
        let name = builtin.name(id);
        if points.iter().any(|p| p.metrics.contains_key(name)) {
            let panel = percentile_panel(name, title.to_string(), color, &points, timeline, notes);
            fig.panels.push(panel);
        }
    }
    with_placeholder(fig, "no generator lag recorded")
}

/// A latency figure with no panel still says so, in a panel of its own.
pub(super) fn with_placeholder(mut fig: Figure, title: &str) -> Figure {
    if fig.panels.is_empty() {
        fig.panel_height = 600;
        fig.allow_log = false;
        fig.panels.push(Panel::new(title, LATENCY_MS, Vec::new()));
    }
    fig
}

/// Panels of named lines over time (for charts not drawn from a run's timeline). Each line of a
/// figure gets the next colour, so no two lines of one chart share one.
pub(super) fn lines(
    title: &str,
    phases: &[crate::metrics::timeline::PhaseSpan],
    panels: &[super::LinePanel],
) -> Figure {
    let xs = panels
        .iter()
        .flat_map(|p| p.lines.iter())
        .flat_map(|(_, pts)| pts.iter().map(|&(x, _)| (x, x)));
    let spans = phases.iter().map(|p| (p.start_s, p.end_s));
    let (lo, hi) = bounds(xs.chain(spans)).unwrap_or((0.0, 1.0));
    let mut color = 0;
    Figure {
        title: title.to_string(),
        columns: 1,
        panel_height: 300,
        legend: Vec::new(),
        panels: panels
            .iter()
            .map(|p| Panel {
                legend: true,
                ..Panel::new(
                    p.title.clone(),
                    p.y_label.clone(),
                    p.lines
                        .iter()
                        .map(|(label, pts)| {
                            color += 1;
                            Series {
                                legend: LegendItem {
                                    label: label.clone(),
                                    color: metric_color(color - 1),
                                    stroke: Stroke::Solid(2),
                                },
                                points: pts.iter().map(|&p| Some(p)).collect(),
                            }
                        })
                        .collect(),
                )
            })
            .collect(),
        x_range: if hi - lo > 1e-9 { lo..hi } else { lo..lo + 1.0 },
        x_axis: XAxis::Time,
        phases: phases.to_vec(),
        allow_log: false,
    }
}
