//! One step of the search: the scenario reshaped to a constant open arrival rate (a warm-up
//! phase, discarded, then a measured phase), run by `inrush run`'s own engine into a run
//! directory of its own, and judged on the measured phase.

use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use super::search::Judged;
use crate::compiled::threshold::Threshold;
use crate::compiled::threshold::Unit;
use crate::compiled::{Load, Phase, Plan, Ramp, Shape};
use crate::error::Error;
use crate::report::summary::{Summary, ThresholdResult, Verdict};

/// The phase whose arrivals are discarded: the target's queues, pools and buckets settle.
pub const WARMUP: &str = "warmup";
/// The phase the thresholds are judged on.
pub const MEASURE: &str = "measure";

/// Why an idle generator fell behind.
pub const IDLE_WORKERS: &str = "other processes on this machine held the CPU";

/// A measured window with fewer started users than this says too little to judge.
pub const MIN_ARRIVALS: u64 = 20;

/// How every step runs.
#[derive(Debug, Clone)]
pub struct Settings {
    pub warmup: Duration,
    pub measure: Duration,
    /// `--target`: a URL instead of the scenario's target.
    pub target: Option<String>,
    pub workers: Option<usize>,
    /// A generator that fell behind is a warning on the step, not an inconclusive step.
    pub accept_overload: bool,
    /// What a step's rate sets.
    pub metric: Metric,
}

impl Settings {
    /// The measured window of every step.
    pub fn measured(&self, base: &Plan) -> Duration {
        match &self.metric {
            Metric::Arrivals => self.measure,
            Metric::Phase { name, .. } => base
                .phases
                .iter()
                .find(|p| &p.name == name)
                .map_or(self.measure, |p| p.duration),
        }
    }

    /// The load of every step: warm-up and measured window (without the drain).
    pub fn load(&self, base: &Plan) -> Duration {
        match &self.metric {
            Metric::Arrivals => self.warmup + self.measure,
            Metric::Phase { name, .. } => base
                .phases
                .iter()
                .find(|p| &p.name == name)
                .map_or(self.warmup + self.measure, |p| p.end()),
        }
    }
}

/// What the search varies (`--metric`).
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Metric {
    /// A constant open arrival rate: a warm-up, then the measured window (the default).
    #[default]
    Arrivals,
    /// One open phase of the scenario, scaled: the scenario's phases up to and including it,
    /// every rate multiplied by `rate / peak` (the shape kept), the phases before it the
    /// warm-up and the phase itself the measured window. `peak` is the phase's own highest
    /// arrival rate, so a step's rate is the phase's peak at that step.
    Phase { name: String, peak: f64 },
}

impl Metric {
    /// `arrivals`, or the name of an open phase of `plan`.
    pub fn parse(name: &str, plan: &Plan) -> Result<Metric, String> {
        if name == "arrivals" {
            return Ok(Metric::Arrivals);
        }
        let Some(phase) = plan.phases.iter().find(|p| p.name == name) else {
            let names: Vec<&str> = plan.phases.iter().map(|p| p.name.as_str()).collect();
            return Err(format!(
                "`{name}` is neither `arrivals` nor a phase of the scenario ({})",
                names.join(", ")
            ));
        };
        let peak = phase
            .pieces()
            .iter()
            .map(|piece| piece.ramp.from.max(piece.ramp.to))
            .fold(0.0, f64::max);
        if peak <= 0.0 {
            return Err(format!(
                "phase `{name}` has no open arrival rate to scale (a closed phase, or a rate of 0)"
            ));
        }
        Ok(Metric::Phase {
            name: name.to_string(),
            peak,
        })
    }

    /// The measured phase's name in a step's run.
    pub fn measured_phase(&self) -> &str {
        match self {
            Metric::Arrivals => MEASURE,
            Metric::Phase { name, .. } => name,
        }
    }
}

/// The scenario's thresholds as the steps apply them, computed once.
#[derive(Debug, Clone)]
pub struct Gates {
    /// Scoped to the measured phase (a region's scope and a whole-run count stay as they are).
    pub applied: Vec<Threshold>,
    /// Thresholds scoped to a phase other than the scenario's peak one, with why they are left
    /// out, as written.
    pub skipped: Vec<String>,
    /// Where the thresholds come from.
    pub from: Source,
    /// The scenario's thresholds, as written, that the search's own replaced (empty when
    /// `from` is the scenario's `[thresholds]`).
    pub replaced: Vec<String>,
}

/// Where a search's thresholds come from; `capacity.json` writes `scenario`, `capacity` or
/// `--threshold`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Source {
    /// The scenario's `[thresholds]`.
    #[serde(rename = "scenario")]
    Scenario,
    /// The scenario's `[capacity] thresholds`, in place of its `[thresholds]`.
    #[serde(rename = "capacity")]
    Capacity,
    /// `--threshold`, in place of the scenario's.
    #[serde(rename = "--threshold")]
    CommandLine,
}

impl Source {
    /// As the terminal, `capacity.md` and the page say it.
    pub fn words(self) -> &'static str {
        match self {
            Source::Scenario => "the scenario's [thresholds]",
            Source::Capacity => "the scenario's [capacity] thresholds",
            Source::CommandLine => "--threshold",
        }
    }
}

/// The highest arrival rate of the scenario's open phases, and the phase it is in.
pub fn peak(plan: &Plan) -> Option<(f64, String)> {
    plan.phases
        .iter()
        .flat_map(|p| {
            p.pieces()
                .into_iter()
                .map(move |piece| (piece.ramp.from.max(piece.ramp.to), p.name.clone()))
        })
        .filter(|(r, _)| *r > 0.0)
        .max_by(|a, b| a.0.total_cmp(&b.0))
}

/// Which thresholds a step judges. A whole-run threshold applies to the measured phase. A
/// phase's threshold is the SLO of that phase: the one of the scenario's peak phase (the surge
/// the question is about) applies to the measured phase, the others are left out and listed.
/// `replaced`: the scenario's thresholds the search's own took the place of.
/// With `--metric <phase>`, that phase's thresholds apply instead of the peak phase's, scoped to
/// it as they are.
pub fn gates(plan: &Plan, metric: &Metric, from: Source, replaced: Vec<String>) -> Gates {
    let peak_phase = match metric {
        Metric::Arrivals => peak(plan).map(|(_, name)| name),
        Metric::Phase { name, .. } => Some(name.clone()),
    };
    let measured = metric.measured_phase();
    let phase_names: Vec<&str> = plan.phases.iter().map(|p| p.name.as_str()).collect();
    let mut applied: Vec<Threshold> = Vec::new();
    let mut skipped = Vec::new();
    for t in &plan.thresholds {
        let scope = t.phase.as_deref();
        let is_phase = scope.is_some_and(|s| phase_names.contains(&s));
        if is_phase && scope != peak_phase.as_deref() {
            skipped.push(format!(
                "{} (a threshold of phase `{}`; only the measured phase `{}`'s and the whole run's apply)",
                t.expr,
                scope.unwrap_or_default(),
                peak_phase.as_deref().unwrap_or("-")
            ));
            continue;
        }
        let mut t = t.clone();
        // Frame counts, checks and undelivered messages (lost, pending: decided at the run's
        // end) exist for the whole run only; a region keeps its own scope.
        let whole_run = t.subject.whole_run_only();
        if !whole_run && (scope.is_none() || is_phase) {
            let bare = match scope {
                Some(s) => t.expr.strip_prefix(&format!("{s}:")).unwrap_or(&t.expr),
                None => &t.expr,
            };
            t.expr = format!("{measured}:{bare}");
            t.phase = Some(measured.to_string());
        }
        if !applied.iter().any(|a| a.expr == t.expr) {
            applied.push(t);
        }
    }
    Gates {
        applied,
        skipped,
        from,
        replaced,
    }
}

/// The scenario reshaped for a step at `rate` users per second: its flows, users, target and
/// run settings, with a constant-rate warm-up and measured phase instead of its load profile.
pub fn plan_for(base: &Plan, gates: &Gates, rate: f64, s: &Settings) -> Plan {
    if let Metric::Phase { name, peak } = &s.metric {
        return phase_scaled(base, gates, rate, name, *peak);
    }
    let constant = Load::Ramp(Ramp {
        from: rate,
        to: rate,
        shape: Shape::Linear,
    });
    let mut phases = Vec::new();
    let mut start = Duration::ZERO;
    for (name, duration) in [(WARMUP, s.warmup), (MEASURE, s.measure)] {
        if duration.is_zero() {
            continue;
        }
        phases.push(Phase {
            name: name.to_string(),
            start,
            duration,
            load: constant.clone(),
        });
        start += duration;
    }
    let mut plan = base.clone();
    plan.phases = phases;
    plan.thresholds = gates.applied.clone();
    plan.name = format!("{}-at-{}", base.name, rate_label(rate));
    plan.overrides = vec![format!(
        "find-capacity step: {} users/s for {} (warm-up, discarded) + {} (measured)",
        rate_label(rate),
        humantime::format_duration(s.warmup),
        humantime::format_duration(s.measure)
    )];
    plan
}

/// `--metric <phase>`: the scenario up to and including `name`, every rate scaled so that the
/// phase peaks at `rate`.
fn phase_scaled(base: &Plan, gates: &Gates, rate: f64, name: &str, peak: f64) -> Plan {
    let factor = rate / peak;
    let mut plan = base.scaled(factor);
    if let Some(last) = plan.phases.iter().position(|p| p.name == name) {
        plan.phases.truncate(last + 1);
    }
    plan.thresholds = gates.applied.clone();
    plan.name = format!("{}-{name}-at-{}", base.name, rate_label(rate));
    plan.overrides = vec![format!(
        "find-capacity step: phase `{name}` peaking at {} users/s (every rate × {factor:.3}); \
         the phases before it are the warm-up, discarded; the phases after it are left out",
        rate_label(rate)
    )];
    plan
}

/// A rate as the step directories and the answer write it: `40`, `43.75`.
pub fn rate_label(rate: f64) -> String {
    let r = (rate * 100.0).round() / 100.0;
    if r.fract() == 0.0 {
        format!("{r:.0}")
    } else {
        format!("{r}")
    }
}

/// A threshold that failed at a step, with what was observed.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Failing {
    pub expr: String,
    pub observed: Option<f64>,
    pub unit: Unit,
    /// `observed 812.3 ms`, or `nothing observed`.
    pub observed_text: String,
}

/// One step as `capacity.json` records it.
#[derive(Debug, Clone, Serialize)]
pub struct StepRecord {
    pub index: usize,
    /// Offered arrival rate, users per second.
    pub rate: f64,
    /// `pass`, `fail` or `inconclusive`.
    pub verdict: &'static str,
    /// True when this step repeats the rate of the step before (a confirmation).
    pub repeat: bool,
    pub failing: Vec<Failing>,
    /// Why an inconclusive step says nothing about the target.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inconclusive_because: Option<String>,
    /// Timed operations completed per second in the measured window (requests, socket opens,
    /// awaited replies), and tracked messages sent per second.
    pub operations_per_s: f64,
    pub messages_per_s: f64,
    /// Users started in the measured window.
    pub started: u64,
    /// Error examples of the measured window that name an HTTP 429 or 503, and retries on
    /// them: the target refusing work.
    pub refusals: u64,
    pub errors: u64,
    /// The generator's overload warnings, when `--accept-overload` let the step be judged.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub overload_accepted: Vec<String>,
    pub thresholds: Vec<ThresholdResult>,
    /// Wall time of the step, seconds (warm-up, measured window, drain, writing its report).
    pub duration_s: f64,
    /// The step's run directory, relative to the capacity directory.
    pub dir: String,
}

/// Runs one step into `dir` and judges it. `Ok(None)`: the run was interrupted (Ctrl-C, or a
/// signal the search saw before it).
pub fn run(
    base: &Plan,
    gates: &Gates,
    rate: f64,
    s: &Settings,
    dir: &Path,
    interrupt: &crate::run::Interrupt,
) -> Result<Option<(Judged, StepRecord)>, Error> {
    let began = std::time::Instant::now();
    let plan = plan_for(base, gates, rate, s);
    let opts = crate::run::RunOptions {
        scenario: base.source.clone(),
        target: s.target.clone(),
        out: Some(dir.to_path_buf()),
        workers: s.workers,
        accept_overload: s.accept_overload,
        interrupt: Some(interrupt.clone()),
        quiet: true,
        silent: true,
        ..Default::default()
    };
    let outcome = crate::run::run_plan(plan, &opts)?;
    if outcome.summary.verdict == Verdict::Interrupted {
        return Ok(None);
    }
    let (judged, record) = judge(
        &outcome.summary,
        rate,
        s.metric.measured_phase(),
        s.measured(base),
    );
    Ok(Some((
        judged,
        StepRecord {
            duration_s: crate::decimals::round(began.elapsed().as_secs_f64(), 3),
            ..record
        },
    )))
}

/// A finished step's judgement: the run's own verdict (the gate's rules: the generator's
/// overload makes it inconclusive), and inconclusive when the measured window is too thin.
pub fn judge(
    summary: &Summary,
    rate: f64,
    measured: &str,
    measure: Duration,
) -> (Judged, StepRecord) {
    let seconds = measure.as_secs_f64().max(1e-9);
    let phase = summary.phases.get(measured);
    let started = phase.map_or(0, |p| p.arrivals.started);
    let (operations, errors, refusals, sent) = phase.map_or((0, 0, 0, 0), |p| {
        let ops: u64 = p.metrics.values().map(|m| m.count).sum();
        let errors: u64 = p.metrics.values().map(|m| m.errors).sum();
        let refusals: u64 = p
            .metrics
            .values()
            .map(|m| {
                let refused = |s: &str| s.contains("429") || s.contains("503");
                let retried: u64 = m
                    .retries_by_reason
                    .iter()
                    .filter(|(k, _)| refused(k))
                    .map(|(_, n)| n)
                    .sum();
                let failed: u64 = m
                    .error_examples
                    .iter()
                    .filter(|(_, example)| refused(example))
                    .filter_map(|(class, _)| m.errors_by_class.get(class))
                    .sum();
                retried + failed
            })
            .sum();
        (ops, errors, refusals, p.messages.sent)
    });
    let failing: Vec<Failing> = summary
        .thresholds
        .iter()
        .filter(|t| !t.passed)
        .map(|t| Failing {
            expr: t.expr.clone(),
            observed: t.observed,
            unit: t.unit,
            observed_text: t.observed_phrase(),
        })
        .collect();
    let compromised = summary.measurement.compromised_by.clone();
    let (judged, because) = match summary.verdict {
        Verdict::Inconclusive => (
            Judged::Inconclusive,
            Some(format!(
                "the generator could not keep up: {}{}",
                compromised.join("; "),
                // Late timers on idle workers point at the machine, not at the generator's load.
                match summary.generator.worker_cpu_max {
                    Some(c) if c.max < 0.5 => format!(
                        ", while its workers were at most {:.0} % busy: {IDLE_WORKERS}",
                        c.max * 100.0
                    ),
                    _ => String::new(),
                }
            )),
        ),
        _ if started < MIN_ARRIVALS => (
            Judged::Inconclusive,
            Some(format!(
                "only {started} users started in the measured window (at least {MIN_ARRIVALS} \
                 are needed to judge it): lengthen --step-duration or raise --from"
            )),
        ),
        Verdict::Failed => (Judged::Fail, None),
        _ => (Judged::Pass, None),
    };
    let record = StepRecord {
        index: 0,
        rate,
        verdict: match judged {
            Judged::Pass => "pass",
            Judged::Fail => "fail",
            Judged::Inconclusive => "inconclusive",
        },
        repeat: false,
        failing,
        inconclusive_because: because,
        operations_per_s: crate::decimals::round(operations as f64 / seconds, 3),
        messages_per_s: crate::decimals::round(sent as f64 / seconds, 3),
        started,
        refusals,
        errors,
        overload_accepted: if summary.measurement.overload_accepted {
            compromised
        } else {
            Vec::new()
        },
        thresholds: summary.thresholds.clone(),
        duration_s: 0.0,
        dir: String::new(),
    };
    (judged, record)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCENARIO: &str = r#"
name = "t"
seed = 1
[target]
builtin = {}
[load]
phases = [ { name = "calm", duration = "10s", rate = 5 }, { name = "surge", duration = "10s", ramp_to = 50 } ]
[thresholds]
"verify.p99" = "< 250ms"
"surge:register.p99" = "< 300ms"
"calm:register.p99" = "< 100ms"
"errors.rate" = "< 1%"
"messages.lost" = "== 0"
"checks.rate" = "> 99%"
"#;

    #[test]
    fn a_step_is_a_constant_rate_warm_up_then_a_measured_phase_gated_on_the_peak_phases_slos() {
        let base =
            crate::compiled::compile(Path::new("t.toml"), SCENARIO, None).expect("valid scenario");
        assert_eq!(peak(&base), Some((50.0, "surge".to_string())));
        let g = gates(&base, &Metric::Arrivals, Source::Scenario, Vec::new());
        let exprs: Vec<&str> = g.applied.iter().map(|t| t.expr.as_str()).collect();
        assert_eq!(
            exprs,
            vec![
                "measure:verify.p99 < 250ms",
                "measure:register.p99 < 300ms",
                "measure:errors.rate < 1%",
                "messages.lost == 0",
                "checks.rate > 99%"
            ]
        );
        assert!(g.applied[..3]
            .iter()
            .all(|t| t.phase.as_deref() == Some(MEASURE)));
        assert_eq!(
            g.applied[3].phase, None,
            "lost is decided for the whole run"
        );
        assert_eq!(g.applied[4].phase, None, "checks are the whole run's");
        assert_eq!(g.skipped.len(), 1);
        assert!(g.skipped[0].starts_with("calm:register.p99"), "{g:?}");
        let s = Settings {
            warmup: Duration::from_secs(2),
            measure: Duration::from_secs(3),
            target: None,
            workers: None,
            accept_overload: false,
            metric: Metric::Arrivals,
        };
        let plan = plan_for(&base, &g, 42.5, &s);
        assert_eq!(plan.name, "t-at-42.5");
        assert_eq!(plan.duration(), Duration::from_secs(5));
        let names: Vec<&str> = plan.phases.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, vec![WARMUP, MEASURE]);
        assert!((plan.phases[1].mass() - 127.5).abs() < 1e-9);
        assert_eq!(rate_label(40.0), "40");
        assert_eq!(rate_label(43.754), "43.75");
    }

    #[test]
    fn a_phase_metric_scales_the_scenario_up_to_that_phase_and_judges_it_on_its_own_slos() {
        let text = SCENARIO.replace(
            "ramp_to = 50 } ]",
            "ramp_to = 50 }, { name = \"after\", duration = \"30s\", rate = 5 } ]",
        );
        let base = crate::compiled::compile(Path::new("t.toml"), &text, None).expect("valid");
        let metric = Metric::parse("surge", &base).expect("an open phase");
        assert_eq!(
            metric,
            Metric::Phase {
                name: "surge".into(),
                peak: 50.0
            }
        );
        let g = gates(&base, &metric, Source::Scenario, Vec::new());
        let exprs: Vec<&str> = g.applied.iter().map(|t| t.expr.as_str()).collect();
        assert_eq!(
            exprs,
            vec![
                "surge:verify.p99 < 250ms",
                "surge:register.p99 < 300ms",
                "surge:errors.rate < 1%",
                "messages.lost == 0",
                "checks.rate > 99%"
            ]
        );
        let s = Settings {
            warmup: Duration::from_secs(99),
            measure: Duration::from_secs(99),
            target: None,
            workers: None,
            accept_overload: false,
            metric,
        };
        // The surge peaks at 100/s: every rate doubled, the phase after it left out.
        let plan = plan_for(&base, &g, 100.0, &s);
        let names: Vec<&str> = plan.phases.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, vec!["calm", "surge"]);
        assert!(
            (plan.phases[0].mass() - 100.0).abs() < 1e-9,
            "calm: 10 s at 10/s"
        );
        assert!(
            (plan.phases[1].mass() - 550.0).abs() < 1e-9,
            "surge: 10 s from 10 to 100/s"
        );
        assert_eq!(s.measured(&base), Duration::from_secs(10));
        assert_eq!(s.load(&base), Duration::from_secs(20));
        assert_eq!(plan.name, "t-surge-at-100");
        for bad in ["nope", "MEASURE"] {
            assert!(Metric::parse(bad, &base).is_err(), "{bad}");
        }
        assert_eq!(Metric::parse("arrivals", &base), Ok(Metric::Arrivals));
    }
}
