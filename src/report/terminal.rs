//! The summary as a table for the terminal.

use std::fmt::Write;

use super::checks::bytes_text;
use super::summary::{Latency, Summary};

fn lat(l: &Option<Latency>, f: impl Fn(&Latency) -> f64) -> String {
    l.as_ref().map_or("-".into(), |l| format!("{:.1}", f(l)))
}

pub fn render(s: &Summary) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n{} · seed {} · {} · {:.1}s (load {:.1}s + drain {:.1}s) · {}",
        s.scenario,
        s.seed,
        s.target,
        s.duration_s,
        s.duration_s - s.drain_s,
        s.drain_s,
        s.verdict.word()
    );
    if !s.overrides.is_empty() {
        let _ = writeln!(
            out,
            "scaled from the command line: {}",
            s.overrides.join("; ")
        );
    }
    if let Some(shard) = s.shard_text() {
        let _ = writeln!(out, "{shard}");
    }
    metrics(s, &mut out);
    checks_and_data(s, &mut out);
    regions(s, &mut out);
    flow(s, &mut out);
    retries(s, &mut out);
    let g = &s.generator;
    let _ = writeln!(
        out,
        "generator: {} workers, {:.1} CPU-s, peak memory {:.0} MiB{}{}",
        g.workers,
        g.cpu_seconds,
        g.peak_rss_mb,
        g.worker_cpu_max.map_or(String::new(), |c| format!(
            ", busiest worker {:.0} % busy at p90 ({:.0} % max)",
            c.p90 * 100.0,
            c.max * 100.0
        )) + &g.loop_lag_ms.map_or(String::new(), |l| format!(
            ", loop lag p99 {:.1} ms (max {:.1} ms)",
            l.p99, l.max
        )),
        if g.target_in_process {
            "; the built-in target ran in the same process"
        } else {
            ""
        }
    );
    verdict_reasons(s, true, &mut out);
    for w in &s.warnings {
        let _ = writeln!(out, "WARNING: {w}");
    }
    out
}

/// What `--quiet` still prints of a run that did not pass: its verdict and why (a stopped run,
/// the measurement, every operation failed, the failed thresholds) — a CI log must say why.
pub fn verdict(s: &Summary) -> String {
    let mut out = format!("{}: {}\n", s.scenario, s.verdict.word());
    verdict_reasons(s, false, &mut out);
    out
}

/// The reasons behind the verdict; every threshold, or only the failed ones.
fn verdict_reasons(s: &Summary, every_threshold: bool, out: &mut String) {
    if let Some(why) = &s.aborted {
        let _ = writeln!(out, "STOPPED EARLY: {why}");
    }
    if let Some(why) = s.measurement.describe() {
        let _ = writeln!(out, "MEASUREMENT: {why}");
    }
    if let Some(why) = s.failed_outright() {
        let _ = writeln!(out, "FAILED: {why}");
    }
    for t in s.thresholds.iter().filter(|t| every_threshold || !t.passed) {
        let observed = t.observed_phrase();
        let mark = if t.passed { "pass" } else { "FAIL" };
        let _ = writeln!(out, "threshold {mark}: {} ({observed})", t.expr);
    }
}

/// One row per metric that saw operations, its errors by class below it.
fn metrics(s: &Summary, out: &mut String) {
    let _ = writeln!(
        out,
        "\n{:<16} {:>8} {:>6} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7}",
        "latency (ms)", "count", "errors", "rate/s", "p50", "p95", "p99", "p99.9", "max"
    );
    for (name, m) in &s.metrics {
        if m.count == 0 {
            continue;
        }
        let _ = writeln!(
            out,
            "{:<16} {:>8} {:>6} {:>7.1} {:>7} {:>7} {:>7} {:>7} {:>7}",
            name,
            m.count,
            m.errors,
            m.rate_per_s,
            lat(&m.latency_ms, |l| l.p50),
            lat(&m.latency_ms, |l| l.p95),
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
        if m.frames_sent + m.frames_received > 0 {
            let _ = writeln!(
                out,
                "{:<18} frames: {} sent, {} received",
                "", m.frames_sent, m.frames_received
            );
        }
    }
}

/// The checks' pass rate and the bytes moved, one line each under the table (per-metric bytes
/// would not fit its 80 columns; summary.md and index.html have them).
fn checks_and_data(s: &Summary, out: &mut String) {
    if !s.checks.is_empty() {
        let _ = writeln!(out, "checks {}", s.checks.text());
    }
    if s.bytes_sent + s.bytes_received > 0 {
        let _ = writeln!(
            out,
            "data: {} sent, {} received",
            bytes_text(s.bytes_sent),
            bytes_text(s.bytes_received)
        );
    }
}

/// Arrivals, messages and contacts.
fn flow(s: &Summary, out: &mut String) {
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
    if a.dropped > 0 {
        let by = a.dropped_by;
        let _ = writeln!(
            out,
            "dropped by: max_users {}, max_inflight {}, behind schedule {}",
            by.max_users, by.max_inflight, by.behind_schedule
        );
    }
    if a.returned > 0 {
        let _ = writeln!(out, "returning users: {} came back", a.returned);
    }
    let _ = writeln!(out, "{}", users_line(a));
    let c = &s.peak_connections;
    if c.all > 0 {
        let _ = writeln!(
            out,
            "connections: peak {} open: {} WebSockets, {} HTTP",
            c.all, c.websockets, c.http
        );
    }
    let m = &s.messages;
    if m.measured() {
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
    }
    if m.late > 0 || m.skipped > 0 {
        let _ = writeln!(
            out,
            "messages late (after their delivery deadline, counted lost): {}; sends skipped (nobody online): {}",
            m.late, m.skipped
        );
    }
    if s.contacts.measured() {
        let _ = writeln!(
            out,
            "contacts: {} expected, {} missing",
            s.contacts.expected, s.contacts.missing
        );
    }
}

/// How the started users' flows ended, as the identity it is, and where the cut-off ones were.
pub fn users_line(a: &super::summary::Arrivals) -> String {
    let mut line = format!(
        "users: {} started = {} completed + {} failed + {} cut off by the run's end",
        a.started, a.completed, a.failed, a.cut_off
    );
    if !a.cut_off_in.is_empty() {
        let mut by: Vec<(&String, &u64)> = a.cut_off_in.iter().collect();
        // The steps most users were cut off in first.
        by.sort_by(|x, y| y.1.cmp(x.1).then(x.0.cmp(y.0)));
        let parts: Vec<String> = by.iter().map(|(s, n)| format!("{s} {n}")).collect();
        let _ = write!(line, " (in {})", parts.join(", "));
    }
    line
}

/// Retries and reconnects, when there were any.
fn retries(s: &Summary, out: &mut String) {
    let r = &s.retries;
    if r.total + r.reconnects > 0 {
        // Retries are not errors: a reader sees them here, by reason and by metric.
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
            r.by_reason_text(),
            r.reconnects,
            by_metric.join(", ")
        );
    }
}

/// How a region is defined, in a few characters: `30% +90±20ms`.
pub fn region_label(r: &super::summary::Region) -> String {
    let share = format!("{}%", (r.share * 1000.0).round() / 10.0);
    let (l, j) = (r.latency_ms, r.jitter_ms);
    if j > 0.0 {
        format!("{share} +{l}±{j}ms")
    } else if l > 0.0 {
        format!("{share} +{l}ms")
    } else {
        share
    }
}

/// A compact per-region table: users, then p50/p99 of each metric, one column per region.
fn regions(s: &Summary, out: &mut String) {
    if s.regions.is_empty() {
        return;
    }
    let width = s
        .regions
        .iter()
        .map(|(n, r)| n.len().max(region_label(r).len()))
        .max()
        .unwrap_or(0)
        .max(15)
        + 2;
    const STATS: &str = " p50 / p99 ms";
    let head_width = s.metrics.keys().map(String::len).max().unwrap_or(0) + STATS.len();
    let row = |out: &mut String, head: &str, cells: Vec<String>| {
        let _ = write!(out, "{head:<head_width$}");
        for c in cells {
            let _ = write!(out, "{c:>width$}");
        }
        out.push('\n');
    };
    out.push('\n');
    row(out, "by region", s.regions.keys().cloned().collect());
    row(out, "", s.regions.values().map(region_label).collect());
    row(
        out,
        "users",
        s.regions.values().map(|r| r.users.to_string()).collect(),
    );
    for name in s.metrics.keys() {
        let cells: Vec<String> = s
            .regions
            .values()
            .map(
                |r| match r.metrics.get(name).and_then(|m| m.latency_ms.as_ref()) {
                    Some(l) => format!("{:.1} / {:.1}", l.p50, l.p99),
                    None => "-".to_string(),
                },
            )
            .collect();
        if cells.iter().all(|c| c == "-") {
            continue;
        }
        row(out, &format!("{name}{STATS}"), cells);
    }
}
