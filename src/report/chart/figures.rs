//! Pure: a [`Timeline`] becomes the three figures (data only, no drawing).

use std::collections::BTreeSet;
use std::ops::Range;

use super::draw::{Figure, LegendItem, Panel, Series, Stroke, XAxis};
use super::scale::drawable;
use super::style::{self, metric_color, shade};
use crate::metrics::timeline::{IntervalMetric, IntervalPoint, Timeline};

/// The run's points in time order, with unusable (non-finite) intervals left out.
fn ordered_points(timeline: &Timeline) -> Vec<&IntervalPoint> {
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

fn bounds<I: Iterator<Item = (f64, f64)>>(spans: I) -> Option<(f64, f64)> {
    spans
        .flat_map(|(a, b)| [a, b])
        .filter(|v| drawable(*v))
        .fold(None, |acc, v| match acc {
            None => Some((v, v)),
            Some((lo, hi)) => Some((f64::min(lo, v), f64::max(hi, v))),
        })
}

fn mid(p: &IntervalPoint) -> f64 {
    (p.start_s + p.end_s) / 2.0
}

/// More metrics than this would make unreadable (and, for latency, very tall) charts.
pub(super) const MAX_METRICS: usize = 24;

/// Every metric name in the run, sorted, at most [`MAX_METRICS`]; its index picks its colour in
/// every chart. The second value is how many metrics the run has in all.
fn metric_names(timeline: &Timeline) -> (Vec<&str>, usize) {
    let names: BTreeSet<&str> = timeline
        .points
        .iter()
        .flat_map(|p| p.metrics.keys().map(String::as_str))
        .collect();
    let total = names.len();
    (names.into_iter().take(MAX_METRICS).collect(), total)
}

pub(super) fn titled(title: &str, shown: usize, total: usize) -> String {
    if shown < total {
        format!("{title} — first {shown} of {total} metrics")
    } else {
        title.to_string()
    }
}

fn base_figure(title: String, timeline: &Timeline, points: &[&IntervalPoint]) -> Figure {
    Figure {
        title,
        columns: 1,
        panel_height: 336,
        legend: Vec::new(),
        panels: Vec::new(),
        x_range: x_range(points, timeline),
        x_axis: XAxis::Time,
        phases: timeline.phases.clone(),
    }
}

/// p50, p90, p99, max: shades of the metric's colour (darkest = median), told apart by dashes too.
type Percentile = (&'static str, f64, Stroke, fn(&IntervalMetric) -> f64);
const PERCENTILES: [Percentile; 4] = [
    ("p50", -0.4, Stroke::Solid(2), |m| m.p50_ms),
    ("p90", 0.0, Stroke::Solid(2), |m| m.p90_ms),
    ("p99", 0.3, Stroke::Dashed(2), |m| m.p99_ms),
    ("max", 0.1, Stroke::Dotted(2), |m| m.max_ms),
];

pub(super) fn latency(timeline: &Timeline) -> Figure {
    let points = ordered_points(timeline);
    let (names, total) = metric_names(timeline);
    let mut fig = base_figure(
        titled(
            "Latency by operation (ms, successful operations)",
            names.len(),
            total,
        ),
        timeline,
        &points,
    );
    fig.columns = if names.len() > 1 { 2 } else { 1 };
    fig.panel_height = 360;
    for (i, name) in names.iter().enumerate() {
        let color = metric_color(i);
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
                        let m = p.metrics.get(*name)?;
                        (m.count > m.errors).then(|| (mid(p), value(m)))
                    })
                    .collect(),
            })
            .collect();
        fig.panels.push(Panel {
            title: name.to_string(),
            swatch: Some(color),
            y_label: "latency (ms)".to_string(),
            series,
            legend: true,
            allow_log: true,
        });
    }
    with_placeholder(fig)
}

/// A latency figure with no metric still says so, in a panel of its own.
pub(super) fn with_placeholder(mut fig: Figure) -> Figure {
    if fig.panels.is_empty() {
        fig.panel_height = 600;
        fig.panels.push(Panel {
            title: "no metrics recorded".to_string(),
            swatch: None,
            y_label: "latency (ms)".to_string(),
            series: Vec::new(),
            legend: false,
            allow_log: false,
        });
    }
    fig
}

// Long on purpose: one figure's panels declared top to bottom, as the chart reads; split, the
// order of the panels would be scattered over several functions.
pub(super) fn throughput(timeline: &Timeline) -> Figure {
    let points = ordered_points(timeline);
    let (names, total) = metric_names(timeline);
    let mut fig = base_figure(
        titled("Throughput and errors by operation", names.len(), total),
        timeline,
        &points,
    );
    // Schedule lag and loop lag measure the generator, not operations: they have no
    // throughput. Colours keep each metric's index in the full list, as in the latency chart.
    let operations = || {
        names
            .iter()
            .enumerate()
            .filter(|(_, name)| !matches!(**name, "schedule_lag" | "loop_lag"))
    };
    let per_metric = |value: fn(&IntervalMetric) -> u64| -> Vec<Series> {
        operations()
            .map(|(i, name)| Series {
                legend: LegendItem {
                    label: name.to_string(),
                    color: metric_color(i),
                    stroke: Stroke::Solid(2),
                },
                // An interval without the metric had no such operations: zero per second.
                points: points
                    .iter()
                    .map(|p| {
                        let n = p.metrics.get(*name).map_or(0, value);
                        Some((mid(p), n as f64 / p.duration_s()))
                    })
                    .collect(),
            })
            .collect()
    };
    let total_errors: u64 = points
        .iter()
        .flat_map(|p| p.metrics.values())
        .fold(0u64, |acc, m| acc.saturating_add(m.errors));
    fig.legend = operations()
        .map(|(i, name)| LegendItem {
            label: name.to_string(),
            color: metric_color(i),
            stroke: Stroke::Solid(2),
        })
        .collect();
    fig.panels.push(Panel {
        title: "Operations per second (successful + failed)".to_string(),
        swatch: None,
        y_label: "operations/s".to_string(),
        series: per_metric(|m| m.count),
        legend: false,
        allow_log: false,
    });
    fig.panels.push(Panel {
        title: format!("Errors per second ({total_errors} errors in total)"),
        swatch: None,
        y_label: "errors/s".to_string(),
        series: per_metric(|m| m.errors),
        legend: false,
        allow_log: false,
    });
    // Retries and reconnects are not errors, but they are load the target had to take: the
    // storm a surge causes. Only drawn when the run had any, so other charts keep their shape.
    let total_retries: u64 = points
        .iter()
        .flat_map(|p| p.metrics.values())
        .fold(0u64, |acc, m| acc.saturating_add(m.retries));
    let total_reconnects: u64 = points
        .iter()
        .flat_map(|p| p.metrics.values())
        .fold(0u64, |acc, m| acc.saturating_add(m.reconnects));
    if total_retries + total_reconnects > 0 {
        fig.panels.push(Panel {
            title: format!(
                "Retries and reconnects per second ({total_retries} retries, {total_reconnects} reconnects in total)"
            ),
            swatch: None,
            y_label: "retries/s".to_string(),
            series: per_metric(|m| m.retries + m.reconnects),
            legend: false,
            allow_log: false,
        });
    }
    // The same errors by class: a wall of timeouts reads differently from a wall of 429s.
    let classes: std::collections::BTreeSet<&str> = points
        .iter()
        .flat_map(|p| p.errors_by_class.keys().map(String::as_str))
        .collect();
    fig.panels.push(Panel {
        title: "Errors per second by class".to_string(),
        swatch: None,
        y_label: "errors/s".to_string(),
        series: classes
            .iter()
            .enumerate()
            .map(|(i, class)| Series {
                legend: LegendItem {
                    label: class.to_string(),
                    color: metric_color(names.len() + i),
                    stroke: Stroke::Dashed(2),
                },
                points: points
                    .iter()
                    .map(|p| {
                        let n = p.errors_by_class.get(*class).copied().unwrap_or(0);
                        Some((mid(p), n as f64 / p.duration_s()))
                    })
                    .collect(),
            })
            .collect(),
        legend: true,
        allow_log: false,
    });
    fig
}

// Long on purpose, as `throughput`: one figure's panels declared in the order they are drawn.
pub(super) fn users(timeline: &Timeline) -> Figure {
    let points = ordered_points(timeline);
    let mut fig = base_figure("Users and arrivals".to_string(), timeline, &points);
    // Gauges are sampled at the end of the interval, rates belong to its middle.
    let gauge = |label: &str, color, value: fn(&IntervalPoint) -> u64| Series {
        legend: LegendItem {
            label: label.to_string(),
            color,
            stroke: Stroke::Solid(2),
        },
        points: points
            .iter()
            .map(|p| Some((p.end_s, value(p) as f64)))
            .collect(),
    };
    let rate = |label: &str, color, stroke, value: fn(&IntervalPoint) -> u64| Series {
        legend: LegendItem {
            label: label.to_string(),
            color,
            stroke,
        },
        points: points
            .iter()
            .map(|p| Some((mid(p), value(p) as f64 / p.duration_s())))
            .collect(),
    };
    fig.panels.push(Panel {
        title: "Active users and open connections (end of interval)".to_string(),
        swatch: None,
        y_label: "count".to_string(),
        series: vec![
            gauge("active users", style::ACTIVE_USERS, |p| p.active_users),
            // Apart, as `inrush plan` draws them: a polling client holds an HTTP connection
            // where a socket client holds a WebSocket.
            gauge("WebSockets", style::CONNECTIONS, |p| {
                p.open_connections.saturating_sub(p.open_http)
            }),
            gauge("HTTP connections", style::HTTP_CONNECTIONS, |p| p.open_http),
        ],
        legend: true,
        allow_log: false,
    });
    // Planned and dropped by when the arrivals were due, achieved by when they started: a
    // generator that fell behind shows as a gap under a flat plan, not as a late spike. A
    // timeline from before these fields has only the counts by decision time.
    let by_due = points.iter().any(|p| p.planned_due > 0);
    type Count = fn(&IntervalPoint) -> u64;
    let (planned, dropped): (Count, Count) = if by_due {
        (|p| p.planned_due, |p| p.dropped_due)
    } else {
        (|p| p.planned_arrivals, |p| p.dropped_arrivals)
    };
    fig.panels.push(Panel {
        title: "Arrival rate: planned vs achieved".to_string(),
        swatch: None,
        y_label: "arrivals/s".to_string(),
        series: vec![
            rate(
                "achieved (started)",
                style::ACHIEVED,
                Stroke::Solid(2),
                |p| p.started_arrivals,
            ),
            rate(
                "dropped (when due)",
                style::DROPPED,
                Stroke::Solid(2),
                dropped,
            ),
            // Last, so that its dashes stay visible where achieved equals planned.
            rate(
                "planned (when due)",
                style::PLANNED,
                Stroke::Dashed(2),
                planned,
            ),
        ],
        legend: true,
        allow_log: false,
    });
    // The generator's own load beside the users it drives: a worker near 100 % is the
    // generator's bottleneck, not the target's.
    let span = [
        points.first().map(|p| p.start_s),
        points.last().map(|p| p.end_s),
    ];
    fig.panels.push(Panel {
        title: "Generator: busiest worker thread's CPU per interval".to_string(),
        swatch: None,
        y_label: "% of one core".to_string(),
        series: vec![
            Series {
                legend: LegendItem {
                    label: "busiest worker".to_string(),
                    color: style::GENERATOR_CPU,
                    stroke: Stroke::Solid(2),
                },
                points: points
                    .iter()
                    .map(|p| Some((mid(p), p.worker_cpu_max * 100.0)))
                    .collect(),
            },
            Series {
                legend: LegendItem {
                    label: "saturated above 90 %".to_string(),
                    color: style::PLANNED,
                    stroke: Stroke::Dashed(1),
                },
                points: span
                    .into_iter()
                    .flatten()
                    .map(|x| Some((x, 90.0)))
                    .collect(),
            },
        ],
        legend: true,
        allow_log: false,
    });
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
                title: p.title.clone(),
                swatch: None,
                y_label: p.y_label.clone(),
                series: p
                    .lines
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
                legend: true,
                allow_log: false,
            })
            .collect(),
        x_range: if hi - lo > 1e-9 { lo..hi } else { lo..lo + 1.0 },
        x_axis: XAxis::Time,
        phases: phases.to_vec(),
    }
}
