//! The comparison as a terminal table and as Markdown (`compare.md`, for a CI job summary).

use std::fmt::Write;

use super::{
    Check, Comparison, Decision, RunInfo, Verdict, ALPHA, MIN_INTERVALS, MIN_INTERVAL_SAMPLES,
};

fn value(v: Option<f64>, unit: &str) -> String {
    let Some(v) = v else {
        return "-".into();
    };
    match unit {
        "ms" if v < 10.0 => format!("{v:.2} ms"),
        "ms" if v < 100.0 => format!("{v:.1} ms"),
        "ms" => format!("{v:.0} ms"),
        "%" => format!("{v:.2}%"),
        "/s" => format!("{v:.1}/s"),
        _ => format!("{v:.0}"),
    }
}

fn change(c: &Check) -> String {
    match (c.change, c.change_unit) {
        (None, _) => "-".into(),
        (Some(v), "%") => format!("{v:+.1}%"),
        (Some(v), "pp") => format!("{v:+.2}pp"),
        (Some(v), _) => format!("{v:+.0}"),
    }
}

fn decision(c: &Check) -> String {
    match c.confidence {
        Some(super::Confidence::Low) => format!("{} (low confidence)", c.decision.label()),
        _ => c.decision.label().to_string(),
    }
}

fn headline(c: &Comparison) -> String {
    let verdict = match c.verdict {
        Verdict::Passed => "no regression".to_string(),
        Verdict::Regressed => format!("REGRESSION in {}", c.regressions.join(", ")),
    };
    if c.reliable {
        verdict
    } else {
        format!("{verdict} (unreliable: see warnings)")
    }
}

fn run_line(r: &RunInfo) -> String {
    format!(
        "{}  (scenario {}, seed {}, {}, {:.1} s, {} arrivals planned)",
        r.dir.display(),
        r.scenario,
        r.seed,
        r.started_at,
        r.duration_s,
        r.planned_arrivals
    )
}

fn rule(c: &Comparison) -> String {
    format!(
        "tolerances {} · alpha {} · interval test needs >= {MIN_INTERVALS} intervals of >= {MIN_INTERVAL_SAMPLES} samples per side",
        c.tolerances, ALPHA
    )
}

/// Rows of (metric, check) in display order, with the messages checks last.
fn rows(c: &Comparison) -> Vec<(&str, &Check)> {
    let mut out = Vec::new();
    for (name, m) in &c.metrics {
        for check in &m.checks {
            out.push((name.as_str(), check));
        }
    }
    for check in &c.messages {
        out.push(("messages", check));
    }
    out
}

/// A table for the terminal: per metric BASE vs NEW, the change and the decision with its reason.
pub fn render_text(c: &Comparison) -> String {
    let mut t = String::new();
    let _ = writeln!(t, "compare: {}", headline(c));
    let _ = writeln!(t, "  BASE {}", run_line(&c.base));
    let _ = writeln!(t, "  NEW  {}", run_line(&c.new));
    let _ = writeln!(t, "  {}", rule(c));
    let _ = writeln!(t);
    let table: Vec<[String; 6]> = rows(c)
        .into_iter()
        .map(|(name, check)| {
            [
                name.to_string(),
                check.what.clone(),
                value(check.base, check.unit),
                value(check.new, check.unit),
                change(check),
                decision(check),
            ]
        })
        .collect();
    let header = ["metric", "stat", "base", "new", "change", "decision"].map(String::from);
    let mut widths = [0usize; 6];
    for row in std::iter::once(&header).chain(&table) {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |row: &[String; 6], reason: &str| {
        let mut s = format!(
            "{:<w0$}  {:<w1$}  {:>w2$}  {:>w3$}  {:>w4$}  {:<w5$}",
            row[0],
            row[1],
            row[2],
            row[3],
            row[4],
            row[5],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2],
            w3 = widths[3],
            w4 = widths[4],
            w5 = widths[5],
        );
        if !reason.is_empty() {
            s.push_str("  ");
            s.push_str(reason);
        }
        s.trim_end().to_string()
    };
    let _ = writeln!(t, "{}", line(&header, "reason"));
    let mut last = "";
    for ((name, check), mut row) in rows(c).into_iter().zip(table) {
        if name == last {
            row[0] = String::new();
        }
        last = name;
        let reason = if check.decision == Decision::NotChecked {
            ""
        } else {
            check.reason.as_str()
        };
        let _ = writeln!(t, "{}", line(&row, reason));
    }
    if !c.warnings.is_empty() {
        let _ = writeln!(t);
        for w in &c.warnings {
            let _ = writeln!(t, "warning: {w}");
        }
    }
    t
}

/// `compare.md`: the same content as Markdown, for a CI job summary page.
pub fn render_markdown(c: &Comparison) -> String {
    let mut t = String::new();
    let _ = writeln!(t, "## inrush compare: {}\n", headline(c));
    let _ = writeln!(t, "- BASE `{}`", run_line(&c.base));
    let _ = writeln!(t, "- NEW `{}`", run_line(&c.new));
    let _ = writeln!(t, "- {}\n", rule(c));
    let _ = writeln!(
        t,
        "| metric | stat | base | new | change | decision | reason |"
    );
    let _ = writeln!(t, "|---|---|---:|---:|---:|---|---|");
    for (name, check) in rows(c) {
        let decision = match check.decision {
            Decision::Regression => format!("**{}**", decision(check)),
            _ => decision(check),
        };
        let reason = if check.decision == Decision::NotChecked {
            ""
        } else {
            check.reason.as_str()
        };
        let _ = writeln!(
            t,
            "| {name} | {} | {} | {} | {} | {decision} | {} |",
            check.what,
            value(check.base, check.unit),
            value(check.new, check.unit),
            change(check),
            reason.replace('|', "\\|")
        );
    }
    if !c.warnings.is_empty() {
        let _ = writeln!(t);
        for w in &c.warnings {
            let _ = writeln!(t, "> **warning:** {w}");
        }
    }
    t
}
