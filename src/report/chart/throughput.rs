//! The throughput figure as small multiples: one panel per operation, on the same time axis,
//! each with its own line (and its own y range), so operations running at near-equal rates do
//! not hide one another as lines stacked in one panel would. Errors, retries and errors by class
//! are drawn only where there were any: no empty panels, no flat zero lines.

use super::annotations::Annotations;
use super::draw::{Figure, LegendItem, Panel, Series, Stroke};
use super::figures::{base_figure, mid, operation_names, ordered_points, titled};
use super::style::{self, metric_color, shade};
use crate::metrics::timeline::{IntervalMetric, IntervalPoint, Timeline};

/// A small multiple is shorter than a latency panel: it holds one to three lines.
const PANEL_HEIGHT: u32 = 270;

/// Per second of `value` of metric `name`, one point per interval (an interval without the
/// metric had no such operations: zero per second).
fn per_second(
    points: &[&IntervalPoint],
    name: &str,
    value: fn(&IntervalMetric) -> u64,
) -> Vec<Option<(f64, f64)>> {
    points
        .iter()
        .map(|p| {
            let n = p.metrics.get(name).map_or(0, value);
            Some((mid(p), n as f64 / p.duration_s()))
        })
        .collect()
}

fn total(points: &[&IntervalPoint], name: &str, value: fn(&IntervalMetric) -> u64) -> u64 {
    points
        .iter()
        .filter_map(|p| p.metrics.get(name))
        .fold(0u64, |acc, m| acc.saturating_add(value(m)))
}

/// What a panel's title adds after the operation's name: its totals, errors only when any.
fn totals_note(count: u64, errors: u64, retried: u64) -> String {
    let mut parts = vec![format!("{count} operations")];
    if errors > 0 {
        parts.push(format!("{errors} failed"));
    }
    if retried > 0 {
        parts.push(format!("{retried} retries and reconnects"));
    }
    parts.join(", ")
}

pub(super) fn throughput(timeline: &Timeline, notes: &Annotations) -> Figure {
    let points = ordered_points(timeline);
    let (names, all) = operation_names(timeline, notes);
    let all_errors: u64 = names
        .iter()
        .map(|n| total(&points, n, |m| m.errors))
        .fold(0, u64::saturating_add);
    let errors_note = match all_errors {
        0 => "no errors".to_string(),
        n => format!("{n} errors in total"),
    };
    let mut fig = base_figure(
        titled(
            &format!("Throughput by operation, per second — {errors_note}"),
            names.len(),
            all,
        ),
        timeline,
        &points,
    );
    fig.panel_height = PANEL_HEIGHT;
    let retried = |m: &IntervalMetric| m.retries.saturating_add(m.reconnects);
    for (i, name) in names.iter().enumerate() {
        let color = metric_color(i);
        let line = |label: &str, color, stroke, value| Series {
            legend: LegendItem {
                label: label.to_string(),
                color,
                stroke,
            },
            points: per_second(&points, name, value),
        };
        let mut series = vec![line(
            "operations/s (successful + failed)",
            color,
            Stroke::Solid(2),
            |m| m.count,
        )];
        let (errors, retries) = (
            total(&points, name, |m| m.errors),
            total(&points, name, retried),
        );
        if errors > 0 {
            series.push(line("errors/s", style::DROPPED, Stroke::Dashed(2), |m| {
                m.errors
            }));
        }
        // Retries and reconnects are not errors, but load the target had to take: the storm
        // a surge causes.
        if retries > 0 {
            series.push(line(
                "retries + reconnects/s",
                shade(color, -0.4),
                Stroke::Dotted(2),
                retried,
            ));
        }
        let count = total(&points, name, |m| m.count);
        fig.panels.push(Panel {
            swatch: Some(color),
            // One line needs no legend: the axis says what it is.
            legend: series.len() > 1,
            ..Panel::new(
                format!("{name} — {}", totals_note(count, errors, retries)),
                "operations/s",
                series,
            )
        });
    }
    // The same errors by class: a wall of timeouts reads differently from a wall of 429s.
    let classes: std::collections::BTreeSet<&str> = points
        .iter()
        .flat_map(|p| p.errors_by_class.keys().map(String::as_str))
        .collect();
    if !classes.is_empty() {
        let series = classes
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
            .collect();
        fig.panels.push(Panel {
            legend: true,
            ..Panel::new("Errors per second by class", "errors/s", series)
        });
    }
    fig.columns = if fig.panels.len() > 1 { 2 } else { 1 };
    if fig.panels.is_empty() {
        fig.panels.push(Panel::new(
            "no operations recorded",
            "operations/s",
            Vec::new(),
        ));
    }
    fig
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn point(i: u32, metrics: &[(&str, u64, u64)], classes: &[(&str, u64)]) -> IntervalPoint {
        IntervalPoint {
            start_s: f64::from(i),
            end_s: f64::from(i + 1),
            metrics: metrics
                .iter()
                .map(|&(n, count, errors)| {
                    let m = IntervalMetric {
                        count,
                        errors,
                        ..IntervalMetric::default()
                    };
                    (n.to_string(), m)
                })
                .collect(),
            errors_by_class: classes.iter().map(|&(c, n)| (c.to_string(), n)).collect(),
            ..IntervalPoint::default()
        }
    }

    #[test]
    fn one_panel_per_operation_and_errors_only_where_there_were_any() {
        let ok = [
            ("register", 10, 0),
            ("verify", 10, 0),
            ("schedule_lag", 9, 0),
        ];
        let clean = Timeline {
            points: (0..3).map(|i| point(i, &ok, &[])).collect(),
            phases: Vec::new(),
        };
        let notes = Annotations {
            order: vec!["verify".into(), "register".into()],
            lines: Vec::new(),
        };
        let fig = throughput(&clean, &notes);
        let titles: Vec<&str> = fig.panels.iter().map(|p| p.title.as_str()).collect();
        assert_eq!(
            titles,
            ["verify — 30 operations", "register — 30 operations"]
        );
        assert!(fig.panels.iter().all(|p| p.series.len() == 1));
        assert!(fig.title.contains("no errors"), "{}", fig.title);

        let failing = [("register", 10, 0), ("verify", 10, 2)];
        let mut points: Vec<IntervalPoint> = (0..3).map(|i| point(i, &ok, &[])).collect();
        points.push(point(3, &failing, &[("timeout", 2)]));
        let fig = throughput(
            &Timeline {
                points,
                phases: Vec::new(),
            },
            &Annotations::default(),
        );
        let series: BTreeMap<&str, usize> = fig
            .panels
            .iter()
            .map(|p| (p.title.as_str(), p.series.len()))
            .collect();
        assert_eq!(series["register — 40 operations"], 1);
        assert_eq!(series["verify — 40 operations, 2 failed"], 2);
        assert_eq!(series["Errors per second by class"], 1);
        assert!(fig.title.contains("2 errors in total"), "{}", fig.title);
    }
}
