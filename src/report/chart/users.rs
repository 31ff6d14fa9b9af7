//! The users figure: active users and open connections, planned vs achieved arrivals, and the
//! generator's busiest worker.

use super::draw::{Figure, LegendItem, Panel, Series, Stroke};
use super::figures::{base_figure, mid, ordered_points};
use super::style;
use crate::metrics::timeline::{IntervalPoint, Timeline};

// Long on purpose: one figure's panels declared in the order they are drawn; split, the order
// of the panels would be scattered over several functions.
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
        references: Vec::new(),
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
        references: Vec::new(),
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
        references: Vec::new(),
    });
    fig
}
