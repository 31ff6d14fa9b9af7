//! `summary.md`: a compact Markdown summary for a CI job's summary page.

use std::fmt::Write;

use super::checks::bytes_text;
use super::summary::{Latency, Summary, Verdict};
use super::{files, FileArtifact, FinishedRun};
use crate::error::Error;

/// `summary.md`.
pub struct Markdown;

impl FileArtifact for Markdown {
    const FILE: &'static str = files::MARKDOWN;

    fn render(&self, run: &FinishedRun<'_>) -> Result<Vec<u8>, Error> {
        Ok(render(run.summary).into_bytes())
    }
}

fn ms(l: &Option<Latency>, f: impl Fn(&Latency) -> f64) -> String {
    l.as_ref().map_or("–".into(), |l| format!("{:.1}", f(l)))
}

pub fn render(s: &Summary) -> String {
    let mut out = String::new();
    let verdict = match s.verdict {
        Verdict::Passed => "✅ passed",
        Verdict::Failed => "❌ failed",
        Verdict::Interrupted => "⚠️ interrupted",
        Verdict::Inconclusive => "⚠️ inconclusive",
    };
    let _ = writeln!(out, "## inrush: {} — {verdict}\n", s.scenario);
    let _ = writeln!(
        out,
        "seed {} · target `{}` · {:.1} s · started {}\n",
        s.seed, s.target, s.duration_s, s.started_at
    );
    if !s.overrides.is_empty() {
        let _ = writeln!(out, "**Scaled:** {}\n", s.overrides.join("; "));
    }
    if let Some(shard) = s.shard_text() {
        let _ = writeln!(out, "**Shards:** {shard}\n");
    }
    if let Some(why) = &s.aborted {
        let _ = writeln!(out, "**Stopped early:** {why}\n");
    }
    if let Some(why) = s.measurement.describe() {
        let _ = writeln!(out, "**Measurement:** {why}\n");
    }
    if let (Verdict::Failed, Some(why)) = (s.verdict, s.failed_outright()) {
        let _ = writeln!(out, "**Failed: {why}.**\n");
    }
    thresholds(s, &mut out);
    let _ = writeln!(
        out,
        "| metric | count | errors | rate/s | p50 ms | p95 ms | p99 ms | p99.9 ms | max ms |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for (name, m) in s.metrics.iter().filter(|(_, m)| m.count > 0) {
        let _ = writeln!(
            out,
            "| {name} | {} | {} | {:.1} | {} | {} | {} | {} | {} |",
            m.count,
            m.errors,
            m.rate_per_s,
            ms(&m.latency_ms, |l| l.p50),
            ms(&m.latency_ms, |l| l.p95),
            ms(&m.latency_ms, |l| l.p99),
            ms(&m.latency_ms, |l| l.p999),
            ms(&m.latency_ms, |l| l.max)
        );
    }
    checks_and_data(s, &mut out);
    let m = &s.messages;
    let a = &s.arrivals;
    // Only what the scenario measured: no messages part for a flow that sends none.
    let mut parts = Vec::new();
    if m.measured() {
        parts.push(format!(
            "messages: {} sent, {} delivered, {} lost, {} pending, {} duplicated",
            m.sent,
            m.delivered,
            m.lost.unwrap_or(0),
            m.pending.unwrap_or(0),
            m.duplicated
        ));
    }
    parts.push(format!(
        "arrivals: {} planned, {} started, {} dropped, schedule lag p99 {} ms · loop lag p99 {} ms",
        a.planned,
        a.started,
        a.dropped,
        ms(&a.schedule_lag_ms, |l| l.p99),
        ms(&s.generator.loop_lag_ms, |l| l.p99)
    ));
    parts.push(super::terminal::users_line(a));
    let frames: Vec<String> = s
        .metrics
        .iter()
        .filter(|(_, m)| m.frames_sent + m.frames_received > 0)
        .map(|(name, m)| {
            format!(
                "{name} {} sent / {} received",
                m.frames_sent, m.frames_received
            )
        })
        .collect();
    if !frames.is_empty() {
        parts.push(format!("frames: {}", frames.join(", ")));
    }
    if s.contacts.measured() {
        parts.push(format!(
            "contacts missing: {} of {}",
            s.contacts.missing, s.contacts.expected
        ));
    }
    let _ = writeln!(out, "\n{}", parts.join(" · "));
    regions(s, &mut out);
    let r = &s.retries;
    if r.total + r.reconnects > 0 {
        let _ = writeln!(
            out,
            "\nretries: {} ({}) · reconnects: {}",
            r.total,
            r.by_reason_text(),
            r.reconnects
        );
    }
    for w in &s.warnings {
        let _ = writeln!(out, "\n> **Warning:** {w}");
    }
    out
}

/// The checks' pass rate (with a row per check that failed), and the bytes each metric sent
/// and received with the run's totals.
fn checks_and_data(s: &Summary, out: &mut String) {
    if !s.checks.is_empty() {
        let _ = writeln!(out, "\n**Checks:** {}", s.checks.text());
        let failing = s.checks.failing();
        if !failing.is_empty() {
            let _ = writeln!(
                out,
                "\n| failed check | passed | failed | pass rate |\n|---|---:|---:|---:|"
            );
            for c in failing {
                let _ = writeln!(
                    out,
                    "| `{}` | {} | {} | {} |",
                    c.name.replace('|', "\\|").replace('`', "'"),
                    c.passed,
                    c.failed,
                    c.rate_text()
                );
            }
        }
    }
    if s.bytes_sent == 0 && s.bytes_received == 0 {
        return;
    }
    let per_metric: Vec<String> = s
        .metrics
        .iter()
        .filter(|(_, m)| m.bytes_sent > 0 || m.bytes_received > 0)
        .map(|(name, m)| {
            format!(
                "{name} {} / {}",
                bytes_text(m.bytes_sent),
                bytes_text(m.bytes_received)
            )
        })
        .collect();
    let _ = writeln!(
        out,
        "\n**Data** (sent / received): {} in all · {}",
        format_args!(
            "{} / {}",
            bytes_text(s.bytes_sent),
            bytes_text(s.bytes_received)
        ),
        per_metric.join(", ")
    );
}

/// The thresholds, when the run had any.
fn thresholds(s: &Summary, out: &mut String) {
    if s.thresholds.is_empty() {
        return;
    }
    let _ = writeln!(out, "| threshold | observed | result |\n|---|---:|---|");
    for t in &s.thresholds {
        let _ = writeln!(
            out,
            "| `{}` | {} | {} |",
            t.expr,
            t.observed_text(),
            if t.passed { "pass" } else { "**FAIL**" }
        );
    }
    let _ = writeln!(out);
}

/// One column per region, p50 / p99 of each metric: who saw it slower. Nothing without regions.
fn regions(s: &Summary, out: &mut String) {
    if s.regions.is_empty() {
        return;
    }
    let _ = write!(out, "\n| by region (p50 / p99 ms) |");
    for (name, r) in &s.regions {
        let _ = write!(out, " {name} ({}) |", super::terminal::region_label(r));
    }
    let _ = write!(out, "\n|---|");
    for _ in &s.regions {
        let _ = write!(out, "---:|");
    }
    let _ = write!(out, "\n| users |");
    for r in s.regions.values() {
        let _ = write!(out, " {} |", r.users);
    }
    for name in s.metrics.keys() {
        let _ = write!(out, "\n| {name} |");
        for r in s.regions.values() {
            let m = r.metrics.get(name).and_then(|m| m.latency_ms);
            let _ = write!(out, " {} / {} |", ms(&m, |l| l.p50), ms(&m, |l| l.p99));
        }
    }
    out.push('\n');
}
