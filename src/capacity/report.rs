//! What a search leaves: `capacity.json` (schema `inrush.capacity/1`, docs/capacity.md),
//! `capacity.md`, `junit.xml` (one case per step) and the answer on the terminal. Built from
//! the search's end and its steps' records, without running anything.

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, SystemTime};

use serde::Serialize;

use super::search::{End, Limits};
use super::step::{rate_label, Failing, Gates, Metric, Settings, Source, StepRecord};
use crate::error::Error;

pub const SCHEMA: &str = "inrush.capacity/1";

/// What the report is made from.
pub struct Inputs<'a> {
    /// The scenario as compiled (its phases time a `--metric <phase>` search).
    pub base: &'a crate::compiled::Plan,
    pub scenario: &'a str,
    pub started_at: SystemTime,
    pub limits: Limits,
    pub settings: &'a Settings,
    pub gates: &'a Gates,
    /// `None`: interrupted.
    pub end: Option<&'a End>,
    pub bracket: (Option<f64>, Option<f64>),
    pub steps: Vec<StepRecord>,
    pub total: Duration,
}

/// `capacity.json`.
#[derive(Debug, Clone, Serialize)]
pub struct CapacityReport {
    pub schema: &'static str,
    pub scenario: String,
    pub started_at: String,
    /// `found`, `holds_max`, `fails_lowest`, `inconclusive` or `interrupted`.
    pub outcome: &'static str,
    /// The answer in one sentence, as the terminal prints it.
    pub answer: String,
    /// The largest rate (users/s) at which every threshold held, when one did.
    pub holds: Option<f64>,
    /// [last pass, first fail], users/s; either may be absent.
    pub bracket: Bracket,
    /// What the target did at `holds` (its last passing step's measured window).
    pub at_holds: Option<Throughput>,
    /// The thresholds that failed at the first failing rate (its last step), first one first.
    pub fails_first: Vec<Failing>,
    /// What ran out, when inrush can tell: `target_refusals` (HTTP 429/503), `latency`,
    /// `errors`, `generator`.
    pub saturating: Option<String>,
    /// The same in words.
    pub saturating_text: Option<String>,
    pub settings: SettingsRecord,
    /// `scenario` (its `[thresholds]`), `capacity` (its `[capacity] thresholds`) or
    /// `--threshold`: where `thresholds_applied` come from.
    pub thresholds_from: Source,
    pub thresholds_applied: Vec<String>,
    pub thresholds_skipped: Vec<String>,
    /// The scenario's thresholds not applied because the search's own replaced them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub thresholds_replaced: Vec<String>,
    pub steps_run: usize,
    pub total_s: f64,
    pub steps: Vec<StepRecord>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Bracket {
    pub last_pass: Option<f64>,
    pub first_fail: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Throughput {
    pub users_per_s: f64,
    pub operations_per_s: f64,
    pub messages_per_s: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct SettingsRecord {
    /// `arrivals` (a constant rate per step) or the phase that was scaled.
    pub metric: String,
    pub from: f64,
    pub max: f64,
    pub precision: f64,
    pub warmup_s: f64,
    pub measure_s: f64,
    pub accept_overload: bool,
    pub target: Option<String>,
}

impl CapacityReport {
    pub fn new(i: Inputs) -> CapacityReport {
        let (last_pass, first_fail) = i.bracket;
        let last_at = |rate: Option<f64>, verdict: &str| {
            let rate = rate?;
            i.steps
                .iter()
                .rev()
                .find(|s| s.rate == rate && s.verdict == verdict)
        };
        let pass_step = last_at(last_pass, "pass");
        let fail_step = last_at(first_fail, "fail");
        let at_holds = pass_step.map(|s| Throughput {
            users_per_s: s.rate,
            operations_per_s: s.operations_per_s,
            messages_per_s: s.messages_per_s,
        });
        let fails_first = fail_step.map(|s| s.failing.clone()).unwrap_or_default();
        let (saturating, saturating_text) = saturation(i.end, fail_step, &i.steps);
        let unit = match &i.settings.metric {
            Metric::Arrivals => "users/s".to_string(),
            Metric::Phase { name, .. } => format!("users/s at the peak of phase `{name}`"),
        };
        let (outcome, answer) = answer(i.end, at_holds.as_ref(), &unit, first_fail, &fails_first);
        CapacityReport {
            schema: SCHEMA,
            scenario: i.scenario.to_string(),
            started_at: humantime::format_rfc3339_seconds(i.started_at).to_string(),
            outcome,
            answer,
            holds: last_pass,
            bracket: Bracket {
                last_pass,
                first_fail,
            },
            at_holds,
            fails_first,
            saturating,
            saturating_text,
            settings: SettingsRecord {
                from: i.limits.from,
                max: i.limits.max,
                precision: i.limits.precision,
                metric: match &i.settings.metric {
                    Metric::Arrivals => "arrivals".to_string(),
                    Metric::Phase { name, .. } => name.clone(),
                },
                warmup_s: (i.settings.load(i.base) - i.settings.measured(i.base)).as_secs_f64(),
                measure_s: i.settings.measured(i.base).as_secs_f64(),
                accept_overload: i.settings.accept_overload,
                target: i.settings.target.clone(),
            },
            thresholds_from: i.gates.from,
            thresholds_applied: i.gates.applied.iter().map(|t| t.expr.clone()).collect(),
            thresholds_skipped: i.gates.skipped.clone(),
            thresholds_replaced: i.gates.replaced.clone(),
            steps_run: i.steps.len(),
            total_s: (i.total.as_secs_f64() * 10.0).round() / 10.0,
            steps: i.steps,
        }
    }
}

/// The outcome's name and the answer's sentence.
fn answer(
    end: Option<&End>,
    holds: Option<&Throughput>,
    unit: &str,
    first_fail: Option<f64>,
    fails: &[Failing],
) -> (&'static str, String) {
    let holds_text = holds.map(|h| {
        format!(
            "holds {} {unit} ({:.1} operations/s, {:.1} messages/s) with every threshold passing",
            rate_label(h.users_per_s),
            h.operations_per_s,
            h.messages_per_s
        )
    });
    let fails_text = first_fail.map(|f| {
        let what = fails.first().map_or_else(
            || "every operation fails".to_string(),
            |t| format!("`{}` fails first ({})", t.expr, t.observed_text),
        );
        format!("at {}/s {what}", rate_label(f))
    });
    match end {
        None => (
            "interrupted",
            "interrupted before the search ended; the steps so far are recorded".to_string(),
        ),
        Some(End::Bracket { .. }) => (
            "found",
            format!(
                "{}; {}",
                holds_text.unwrap_or_default(),
                fails_text.unwrap_or_default()
            ),
        ),
        Some(End::HoldsMax { pass }) => (
            "holds_max",
            format!(
                "{}, up to --max {}/s: the capacity is at least that (raise --max to look further)",
                holds_text.unwrap_or_default(),
                rate_label(*pass)
            ),
        ),
        Some(End::FailsLowest { fail }) => (
            "fails_lowest",
            format!(
                "even the lowest rate fails: {} (confirmed by a repeat); lower --from",
                fails_text.unwrap_or_else(|| format!("at {}/s", rate_label(*fail)))
            ),
        ),
        Some(End::Inconclusive { rate, .. }) => (
            "inconclusive",
            format!(
                "could not conclude: the step at {}/s was inconclusive twice{}{}",
                rate_label(*rate),
                holds_text
                    .map(|h| format!("; so far it {h}"))
                    .unwrap_or_default(),
                fails_text.map(|f| format!("; {f}")).unwrap_or_default()
            ),
        ),
    }
}

/// What ran out: the generator (an inconclusive end because it fell behind), the target's
/// refusals (HTTP 429/503 at the first failing rate), latency (a latency threshold failed
/// with no refusal), or plain errors.
fn saturation(
    end: Option<&End>,
    fail: Option<&StepRecord>,
    steps: &[StepRecord],
) -> (Option<String>, Option<String>) {
    if let Some(End::Inconclusive { rate, .. }) = end {
        let why = steps
            .iter()
            .rev()
            .find(|s| s.rate == *rate)
            .and_then(|s| s.inconclusive_because.clone())
            .unwrap_or_default();
        let kind = if why.starts_with("the generator") {
            "generator"
        } else {
            "evidence"
        };
        let text = match kind {
            "generator" if why.contains(super::step::IDLE_WORKERS) => format!(
                "this machine is the limit at {}/s, not the target: {why}. Rerun on a quieter \
                 machine (or give the generator dedicated cores); no target capacity is reported",
                rate_label(*rate)
            ),
            "generator" => format!(
                "the generator is the limit at {}/s, not the target: {why}. Run more generator \
                 processes or a release build; no target capacity is reported",
                rate_label(*rate)
            ),
            _ => format!("too little evidence at {}/s: {why}", rate_label(*rate)),
        };
        return (Some(kind.to_string()), Some(text));
    }
    let Some(f) = fail else {
        return (None, None);
    };
    let latency = f
        .failing
        .iter()
        .any(|t| t.unit == crate::compiled::threshold::Unit::Millis);
    let (kind, text) = if f.refusals > 0 {
        (
            "target_refusals",
            format!(
                "the target refused work at {}/s: {} HTTP 429/503 answers (failed or retried) in \
                 the measured window, a capacity or rate limit of the target",
                rate_label(f.rate),
                f.refusals
            ),
        )
    } else if latency {
        (
            "latency",
            format!(
                "latency grew past its limit at {}/s without the target refusing work: it slows \
                 down before it refuses",
                rate_label(f.rate)
            ),
        )
    } else if f.errors > 0 {
        (
            "errors",
            format!(
                "{} operations failed in the measured window at {}/s (see the step's summary)",
                f.errors,
                rate_label(f.rate)
            ),
        )
    } else {
        return (None, None);
    };
    (Some(kind.to_string()), Some(text))
}

/// The answer as the terminal prints it.
pub fn terminal(r: &CapacityReport) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "\n{}: {}", r.scenario, r.answer);
    let _ = writeln!(
        o,
        "gated on ({}): {}",
        r.thresholds_from.words(),
        r.thresholds_applied.join("; ")
    );
    if !r.thresholds_replaced.is_empty() {
        let _ = writeln!(o, "  (in place of: {})", r.thresholds_replaced.join("; "));
    }
    if let (Some(p), Some(f)) = (r.bracket.last_pass, r.bracket.first_fail) {
        let _ = writeln!(
            o,
            "bracket: [{} users/s pass, {} users/s fail]",
            rate_label(p),
            rate_label(f)
        );
    }
    if let Some(s) = &r.saturating_text {
        let _ = writeln!(o, "saturates: {s}");
    }
    let _ = writeln!(o, "{} steps in {:.0} s", r.steps_run, r.total_s);
    o
}

/// `capacity.md`: the answer first, then every step.
pub fn markdown(r: &CapacityReport) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "# Capacity of {}\n", r.scenario);
    let _ = writeln!(o, "**{}**\n", r.answer);
    if let Some(s) = &r.saturating_text {
        let _ = writeln!(o, "Saturates: {s}\n");
    }
    let _ = writeln!(
        o,
        "{} steps in {:.0} s, started {}; each step {} s warm-up (discarded) + {} s measured; \
         precision {} %.\n",
        r.steps_run,
        r.total_s,
        r.started_at,
        r.settings.warmup_s,
        r.settings.measure_s,
        r.settings.precision * 100.0
    );
    let _ = writeln!(
        o,
        "Thresholds applied to each measured window (from {}):\n",
        r.thresholds_from.words()
    );
    for t in &r.thresholds_applied {
        let _ = writeln!(o, "- `{t}`");
    }
    for t in &r.thresholds_skipped {
        let _ = writeln!(o, "- not applied: `{t}`");
    }
    for t in &r.thresholds_replaced {
        let _ = writeln!(
            o,
            "- not applied (replaced by {}): `{t}`",
            r.thresholds_from.words()
        );
    }
    let _ = writeln!(
        o,
        "\n| # | users/s | verdict | operations/s | messages/s | 429/503 | failing | run |\n|---|---|---|---|---|---|---|---|"
    );
    for s in &r.steps {
        let failing = match (&s.inconclusive_because, s.failing.is_empty()) {
            (Some(why), _) => why.clone(),
            (None, true) => String::new(),
            (None, false) => s
                .failing
                .iter()
                .map(|f| format!("`{}` {}", f.expr, f.observed_text))
                .collect::<Vec<_>>()
                .join("; "),
        };
        let _ = writeln!(
            o,
            "| {} | {} | {}{} | {:.1} | {:.1} | {} | {} | [{}]({}/index.html) |",
            s.index,
            rate_label(s.rate),
            s.verdict,
            if s.repeat { " (repeat)" } else { "" },
            s.operations_per_s,
            s.messages_per_s,
            s.refusals,
            failing,
            s.dir,
            s.dir
        );
    }
    o
}

/// `junit.xml`: one test case per step, a failing step a failure with its thresholds, an
/// inconclusive one skipped with why.
pub fn junit(r: &CapacityReport) -> String {
    let esc = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    };
    let failures = r.steps.iter().filter(|s| s.verdict == "fail").count();
    let skipped = r
        .steps
        .iter()
        .filter(|s| s.verdict == "inconclusive")
        .count();
    let mut o = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        o,
        "<testsuite name=\"find-capacity {}\" tests=\"{}\" failures=\"{failures}\" skipped=\"{skipped}\" time=\"{}\">",
        esc(&r.scenario),
        r.steps.len(),
        r.total_s
    );
    let _ = writeln!(
        o,
        "  <properties><property name=\"answer\" value=\"{}\"/></properties>",
        esc(&r.answer)
    );
    for s in &r.steps {
        let _ = write!(
            o,
            "  <testcase classname=\"capacity.{}\" name=\"step {:02} at {} users/s\" time=\"{}\"",
            esc(&r.scenario),
            s.index,
            rate_label(s.rate),
            s.duration_s
        );
        match s.verdict {
            "fail" => {
                let text = s
                    .failing
                    .iter()
                    .map(|f| format!("{} ({})", f.expr, f.observed_text))
                    .collect::<Vec<_>>()
                    .join("; ");
                let _ = writeln!(
                    o,
                    ">\n    <failure message=\"{}\"/>\n  </testcase>",
                    esc(&text)
                );
            }
            "inconclusive" => {
                let why = s.inconclusive_because.as_deref().unwrap_or("");
                let _ = writeln!(
                    o,
                    ">\n    <skipped message=\"{}\"/>\n  </testcase>",
                    esc(why)
                );
            }
            _ => {
                let _ = writeln!(o, "/>");
            }
        }
    }
    o.push_str("</testsuite>\n");
    o
}

/// Writes `capacity.json`, `capacity.md` and `junit.xml` into `dir`.
pub fn write(dir: &Path, r: &CapacityReport) -> Result<(), Error> {
    let json = serde_json::to_string_pretty(r)
        .map_err(|e| Error::Run(format!("cannot encode capacity.json: {e}")))?;
    for (name, text) in [
        ("capacity.json", json + "\n"),
        ("capacity.md", markdown(r)),
        ("junit.xml", junit(r)),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|e| Error::io("cannot write", &path, e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inconclusive(rate: f64, because: &str) -> StepRecord {
        StepRecord {
            index: 1,
            rate,
            verdict: "inconclusive",
            repeat: false,
            failing: Vec::new(),
            inconclusive_because: Some(because.to_string()),
            operations_per_s: 0.0,
            messages_per_s: 0.0,
            started: 100,
            refusals: 0,
            errors: 0,
            overload_accepted: Vec::new(),
            thresholds: Vec::new(),
            duration_s: 1.0,
            dir: String::new(),
        }
    }

    #[test]
    fn a_generator_that_fell_behind_while_idle_blames_the_machine_not_its_own_capacity() {
        let end = End::Inconclusive {
            rate: 160.0,
            pass: Some(80.0),
            fail: None,
        };
        let idle = format!(
            "the generator could not keep up: loop lag p99 11.0 ms > 5 ms, while its workers \
             were at most 12 % busy: {}",
            super::super::step::IDLE_WORKERS
        );
        let (kind, text) = saturation(Some(&end), None, &[inconclusive(160.0, &idle)]);
        assert_eq!(kind.as_deref(), Some("generator"));
        let text = text.unwrap_or_default();
        assert!(
            text.starts_with("this machine is the limit at 160/s"),
            "{text}"
        );
        let busy = "the generator could not keep up: schedule lag p99 40.0 ms > 5 ms";
        let (_, text) = saturation(Some(&end), None, &[inconclusive(160.0, busy)]);
        let text = text.unwrap_or_default();
        assert!(
            text.starts_with("the generator is the limit at 160/s"),
            "{text}"
        );
        assert!(text.contains("no target capacity is reported"), "{text}");
    }
}
