//! The comparison as a terminal table and as Markdown (`compare.md`, for a CI job summary).

use std::fmt::Write;

use super::{
    words, Check, Comparison, Decision, RunInfo, Verdict, ALPHA, MIN_INTERVALS,
    MIN_INTERVAL_SAMPLES,
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

/// The decided checks with this decision, as `verify p99: 7.15 ms → 107 ms (+1396.5%): why`.
fn evidence(c: &Comparison, wanted: Decision) -> Vec<String> {
    let metrics = c
        .metrics
        .iter()
        .flat_map(|(name, m)| m.checks.iter().map(move |k| (name.as_str(), k)));
    let messages = c.messages.iter().map(|k| ("messages", k));
    metrics
        .chain(messages)
        .filter(|(_, k)| k.decision == wanted)
        .map(|(name, k)| {
            format!(
                "  {name} {}: {} → {} ({}): {}",
                words::label(&k.what),
                value(k.base, k.unit),
                value(k.new, k.unit),
                change(k),
                k.reason
            )
        })
        .collect()
}

/// The stats of the per-metric table: what most gates are about, one column each.
const COLUMNS: [&str; 4] = ["p50", "p99", "errors", "rate"];

/// The terminal's view, 80 columns for usual metric names: the verdict, the regressions (and
/// improvements) with their evidence, then one row per metric with NEW's change against BASE
/// for p50, p99, error rate and throughput, and its decision. Every figure and reason is in
/// compare.md, compare.html and compare.json.
pub fn render_text(c: &Comparison) -> String {
    let mut t = String::new();
    let _ = writeln!(t, "compare: {}", headline(c));
    let _ = writeln!(t, "  BASE {}", run_line(&c.base));
    let _ = writeln!(t, "  NEW  {}", run_line(&c.new));
    let _ = writeln!(t, "  {}", rule(c));
    for (title, decision) in [
        ("regressions", Decision::Regression),
        ("improvements", Decision::Improved),
    ] {
        let lines = evidence(c, decision);
        if !lines.is_empty() {
            let _ = writeln!(t, "\n{title}:");
            for l in lines {
                let _ = writeln!(t, "{l}");
            }
        }
    }
    let _ = writeln!(t);
    let mut table: Vec<Vec<String>> = c
        .metrics
        .iter()
        .map(|(name, m)| {
            let mut row = vec![name.clone()];
            row.extend(COLUMNS.iter().map(|what| {
                m.checks
                    .iter()
                    .find(|k| k.what == *what)
                    .map_or("-".into(), |k| {
                        let mark = if k.decision == Decision::Regression {
                            "!"
                        } else {
                            ""
                        };
                        format!("{}{mark}", change(k))
                    })
            }));
            let decided = m.checks.iter().find(|k| k.decision == m.decision);
            row.push(decided.map_or(m.decision.label().to_string(), decision));
            row
        })
        .collect();
    let mut header = vec!["metric".to_string()];
    header.extend(COLUMNS.iter().map(|w| words::label(w).to_string()));
    header.push("decision".into());
    table.insert(0, header);
    let mut widths = vec![0usize; COLUMNS.len() + 2];
    for row in &table {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for row in &table {
        let mut line = format!("{:<w$}", row[0], w = widths[0]);
        for (cell, w) in row[1..=COLUMNS.len()].iter().zip(&widths[1..]) {
            let _ = write!(line, "  {cell:>w$}");
        }
        let _ = write!(line, "  {}", row[COLUMNS.len() + 1]);
        let _ = writeln!(t, "{}", line.trim_end());
    }
    for k in &c.messages {
        let _ = writeln!(
            t,
            "messages {}: {} → {} ({}), {}",
            words::label(&k.what),
            value(k.base, k.unit),
            value(k.new, k.unit),
            change(k),
            decision(k)
        );
    }
    let _ = writeln!(
        t,
        "(changes NEW vs BASE; ! a regression; every check and its reason: compare.md, compare.html)"
    );
    if !c.warnings.is_empty() {
        let _ = writeln!(t);
        for w in &c.warnings {
            let _ = writeln!(t, "warning: {w}");
        }
    }
    t
}

/// One Markdown table cell: `|` escaped, line breaks flattened.
fn md(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

/// `compare.md`, for a CI job's summary page. Regressions first, each with its evidence in
/// words; then improvements, the verdict, tolerances and warnings; then one row per metric with
/// every check as `BASE → NEW (change)` — the checks without a tolerance (informational, mostly
/// unchanged) live only there, collapsed into their metric's row, not in rows of their own; last,
/// the decided checks with their reasons, folded in a `<details>` block.
pub fn render_markdown(c: &Comparison) -> String {
    let mut t = String::new();
    let _ = writeln!(t, "## inrush compare: {}\n", headline(c));
    let checks = c.checks();
    let _ = writeln!(t, "### Regressions\n");
    for (decision, heading) in [
        (Decision::Regression, ""),
        (Decision::Improved, "### Improved\n\n"),
    ] {
        let found: Vec<_> = checks.iter().filter(|k| k.1.decision == decision).collect();
        if found.is_empty() {
            if decision == Decision::Regression {
                let _ = writeln!(
                    t,
                    "None: no check grew beyond its tolerance consistently.\n"
                );
            }
            continue;
        }
        t.push_str(heading);
        for (name, check, sides) in &found {
            let _ = writeln!(t, "- **{name}** {}", words::evidence(check, *sides));
        }
        if found.iter().any(|k| k.1.higher_intervals.is_some()) {
            let _ = writeln!(
                t,
                "\n_{}; p is a one-sided Mann–Whitney U test over every interval of at least \
                 {MIN_INTERVAL_SAMPLES} samples._",
                words::INTERVALS_MEANING
            );
        }
        t.push('\n');
    }
    let _ = writeln!(t, "### Verdict and tolerances\n");
    let verdict = match c.regressions.len() {
        0 => "passed".to_string(),
        1 => "regressed (1 regression)".to_string(),
        n => format!("regressed ({n} regressions)"),
    };
    let reliable = if c.reliable {
        "reliable"
    } else {
        "**unreliable** (see the warnings)"
    };
    let _ = writeln!(t, "- verdict: {verdict}; {reliable}");
    let _ = writeln!(t, "- {}", rule(c));
    let _ = writeln!(t, "- BASE `{}`", run_line(&c.base));
    let _ = writeln!(t, "- NEW `{}`", run_line(&c.new));
    for w in &c.warnings {
        let _ = writeln!(t, "\n> **warning:** {w}");
    }
    per_metric_table(&mut t, c);
    let decided: Vec<_> = checks
        .iter()
        .filter(|k| k.1.decision != Decision::NotChecked)
        .collect();
    let _ = writeln!(
        t,
        "\n<details><summary>Every decided check ({})</summary>\n",
        decided.len()
    );
    let _ = writeln!(
        t,
        "| metric | check | tolerance | base | new | change | decision | reason |"
    );
    let _ = writeln!(t, "|---|---|---:|---:|---:|---:|---|---|");
    for (name, check, _) in decided {
        let decision = match check.decision {
            Decision::Regression => format!("**{}**", decision(check)),
            _ => decision(check),
        };
        let tolerance = check
            .tolerance
            .map_or("-".into(), |v| format!("{v} {}", check.change_unit));
        let _ = writeln!(
            t,
            "| {name} | {} | {tolerance} | {} | {} | {} | {decision} | {} |",
            words::label(&check.what),
            words::value(check.base, check.unit),
            words::value(check.new, check.unit),
            words::change(check),
            md(&check.reason)
        );
    }
    let _ = writeln!(t, "\n</details>");
    t
}

/// One row per metric, a column per check: `BASE → NEW (change)`, bold for a regression and
/// italic for an improvement.
fn per_metric_table(t: &mut String, c: &Comparison) {
    let Some(first) = c.metrics.values().next() else {
        return;
    };
    let _ = writeln!(t, "\n### BASE → NEW per metric\n");
    let _ = writeln!(
        t,
        "Each cell is BASE → NEW (change); **bold** is a regression, _italic_ an improvement. \
         Checks without a tolerance are not decided and appear only here, collapsed into their \
         metric's row. Latency in ms, error rate in % (change in percentage points).\n"
    );
    let columns: Vec<&str> = first.checks.iter().map(|k| k.what.as_str()).collect();
    let _ = writeln!(
        t,
        "| metric | decision | {} |",
        columns
            .iter()
            .map(|w| words::label(w))
            .collect::<Vec<_>>()
            .join(" | ")
    );
    let _ = writeln!(t, "|---|---|{}", "---:|".repeat(columns.len()));
    for (name, m) in &c.metrics {
        let cells: Vec<String> = columns
            .iter()
            .map(|what| {
                let Some(k) = m.checks.iter().find(|k| k.what == *what) else {
                    return "-".into();
                };
                let number = |v: Option<f64>| v.map_or("-".into(), |v| words::number(v, k.unit));
                let text = format!(
                    "{} → {} ({})",
                    number(k.base),
                    number(k.new),
                    words::change(k)
                );
                match k.decision {
                    Decision::Regression => format!("**{text}**"),
                    Decision::Improved => format!("_{text}_"),
                    _ => text,
                }
            })
            .collect();
        let _ = writeln!(
            t,
            "| {name} | {} | {} |",
            m.decision.label(),
            cells.join(" | ")
        );
    }
}
