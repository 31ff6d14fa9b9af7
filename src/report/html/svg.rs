//! The charts, embedded as inline SVG.

use std::fmt::Write;

use super::esc;

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

pub(crate) fn charts(out: &mut String, charts: &[(&str, String)]) {
    out.push_str(r#"<section id="charts"><h2>Charts</h2>"#);
    if charts.is_empty() {
        out.push_str(r#"<p class="note">No charts were drawn.</p>"#);
    }
    for (title, svg) in charts {
        let _ = write!(
            out,
            r#"<figure class="chart"><figcaption>{}</figcaption>"#,
            esc(title)
        );
        match inline_svg(svg, title) {
            Some(svg) => out.push_str(&svg),
            None => out.push_str(r#"<p class="note">This chart is not available.</p>"#),
        }
        out.push_str("</figure>");
    }
    out.push_str("</section>");
}
