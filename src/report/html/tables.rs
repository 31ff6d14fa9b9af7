//! The tables of the page: metrics, the flow of messages, arrivals and contacts, per phase
//! and per region.

use std::fmt::Write;

use super::esc;
use super::format::*;
use crate::report::summary::{Arrivals, Contacts, Messages, MetricSummary, Summary};

/// The metric table's head. Columns marked `wide` are hidden on a narrow screen (a phone), so
/// that the name, p50, p95 and p99 fit without scrolling sideways (`style::STYLE`'s media query).
pub(super) const METRIC_HEAD: &str = r#"<thead><tr><th>Operation</th><th class="num wide">Count</th><th class="num wide">Errors</th><th class="num wide">Rate/s</th><th class="num wide">Min</th><th class="num wide">Mean</th><th class="num">p50</th><th class="num wide">p90</th><th class="num">p95</th><th class="num">p99</th><th class="num wide">p99.9</th><th class="num wide">p99.99</th><th class="num wide">Max</th><th class="num wide" title="p99 of the service time: from the actual start, as a tool without coordinated-omission correction reports it">Service p99</th></tr></thead>"#;

pub(super) const METRIC_COLUMNS: usize = 14;

/// The class of a cell hidden on a narrow screen.
const WIDE: &str = " wide";

/// Latency columns in ms, from the intended start; `skip_idle` leaves out operations that did not
/// happen (per-phase tables).
pub(super) fn metrics_table<'a, I>(out: &mut String, metrics: I, skip_idle: bool)
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
        count_cell_in(out, m.count, false, WIDE);
        count_cell_in(out, m.errors, true, WIDE);
        num_cell(
            out,
            &plain(m.rate_per_s),
            &format!("{:.1}", m.rate_per_s),
            WIDE,
        );
        let l = m.latency_ms.as_ref();
        ms_cell_in(out, l, |l| l.min, WIDE);
        ms_cell_in(out, l, |l| l.mean, WIDE);
        ms_cell(out, l, |l| l.p50);
        ms_cell_in(out, l, |l| l.p90, WIDE);
        ms_cell(out, l, |l| l.p95);
        ms_cell(out, l, |l| l.p99);
        ms_cell_in(out, l, |l| l.p999, WIDE);
        ms_cell_in(out, l, |l| l.p9999, WIDE);
        ms_cell_in(out, l, |l| l.max, WIDE);
        ms_cell_in(out, m.service_time_ms.as_ref(), |l| l.p99, WIDE);
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
        if m.frames_sent + m.frames_received > 0 {
            // A ws step's sockets: every data frame out (plain sends too) and in.
            let _ = write!(
                out,
                r#"<tr class="frames" data-frames-of="{}"><td></td><td colspan="{}">{} frames sent, {} received</td></tr>"#,
                esc(name),
                METRIC_COLUMNS - 1,
                int(m.frames_sent),
                int(m.frames_received)
            );
        }
    }
    out.push_str("</tbody></table></div>");
}

pub(super) fn flow(out: &mut String, m: &Messages, a: &Arrivals, c: &Contacts) {
    let opt = |v: Option<u64>| match v {
        Some(n) => cell(|o| count_cell(o, n, true)),
        None => r#"<td class="num" title="not measured against this target">–</td>"#.to_string(),
    };
    out.push_str(r#"<div class="cards">"#);
    if m.measured() {
        kv_card(
            out,
            "Messages",
            &[
                ("sent", cell(|o| count_cell(o, m.sent, false))),
                ("acked", cell(|o| count_cell(o, m.acked, false))),
                ("delivered", cell(|o| count_cell(o, m.delivered, false))),
                ("pending (recipient offline or in time)", opt(m.pending)),
                ("lost", opt(m.lost)),
                ("of them late", cell(|o| count_cell(o, m.late, true))),
                (
                    "skipped (nobody online)",
                    cell(|o| count_cell(o, m.skipped, false)),
                ),
                ("duplicated", cell(|o| count_cell(o, m.duplicated, true))),
                (
                    "delivery latency",
                    lat_summary(m.delivery_latency_ms.as_ref()),
                ),
            ],
        );
    }
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
    // How the started users' flows ended: started = completed + failed + cut off.
    arrivals.extend([
        ("· completed", cell(|o| count_cell(o, a.completed, false))),
        ("· failed", cell(|o| count_cell(o, a.failed, true))),
        (
            "· cut off by the run's end",
            cell(|o| count_cell(o, a.cut_off, false)),
        ),
    ]);
    let cut_off_in: Vec<(String, String)> = a
        .cut_off_in
        .iter()
        .map(|(step, n)| (format!("·· in {step}"), cell(|o| count_cell(o, *n, false))))
        .collect();
    arrivals.extend(cut_off_in.iter().map(|(k, v)| (k.as_str(), v.clone())));
    arrivals.push(("schedule lag", lat_summary(a.schedule_lag_ms.as_ref())));
    kv_card(out, "Arrivals", &arrivals);
    if c.measured() {
        kv_card(
            out,
            "Contacts",
            &[
                ("expected", cell(|o| count_cell(o, c.expected, false))),
                ("missing", cell(|o| count_cell(o, c.missing, true))),
            ],
        );
    }
    out.push_str("</div>");
}

pub(super) fn phases(out: &mut String, s: &Summary) {
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

/// One line of a phase's or a region's arrivals, and its messages and contacts when it had any.
pub(super) fn scope_line(out: &mut String, m: &Messages, a: &Arrivals, c: &Contacts) {
    let lag = a
        .schedule_lag_ms
        .map_or("–".to_string(), |l| format!("{} ms", ms(l.p99)));
    let mut parts = vec![format!(
        "arrivals: {} planned, {} started, {} dropped, schedule lag p99 {}",
        int(a.planned),
        int(a.started),
        int(a.dropped),
        esc(&lag)
    )];
    if m.measured() {
        let delivery = m
            .delivery_latency_ms
            .map_or("–".to_string(), |l| format!("{} ms", ms(l.p99)));
        parts.push(format!(
            "messages: {} sent, {} delivered{}{}, delivery p99 {}",
            int(m.sent),
            int(m.delivered),
            m.lost
                .map_or(String::new(), |n| format!(", {} lost", int(n))),
            m.pending
                .map_or(String::new(), |n| format!(", {} pending", int(n))),
            esc(&delivery)
        ));
    }
    if c.measured() {
        parts.push(format!(
            "contacts: {} expected, {} missing",
            int(c.expected),
            int(c.missing)
        ));
    }
    let _ = write!(out, r#"<p class="phase-line">{}</p>"#, parts.join(" · "));
}

/// Per region: who was where and what they saw, same tables as the phases.
pub(super) fn regions(out: &mut String, s: &Summary) {
    if s.regions.is_empty() {
        return;
    }
    out.push_str(r#"<section id="regions"><h2>Regions</h2><p class="note">Users of each region saw their operations through the region's added network delay (connect, send, receive); latency includes it, as those users felt it.</p>"#);
    for (name, r) in &s.regions {
        let _ = write!(
            out,
            r#"<h3 data-region="{0}">{0}<span class="span">{1} · {2} users</span></h3>"#,
            esc(name),
            esc(&crate::report::terminal::region_label(r)),
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
