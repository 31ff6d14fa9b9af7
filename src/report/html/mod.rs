//! `index.html`: the whole run on one self-contained page that works offline — inline CSS, no
//! scripts, no fonts or images fetched from anywhere, charts embedded as inline SVG. Every piece
//! of text taken from the summary is escaped.

mod checks;
pub(crate) mod format;
pub(crate) mod style;
pub(crate) mod svg;
mod tables;

use std::fmt::Write;

use super::markup::escape as esc;
use super::summary::{Summary, Verdict};
use super::{chart, files, Artifact, FinishedRun};
use crate::error::Error;
use format::*;
use style::open_page;
use svg::charts;
pub use svg::EmbeddedChart;
use tables::{flow, metrics_table, phases, regions};

/// `index.html`: reads back the charts' SVG files (written before it), so it is not a pure
/// [`FileArtifact`](super::FileArtifact); the page itself is built by [`render`].
pub struct Html;

impl Artifact for Html {
    fn write(&self, run: &FinishedRun<'_>) -> Result<(), Error> {
        let stems = chart::run_charts(!run.summary.regions.is_empty());
        let mut charts = Vec::with_capacity(stems.len());
        for (title, stem) in stems {
            let path = run.dir.join(files::svg(stem));
            let svg =
                std::fs::read_to_string(&path).map_err(|e| Error::io("cannot read", &path, e))?;
            charts.push(EmbeddedChart {
                title,
                svg,
                stem: Some(stem),
            });
        }
        super::write_file(
            run.dir,
            files::HTML,
            render(run.summary, &charts).as_bytes(),
        )
    }
}

fn header(out: &mut String, s: &Summary) {
    let verdict = verdict_word(s.verdict);
    let failed = s.thresholds.iter().filter(|t| !t.passed).count();
    let detail = match (s.verdict, s.thresholds.len()) {
        (Verdict::Interrupted, _) => "the run was interrupted before it finished".to_string(),
        (Verdict::Inconclusive, _) => {
            "the generator could not keep up with its schedule".to_string()
        }
        (Verdict::Failed, _) if failed == 0 && s.failed_outright().is_some() => {
            s.failed_outright().unwrap_or_default().to_string()
        }
        (_, 0) => "no thresholds were set".to_string(),
        (_, n) if failed == 0 => format!("all {n} thresholds passed"),
        (_, n) => format!("{failed} of {n} thresholds failed"),
    };
    let detail = if s.aborted.is_some() {
        format!("{detail}; stopped early")
    } else {
        detail
    };
    let _ = write!(
        out,
        r#"<header class="top verdict-{verdict}"><div class="wrap"><div><div class="brand">inrush load test report</div><h1>{}</h1>"#,
        esc(&s.scenario)
    );
    if !s.description.is_empty() {
        let _ = write!(out, r#"<p class="description">{}</p>"#, esc(&s.description));
    }
    out.push_str(
        "<nav class=\"toc\"><a href=\"#run\">Run</a><a href=\"#thresholds\">Thresholds</a>\
         <a href=\"#metrics\">Metrics</a><a href=\"#flow\">Messages &amp; arrivals</a>\
         <a href=\"#phases\">Phases</a>",
    );
    if !s.regions.is_empty() {
        out.push_str("<a href=\"#regions\">Regions</a>");
    }
    out.push_str("<a href=\"#charts\">Charts</a></nav></div>");
    let _ = write!(
        out,
        r#"<div class="verdict" id="verdict"><span class="badge">{verdict}</span><p>{}</p></div></div></header>"#,
        esc(&detail)
    );
}

fn alerts(out: &mut String, s: &Summary) {
    if let Some(why) = &s.aborted {
        let _ = write!(
            out,
            r#"<div class="alert alert-fail" id="aborted" role="alert"><strong>The run stopped early</strong>{}</div>"#,
            esc(why)
        );
    }
    if let Some(why) = s.measurement.describe() {
        let _ = write!(
            out,
            r#"<div class="alert alert-warn" id="measurement" role="alert"><strong>The generator could not keep up</strong>{}</div>"#,
            esc(&why)
        );
    }
    if s.verdict == Verdict::Interrupted {
        out.push_str(
            r#"<div class="alert alert-warn" role="alert"><strong>Interrupted</strong>The run was interrupted; the figures below cover only the time it ran.</div>"#,
        );
    }
    if !s.warnings.is_empty() {
        let title = if s.warnings.len() == 1 {
            "Warning"
        } else {
            "Warnings"
        };
        let _ = write!(
            out,
            r#"<div class="alert alert-warn" id="warnings" role="alert"><strong>{title}</strong><ul>"#
        );
        for w in &s.warnings {
            let _ = write!(out, "<li>{}</li>", esc(w));
        }
        out.push_str("</ul></div>");
    }
}

pub(crate) fn meta_group(out: &mut String, title: &str, rows: &[(&str, String)]) {
    let _ = write!(out, r#"<div><h3>{}</h3><dl class="meta">"#, esc(title));
    for (k, v) in rows {
        meta_row(out, k, v);
    }
    out.push_str("</dl></div>");
}

fn run_meta(out: &mut String, s: &Summary) {
    out.push_str(r#"<section id="run"><h2>Run</h2><div class="meta-groups">"#);
    let g = &s.generator;
    let end = ended_at(&s.started_at, s.duration_s);
    let time = |t: &str| {
        format!(
            r#"<time datetime="{}">{}</time>"#,
            esc(t),
            esc(&readable_time(t))
        )
    };
    let mut scenario = vec![
        ("Scenario", esc(&s.scenario)),
        ("Seed", s.seed.to_string()),
        ("Target", format!("<code>{}</code>", esc(&s.target))),
        ("Started", time(&s.started_at)),
        ("Ended", end.as_deref().map_or("–".to_string(), time)),
        ("Duration", format!("{:.1} s", s.duration_s)),
        ("inrush version", esc(&s.inrush_version)),
    ];
    if !s.overrides.is_empty() {
        scenario.push(("Scaled", esc(&s.overrides.join("; "))));
    }
    if let Some(shard) = s.shard_text() {
        scenario.push(("Shards", esc(&shard)));
    }
    meta_group(out, "Scenario", &scenario);
    meta_group(
        out,
        "Generator",
        &[
            (
                "Host",
                format!(
                    "{} · {} GiB memory",
                    esc(&g.host.hostname),
                    plain((g.host.memory_gib * 10.0).round() / 10.0)
                ),
            ),
            (
                "CPU",
                format!("{} × {}", g.host.cpus, esc(&g.host.cpu_model)),
            ),
            ("Workers", g.workers.to_string()),
            ("CPU time", format!("{:.2} CPU-seconds", g.cpu_seconds)),
            ("Peak memory", format!("{:.1} MB RSS", g.peak_rss_mb)),
            (
                "Busiest worker",
                g.worker_cpu_max.map_or("not measured".to_string(), |c| {
                    format!(
                        "{:.0} % of a core at p90 of the intervals, {:.0} % at most; over 90 % in {} of {}",
                        c.p90 * 100.0,
                        c.max * 100.0,
                        c.saturated_intervals,
                        c.intervals
                    )
                }),
            ),
            (
                "Loop lag",
                g.loop_lag_ms.map_or("not measured".to_string(), |l| {
                    format!(
                        "p50 {} · p99 {} · max {} (how long ready work, responses included, waited for a worker)",
                        ms(l.p50),
                        ms(l.p99),
                        ms(l.max)
                    )
                }),
            ),
            (
                "Target in process",
                if g.target_in_process {
                    "yes: the built-in target ran inside inrush, its CPU and memory are counted above"
                        .to_string()
                } else {
                    "no".to_string()
                },
            ),
        ],
    );
    out.push_str("</div></section>");
}

fn thresholds(out: &mut String, s: &Summary) {
    out.push_str(r#"<section id="thresholds"><h2>Thresholds</h2>"#);
    if s.thresholds.is_empty() {
        out.push_str(r#"<p class="note">No thresholds were set for this run.</p></section>"#);
        return;
    }
    out.push_str(
        r#"<div class="scroll"><table class="thresholds"><thead><tr><th>Result</th><th>Threshold</th><th class="num">Observed</th></tr></thead><tbody>"#,
    );
    for t in &s.thresholds {
        let (row, pill) = if t.passed {
            ("passed", r#"<span class="pill pill-pass">pass</span>"#)
        } else {
            ("failed", r#"<span class="pill pill-fail">fail</span>"#)
        };
        let _ = write!(
            out,
            r#"<tr class="{row}"><td>{pill}</td><td><code>{}</code></td>"#,
            esc(&t.expr)
        );
        let text = t.observed_text();
        match t.observed {
            Some(v) => num_cell(out, &plain(v), &text, ""),
            None => out.push_str(r#"<td class="num">nothing observed</td>"#),
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table></div></section>");
}

/// The page: a header with the verdict, warnings, run metadata, thresholds, tables per metric
/// and per phase, then `charts` embedded inline (each linking its files, when it has a stem).
pub fn render(summary: &Summary, charts_svg: &[EmbeddedChart]) -> String {
    let s = summary;
    let mut out =
        String::with_capacity(64 * 1024 + charts_svg.iter().map(|c| c.svg.len()).sum::<usize>());
    open_page(
        &mut out,
        &format!("{} — {} — inrush", s.scenario, verdict_word(s.verdict)),
        &s.inrush_version,
        "",
    );
    header(&mut out, s);
    out.push_str(r#"<main class="wrap">"#);
    alerts(&mut out, s);
    run_meta(&mut out, s);
    thresholds(&mut out, s);
    out.push_str(r#"<section id="metrics"><h2>Metrics</h2><p class="note">Latency in milliseconds, measured from each operation's intended start (corrected for coordinated omission), over successful operations.</p><p class="note narrow-only">On a narrow screen the tables show p50, p95 and p99; turn the phone or widen the window for every column.</p>"#);
    // A flow that sends no tracked message has no message rows (not two idle ones).
    let measured = s.metrics.iter().filter(|(name, m)| {
        m.count > 0
            || s.messages.measured()
            || !crate::metrics::MESSAGE_METRICS.contains(&name.as_str())
    });
    metrics_table(&mut out, measured, false);
    out.push_str("</section>");
    checks::checks_and_data(&mut out, s);
    out.push_str(r#"<section id="flow"><h2>Messages, arrivals and contacts</h2>"#);
    flow(&mut out, &s.messages, &s.arrivals, &s.contacts);
    out.push_str("</section>");
    phases(&mut out, s);
    regions(&mut out, s);
    charts(&mut out, charts_svg);
    let _ = writeln!(
        out,
        "</main><footer><div class=\"wrap\">Generated by inrush {} · scenario {} · seed {} · started {}</div></footer></body></html>",
        esc(&s.inrush_version),
        esc(&s.scenario),
        s.seed,
        esc(&readable_time(&s.started_at))
    );
    out
}

#[cfg(test)]
mod tests {
    use super::svg::inline_svg;
    use super::*;

    #[test]
    fn numbers_read_well() {
        assert_eq!(int(0), "0");
        assert_eq!(int(999), "999");
        assert_eq!(int(1783), "1,783");
        assert_eq!(int(1_234_567), "1,234,567");
        assert_eq!(ms(0.277), "0.277");
        assert_eq!(ms(5.899), "5.90");
        assert_eq!(ms(26.415), "26.4");
        assert_eq!(ms(207.359), "207.4");
        assert_eq!(ms(12_345.6), "12,346");
        assert_eq!(ms(f64::NAN), "–");
        assert_eq!(plain(3.0), "3");
        assert_eq!(plain(26.415), "26.415");
    }

    #[test]
    fn svg_roots_lose_prolog_size_and_namespace() {
        let svg = "<?xml version=\"1.0\"?>\n<svg width=\"1280\" height=\"720\" viewBox=\"0 0 1280 720\" xmlns=\"http://www.w3.org/2000/svg\">\n<rect/>\n</svg>\n";
        let out = inline_svg(svg, "A <b>").unwrap();
        assert!(
            out.starts_with(
                "<svg viewBox=\"0 0 1280 720\" role=\"img\" aria-label=\"A &lt;b&gt;\">"
            ),
            "{out}"
        );
        assert!(out.ends_with("</svg>"));
        assert!(!out.contains("http://") && !out.contains("<?xml"));
        // Without a viewBox the fixed size stays, or nothing would be drawn.
        let out = inline_svg("<svg width=\"10\" height=\"5\"></svg>", "t").unwrap();
        assert!(out.contains("width=\"10\"") && out.contains("height=\"5\""));
        assert_eq!(inline_svg("not an svg", "t"), None);
    }

    #[test]
    fn end_time_adds_the_duration() {
        assert_eq!(
            ended_at("2026-11-25T18:50:50.652Z", 33.1).as_deref(),
            Some("2026-11-25T18:51:23.752Z")
        );
        assert_eq!(ended_at("yesterday", 33.1), None);
        assert_eq!(ended_at("2026-11-25T18:50:50.652Z", f64::NAN), None);
        // Past the year 9999 RFC 3339 has no way to write it: no end time, and no panic.
        assert_eq!(ended_at("2026-11-25T18:50:50.652Z", 1e15), None);
        assert_eq!(ended_at("9999-12-31T23:59:59.000Z", 1.5), None);
    }
}
