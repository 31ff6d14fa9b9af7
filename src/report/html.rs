//! `index.html`: the whole run on one self-contained page that works offline — inline CSS, no
//! scripts, no fonts or images fetched from anywhere, charts embedded as inline SVG. Every piece
//! of text taken from the summary is escaped.

use std::fmt::Write;
use std::time::Duration;

use super::junit::escape as esc;
use super::summary::{Arrivals, Contacts, Latency, Messages, MetricSummary, Summary, Verdict};

const STYLE: &str = r#"
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
.verdict-interrupted .badge { color: var(--warn); background: var(--warn-bg); border-color: var(--warn); }
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
.meta-groups { display: grid; grid-template-columns: repeat(auto-fit, minmax(380px, 1fr)); gap: 0 40px; }
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
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(280px, 1fr)); gap: 16px; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: 10px 14px; }
.card h3 { margin: 0 0 6px; }
.card table td { padding: 4px 2px; }
.note { color: var(--muted); font-size: 14px; margin: 6px 0; }
.phase-line { color: var(--muted); font-size: 13px; margin: 6px 0 0; }
figure.chart { margin: 18px 0 0; border: 1px solid var(--line); border-radius: 6px;
  padding: 10px; background: #fff; }
figure.chart figcaption { font-weight: 600; margin: 0 0 6px 4px; }
figure.chart svg { display: block; width: 100%; height: auto; }
footer { color: var(--muted); font-size: 13px; border-top: 1px solid var(--line); padding: 14px 0 30px; }
@media print { nav.toc { display: none; } figure.chart { break-inside: avoid; } }
"#;

/// A count with thousands separators: `1,783`.
fn int(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Milliseconds with about four significant digits: `0.277`, `5.90`, `26.4`, `207`.
fn ms(v: f64) -> String {
    if !v.is_finite() {
        return "–".to_string();
    }
    let a = v.abs();
    if a < 1.0 {
        format!("{v:.3}")
    } else if a < 10.0 {
        format!("{v:.2}")
    } else if a < 1000.0 {
        format!("{v:.1}")
    } else {
        int(v.round().max(0.0) as u64)
    }
}

/// A number as given, without float noise: `0`, `26.415`, `1e-7`.
fn plain(v: f64) -> String {
    if v.is_finite() && v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{v}")
    }
}

fn num_cell(out: &mut String, value: &str, shown: &str, class: &str) {
    let _ = write!(
        out,
        r#"<td class="num{class}" data-value="{}">{}</td>"#,
        esc(value),
        esc(shown)
    );
}

fn count_cell(out: &mut String, n: u64, bad_if_positive: bool) {
    let class = if bad_if_positive && n > 0 { " bad" } else { "" };
    num_cell(out, &n.to_string(), &int(n), class);
}

fn ms_cell(out: &mut String, l: Option<&Latency>, f: impl Fn(&Latency) -> f64) {
    match l {
        Some(l) => num_cell(out, &plain(f(l)), &ms(f(l)), ""),
        None => out.push_str(r#"<td class="num">–</td>"#),
    }
}

fn verdict_word(v: Verdict) -> &'static str {
    match v {
        Verdict::Passed => "passed",
        Verdict::Failed => "failed",
        Verdict::Interrupted => "interrupted",
    }
}

/// `2026-11-25T18:50:50.652Z` → `2026-11-25 18:50:50.652 UTC`.
fn readable_time(t: &str) -> String {
    match t.strip_suffix('Z') {
        Some(rest) => format!("{} UTC", rest.replacen('T', " ", 1)),
        None => t.to_string(),
    }
}

/// The end of the run, `started_at + duration_s`, when `started_at` is an RFC 3339 time.
fn ended_at(started_at: &str, duration_s: f64) -> Option<String> {
    let start = humantime::parse_rfc3339_weak(started_at).ok()?;
    let d = Duration::try_from_secs_f64(duration_s).ok()?;
    let end = start.checked_add(d)?;
    Some(humantime::format_rfc3339_millis(end).to_string())
}

fn meta_row(out: &mut String, key: &str, value_html: &str) {
    let _ = write!(out, "<div><dt>{}</dt><dd>{value_html}</dd></div>", esc(key));
}

fn header(out: &mut String, s: &Summary) {
    let verdict = verdict_word(s.verdict);
    let failed = s.thresholds.iter().filter(|t| !t.passed).count();
    let detail = match (s.verdict, s.thresholds.len()) {
        (Verdict::Interrupted, _) => "the run was interrupted before it finished".to_string(),
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

fn meta_group(out: &mut String, title: &str, rows: &[(&str, String)]) {
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
    meta_group(
        out,
        "Scenario",
        &[
            ("Scenario", esc(&s.scenario)),
            ("Seed", s.seed.to_string()),
            ("Target", format!("<code>{}</code>", esc(&s.target))),
            ("Started", time(&s.started_at)),
            ("Ended", end.as_deref().map_or("–".to_string(), time)),
            ("Duration", format!("{:.1} s", s.duration_s)),
            ("inrush version", esc(&s.inrush_version)),
        ],
    );
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
        match t.observed {
            Some(v) => num_cell(out, &plain(v), &plain(v), ""),
            None => out.push_str(r#"<td class="num">nothing observed</td>"#),
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table></div></section>");
}

const METRIC_HEAD: &str = r#"<thead><tr><th>Operation</th><th class="num">Count</th><th class="num">Errors</th><th class="num">Rate/s</th><th class="num">Min</th><th class="num">Mean</th><th class="num">p50</th><th class="num">p90</th><th class="num">p99</th><th class="num">p99.9</th><th class="num">Max</th><th class="num" title="p99 of the service time: from the actual start, as a tool without coordinated-omission correction reports it">Service p99</th></tr></thead>"#;
const METRIC_COLUMNS: usize = 12;

/// Latency columns in ms, from the intended start; `skip_idle` leaves out operations that did not
/// happen (per-phase tables).
fn metrics_table<'a, I>(out: &mut String, metrics: I, skip_idle: bool)
where
    I: IntoIterator<Item = (&'a String, &'a MetricSummary)>,
{
    out.push_str(r#"<div class="scroll"><table class="metrics">"#);
    out.push_str(METRIC_HEAD);
    out.push_str("<tbody>");
    for (name, m) in metrics {
        if skip_idle && m.count == 0 {
            continue;
        }
        let class = if m.count == 0 { r#" class="idle""# } else { "" };
        let _ = write!(
            out,
            r#"<tr{class} data-metric="{0}"><td class="name">{0}</td>"#,
            esc(name)
        );
        count_cell(out, m.count, false);
        count_cell(out, m.errors, true);
        num_cell(
            out,
            &plain(m.rate_per_s),
            &format!("{:.1}", m.rate_per_s),
            "",
        );
        let l = m.latency_ms.as_ref();
        ms_cell(out, l, |l| l.min);
        ms_cell(out, l, |l| l.mean);
        ms_cell(out, l, |l| l.p50);
        ms_cell(out, l, |l| l.p90);
        ms_cell(out, l, |l| l.p99);
        ms_cell(out, l, |l| l.p999);
        ms_cell(out, l, |l| l.max);
        ms_cell(out, m.service_time_ms.as_ref(), |l| l.p99);
        out.push_str("</tr>");
        if !m.errors_by_class.is_empty() {
            let _ = write!(
                out,
                r#"<tr class="errors" data-errors-of="{}"><td></td><td colspan="{}"><ul>"#,
                esc(name),
                METRIC_COLUMNS - 1
            );
            for (class, n) in &m.errors_by_class {
                let _ = write!(out, "<li><code>{}</code> {}", esc(class), int(*n));
                if let Some(example) = m.error_examples.get(class) {
                    let _ = write!(out, " — e.g. <q>{}</q>", esc(example));
                }
                out.push_str("</li>");
            }
            out.push_str("</ul></td></tr>");
        }
        if m.retries + m.reconnects > 0 {
            // Not errors, so not in the count: the extra attempts the target had to serve.
            let _ = write!(
                out,
                r#"<tr class="retries" data-retries-of="{}"><td></td><td colspan="{}"><ul>"#,
                esc(name),
                METRIC_COLUMNS - 1
            );
            if m.retries > 0 {
                let reasons: Vec<String> = m
                    .retries_by_reason
                    .iter()
                    .map(|(r, n)| format!("<code>{}</code> {}", esc(r), int(*n)))
                    .collect();
                let _ = write!(
                    out,
                    "<li>{} retries: {}</li>",
                    int(m.retries),
                    reasons.join(", ")
                );
            }
            if m.reconnects > 0 {
                let _ = write!(out, "<li>{} reconnects</li>", int(m.reconnects));
            }
            out.push_str("</ul></td></tr>");
        }
    }
    out.push_str("</tbody></table></div>");
}

fn kv_card(out: &mut String, title: &str, rows: &[(&str, String)]) {
    let _ = write!(
        out,
        r#"<div class="card"><h3>{}</h3><table><tbody>"#,
        esc(title)
    );
    for (k, v) in rows {
        let _ = write!(out, "<tr><td>{}</td>{v}</tr>", esc(k));
    }
    out.push_str("</tbody></table></div>");
}

fn cell(f: impl FnOnce(&mut String)) -> String {
    let mut s = String::new();
    f(&mut s);
    s
}

fn lat_summary(l: Option<&Latency>) -> String {
    match l {
        Some(l) => format!(
            r#"<td class="num" data-value="{}">p50 {} · p99 {} · max {} ms</td>"#,
            plain(l.p99),
            ms(l.p50),
            ms(l.p99),
            ms(l.max)
        ),
        None => r#"<td class="num">–</td>"#.to_string(),
    }
}

fn flow(out: &mut String, m: &Messages, a: &Arrivals, c: &Contacts) {
    let opt = |v: Option<u64>| match v {
        Some(n) => cell(|o| count_cell(o, n, true)),
        None => r#"<td class="num" title="not measured against this target">–</td>"#.to_string(),
    };
    out.push_str(r#"<div class="cards">"#);
    kv_card(
        out,
        "Messages",
        &[
            ("sent", cell(|o| count_cell(o, m.sent, false))),
            ("acked", cell(|o| count_cell(o, m.acked, false))),
            ("delivered", cell(|o| count_cell(o, m.delivered, false))),
            ("pending (recipient offline)", opt(m.pending)),
            ("lost", opt(m.lost)),
            ("duplicated", cell(|o| count_cell(o, m.duplicated, true))),
            (
                "delivery latency",
                lat_summary(m.delivery_latency_ms.as_ref()),
            ),
        ],
    );
    let mut arrivals = vec![
        ("planned", cell(|o| count_cell(o, a.planned, false))),
        ("started", cell(|o| count_cell(o, a.started, false))),
        ("dropped", cell(|o| count_cell(o, a.dropped, true))),
    ];
    if a.dropped > 0 {
        let by = a.dropped_by;
        arrivals.extend([
            (
                "· by max_users",
                cell(|o| count_cell(o, by.max_users, true)),
            ),
            (
                "· by max_inflight",
                cell(|o| count_cell(o, by.max_inflight, true)),
            ),
            (
                "· behind schedule",
                cell(|o| count_cell(o, by.behind_schedule, true)),
            ),
        ]);
    }
    if a.returned > 0 {
        arrivals.push((
            "returning users",
            cell(|o| count_cell(o, a.returned, false)),
        ));
    }
    arrivals.push(("schedule lag", lat_summary(a.schedule_lag_ms.as_ref())));
    kv_card(out, "Arrivals", &arrivals);
    kv_card(
        out,
        "Contacts",
        &[
            ("expected", cell(|o| count_cell(o, c.expected, false))),
            ("missing", cell(|o| count_cell(o, c.missing, true))),
        ],
    );
    out.push_str("</div>");
}

fn phases(out: &mut String, s: &Summary) {
    out.push_str(r#"<section id="phases"><h2>Phases</h2>"#);
    if s.phases.is_empty() {
        out.push_str(r#"<p class="note">The run has no phases.</p>"#);
    }
    for (name, p) in &s.phases {
        let _ = write!(
            out,
            r#"<h3 data-phase="{0}">{0}<span class="span">{1:.1} – {2:.1} s</span></h3>"#,
            esc(name),
            p.start_s,
            p.end_s
        );
        if p.metrics.values().all(|m| m.count == 0) {
            out.push_str(r#"<p class="note">No operations completed in this phase.</p>"#);
        } else {
            metrics_table(out, &p.metrics, true);
        }
        scope_line(out, &p.messages, &p.arrivals, &p.contacts);
    }
    out.push_str("</section>");
}

/// One line of a phase's or a region's messages, arrivals and contacts.
fn scope_line(out: &mut String, m: &Messages, a: &Arrivals, c: &Contacts) {
    let lag = a
        .schedule_lag_ms
        .map_or("–".to_string(), |l| format!("{} ms", ms(l.p99)));
    let delivery = m
        .delivery_latency_ms
        .map_or("–".to_string(), |l| format!("{} ms", ms(l.p99)));
    let _ = write!(
        out,
        r#"<p class="phase-line">arrivals: {} planned, {} started, {} dropped, schedule lag p99 {} · messages: {} sent, {} delivered{}{}, delivery p99 {} · contacts: {} expected, {} missing</p>"#,
        int(a.planned),
        int(a.started),
        int(a.dropped),
        esc(&lag),
        int(m.sent),
        int(m.delivered),
        m.lost
            .map_or(String::new(), |n| format!(", {} lost", int(n))),
        m.pending
            .map_or(String::new(), |n| format!(", {} pending", int(n))),
        esc(&delivery),
        int(c.expected),
        int(c.missing)
    );
}

/// Per region: who was where and what they saw, same tables as the phases.
fn regions(out: &mut String, s: &Summary) {
    if s.regions.is_empty() {
        return;
    }
    out.push_str(r#"<section id="regions"><h2>Regions</h2><p class="note">Users of each region saw their operations through the region's added network delay (connect, send, receive); latency includes it, as those users felt it.</p>"#);
    for (name, r) in &s.regions {
        let _ = write!(
            out,
            r#"<h3 data-region="{0}">{0}<span class="span">{1} · {2} users</span></h3>"#,
            esc(name),
            esc(&super::terminal::region_label(r)),
            int(r.users)
        );
        if r.metrics.values().all(|m| m.count == 0) {
            out.push_str(r#"<p class="note">No operations completed in this region.</p>"#);
        } else {
            metrics_table(out, &r.metrics, true);
        }
        scope_line(out, &r.messages, &r.arrivals, &r.contacts);
    }
    out.push_str("</section>");
}

/// Removes ` name="…"` from an SVG start tag.
fn remove_attr(tag: &str, name: &str) -> String {
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
fn inline_svg(svg: &str, title: &str) -> Option<String> {
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

fn charts(out: &mut String, charts: &[(&str, String)]) {
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

/// The page: a header with the verdict, warnings, run metadata, thresholds, tables per metric
/// and per phase, then `charts` (title, SVG document text) embedded inline.
pub fn render(summary: &Summary, charts_svg: &[(&str, String)]) -> String {
    let s = summary;
    let mut out =
        String::with_capacity(64 * 1024 + charts_svg.iter().map(|c| c.1.len()).sum::<usize>());
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"generator\" content=\"inrush {}\">\
         <title>{} — {} — inrush</title><style>{STYLE}</style></head><body>",
        esc(&s.inrush_version),
        esc(&s.scenario),
        verdict_word(s.verdict)
    );
    header(&mut out, s);
    out.push_str(r#"<main class="wrap">"#);
    alerts(&mut out, s);
    run_meta(&mut out, s);
    thresholds(&mut out, s);
    out.push_str(r#"<section id="metrics"><h2>Metrics</h2><p class="note">Latency in milliseconds, measured from each operation's intended start (corrected for coordinated omission), over successful operations.</p>"#);
    metrics_table(&mut out, &s.metrics, false);
    out.push_str("</section>");
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
    }
}
