//! The charts, embedded as inline SVG.

use std::fmt::Write;

use super::esc;
use crate::report::files;

/// Removes ` name="…"` from an SVG start tag.
pub(super) fn remove_attr(tag: &str, name: &str) -> String {
    let needle = format!(" {name}=\"");
    match tag.find(&needle) {
        Some(at) => {
            let value = at + needle.len();
            match tag[value..].find('"') {
                Some(end) => format!("{}{}", &tag[..at], &tag[value + end + 1..]),
                None => tag.to_string(),
            }
        }
        None => tag.to_string(),
    }
}

/// An SVG document made fit for inline HTML: the XML prolog, doctype and comments before the
/// root go; the root keeps its `viewBox` and loses its fixed size (CSS scales it to the page
/// width) and its namespace declaration (implied in HTML).
pub(super) fn inline_svg(svg: &str, title: &str) -> Option<String> {
    let start = svg.find("<svg")?;
    let tag_end = start + svg[start..].find('>')?;
    let root = &svg[start..tag_end];
    let mut tag = remove_attr(root, "xmlns");
    if root.contains(" viewBox=\"") {
        tag = remove_attr(&remove_attr(&tag, "width"), "height");
    }
    let body = svg[tag_end..].trim_end();
    Some(format!(
        r#"{tag} role="img" aria-label="{}"{body}"#,
        esc(title)
    ))
}

/// A chart to embed: its caption, its SVG document, and the stem of its files beside the page
/// (`latency` for `latency.png` and `latency.svg`), when the page links them.
#[derive(Debug, Clone)]
pub struct EmbeddedChart<'a> {
    pub title: &'a str,
    pub svg: String,
    pub stem: Option<&'a str>,
}

/// The charts section. A chart with files beside the page opens full size: the inline image
/// is a link to its PNG, and the caption links the PNG and the SVG (on a phone the inline chart
/// is a third of its drawn size; the file can be zoomed).
pub(crate) fn charts(out: &mut String, charts: &[EmbeddedChart]) {
    out.push_str(r#"<section id="charts"><h2>Charts</h2>"#);
    if charts.is_empty() {
        out.push_str(r#"<p class="note">No charts were drawn.</p>"#);
    } else if charts.iter().any(|c| c.stem.is_some()) {
        out.push_str(r#"<p class="note narrow-only">Tap a chart to open it full size.</p>"#);
    }
    for chart in charts {
        let _ = write!(
            out,
            r#"<figure class="chart"><figcaption>{}"#,
            esc(chart.title)
        );
        let png = chart.stem.map(|stem| esc(&files::png(stem)));
        if let Some(stem) = chart.stem {
            let _ = write!(
                out,
                r#"<span class="open">open full size: <a href="{}">PNG</a> · <a href="{}">SVG</a></span>"#,
                png.as_deref().unwrap_or_default(),
                esc(&files::svg(stem))
            );
        }
        out.push_str("</figcaption>");
        match inline_svg(&chart.svg, chart.title) {
            Some(svg) => match &png {
                Some(png) => {
                    let _ = write!(
                        out,
                        r#"<a class="zoom" href="{png}" title="Open full size">{svg}</a>"#
                    );
                }
                None => out.push_str(&svg),
            },
            None => out.push_str(r#"<p class="note">This chart is not available.</p>"#),
        }
        out.push_str("</figure>");
    }
    out.push_str("</section>");
}
