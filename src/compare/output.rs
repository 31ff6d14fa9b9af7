//! Writes a comparison's directory: `compare.json`, `compare.md`, the overlay chart
//! (`distribution.png`/`.svg`) and `compare.html`, which embeds the chart and links to both runs.

use std::path::Path;

use super::html::{self, Links};
use super::{link, render_markdown, Comparison, Run, HTML_FILE, JSON_FILE, MARKDOWN_FILE};
use crate::error::Error;
use crate::report::chart::{render_distribution, DistributionRun};
use crate::report::files::{svg, CHART_DISTRIBUTION, HTML as RUN_PAGE};
use crate::report::write_file;

/// Writes every file of the comparison of `base` and `new` into `dir`, creating it. The chart
/// comes before the page, which reads it back (as a run's `index.html` reads its charts).
pub fn write(dir: &Path, c: &Comparison, base: &Run, new: &Run) -> Result<(), Error> {
    std::fs::create_dir_all(dir).map_err(|e| Error::output("cannot create", dir, e))?;
    let json = serde_json::to_vec_pretty(c)
        .map_err(|e| Error::Run(format!("cannot encode the comparison: {e}")))?;
    write_file(dir, JSON_FILE, &json)?;
    write_file(dir, MARKDOWN_FILE, render_markdown(c).as_bytes())?;
    // Both runs' latency distributions on one chart: the shape of a regression at a glance.
    let runs = [
        DistributionRun {
            label: "base",
            histograms: &base.histograms.total,
        },
        DistributionRun {
            label: "new",
            histograms: &new.histograms.total,
        },
    ];
    let title = format!(
        "Latency by percentile: {} vs {}",
        base.dir.display(),
        new.dir.display()
    );
    // Panels in NEW's flow order, as its tables list the metrics.
    let order: Vec<String> = new.summary.metrics.keys().cloned().collect();
    render_distribution(dir, CHART_DISTRIBUTION, &title, &runs, &order)
        .map_err(|e| Error::Run(format!("cannot draw the comparison chart: {e}")))?;
    let chart_path = dir.join(svg(CHART_DISTRIBUTION));
    let chart = std::fs::read_to_string(&chart_path)
        .map_err(|e| Error::io("cannot read", &chart_path, e))?;
    let links = Links {
        base: link::href(dir, &base.dir.join(RUN_PAGE)),
        new: link::href(dir, &new.dir.join(RUN_PAGE)),
    };
    write_file(dir, HTML_FILE, html::render(c, &chart, &links).as_bytes())
}
