//! Charts of a run: latency, throughput and users over time and the HDR latency distribution,
//! each as PNG and SVG.
//!
//! Text is drawn with DejaVu Sans embedded in the binary (registered once with plotters'
//! `ab_glyph` font table), so charts render the same on a machine without any fonts installed.
//! Plotters' `ttf` feature must stay off: when enabled it takes over and looks for system fonts.
//!
//! Layout: [`figures`] (with [`throughput`] and [`users`]) turns the timeline into plain figure
//! data, ordered and annotated by [`annotations`] (flow order, threshold lines, from the
//! summary); [`draw`] draws a figure on any plotters backend; this module writes the files.
//!
//! Rules every chart keeps: one kind of y axis per chart, named in its axis labels; panels in
//! flow order; the generator's own lags in a chart of their own (`lag`), never among the
//! operations; no panel or line for errors a run did not have.

mod annotations;
mod distribution;
mod draw;
mod figures;
mod glyphs;
mod rates;
mod scale;
mod style;
mod throughput;
mod users;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::prelude::{BitMapBackend, IntoDrawingArea, SVGBackend};
use plotters::style::{register_font, FontStyle};

use super::{files, Artifact, FinishedRun};
use crate::error::Error;
use crate::metrics::timeline::Timeline;
pub use annotations::{is_generator, Annotations, ThresholdLine};
pub use distribution::{percentile_x, render_distribution, DistributionRun};
pub use rates::{RatePanel, StepKind};
pub use scale::{choose_y_scale, y_range, YScale, LOG_RATIO_THRESHOLD};
pub use style::format_number;

/// Why a chart could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ChartError {
    #[error("cannot create chart directory {}: {source}", path.display())]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot load the embedded chart font: {0}")]
    Font(String),
    #[error("cannot draw chart {}: {message}", path.display())]
    Draw { path: PathBuf, message: String },
    #[error("cannot move a drawn chart into place: {0}")]
    Rename(#[from] std::io::Error),
}

/// Registers the embedded DejaVu Sans (regular and bold) as plotters' "sans-serif", once per
/// process; later calls return the first outcome.
fn ensure_font() -> Result<(), ChartError> {
    static REGISTERED: OnceLock<Result<(), String>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            register_font("sans-serif", FontStyle::Normal, dejavu::sans::regular())
                .map_err(|_| "DejaVu Sans regular is not a valid font".to_string())?;
            register_font("sans-serif", FontStyle::Bold, dejavu::sans::bold())
                .map_err(|_| "DejaVu Sans bold is not a valid font".to_string())
        })
        .clone()
        .map_err(ChartError::Font)
}

/// The charts `index.html` embeds, in its order: (title, file stem).
pub const RUN_CHARTS: [(&str, &str); 5] = [
    ("Latency percentiles over time", files::CHART_LATENCY),
    (
        "Latency distribution (HdrHistogram percentiles)",
        files::CHART_DISTRIBUTION,
    ),
    ("Throughput and errors", files::CHART_THROUGHPUT),
    (
        "Users and arrivals: planned vs achieved",
        files::CHART_USERS,
    ),
    (
        "Generator health: schedule lag and loop lag",
        files::CHART_LAG,
    ),
];

/// The chart of a run with regions: (title, file stem).
pub const REGIONS_CHART: (&str, &str) = ("Latency distribution by region", files::CHART_REGIONS);

/// The charts of a run, (title, file stem) in the order `index.html` shows them.
pub fn run_charts(has_regions: bool) -> Vec<(&'static str, &'static str)> {
    let mut charts = RUN_CHARTS.to_vec();
    if has_regions {
        charts.push(REGIONS_CHART);
    }
    charts
}

/// Every chart of a finished run, as `.png` and `.svg`: drawn by plotters straight into files.
pub struct Charts;

impl Artifact for Charts {
    fn write(&self, run: &FinishedRun<'_>) -> Result<(), Error> {
        let failed = |e: ChartError| Error::Run(format!("cannot draw charts: {e}"));
        let (dir, s) = (run.dir, run.summary);
        let notes = Annotations::of(s);
        render_all(dir, run.timeline, &notes).map_err(failed)?;
        let histograms = run.histograms()?;
        render_distribution(
            dir,
            files::CHART_DISTRIBUTION,
            &format!("Latency distribution by operation — {}", s.scenario),
            &[DistributionRun {
                label: &s.scenario,
                histograms: &histograms.total,
            }],
            &notes.order,
        )
        .map_err(failed)?;
        if !s.regions.is_empty() {
            // Each region's distribution overlaid per metric: "the Americas saw it slower".
            let runs: Vec<DistributionRun> = s
                .regions
                .keys()
                .zip(&histograms.regions)
                .map(|(label, histograms)| DistributionRun { label, histograms })
                .collect();
            render_distribution(
                dir,
                files::CHART_REGIONS,
                &format!("Latency distribution by region — {}", s.scenario),
                &runs,
                &notes.order,
            )
            .map_err(failed)?;
        }
        Ok(())
    }
}

/// Renders every chart of a run over time into `dir` as both `.png` and `.svg`, panels ordered
/// and threshold lines drawn as `notes` says; returns the written paths.
pub fn render_all(
    dir: &Path,
    timeline: &Timeline,
    notes: &Annotations,
) -> Result<Vec<PathBuf>, ChartError> {
    let figures = [
        (files::CHART_LATENCY, figures::latency(timeline, notes)),
        (
            files::CHART_THROUGHPUT,
            throughput::throughput(timeline, notes),
        ),
        (files::CHART_USERS, users::users(timeline)),
        (files::CHART_LAG, figures::lag(timeline, notes)),
    ];
    let mut written = Vec::with_capacity(figures.len() * 2);
    for (stem, figure) in &figures {
        written.extend(write_figure(dir, stem, figure)?);
    }
    Ok(written)
}

/// Draws `figure` as `<stem>.png` and `<stem>.svg` in `dir` (created if missing).
fn write_figure(dir: &Path, stem: &str, figure: &draw::Figure) -> Result<[PathBuf; 2], ChartError> {
    ensure_font()?;
    std::fs::create_dir_all(dir).map_err(|source| ChartError::CreateDir {
        path: dir.to_path_buf(),
        source,
    })?;
    let size = figure.size();
    // Each drawn under a temporary name and renamed into place (`inrush report` redraws a
    // run's charts: a failure must leave the previous one whole).
    let png = dir.join(files::png(stem));
    crate::report::replace(&png, |tmp| {
        let backend =
            glyphs::CrispText::new(BitMapBackend::new(tmp, size)).map_err(ChartError::Font)?;
        figure
            .draw(&backend.into_drawing_area())
            .map_err(|message| ChartError::Draw {
                path: png.clone(),
                message,
            })
    })?;
    let svg = dir.join(files::svg(stem));
    crate::report::replace(&svg, |tmp| {
        figure
            .draw(&SVGBackend::new(tmp, size).into_drawing_area())
            .map_err(|message| ChartError::Draw {
                path: svg.clone(),
                message,
            })
    })?;
    Ok([png, svg])
}

/// One panel of a chart drawn from outside a run (e.g. `inrush plan`): named lines of
/// (seconds, value) points.
#[derive(Debug, Clone)]
pub struct LinePanel {
    pub title: String,
    pub y_label: String,
    pub lines: Vec<(String, Vec<(f64, f64)>)>,
}

/// Draws panels of lines over time, phases shaded, as `<stem>.png` and `<stem>.svg` in `dir`.
pub fn render_lines(
    dir: &Path,
    stem: &str,
    title: &str,
    phases: &[crate::metrics::timeline::PhaseSpan],
    panels: &[LinePanel],
) -> Result<Vec<PathBuf>, ChartError> {
    let figure = figures::lines(title, phases, panels);
    Ok(write_figure(dir, stem, &figure)?.to_vec())
}

/// Draws statistics against the offered rate (find-capacity's steps), one panel each, the knee
/// (last pass, first fail) shaded, as `<stem>.png` and `<stem>.svg` in `dir`.
pub fn render_rates(
    dir: &Path,
    stem: &str,
    title: &str,
    panels: &[RatePanel],
    knee: Option<(f64, f64)>,
) -> Result<Vec<PathBuf>, ChartError> {
    let figure = rates::figure(title, panels, knee);
    Ok(write_figure(dir, stem, &figure)?.to_vec())
}
