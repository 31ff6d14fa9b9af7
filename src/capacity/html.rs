//! `index.html` of a capacity directory: self-contained like a run's page (its stylesheet, the
//! chart inline, no scripts): the answer first, then the chart, then every step linking its own
//! run's page (relative links, so the directory can be moved or archived whole).

use std::fmt::Write;
use std::path::Path;

use super::chart::STEM;
use super::report::CapacityReport;
use super::step::{rate_label, StepRecord};
use crate::error::Error;
use crate::report::files;
use crate::report::html::format::{int, meta_row, readable_time};
use crate::report::html::style::open_page;
use crate::report::html::svg::charts;
use crate::report::html::EmbeddedChart;
use crate::report::markup::escape as esc;

/// The page's own rules, after the run page's stylesheet.
const STYLE: &str = r#"
.answer { font-size: 18px; margin: 8px 0 14px; max-width: 90ch; }
.pill-inconclusive { color: var(--warn); background: var(--warn-bg); }
tr.repeat td:first-child::after { content: " ↻"; color: var(--muted); }
"#;

/// The chart's caption.
const CHART_TITLE: &str = "Gated statistics against the offered rate (knee shaded)";

/// The badge's word and the header's class for an outcome.
fn badge(outcome: &str) -> (&'static str, &'static str) {
    match outcome {
        "found" => ("found", "passed"),
        "holds_max" => ("holds --max", "passed"),
        "fails_lowest" => ("fails lowest", "failed"),
        "interrupted" => ("interrupted", "interrupted"),
        _ => ("inconclusive", "inconclusive"),
    }
}

/// A rate with its unit, or a dash.
fn rate_or_dash(r: Option<f64>) -> String {
    r.map_or("–".into(), |r| format!("{} users/s", rate_label(r)))
}

fn answer(out: &mut String, r: &CapacityReport) {
    let _ = write!(
        out,
        r#"<section id="answer"><h2>Answer</h2><p class="answer" id="answer-text">{}</p><div class="meta-groups"><div><dl class="meta">"#,
        esc(&r.answer)
    );
    let rows = [
        ("holds", "holds", rate_or_dash(r.holds)),
        ("last pass", "last-pass", rate_or_dash(r.bracket.last_pass)),
        (
            "first fail",
            "first-fail",
            rate_or_dash(r.bracket.first_fail),
        ),
        ("steps", "steps-run", r.steps_run.to_string()),
        ("time", "total-s", format!("{:.0} s", r.total_s)),
    ];
    for (key, id, value) in rows {
        meta_row(
            out,
            key,
            &format!(r#"<span id="{id}" class="mono">{}</span>"#, esc(&value)),
        );
    }
    if let Some(f) = r.fails_first.first() {
        meta_row(
            out,
            "fails first",
            &format!(
                r#"<code id="fails-first">{}</code> ({})"#,
                esc(&f.expr),
                esc(&f.observed_text)
            ),
        );
    }
    if let Some(s) = &r.saturating_text {
        meta_row(out, "saturates", &esc(s));
    }
    out.push_str("</dl></div><div><dl class=\"meta\">");
    meta_row(out, "gated by", &esc(r.thresholds_from.words()));
    let list = |items: &[String]| {
        items
            .iter()
            .map(|t| format!("<code>{}</code>", esc(t)))
            .collect::<Vec<_>>()
            .join("<br>")
    };
    meta_row(out, "thresholds", &list(&r.thresholds_applied));
    if !r.thresholds_replaced.is_empty() {
        meta_row(out, "not applied", &list(&r.thresholds_replaced));
    }
    if !r.thresholds_skipped.is_empty() {
        meta_row(out, "left out", &list(&r.thresholds_skipped));
    }
    let s = &r.settings;
    meta_row(
        out,
        "each step",
        &esc(&format!(
            "{} s warm-up (discarded) + {} s measured, constant rate",
            s.warmup_s, s.measure_s
        )),
    );
    meta_row(
        out,
        "search",
        &esc(&format!(
            "from {} to at most {} users/s, precision {} %",
            rate_label(s.from),
            rate_label(s.max),
            s.precision * 100.0
        )),
    );
    out.push_str("</dl></div></div></section>");
}

/// A step's failing thresholds (or why it was inconclusive), as HTML.
fn failing_cell(s: &StepRecord) -> String {
    if let Some(why) = &s.inconclusive_because {
        return esc(why);
    }
    s.failing
        .iter()
        .map(|f| {
            format!(
                "<code>{}</code> {}",
                esc(&f.expr),
                esc(&format!("({})", f.observed_text))
            )
        })
        .collect::<Vec<_>>()
        .join("<br>")
}

fn steps(out: &mut String, r: &CapacityReport) {
    out.push_str(
        r#"<section id="steps"><h2>Steps</h2><p class="note">In the order run; ↻ repeats the rate before it (a confirmation). Requests/s counts every timed operation of the measured window (requests, socket opens, awaited replies).</p><div class="scroll"><table class="steps"><thead><tr><th class="num">#</th><th class="num">users/s</th><th>verdict</th><th>failing thresholds</th><th class="num">requests/s</th><th class="num">messages/s</th><th class="num">429/503</th><th>run</th></tr></thead><tbody>"#,
    );
    for s in &r.steps {
        let class = match (s.verdict, s.repeat) {
            ("fail", true) => " class=\"failed repeat\"",
            ("fail", false) => " class=\"failed\"",
            (_, true) => " class=\"repeat\"",
            _ => "",
        };
        let link = format!("{}/{}", s.dir, files::HTML);
        let _ = write!(
            out,
            r#"<tr{class} data-rate="{}" data-verdict="{}"><td class="num">{}</td><td class="num">{}</td><td><span class="pill pill-{}">{}</span></td><td>{}</td><td class="num">{:.1}</td><td class="num">{:.1}</td><td class="num">{}</td><td><a href="{}">{}</a></td></tr>"#,
            s.rate,
            s.verdict,
            s.index,
            esc(&rate_label(s.rate)),
            s.verdict,
            s.verdict,
            failing_cell(s),
            s.operations_per_s,
            s.messages_per_s,
            int(s.refusals),
            esc(&link),
            esc(&s.dir)
        );
    }
    out.push_str("</tbody></table></div></section>");
}

/// The page; `chart_svg` is the capacity chart's SVG document.
pub fn render(r: &CapacityReport, chart_svg: &str) -> String {
    let mut out = String::with_capacity(32 * 1024 + chart_svg.len());
    let (word, class) = badge(r.outcome);
    open_page(
        &mut out,
        &format!("Capacity of {} — {word} — inrush", r.scenario),
        env!("CARGO_PKG_VERSION"),
        STYLE,
    );
    let _ = write!(
        out,
        r##"<header class="top verdict-{class}"><div class="wrap"><div><div class="brand">inrush capacity search</div><h1>{}</h1><nav class="toc"><a href="#answer">Answer</a><a href="#charts">Chart</a><a href="#steps">Steps</a></nav></div><div class="verdict" id="verdict"><span class="badge">{word}</span><p>{}</p></div></div></header><main class="wrap">"##,
        esc(&r.scenario),
        esc(&format!("{} steps in {:.0} s", r.steps_run, r.total_s))
    );
    answer(&mut out, r);
    charts(
        &mut out,
        &[EmbeddedChart {
            title: CHART_TITLE,
            svg: chart_svg.to_string(),
            stem: Some(STEM),
        }],
    );
    steps(&mut out, r);
    let _ = writeln!(
        out,
        "</main><footer><div class=\"wrap\">Generated by inrush {} find-capacity · scenario {} · started {}</div></footer></body></html>",
        esc(env!("CARGO_PKG_VERSION")),
        esc(&r.scenario),
        esc(&readable_time(&r.started_at))
    );
    out
}

/// Writes `index.html` into `dir`, after the chart (it embeds the chart's SVG).
pub fn write(dir: &Path, r: &CapacityReport) -> Result<(), Error> {
    let svg_path = dir.join(files::svg(STEM));
    let svg =
        std::fs::read_to_string(&svg_path).map_err(|e| Error::io("cannot read", &svg_path, e))?;
    let path = dir.join(files::HTML);
    std::fs::write(&path, render(r, &svg)).map_err(|e| Error::io("cannot write", &path, e))
}
