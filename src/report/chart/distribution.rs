//! The HDR percentile distribution chart: latency against percentile on HdrHistogram's
//! logarithmic `1/(1-p)` axis (as its plotter draws `outputPercentileDistribution`), one panel
//! per metric and one line per run, so `compare` can overlay a baseline and a new run.
//!
//! The curve follows HdrHistogram's percentile output (`iter_quantiles`, 5 ticks per half
//! distance) and ends at the largest percentile the data resolves, `1 - 1/count`
//! (x = log10(count)), with the maximum: beyond it a histogram of `count` samples says nothing.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use hdrhistogram::Histogram;
use plotters::style::RGBColor;

use super::annotations::{is_generator, Annotations};
use super::draw::{Figure, LegendItem, Panel, Series, Stroke, XAxis};
use super::figures::{titled, with_placeholder, LATENCY_MS, MAX_METRICS};
use super::style::{metric_color, shade};
use super::{write_figure, ChartError};

/// One run's merged histograms per metric (microseconds), labelled (e.g. "base", "new", or the
/// scenario name).
pub struct DistributionRun<'a> {
    pub label: &'a str,
    pub histograms: &'a HashMap<String, Histogram<u64>>,
}

/// HdrHistogram's percentile output resolution.
const TICKS_PER_HALF_DISTANCE: u32 = 5;

/// Where percentile `p` (a quantile in `[0, 1)`) sits on the x axis: `log10(1/(1-p))`, so 0.9 →
/// 1, 0.99 → 2, 0.999 → 3. Values at or below 0 (and NaN) map to 0, 1 and above to infinity.
pub fn percentile_x(p: f64) -> f64 {
    if p.is_nan() || p <= 0.0 {
        0.0
    } else if p >= 1.0 {
        f64::INFINITY
    } else {
        -(1.0 - p).log10()
    }
}

/// Latency (ms) against [`percentile_x`]; empty for an empty histogram, a single point when it
/// holds one sample.
pub(super) fn curve(h: &Histogram<u64>) -> Vec<(f64, f64)> {
    let n = h.len();
    if n == 0 {
        return Vec::new();
    }
    let ms = |us: u64| us as f64 / 1000.0;
    let x_end = (n as f64).log10();
    let mut out = Vec::new();
    for v in h.iter_quantiles(TICKS_PER_HALF_DISTANCE) {
        let x = percentile_x(v.quantile_iterated_to());
        // Past the resolved end the iteration repeats the maximum up to p = 1.
        if x >= x_end {
            break;
        }
        out.push((x, ms(v.value_iterated_to())));
    }
    out.push((x_end, ms(h.max())));
    out
}

/// Run `i` of `n`: the last run (the new one in a comparison) in the metric's own colour, solid;
/// earlier runs lighter and dashed, then darker and dotted.
fn run_style(color: RGBColor, i: usize, n: usize) -> (RGBColor, Stroke) {
    match n.saturating_sub(i + 1) {
        0 => (color, Stroke::Solid(2)),
        1 => (shade(color, 0.3), Stroke::Dashed(3)),
        _ => (shade(color, -0.4), Stroke::Dotted(3)),
    }
}

/// Pure: the figure (data only, no drawing).
pub(super) fn figure(title: &str, runs: &[DistributionRun], order: &[String]) -> Figure {
    let names: BTreeSet<&str> = runs
        .iter()
        .flat_map(|r| r.histograms.keys().map(String::as_str))
        .filter(|k| !k.ends_with(".service") && !is_generator(k))
        .collect();
    let total = names.len();
    let notes = Annotations {
        order: order.to_vec(),
        lines: Vec::new(),
    };
    let mut names = notes.ordered(names);
    names.truncate(MAX_METRICS);
    let mut x_end: f64 = 0.0;
    let mut panels = Vec::with_capacity(names.len());
    for (i, name) in names.iter().enumerate() {
        let color = metric_color(i);
        let series = runs
            .iter()
            .enumerate()
            .map(|(k, run)| {
                let (line, stroke) = run_style(color, k, runs.len());
                let h = run.histograms.get(*name);
                let points = h.map(curve).unwrap_or_default();
                if let Some(&(x, _)) = points.last() {
                    x_end = x_end.max(x);
                }
                let label = match h.map_or(0, Histogram::len) {
                    0 => format!("{} — no samples", run.label),
                    1 => format!("{} — 1 sample", run.label),
                    n => format!("{} — {n} samples", run.label),
                };
                Series {
                    legend: LegendItem {
                        label,
                        color: line,
                        stroke,
                    },
                    points: points.into_iter().map(Some).collect(),
                }
            })
            .collect();
        panels.push(Panel {
            swatch: Some(color),
            legend: true,
            ..Panel::new(name.to_string(), LATENCY_MS, series)
        });
    }
    let fig = Figure {
        title: titled(title, names.len(), total),
        columns: if panels.len() > 1 { 2 } else { 1 },
        panel_height: 360,
        legend: Vec::new(),
        panels,
        // Whole decades, at least 0%..90%.
        x_range: 0.0..x_end.ceil().clamp(1.0, 20.0),
        x_axis: XAxis::Percentile,
        phases: Vec::new(),
        allow_log: true,
    };
    with_placeholder(fig, "no operations recorded")
}

/// Draws `<stem>.png` and `<stem>.svg` in `dir`: one panel per operation (tags ending in
/// `.service` and the generator's lags are left out; in `order`, the flow's, then by name;
/// coloured as in the other charts), latency (ms) against percentile on the log `1/(1-p)` axis,
/// one line per run; every y axis turns logarithmic when one panel's values span orders of
/// magnitude.
pub fn render_distribution(
    dir: &Path,
    stem: &str,
    title: &str,
    runs: &[DistributionRun],
    order: &[String],
) -> Result<Vec<PathBuf>, ChartError> {
    Ok(write_figure(dir, stem, &figure(title, runs, order))?.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::recorder::new_histogram;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn percentiles_map_to_decades_of_nines() {
        assert!(close(percentile_x(0.99), 2.0));
        assert!(close(percentile_x(0.9), 1.0));
        assert!(close(percentile_x(0.999), 3.0));
        assert!(close(percentile_x(0.99999), 5.0));
        assert!(close(percentile_x(0.5), 2f64.log10()));
        assert_eq!(percentile_x(0.0), 0.0);
        assert_eq!(percentile_x(-1.0), 0.0);
        assert_eq!(percentile_x(f64::NAN), 0.0);
        assert_eq!(percentile_x(1.0), f64::INFINITY);
    }

    #[test]
    fn tick_labels_count_nines() {
        use super::super::draw::percentile_label;
        let labels: Vec<String> = (0..6).map(percentile_label).collect();
        assert_eq!(labels, ["0%", "90%", "99%", "99.9%", "99.99%", "99.999%"]);
    }

    #[test]
    fn curves_rise_from_min_to_max_and_stop_where_the_data_does() {
        let empty = new_histogram();
        assert!(curve(&empty).is_empty());

        let mut one = new_histogram();
        one.record(1500).unwrap();
        assert_eq!(curve(&one), vec![(0.0, one.max() as f64 / 1000.0)]);

        let mut h = new_histogram();
        for v in 1..=10_000u64 {
            h.record(v * 10).unwrap();
        }
        let c = curve(&h);
        assert!(c.len() > 40, "{}", c.len());
        assert_eq!(c[0], (0.0, h.min() as f64 / 1000.0));
        assert_eq!(*c.last().unwrap(), (4.0, h.max() as f64 / 1000.0));
        assert!(c.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1));
        // The point nearest p99 carries the p99 value (within the histogram's precision).
        let (_, p99) = c
            .iter()
            .min_by(|a, b| (a.0 - 2.0).abs().total_cmp(&(b.0 - 2.0).abs()))
            .unwrap();
        let want = h.value_at_quantile(0.99) as f64 / 1000.0;
        assert!((p99 - want).abs() / want < 0.01, "{p99} vs {want}");
    }

    #[test]
    fn figure_has_a_panel_per_metric_and_a_line_per_run() {
        let mut base = HashMap::new();
        let mut new = HashMap::new();
        for (map, scale) in [(&mut base, 1u64), (&mut new, 3u64)] {
            for name in ["verify", "register", "verify.service", "schedule_lag"] {
                let mut h = new_histogram();
                for v in 1..=2000u64 {
                    h.record(v * scale).unwrap();
                }
                map.insert(name.to_string(), h);
            }
        }
        new.insert("only_new".to_string(), new_histogram());
        let runs = [
            DistributionRun {
                label: "base",
                histograms: &base,
            },
            DistributionRun {
                label: "new",
                histograms: &new,
            },
        ];
        let fig = figure("Distribution", &runs, &[]);
        let titles: Vec<&str> = fig.panels.iter().map(|p| p.title.as_str()).collect();
        assert_eq!(titles, ["only_new", "register", "verify"]);
        assert!(fig.panels.iter().all(|p| p.series.len() == 2));
        assert_eq!(fig.panels[0].series[0].legend.label, "base — no samples");
        assert!(fig.panels[0].series[0].points.is_empty());
        assert_eq!(fig.panels[2].series[1].legend.label, "new — 2000 samples");
        assert_eq!(fig.x_range, 0.0..4.0);
        assert_eq!(fig.x_axis, XAxis::Percentile);
        // In the flow's order when given; names it does not list come after.
        let flow = ["verify".to_string(), "register".to_string()];
        let fig = figure("Distribution", &runs, &flow);
        let titles: Vec<&str> = fig.panels.iter().map(|p| p.title.as_str()).collect();
        assert_eq!(titles, ["verify", "register", "only_new"]);
    }
}
