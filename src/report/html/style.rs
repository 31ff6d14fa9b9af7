//! The stylesheet `index.html` (and `compare.html`) inline, and the page's opening.

use std::fmt::Write;

use super::esc;

/// The page up to `<body>`: the doctype, a viewport for phones, the generating version, the
/// title and the stylesheet, with `extra` rules after it (a page's own, e.g. the comparison's).
pub(crate) fn open_page(out: &mut String, title: &str, version: &str, extra: &str) {
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"generator\" content=\"inrush {}\">\
         <title>{}</title><style>{STYLE}{extra}</style></head><body>",
        esc(version),
        esc(title)
    );
}

pub(crate) const STYLE: &str = r#"
:root {
  --text: #1f2328; --muted: #59636e; --line: #d1d9e0; --soft: #f6f8fa;
  --pass: #1a7f37; --pass-bg: #dafbe1; --fail: #cf222e; --fail-bg: #ffebe9;
  --warn: #9a6700; --warn-bg: #fff8c5; --accent: #0969da;
}
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body {
  margin: 0; color: var(--text); background: #fff; line-height: 1.45; font-size: 15px;
  font-family: -apple-system, BlinkMacSystemFont, "Segoe UI", "Noto Sans", Helvetica, Arial,
    "Liberation Sans", "DejaVu Sans", sans-serif;
}
code, .mono {
  font-family: ui-monospace, SFMono-Regular, "SF Mono", Menlo, Consolas, "Liberation Mono",
    "DejaVu Sans Mono", monospace; font-size: 0.92em;
}
.wrap { max-width: 1320px; margin: 0 auto; padding: 0 24px; }
header.top { border-bottom: 1px solid var(--line); background: var(--soft); }
header.top .wrap { padding-top: 20px; padding-bottom: 18px; display: flex; gap: 24px;
  align-items: flex-start; justify-content: space-between; flex-wrap: wrap; }
.brand { color: var(--muted); font-size: 13px; letter-spacing: 0.04em; text-transform: uppercase; }
h1 { font-size: 28px; margin: 2px 0 4px; word-break: break-word; }
.description { margin: 0; color: var(--muted); max-width: 80ch; }
.verdict { text-align: right; }
.badge { display: inline-block; padding: 6px 16px; border-radius: 999px; font-weight: 700;
  font-size: 18px; letter-spacing: 0.06em; text-transform: uppercase; border: 2px solid; }
.verdict-passed .badge { color: var(--pass); background: var(--pass-bg); border-color: var(--pass); }
.verdict-failed .badge { color: var(--fail); background: var(--fail-bg); border-color: var(--fail); }
.verdict-interrupted .badge, .verdict-inconclusive .badge { color: var(--warn); background: var(--warn-bg); border-color: var(--warn); }
.verdict p { margin: 6px 0 0; color: var(--muted); font-size: 14px; }
nav.toc { font-size: 14px; margin-top: 10px; }
nav.toc a { color: var(--accent); text-decoration: none; margin-right: 14px; }
nav.toc a:hover { text-decoration: underline; }
main { padding-bottom: 40px; }
section { margin-top: 30px; }
h2 { font-size: 20px; margin: 0 0 10px; padding-bottom: 6px; border-bottom: 1px solid var(--line); }
h3 { font-size: 16px; margin: 20px 0 8px; }
h3 .span { color: var(--muted); font-weight: 400; font-size: 14px; margin-left: 8px; }
.alert { margin-top: 20px; padding: 12px 16px; border-radius: 6px; border: 1px solid; border-left-width: 6px; }
.alert strong { display: block; margin-bottom: 2px; }
.alert ul { margin: 4px 0 0; padding-left: 20px; }
.alert-fail { background: var(--fail-bg); border-color: var(--fail); }
.alert-warn { background: var(--warn-bg); border-color: #d4a72c; }
.meta-groups { display: grid; grid-template-columns: repeat(auto-fit, minmax(min(380px, 100%), 1fr)); gap: 0 40px; }
.meta-groups h3 { margin-top: 4px; color: var(--muted); font-size: 13px; text-transform: uppercase;
  letter-spacing: 0.04em; }
dl.meta { margin: 0; }
dl.meta div { display: flex; gap: 12px; padding: 5px 0; border-bottom: 1px solid #eaeef2; }
dl.meta dt { flex: 0 0 130px; color: var(--muted); }
dl.meta dd { margin: 0; word-break: break-word; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; font-size: 14px; }
th, td { padding: 6px 10px; border-bottom: 1px solid #eaeef2; text-align: left; vertical-align: top; }
thead th { background: var(--soft); border-bottom: 1px solid var(--line); font-weight: 600;
  white-space: nowrap; }
tbody tr:hover { background: #f9fafb; }
.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
th.num { text-align: right; }
td.name { font-weight: 600; white-space: nowrap; }
tr.idle td { color: var(--muted); }
tr.errors td { background: #fffafa; border-bottom: 1px solid #eaeef2; padding-top: 2px; }
tr.errors ul { margin: 0; padding-left: 18px; font-size: 13px; }
tr.errors q { color: var(--muted); }
.bad { color: var(--fail); font-weight: 600; }
.pill { display: inline-block; min-width: 52px; text-align: center; padding: 1px 8px;
  border-radius: 999px; font-size: 12px; font-weight: 700; text-transform: uppercase; }
.pill-pass { color: var(--pass); background: var(--pass-bg); }
.pill-fail { color: #fff; background: var(--fail); }
tr.failed td { background: #fff5f5; }
tr.failed td.num { color: var(--fail); font-weight: 600; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(min(280px, 100%), 1fr)); gap: 16px; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: 10px 14px; }
.card h3 { margin: 0 0 6px; }
.card table td { padding: 4px 2px; }
.note { color: var(--muted); font-size: 14px; margin: 6px 0; }
.phase-line { color: var(--muted); font-size: 13px; margin: 6px 0 0; }
figure.chart { margin: 18px 0 0; border: 1px solid var(--line); border-radius: 6px;
  padding: 10px; background: #fff; }
figure.chart figcaption { font-weight: 600; margin: 0 0 6px 4px; }
figure.chart svg { display: block; width: 100%; height: auto; }
figure.chart .open { font-weight: 400; font-size: 13px; color: var(--muted); margin-left: 10px; }
figure.chart .open a { color: var(--accent); }
figure.chart a.zoom { display: block; cursor: zoom-in; }
.narrow-only { display: none; }
footer { color: var(--muted); font-size: 13px; border-top: 1px solid var(--line); padding: 14px 0 30px; }
@media (max-width: 640px) {
  body { font-size: 14px; }
  .wrap { padding: 0 12px; }
  h1 { font-size: 22px; }
  .verdict { text-align: left; }
  .narrow-only { display: block; }
  table.metrics .wide { display: none; }
  table.metrics td.name { white-space: normal; overflow-wrap: anywhere; }
  th, td { padding: 5px 6px; }
  dl.meta div { flex-wrap: wrap; gap: 0 12px; }
  dl.meta dt { flex-basis: 100%; }
  figure.chart { padding: 4px; }
}
@media print { nav.toc { display: none; } figure.chart { break-inside: avoid; } }
"#;
