//! The names of a run directory's files, defined once (the run-directory contract of
//! DESIGN.md): every writer and reader of a run directory takes them from here.

/// The run's summary, `"schema": "inrush.summary/1"`.
pub const SUMMARY: &str = "summary.json";
/// The run over time (interval points for the charts), saved so `inrush report` can redraw them.
pub const TIMELINE: &str = "timeline.json";
/// The HdrHistogram interval log; its format (and so its conventional name) lives with the
/// writer in `metrics::hlog`.
pub use crate::metrics::hlog::FILE_NAME as HLOG;
/// One test case per threshold, for CI test-report viewers.
pub const JUNIT: &str = "junit.xml";
/// A compact Markdown summary for a CI job's summary page.
pub const MARKDOWN: &str = "summary.md";
/// The report page of a run.
pub const HTML: &str = "index.html";
/// `inrush run --trace N`: every request, response and frame of N sampled users, one JSON
/// object per line (the schema is in docs/scenario-language.md, "Driving a real service").
pub const TRACE: &str = "trace.jsonl";

/// Chart stems: each chart is written as `<stem>.png` and `<stem>.svg`.
pub const CHART_LATENCY: &str = "latency";
pub const CHART_THROUGHPUT: &str = "throughput";
pub const CHART_USERS: &str = "users";
pub const CHART_DISTRIBUTION: &str = "distribution";
/// The generator's own health: schedule lag and loop lag over time.
pub const CHART_LAG: &str = "lag";
/// Only in a run with regions.
pub const CHART_REGIONS: &str = "regions";

/// A chart's PNG file name.
pub fn png(stem: &str) -> String {
    format!("{stem}.png")
}

/// A chart's SVG file name.
pub fn svg(stem: &str) -> String {
    format!("{stem}.svg")
}

/// The temporary name `name` is written under before it is renamed into place, in the same
/// directory (so the rename is atomic): a write that fails midway leaves the previous file
/// whole. The extension stays last, for writers that pick the format by it.
pub fn partial(name: &str) -> String {
    format!(".partial-{name}")
}
