//! Backend-independent drawing of a [`Figure`]: a title, an optional shared legend and a grid of
//! panels, each a line chart over time with shaded phases. The same code draws PNG and SVG.

use std::ops::Range;

use plotters::coord::combinators::IntoLogRange;
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::scale::{choose_y_scale, drawable, y_range, YScale};
use super::style::{self, font, format_number};
use crate::metrics::timeline::PhaseSpan;

pub(super) type DrawResult<T = ()> = Result<T, String>;

fn err<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Stroke {
    Solid(u32),
    Dashed(u32),
    Dotted(u32),
}

impl Stroke {
    fn width(self) -> u32 {
        match self {
            Stroke::Solid(w) | Stroke::Dashed(w) | Stroke::Dotted(w) => w,
        }
    }

    /// Dash length and gap in pixels, `None` for a solid line.
    fn dashes(self) -> Option<(u32, u32)> {
        match self {
            Stroke::Solid(_) => None,
            Stroke::Dashed(_) => Some((7, 4)),
            Stroke::Dotted(_) => Some((2, 3)),
        }
    }
}

#[derive(Debug, Clone)]
pub(super) struct LegendItem {
    pub label: String,
    pub color: RGBColor,
    pub stroke: Stroke,
}

/// One line; `None` breaks it (no data in that interval).
#[derive(Debug, Clone)]
pub(super) struct Series {
    pub legend: LegendItem,
    pub points: Vec<Option<(f64, f64)>>,
}

#[derive(Debug, Clone)]
pub(super) struct Panel {
    pub title: String,
    /// A colour square before the title (the metric's colour).
    pub swatch: Option<RGBColor>,
    pub y_label: String,
    pub series: Vec<Series>,
    /// Draw this panel's own legend under its title.
    pub legend: bool,
    /// Labelled horizontal lines (e.g. a threshold's limit), drawn over the series.
    pub references: Vec<Reference>,
}

impl Panel {
    /// A panel of `series` with no swatch, no own legend and no reference lines.
    pub fn new(title: impl Into<String>, y_label: impl Into<String>, series: Vec<Series>) -> Panel {
        Panel {
            title: title.into(),
            swatch: None,
            y_label: y_label.into(),
            series,
            legend: false,
            references: Vec::new(),
        }
    }

    /// Every drawable y value of the panel, its reference lines included (they must be in
    /// range to be seen).
    fn values(&self) -> impl Iterator<Item = f64> + '_ {
        let points = self
            .series
            .iter()
            .flat_map(|s| s.points.iter().flatten().map(|&(_, y)| y));
        points
            .chain(self.references.iter().map(|r| r.y))
            .filter(|y| drawable(*y))
    }
}

/// A horizontal line at `y` with its label at the right end, over `span` of the x axis (the
/// whole axis when `None`).
#[derive(Debug, Clone)]
pub(super) struct Reference {
    pub y: f64,
    pub label: String,
    pub color: RGBColor,
    pub span: Option<(f64, f64)>,
}

/// What the x axis of every panel shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum XAxis {
    /// Seconds since the start of the run.
    Time,
    /// HdrHistogram's percentile axis: x = log10(1/(1-p)), ticks at whole decades labelled
    /// 0%, 90%, 99%, 99.9%, …
    Percentile,
    /// An offered arrival rate (find-capacity's steps); its one band is the knee, drawn in
    /// [`style::KNEE`] rather than a phase's tint.
    Rate,
}

impl XAxis {
    fn description(self) -> &'static str {
        match self {
            XAxis::Time => "time since start (s)",
            XAxis::Percentile => "percentile (log scale of 1/(1-p))",
            XAxis::Rate => "offered arrival rate (users/s)",
        }
    }

    /// How many x labels to ask plotters for: whole decades only on the percentile axis (its
    /// key-point search then picks a step of 1 for spans up to 10 decades).
    fn label_count(self, range: &Range<f64>) -> usize {
        match self {
            XAxis::Time | XAxis::Rate => 12,
            XAxis::Percentile => {
                let span = (range.end - range.start).abs();
                if span.is_finite() {
                    (span.ceil() as usize).clamp(1, 20) + 1
                } else {
                    12
                }
            }
        }
    }

    fn label(self, v: f64) -> String {
        match self {
            XAxis::Time | XAxis::Rate => format_number(v),
            XAxis::Percentile => {
                let k = v.round();
                if (v - k).abs() < 1e-6 && k >= 0.0 {
                    percentile_label(k as u32)
                } else {
                    String::new()
                }
            }
        }
    }
}

/// The percentile at `decades` nines on the 1/(1-p) axis: 0 → "0%", 1 → "90%", 2 → "99%",
/// 3 → "99.9%", 5 → "99.999%".
pub(super) fn percentile_label(decades: u32) -> String {
    match decades {
        0 => "0%".to_string(),
        1 => "90%".to_string(),
        n => format!("99.{}%", "9".repeat(n as usize - 2)).replace(".%", "%"),
    }
}

#[derive(Debug, Clone)]
pub(super) struct Figure {
    pub title: String,
    pub columns: usize,
    pub panel_height: u32,
    /// Shown once under the figure title (for series shared by all panels).
    pub legend: Vec<LegendItem>,
    pub panels: Vec<Panel>,
    pub x_range: Range<f64>,
    pub x_axis: XAxis,
    pub phases: Vec<PhaseSpan>,
    /// Whether the figure's y axes may turn logarithmic. The choice is made once for the whole
    /// figure (every panel the same kind of axis, named in each axis label), so that panels
    /// side by side read alike.
    pub allow_log: bool,
}

const TITLE_H: u32 = 48;
const LEGEND_ROW_H: u32 = 24;
const PANEL_TITLE_H: u32 = 30;
const LEGEND_SAMPLE_W: i32 = 30;

impl Figure {
    fn rows(&self) -> usize {
        self.panels.len().div_ceil(self.columns.max(1)).max(1)
    }

    /// Legend rows before any text is measured (about 9 px per character at the legend size);
    /// [`Figure::draw`] measures exactly and gives the panels what is left.
    fn estimated_legend_rows(&self) -> u32 {
        let usable = style::WIDTH as usize - 40;
        let (mut rows, mut x) = (1u32, 0usize);
        for item in &self.legend {
            let w = LEGEND_SAMPLE_W as usize + 30 + 9 * item.label.chars().count();
            if x > 0 && x + w > usable {
                rows = rows.saturating_add(1);
                x = 0;
            }
            x += w;
        }
        rows
    }

    /// Pixel size; the height grows with the number of panel rows, at least [`style::MIN_HEIGHT`].
    pub fn size(&self) -> (u32, u32) {
        let legend_h = if self.legend.is_empty() {
            0
        } else {
            LEGEND_ROW_H * self.estimated_legend_rows() + 8
        };
        let rows = u32::try_from(self.rows()).unwrap_or(u32::MAX);
        let h = TITLE_H
            .saturating_add(legend_h)
            .saturating_add(rows.saturating_mul(self.panel_height));
        (style::WIDTH, h.max(style::MIN_HEIGHT))
    }

    /// The kind of y axis of every panel: logarithmic when log is allowed and any one panel's
    /// values span orders of magnitude ([`choose_y_scale`]), linear otherwise. Per panel rather
    /// than over the whole figure, since each panel has its own y range: two flat panels far
    /// apart from each other read best on linear axes.
    pub fn y_scale(&self) -> YScale {
        let wide = |p: &Panel| choose_y_scale(p.values()) == YScale::Log10;
        if self.allow_log && self.panels.iter().any(wide) {
            YScale::Log10
        } else {
            YScale::Linear
        }
    }

    /// The y axis description of `panel`: its label, and in a figure that may turn log, which
    /// scale it got ("latency, ms (log scale)").
    pub fn y_desc(&self, panel: &Panel) -> String {
        match (self.allow_log, self.y_scale()) {
            (false, _) => panel.y_label.clone(),
            (true, YScale::Log10) => format!("{} (log scale)", panel.y_label),
            (true, YScale::Linear) => format!("{} (linear scale)", panel.y_label),
        }
    }

    pub fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        root.fill(&WHITE).map_err(err)?;
        let (head, mut body) = root.split_vertically(TITLE_H);
        head.draw(&Text::new(
            self.title.clone(),
            (20, 12),
            style::bold(style::TITLE_SIZE).color(&style::TEXT),
        ))
        .map_err(err)?;
        if !self.legend.is_empty() {
            let rows = legend_layout(&body, &self.legend, body.dim_in_pixel().0 as i32 - 40)?;
            let h = LEGEND_ROW_H * rows.len() as u32 + 8;
            let (legend_area, rest) = body.split_vertically(h);
            draw_legend(&legend_area, &self.legend, &rows, 20, 0)?;
            body = rest;
        }
        let cells = body.split_evenly((self.rows(), self.columns.max(1)));
        let scale = self.y_scale();
        for (panel, cell) in self.panels.iter().zip(cells.iter()) {
            let cell = cell.margin(4, 8, 10, 10);
            draw_panel(&cell, panel, self, scale)?;
        }
        root.present().map_err(err)
    }
}

/// Positions (row, x offset) of each legend item so rows fit in `width` pixels.
fn legend_layout<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    items: &[LegendItem],
    width: i32,
) -> DrawResult<Vec<Vec<(usize, i32)>>> {
    let mut rows: Vec<Vec<(usize, i32)>> = vec![Vec::new()];
    let mut x = 0;
    for (i, item) in items.iter().enumerate() {
        let (tw, _) = area
            .estimate_text_size(&item.label, &font(style::LEGEND_SIZE).into_text_style(area))
            .map_err(err)?;
        let w = LEGEND_SAMPLE_W + 8 + tw as i32 + 22;
        if x > 0 && x + w > width {
            rows.push(Vec::new());
            x = 0;
        }
        if let Some(row) = rows.last_mut() {
            row.push((i, x));
        }
        x += w;
    }
    Ok(rows)
}

fn draw_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    items: &[LegendItem],
    rows: &[Vec<(usize, i32)>],
    x0: i32,
    y0: i32,
) -> DrawResult {
    for (r, row) in rows.iter().enumerate() {
        let y = y0 + r as i32 * LEGEND_ROW_H as i32 + LEGEND_ROW_H as i32 / 2;
        for &(i, x) in row {
            let Some(item) = items.get(i) else { continue };
            let (a, b) = ((x0 + x, y), (x0 + x + LEGEND_SAMPLE_W, y));
            let line = item.color.stroke_width(item.stroke.width() + 1);
            match item.stroke.dashes() {
                None => area.draw(&PathElement::new(vec![a, b], line)),
                Some((dash, gap)) => {
                    area.draw(&DashedPathElement::new(vec![a, b], dash, gap, line))
                }
            }
            .map_err(err)?;
            area.draw(&Text::new(
                item.label.clone(),
                (x0 + x + LEGEND_SAMPLE_W + 8, y),
                font(style::LEGEND_SIZE)
                    .color(&style::TEXT)
                    .pos(Pos::new(HPos::Left, VPos::Center)),
            ))
            .map_err(err)?;
        }
    }
    Ok(())
}

fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    panel: &Panel,
    fig: &Figure,
    scale: YScale,
) -> DrawResult {
    let items: Vec<LegendItem> = if panel.legend {
        panel.series.iter().map(|s| s.legend.clone()).collect()
    } else {
        Vec::new()
    };
    let width = area.dim_in_pixel().0 as i32 - 20;
    let rows = if items.is_empty() {
        Vec::new()
    } else {
        legend_layout(area, &items, width)?
    };
    let header_h = PANEL_TITLE_H + LEGEND_ROW_H * rows.len() as u32;
    let (header, plot) = area.split_vertically(header_h);

    let mut title_x = 10;
    if let Some(c) = panel.swatch {
        header
            .draw(&Rectangle::new([(10, 8), (24, 22)], c.filled()))
            .map_err(err)?;
        title_x = 32;
    }
    header
        .draw(&Text::new(
            panel.title.clone(),
            (title_x, 15),
            style::bold(style::PANEL_TITLE_SIZE)
                .color(&style::TEXT)
                .pos(Pos::new(HPos::Left, VPos::Center)),
        ))
        .map_err(err)?;
    draw_legend(&header, &items, &rows, 10, PANEL_TITLE_H as i32)?;

    let has_data = panel
        .series
        .iter()
        .flat_map(|s| s.points.iter().flatten())
        .any(|&(_, y)| drawable(y));
    let (lo, hi) = y_range(panel.values(), scale);
    match scale {
        YScale::Linear => draw_plot(&plot, lo..hi, panel, fig, has_data),
        YScale::Log10 => draw_plot(&plot, (lo..hi).log_scale(), panel, fig, has_data),
    }
}

// Long on purpose: one plotters chart context is built and drawn into in sequence (mesh, phase
// shading, series, legend); its generic coordinate types make helpers taking it unwieldy.
fn draw_plot<DB, YS>(
    area: &DrawingArea<DB, Shift>,
    y: YS,
    panel: &Panel,
    fig: &Figure,
    has_data: bool,
) -> DrawResult
where
    DB: DrawingBackend,
    YS: AsRangedCoord<Value = f64>,
    YS::CoordDescType: ValueFormatter<f64>,
{
    // Room for the last tick label, centred on the right edge of a percentile axis.
    let margin_right = match fig.x_axis {
        XAxis::Time | XAxis::Rate => 16,
        XAxis::Percentile => 34,
    };
    let mut chart = ChartBuilder::on(area)
        .margin_right(margin_right)
        .margin_top(4)
        .x_label_area_size(46)
        .y_label_area_size(78)
        .build_cartesian_2d(fig.x_range.clone(), y)
        .map_err(err)?;
    let yr = chart.y_range();

    // Phase bands go under everything else.
    let bands: Vec<(usize, f64, f64)> = fig
        .phases
        .iter()
        .enumerate()
        .filter_map(|(i, p)| {
            let a = p.start_s.max(fig.x_range.start);
            let b = p.end_s.min(fig.x_range.end);
            (a.is_finite() && b.is_finite() && b > a).then_some((i, a, b))
        })
        .collect();
    chart
        .draw_series(bands.iter().map(|&(i, a, b)| {
            let tint = match fig.x_axis {
                XAxis::Rate => style::KNEE,
                _ => style::BAND[i % 2],
            };
            Rectangle::new([(a, yr.start), (b, yr.end)], tint.filled())
        }))
        .map_err(err)?;

    let y_desc = fig.y_desc(panel);
    chart
        .configure_mesh()
        .x_desc(fig.x_axis.description())
        .y_desc(y_desc)
        .axis_desc_style(font(style::AXIS_DESC_SIZE).color(&style::TEXT))
        .label_style(font(style::TICK_SIZE).color(&style::MUTED))
        .x_labels(fig.x_axis.label_count(&fig.x_range))
        .y_labels(8)
        .x_max_light_lines(1)
        .y_max_light_lines(1)
        .x_label_formatter(&|v| fig.x_axis.label(*v))
        .y_label_formatter(&|v| format_number(*v))
        .bold_line_style(RGBColor(0, 0, 0).mix(0.12))
        .light_line_style(RGBColor(0, 0, 0).mix(0.04))
        .axis_style(style::MUTED)
        .draw()
        .map_err(err)?;

    for series in &panel.series {
        for segment in segments(&series.points, yr.start, yr.end) {
            let color = series.legend.color;
            let w = series.legend.stroke.width();
            if segment.len() == 1 {
                // A lone point has no line to draw: mark it.
                chart
                    .draw_series(
                        segment
                            .iter()
                            .map(|&p| Circle::new(p, w + 2, color.filled())),
                    )
                    .map_err(err)?;
                continue;
            }
            match series.legend.stroke.dashes() {
                None => chart
                    .draw_series(LineSeries::new(segment, color.stroke_width(w)))
                    .map(|_| ()),
                Some((dash, gap)) => chart
                    .draw_series(DashedLineSeries::new(
                        segment,
                        dash,
                        gap,
                        color.stroke_width(w),
                    ))
                    .map(|_| ()),
            }
            .map_err(err)?;
        }
    }

    draw_phase_names(area, &chart, &bands, fig, yr.end)?;
    draw_references(&chart, panel, fig, yr.start, yr.end)?;

    if !has_data {
        let plot = chart.plotting_area().strip_coord_spec();
        let (w, h) = plot.dim_in_pixel();
        plot.draw(&Text::new(
            "no data",
            (w as i32 / 2, h as i32 / 2),
            font(style::NOTE_SIZE)
                .color(&style::MUTED)
                .pos(Pos::new(HPos::Center, VPos::Center)),
        ))
        .map_err(err)?;
    }
    Ok(())
}

/// Each reference line dashed across its span, its label just above the line's right end.
fn draw_references<DB, X, Y>(
    chart: &ChartContext<'_, DB, Cartesian2d<X, Y>>,
    panel: &Panel,
    fig: &Figure,
    y_lo: f64,
    y_hi: f64,
) -> DrawResult
where
    DB: DrawingBackend,
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    for r in &panel.references {
        let (a, b) = r.span.unwrap_or((fig.x_range.start, fig.x_range.end));
        let (a, b) = (a.max(fig.x_range.start), b.min(fig.x_range.end));
        if !(drawable(r.y) && r.y >= y_lo && r.y <= y_hi && a < b) {
            continue;
        }
        let line = r.color.stroke_width(2);
        chart
            .plotting_area()
            .draw(&DashedPathElement::new(
                vec![(a, r.y), (b, r.y)],
                10,
                5,
                line,
            ))
            .map_err(err)?;
        chart
            .plotting_area()
            .draw(
                &(EmptyElement::at((b, r.y))
                    + Text::new(
                        r.label.clone(),
                        (-6, -4),
                        style::bold(style::LEGEND_SIZE)
                            .color(&r.color)
                            .pos(Pos::new(HPos::Right, VPos::Bottom)),
                    )),
            )
            .map_err(err)?;
    }
    Ok(())
}

/// Phase names at the top of their bands, shortened (or left out) when the band is too narrow.
fn draw_phase_names<DB, X, Y>(
    area: &DrawingArea<DB, Shift>,
    chart: &ChartContext<'_, DB, Cartesian2d<X, Y>>,
    bands: &[(usize, f64, f64)],
    fig: &Figure,
    y_top: f64,
) -> DrawResult
where
    DB: DrawingBackend,
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    let style = font(style::PHASE_SIZE).color(&style::MUTED);
    for &(i, a, b) in bands {
        let Some(phase) = fig.phases.get(i) else {
            continue;
        };
        let width = chart.backend_coord(&(b, y_top)).0 - chart.backend_coord(&(a, y_top)).0 - 10;
        let Some(name) = fit_text(area, &phase.name, width)? else {
            continue;
        };
        chart
            .plotting_area()
            .draw(&(EmptyElement::at((a, y_top)) + Text::new(name, (5, 5), style.clone())))
            .map_err(err)?;
    }
    Ok(())
}

fn fit_text<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    text: &str,
    width: i32,
) -> DrawResult<Option<String>> {
    let fits = |s: &str| -> DrawResult<bool> {
        let (w, _) = area
            .estimate_text_size(s, &font(style::PHASE_SIZE).into_text_style(area))
            .map_err(err)?;
        Ok((w as i32) <= width)
    };
    if fits(text)? {
        return Ok(Some(text.to_string()));
    }
    let chars: Vec<char> = text.chars().collect();
    for keep in (1..chars.len()).rev() {
        let short: String = chars[..keep].iter().chain(std::iter::once(&'…')).collect();
        if fits(&short)? {
            return Ok(Some(short));
        }
    }
    Ok(None)
}

/// Runs of consecutive drawable points; a gap, a non-finite value or a value outside the y range
/// (e.g. zero on a log axis) ends a run.
fn segments(points: &[Option<(f64, f64)>], lo: f64, hi: f64) -> Vec<Vec<(f64, f64)>> {
    let mut out = vec![Vec::new()];
    for p in points {
        match p {
            Some((x, y)) if drawable(*x) && drawable(*y) && *y >= lo && *y <= hi => {
                if let Some(run) = out.last_mut() {
                    run.push((*x, *y));
                }
            }
            _ => {
                if out.last().is_some_and(|r| !r.is_empty()) {
                    out.push(Vec::new());
                }
            }
        }
    }
    out
}
