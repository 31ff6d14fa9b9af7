//! The summary as a table for the terminal.

use std::fmt::Write;

use super::summary::{Latency, Summary};

fn lat(l: &Option<Latency>, f: impl Fn(&Latency) -> f64) -> String {
    l.as_ref().map_or("-".into(), |l| format!("{:.1}", f(l)))
}

pub fn render(s: &Summary) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n{} · seed {} · {} · {:.1}s · {:?}",
        s.scenario, s.seed, s.target, s.duration_s, s.verdict
    );
    let _ = writeln!(
        out,
        "\n{:<18} {:>9} {:>7} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "latency (ms)", "count", "errors", "rate/s", "p50", "p90", "p99", "p99.9", "max"
    );
    for (name, m) in &s.metrics {
        if m.count == 0 {
            continue;
        }
        let _ = writeln!(
            out,
            "{:<18} {:>9} {:>7} {:>9.1} {:>9} {:>9} {:>9} {:>9} {:>9}",
            name,
            m.count,
            m.errors,
            m.rate_per_s,
            lat(&m.latency_ms, |l| l.p50),
            lat(&m.latency_ms, |l| l.p90),
            lat(&m.latency_ms, |l| l.p99),
            lat(&m.latency_ms, |l| l.p999),
            lat(&m.latency_ms, |l| l.max),
        );
        if !m.errors_by_class.is_empty() {
            let classes: Vec<String> = m
                .errors_by_class
                .iter()
                .map(|(c, n)| match m.error_examples.get(c) {
                    Some(e) => format!("{c} {n} (e.g. {e})"),
                    None => format!("{c} {n}"),
                })
                .collect();
            let _ = writeln!(out, "{:<18} errors: {}", "", classes.join(", "));
        }
    }
    let a = &s.arrivals;
    let _ = writeln!(
        out,
        "\narrivals: {} planned, {} started, {} dropped; schedule lag p99 {} ms, max {} ms",
        a.planned,
        a.started,
        a.dropped,
        lat(&a.schedule_lag_ms, |l| l.p99),
        lat(&a.schedule_lag_ms, |l| l.max)
    );
    let m = &s.messages;
    let _ = writeln!(
        out,
        "messages: {} sent, {} acked, {} delivered, {} pending, {} lost, {} duplicated; delivery p99 {} ms",
        m.sent,
        m.acked,
        m.delivered,
        m.pending.unwrap_or(0),
        m.lost.unwrap_or(0),
        m.duplicated,
        lat(&m.delivery_latency_ms, |l| l.p99)
    );
    let _ = writeln!(
        out,
        "contacts: {} expected, {} missing",
        s.contacts.expected, s.contacts.missing
    );
    let r = &s.retries;
    if r.total + r.reconnects > 0 {
        // Retries are not errors: a reader sees them here, by reason and by metric.
        let by_reason: Vec<String> = r
            .by_reason
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect();
        let by_metric: Vec<String> = s
            .metrics
            .iter()
            .filter(|(_, m)| m.retries + m.reconnects > 0)
            .map(|(name, m)| match (m.retries, m.reconnects) {
                (n, 0) => format!("{name} {n}"),
                (0, c) => format!("{name} {c} reconnects"),
                (n, c) => format!("{name} {n} + {c} reconnects"),
            })
            .collect();
        let _ = writeln!(
            out,
            "retries: {} ({}), reconnects: {}; by metric: {}",
            r.total,
            if by_reason.is_empty() {
                "none".into()
            } else {
                by_reason.join(", ")
            },
            r.reconnects,
            by_metric.join(", ")
        );
    }
    let g = &s.generator;
    let _ = writeln!(
        out,
        "generator: {} workers, {:.1} CPU-s, peak memory {:.0} MiB{}",
        g.workers,
        g.cpu_seconds,
        g.peak_rss_mb,
        if g.target_in_process {
            " (built-in target in the same process)"
        } else {
            ""
        }
    );
    if let Some(why) = &s.aborted {
        let _ = writeln!(out, "STOPPED EARLY: {why}");
    }
    for t in &s.thresholds {
        let observed = t
            .observed
            .map_or("nothing observed".into(), |v| format!("observed {v}"));
        let mark = if t.passed { "pass" } else { "FAIL" };
        let _ = writeln!(out, "threshold {mark}: {} ({observed})", t.expr);
    }
    for w in &s.warnings {
        let _ = writeln!(out, "WARNING: {w}");
    }
    out
}
