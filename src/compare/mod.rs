//! `inrush compare BASE NEW`: is NEW worse than BASE beyond the tolerances, and beyond noise?
//!
//! # The decision rule
//!
//! Every metric present in both runs is compared (`register`, `verify`, …; not the `.service`
//! tags nor `schedule_lag`). A check is a **regression** only when the change is both *large*
//! and *consistent*:
//!
//! * **Latency statistic** `s` (p50, p90, p99, p999, max, mean) with tolerance `t`:
//!   1. *Large:* NEW's whole-run `s` exceeds BASE's by more than `t` (relative) **and** by more
//!      than the floor: the larger of `floor` (default 1 ms: sub-millisecond jitter on loopback
//!      is noise) and either run's schedule lag at the same statistic (lag p99 for p99, …).
//!      Latency counts from the intended start, so the generator's own lateness is part of every
//!      sample, and it moves between runs with the machine's load: a change smaller than it can
//!      be the generator's, not the service's. (Measured on a loaded 2-core machine: identical
//!      runs started at different times differed by up to +2.5 ms at p99 with a lag p99 of
//!      2.2–2.6 ms, and those differences *were* consistent across intervals — the machine
//!      was busier for the whole run — so no interval test can tell them from a regression.)
//!   2. *Consistent across intervals:* the run's ~1 s intervals with at least 20 samples each
//!      give one value per interval, and a one-sided Mann–Whitney U test (normal approximation,
//!      tie and continuity corrected) must find NEW's values stochastically larger than BASE's
//!      at α = 0.01. For a quantile (p50 … p999, max) the interval value is **the fraction of
//!      the interval's samples above BASE's whole-run value of `s`**; for the mean it is the
//!      interval's mean. An interval's own p99 would be the wrong value: from 40 samples it is
//!      simply their maximum, its expectation depends on the interval's size, and it says little
//!      about the whole-run p99. The exceedance fraction estimates the same thing in every
//!      interval whatever its size (1 % for p99 if nothing changed), and grows with any shift of
//!      the tail, so one slow second (a GC pause, a noisy neighbour) cannot make a regression:
//!      it moves one rank among many.
//!   3. With fewer than 5 usable intervals on either side (a short run, a rare operation), the
//!      test has no power: rule 1 alone decides and the decision is marked **low confidence**.
//! * **Error rate** (`errors`, percentage points, default 0): NEW's error rate exceeds BASE's by
//!   more than the tolerance **and** Fisher's exact test (one-sided, conditional on the total
//!   number of errors) gives p < 0.01. Errors are rare events, so their counts are small and the
//!   two-proportion z-test's normal approximation is poor; Fisher's test is exact. With
//!   `errors=0`, any *significant* increase fails: 0 → 3 errors in 320 operations is p = 0.125 and
//!   passes (with a note), 0 → 10 is p ≈ 0.001 and fails.
//! * **Throughput** (`rate`, relative decrease; not checked by default): NEW completed fewer
//!   operations per second than BASE by more than the tolerance **and** a test of the two
//!   counts as Poisson counts over their spans gives p < 0.01.
//! * **Lost messages** (`lost`, absolute; not checked by default): NEW lost more messages than
//!   BASE by more than the tolerance. No test: a lost message is a defect, not noise.
//!
//! The symmetric rule (BASE worse than NEW, large and consistent) reports **improved**; it never
//! affects the verdict.
//!
//! # Comparable runs
//! The runs must carry the same load: if their planned arrivals differ by more than 5 %, every
//! latency and throughput delta would measure the plan, not the service, so `compare` refuses
//! with a usage error (exit 2) and writes nothing. A different scenario name with the same load
//! is only a warning (scenarios get renamed). A run whose generator fell behind (schedule lag
//! p99 > 5 ms), dropped arrivals or was interrupted makes the comparison **unreliable**: it is
//! still decided, and says so.

mod checks;
pub mod html;
mod link;
pub mod load;
mod output;
mod render;
pub mod stats;
pub mod tolerance;
pub mod words;

use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use serde::Serialize;

use crate::error::Error;
use crate::report::summary::{Latency, MetricSummary, Summary, LAG_WARN_MS};
pub use load::Run;
pub use output::write;
pub use render::{render_markdown, render_text};
pub use tolerance::{Stat, Tolerances};

pub const SCHEMA: &str = "inrush.compare/1";
pub const JSON_FILE: &str = "compare.json";
pub const MARKDOWN_FILE: &str = "compare.md";
pub const HTML_FILE: &str = "compare.html";
/// Significance level of every test.
pub const ALPHA: f64 = 0.01;
/// An interval counts towards the interval test only with at least this many samples.
pub const MIN_INTERVAL_SAMPLES: u64 = 20;
/// Fewer usable intervals than this on either side: whole-run values alone, low confidence.
pub const MIN_INTERVALS: usize = 5;
/// Planned arrivals differing by more than this fraction make two runs incomparable.
pub const MAX_PLAN_DIFFERENCE: f64 = 0.05;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Passed,
    Regressed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// Shown for information: no tolerance was given for it.
    NotChecked,
    Ok,
    Improved,
    Regression,
}

impl Decision {
    pub fn label(self) -> &'static str {
        match self {
            Decision::NotChecked => "-",
            Decision::Ok => "ok",
            Decision::Improved => "improved",
            Decision::Regression => "REGRESSION",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Confidence {
    High,
    Low,
}

/// The facts of one run that matter to the comparison.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunInfo {
    pub dir: PathBuf,
    pub scenario: String,
    pub seed: u64,
    pub target: String,
    pub inrush_version: String,
    /// What the command line changed in the run's load profile (`--time-scale`, …), in words.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub overrides: Vec<String>,
    pub started_at: String,
    pub duration_s: f64,
    pub planned_arrivals: u64,
    pub dropped_arrivals: u64,
    pub schedule_lag_p99_ms: Option<f64>,
}

/// One metric of one run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Side {
    pub count: u64,
    pub errors: u64,
    /// errors / count, 0 to 1.
    pub error_rate: f64,
    pub rate_per_s: f64,
    pub latency_ms: Option<Latency>,
}

/// One decided (or informational) comparison: a latency statistic, the error rate, the rate,
/// lost messages.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Check {
    /// `p99`, `mean`, …, `errors`, `rate`, `lost`.
    pub what: String,
    /// Unit of `base` and `new`: `ms`, `%` (error rate), `/s`, `messages`.
    pub unit: &'static str,
    pub base: Option<f64>,
    pub new: Option<f64>,
    /// NEW relative to BASE in % (latency, rate), in percentage points (errors), or in messages
    /// (lost).
    pub change: Option<f64>,
    /// `%`, `pp` or `messages`.
    pub change_unit: &'static str,
    /// The tolerance in the unit of `change`; `None` when not checked.
    pub tolerance: Option<f64>,
    /// Latency checks: the smallest change in ms that counted (configured floor or schedule lag).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub floor_ms: Option<f64>,
    pub decision: Decision,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confidence: Option<Confidence>,
    /// The test's one-sided p-value, when a test was run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p_value: Option<f64>,
    /// Usable intervals [BASE, NEW] for a latency interval test.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub intervals: Option<[usize; 2]>,
    /// With `intervals`: how many of the worse run's intervals (NEW's for a regression, BASE's
    /// for an improvement) have a value above the other run's median interval: "higher in 18 of
    /// 20 intervals". About half if nothing changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub higher_intervals: Option<usize>,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricComparison {
    pub decision: Decision,
    pub base: Side,
    pub new: Side,
    pub checks: Vec<Check>,
}

/// The outcome of `compare`: written as `compare.json` (schema `inrush.compare/1`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    pub schema: String,
    pub verdict: Verdict,
    /// `<metric>.<check>` (or `messages.lost`) of every regression.
    pub regressions: Vec<String>,
    /// False when a run's generator fell behind, dropped arrivals or was interrupted.
    pub reliable: bool,
    pub warnings: Vec<String>,
    pub base: RunInfo,
    pub new: RunInfo,
    pub tolerances: Tolerances,
    pub alpha: f64,
    pub metrics: IndexMap<String, MetricComparison>,
    pub messages: Vec<Check>,
}

/// One check as a report lists it: the metric's name (`messages` for lost messages), the check,
/// and the metric's BASE and NEW counts where it has them.
pub type Listed<'a> = (&'a str, &'a Check, Option<[&'a Side; 2]>);

impl Comparison {
    /// Every check in `compare.json`'s order — metric by metric, `messages.lost` last — which is
    /// also the order of `regressions`.
    pub fn checks(&self) -> Vec<Listed<'_>> {
        let mut out: Vec<Listed<'_>> = Vec::new();
        for (name, m) in &self.metrics {
            for check in &m.checks {
                out.push((name, check, Some([&m.base, &m.new])));
            }
        }
        for check in &self.messages {
            out.push(("messages", check, None));
        }
        out
    }
}

/// Compares two run directories (see the module documentation for the rule).
pub fn compare(base: &Path, new: &Path, tolerances: &Tolerances) -> Result<Comparison, Error> {
    let base = load::run(base, "BASE")?;
    let new = load::run(new, "NEW")?;
    compare_runs(&base, &new, tolerances)
}

/// `reports/compare-<base dir name>-vs-<new dir name>`.
pub fn default_out(base: &Path, new: &Path) -> PathBuf {
    let name = |p: &Path| {
        p.file_name()
            .map_or_else(|| "run".to_string(), |n| n.to_string_lossy().into_owned())
    };
    PathBuf::from("reports").join(format!("compare-{}-vs-{}", name(base), name(new)))
}

fn info(run: &Run) -> RunInfo {
    let s = &run.summary;
    RunInfo {
        dir: run.dir.clone(),
        scenario: s.scenario.clone(),
        seed: s.seed,
        target: s.target.clone(),
        inrush_version: s.inrush_version.clone(),
        overrides: s.overrides.clone(),
        started_at: s.started_at.clone(),
        duration_s: s.duration_s,
        planned_arrivals: s.arrivals.planned,
        dropped_arrivals: s.arrivals.dropped,
        schedule_lag_p99_ms: s.arrivals.schedule_lag_ms.map(|l| l.p99),
    }
}

/// Refuses runs under different loads; returns warnings about anything else that differs or
/// makes the comparison unreliable, and whether it is reliable.
fn comparability(base: &Summary, new: &Summary) -> Result<(Vec<String>, bool), Error> {
    let (pb, pn) = (base.arrivals.planned as f64, new.arrivals.planned as f64);
    if (pn - pb).abs() > MAX_PLAN_DIFFERENCE * pb.max(pn) {
        return Err(Error::Usage(format!(
            "the runs are not comparable: BASE planned {} arrivals (scenario `{}`), NEW {} \
             (scenario `{}`), more than {:.0} % apart; latency and throughput under different \
             loads say nothing about the service. Compare runs of the same scenario and load",
            base.arrivals.planned,
            base.scenario,
            new.arrivals.planned,
            new.scenario,
            MAX_PLAN_DIFFERENCE * 100.0
        )));
    }
    let mut warnings = Vec::new();
    let mut reliable = true;
    if base.scenario != new.scenario {
        warnings.push(format!(
            "different scenarios (BASE `{}`, NEW `{}`) with the same planned load; compared anyway",
            base.scenario, new.scenario
        ));
    }
    for (role, s) in [("BASE", base), ("NEW", new)] {
        if let Some(lag) = s.arrivals.schedule_lag_ms.filter(|l| l.p99 > LAG_WARN_MS) {
            reliable = false;
            warnings.push(format!(
                "{role}'s generator fell behind its schedule (schedule lag p99 {:.1} ms > {LAG_WARN_MS} ms): \
                 the target got less load than planned and latencies include the generator's delay; \
                 the comparison is unreliable",
                lag.p99
            ));
        }
        if let Some(lag) = s.generator.loop_lag_ms.filter(|l| l.p99 > LAG_WARN_MS) {
            reliable = false;
            warnings.push(format!(
                "{role}'s generator serviced responses late (loop lag p99 {:.1} ms > {LAG_WARN_MS} ms): \
                 latencies include the generator's delay; the comparison is unreliable",
                lag.p99
            ));
        }
        if let Some(cpu) = s
            .generator
            .worker_cpu_max
            .filter(crate::report::summary::WorkerCpu::saturated)
        {
            reliable = false;
            warnings.push(format!(
                "{role}'s generator was saturated (its busiest worker over 90 % busy in {} of {} \
                 intervals): latencies include waiting for the generator's CPU; the comparison is \
                 unreliable",
                cpu.saturated_intervals, cpu.intervals
            ));
        }
        if s.arrivals.dropped > 0 {
            reliable = false;
            warnings.push(format!(
                "{role} dropped {} of {} planned arrivals: the comparison is unreliable",
                s.arrivals.dropped, s.arrivals.planned
            ));
        }
        if s.verdict == crate::report::summary::Verdict::Interrupted || s.aborted.is_some() {
            reliable = false;
            warnings.push(format!(
                "{role} was stopped before its end{}: the comparison is unreliable",
                s.aborted
                    .as_deref()
                    .map(|r| format!(" ({r})"))
                    .unwrap_or_default()
            ));
        }
    }
    Ok((warnings, reliable))
}

/// Compares two loaded runs.
pub fn compare_runs(base: &Run, new: &Run, tol: &Tolerances) -> Result<Comparison, Error> {
    let (mut warnings, reliable) = comparability(&base.summary, &new.summary)?;
    let mut metrics = IndexMap::new();
    let mut regressions = Vec::new();
    for (name, b) in &base.summary.metrics {
        let Some(n) = new.summary.metrics.get(name) else {
            if b.count > 0 {
                warnings.push(format!("`{name}` is only in BASE; not compared"));
            }
            continue;
        };
        if name == "schedule_lag" || name.ends_with(".service") {
            continue;
        }
        if b.count == 0 || n.count == 0 {
            if b.count + n.count > 0 {
                warnings.push(format!(
                    "`{name}` has samples only in {}; not compared",
                    if b.count > 0 { "BASE" } else { "NEW" }
                ));
            }
            continue;
        }
        let m = compare_metric(name, b, n, base, new, tol);
        for c in &m.checks {
            if c.decision == Decision::Regression {
                regressions.push(format!("{name}.{}", c.what));
            }
            let unproven = c.decision == Decision::Ok && c.p_value.is_some();
            if c.what == "errors" && unproven && c.change.is_some_and(|d| d > 0.0) {
                warnings.push(format!("{name}: {}", c.reason));
            }
        }
        metrics.insert(name.clone(), m);
    }
    for name in new.summary.metrics.keys() {
        if !base.summary.metrics.contains_key(name) && new.summary.metrics[name].count > 0 {
            warnings.push(format!("`{name}` is only in NEW; not compared"));
        }
    }
    let mut messages = Vec::new();
    if let Some(t) = tol.lost {
        let check = checks::lost_check(&base.summary, &new.summary, t);
        if check.decision == Decision::Regression {
            regressions.push("messages.lost".into());
        }
        messages.push(check);
    }
    Ok(Comparison {
        schema: SCHEMA.into(),
        verdict: if regressions.is_empty() {
            Verdict::Passed
        } else {
            Verdict::Regressed
        },
        regressions,
        reliable,
        warnings,
        base: info(base),
        new: info(new),
        tolerances: tol.clone(),
        alpha: ALPHA,
        metrics,
        messages,
    })
}

fn side(m: &MetricSummary) -> Side {
    Side {
        count: m.count,
        errors: m.errors,
        error_rate: if m.count > 0 {
            m.errors as f64 / m.count as f64
        } else {
            0.0
        },
        rate_per_s: m.rate_per_s,
        latency_ms: m.latency_ms,
    }
}

fn compare_metric(
    name: &str,
    b: &MetricSummary,
    n: &MetricSummary,
    base: &Run,
    new: &Run,
    tol: &Tolerances,
) -> MetricComparison {
    let (hb, hn) = (
        base.histograms.total.get(name),
        new.histograms.total.get(name),
    );
    let mut checks: Vec<Check> = tolerance::COMPARED
        .into_iter()
        .filter(|s| tolerance::SHOWN.contains(s) || tol.latency.contains_key(s))
        .map(|s| {
            checks::latency_check(
                s,
                tol.latency.get(&s).copied(),
                checks::floor(s, tol.floor_ms, base, new),
                [hb, hn],
                [
                    checks::intervals_of(base, name),
                    checks::intervals_of(new, name),
                ],
            )
        })
        .collect();
    let (sb, sn) = (side(b), side(n));
    checks.push(checks::error_check(&sb, &sn, tol.errors_pp));
    checks.push(checks::rate_check(&sb, &sn, tol.rate));
    let decision = checks
        .iter()
        .map(|c| c.decision)
        .max()
        .unwrap_or(Decision::NotChecked);
    MetricComparison {
        decision,
        base: sb,
        new: sn,
        checks,
    }
}
