//! Charts of a run: latency, throughput and users over time and the HDR latency distribution,
//! each as PNG and SVG.
//!
//! Text is drawn with DejaVu Sans embedded in the binary (registered once with plotters'
//! `ab_glyph` font table), so charts render the same on a machine without any fonts installed.
//! Plotters' `ttf` feature must stay off: when enabled it takes over and looks for system fonts.
//!
//! Layout: [`figures`] turns the timeline into plain figure data, [`draw`] draws a figure on any
//! plotters backend, this module writes the files.

mod distribution;
mod draw;
mod figures;
mod glyphs;
mod scale;
mod style;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::prelude::{BitMapBackend, IntoDrawingArea, SVGBackend};
use plotters::style::{register_font, FontStyle};

use crate::metrics::timeline::Timeline;
pub use distribution::{percentile_x, render_distribution, DistributionRun};
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

/// Renders every chart of a run into `dir` as both `.png` and `.svg`; returns the written paths.
pub fn render_all(dir: &Path, timeline: &Timeline) -> Result<Vec<PathBuf>, ChartError> {
    let figures = [
        ("latency", figures::latency(timeline)),
        ("throughput", figures::throughput(timeline)),
        ("users", figures::users(timeline)),
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
    let png = dir.join(format!("{stem}.png"));
    let backend =
        glyphs::CrispText::new(BitMapBackend::new(&png, size)).map_err(ChartError::Font)?;
    figure
        .draw(&backend.into_drawing_area())
        .map_err(|message| ChartError::Draw {
            path: png.clone(),
            message,
        })?;
    let svg = dir.join(format!("{stem}.svg"));
    figure
        .draw(&SVGBackend::new(&svg, size).into_drawing_area())
        .map_err(|message| ChartError::Draw {
            path: svg.clone(),
            message,
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
