//! `inrush find-capacity`: the largest constant arrival rate at which every threshold of the
//! scenario holds, searched step by step on `inrush run`'s own engine (docs/capacity.md).
//!
//! `search.rs` is the policy (pure), `step.rs` runs and judges one step, `report.rs` writes the
//! answer (`chart.rs` draws it, `html.rs` is its page). This file only wires them: search → step → search … → report.

pub mod chart;
pub mod html;
pub mod preview;
pub mod report;
pub mod search;
pub mod step;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use crate::compiled::inputs::Inputs;
use crate::error::Error;
use search::{End, Judged, Limits, Next, Search};
use step::{Metric, Settings, Source, StepRecord};

/// What `inrush find-capacity` was asked.
#[derive(Debug, Clone, Default)]
pub struct CapacityOptions {
    pub scenario: PathBuf,
    pub inputs: Inputs,
    /// First rate, users/s; default: a quarter of the scenario's peak rate, or 10/s.
    pub from: Option<f64>,
    /// Highest rate tried; default: 16 × `from`.
    pub max: Option<f64>,
    /// Relative width of the answer's bracket, e.g. 0.1; default `[capacity] precision`, or
    /// [`DEFAULT_PRECISION`].
    pub precision: Option<f64>,
    /// Default `[capacity] warmup`, or [`DEFAULT_WARMUP`].
    pub warmup: Option<Duration>,
    /// The measured window of each step; default `[capacity] step_duration`, or
    /// [`DEFAULT_MEASURE`].
    pub measure: Option<Duration>,
    pub target: Option<String>,
    /// The capacity directory; default `reports/capacity-<scenario>-<UTC stamp>/`.
    pub out: Option<PathBuf>,
    pub workers: Option<usize>,
    /// `--metric`: `arrivals` (a constant rate per step) or a phase to scale; default
    /// `[capacity] metric`, or `arrivals`.
    pub metric: Option<String>,
    /// `--threshold`, as `run` parses them: when any is given, only these gate the steps
    /// (the scenario's own are left out and listed); else `[capacity] thresholds`, else the
    /// scenario's `[thresholds]`.
    pub thresholds: Vec<String>,
    pub accept_overload: bool,
    /// No progress lines and no answer on the terminal (tests).
    pub quiet: bool,
}

/// Each step's warm-up, measured window and the bracket's precision when neither the command
/// line nor `[capacity]` says.
pub const DEFAULT_WARMUP: Duration = Duration::from_secs(10);
pub const DEFAULT_MEASURE: Duration = Duration::from_secs(20);
pub const DEFAULT_PRECISION: f64 = 0.1;

/// How the search ended, for the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A bracket within the precision, or every rate up to `--max` held (exit 0).
    Found,
    /// Even the lowest rate failed (exit 1).
    FailsLowest,
    /// The search could not conclude: the generator was the limit, or the evidence too thin
    /// (exit 4).
    Inconclusive,
    /// Ctrl-C during a step (exit 3).
    Interrupted,
}

/// A finished search: what `capacity.json` holds, and where it is.
#[derive(Debug)]
pub struct Capacity {
    pub outcome: Outcome,
    pub report: report::CapacityReport,
    pub dir: PathBuf,
}

/// A search made ready from its options and the scenario, before anything is sent.
struct Prepared {
    base: crate::compiled::Plan,
    gates: step::Gates,
    settings: Settings,
    limits: Limits,
}

fn prepare(opts: &CapacityOptions) -> Result<Prepared, Error> {
    let mut base = crate::compiled::load_with(&opts.scenario, &opts.inputs)?;
    let metric = match opts.metric.as_ref().or(base.capacity.metric.as_ref()) {
        None => Metric::Arrivals,
        Some(name) => {
            Metric::parse(name, &base).map_err(|e| Error::Usage(format!("--metric {name}: {e}")))?
        }
    };
    let timed = [
        ("--warmup", opts.warmup.is_some()),
        ("--step-duration", opts.measure.is_some()),
        ("[capacity] warmup", base.capacity.warmup.is_some()),
        (
            "[capacity] step_duration",
            base.capacity.step_duration.is_some(),
        ),
    ];
    if let (Metric::Phase { name, .. }, Some((given, _))) =
        (&metric, timed.iter().find(|(_, set)| *set))
    {
        return Err(Error::Usage(format!(
            "{given}: a search that scales phase `{name}` runs the scenario's own timing (the \
             phases before it are the warm-up, `{name}` the measured window); leave it out"
        )));
    }
    let gates = gates(&mut base, &metric, &opts.thresholds)?;
    if gates.applied.is_empty() {
        return Err(Error::Usage(format!(
            "{}: find-capacity needs thresholds (the answer is the largest rate at which they all \
             hold): add [capacity] thresholds or [thresholds] to the scenario, or --threshold \
             'verify.p99 < 250ms'",
            opts.scenario.display()
        )));
    }
    let settings = Settings {
        warmup: opts
            .warmup
            .or(base.capacity.warmup)
            .unwrap_or(DEFAULT_WARMUP),
        measure: opts
            .measure
            .or(base.capacity.step_duration)
            .unwrap_or(DEFAULT_MEASURE),
        target: opts.target.clone(),
        workers: opts.workers,
        accept_overload: opts.accept_overload,
        metric,
    };
    let limits = limits(opts, &base, &settings)?;
    Ok(Prepared {
        base,
        gates,
        settings,
        limits,
    })
}

/// `inrush find-capacity --dry-run`: what the search will take, sending nothing.
pub fn dry_run(opts: &CapacityOptions) -> Result<preview::Preview, Error> {
    let p = prepare(opts)?;
    Ok(preview::preview(
        &p.base,
        &p.gates,
        p.limits,
        &p.settings,
        opts.workers,
    ))
}

/// `inrush find-capacity`: searches, writes the capacity directory, prints the answer.
pub fn find_capacity(opts: &CapacityOptions) -> Result<Capacity, Error> {
    let Prepared {
        base,
        gates,
        settings,
        limits,
    } = prepare(opts)?;
    // Watched for the whole search: a signal between two steps is not lost.
    let interrupt = crate::run::Interrupt::install()?;
    let dir = capacity_dir(opts.out.as_deref(), &base.name)?;
    let began = Instant::now();
    let started_at = SystemTime::now();
    let mut search = Search::new(limits);
    let mut steps: Vec<StepRecord> = Vec::new();
    let end = loop {
        // A signal between two steps (or during the last one) ends the search here.
        if interrupt.requested() {
            break None;
        }
        let rate = match search.next() {
            Next::Done(end) => break Some(end),
            Next::Run(rate) => rate,
        };
        let index = steps.len() + 1;
        let name = format!("{index:02}-{}", step::rate_label(rate));
        let step_dir = dir.join("steps").join(&name);
        let Some((judged, record)) =
            step::run(&base, &gates, rate, &settings, &step_dir, &interrupt)?
        else {
            break None;
        };
        let repeat = steps.last().is_some_and(|s| s.rate == rate);
        if !opts.quiet {
            // After the step: a step that does not pass has said why on stderr already.
            crate::report::console::eprintln(&format!(
                "step {index}: {} users/s: {}",
                step::rate_label(rate),
                progress_line(judged, &record)
            ));
        }
        steps.push(StepRecord {
            index,
            repeat,
            dir: format!("steps/{name}"),
            ..record
        });
        search.record(rate, judged);
    };
    let report = report::CapacityReport::new(report::Inputs {
        base: &base,
        scenario: &base.name,
        started_at,
        limits,
        settings: &settings,
        gates: &gates,
        end: end.as_ref(),
        bracket: search.bracket(),
        steps,
        total: began.elapsed(),
    });
    report::write(&dir, &report)?;
    chart::write(&dir, &report, &gates)?;
    html::write(&dir, &report)?;
    if !opts.quiet {
        crate::report::console::print(&report::terminal(&report));
        crate::report::console::println(&format!("capacity: {}", dir.display()));
    }
    let outcome = match end {
        None => Outcome::Interrupted,
        Some(End::Bracket { .. } | End::HoldsMax { .. }) => Outcome::Found,
        Some(End::FailsLowest { .. }) => Outcome::FailsLowest,
        Some(End::Inconclusive { .. }) => Outcome::Inconclusive,
    };
    Ok(Capacity {
        outcome,
        report,
        dir,
    })
}

/// One step's result as the progress line says it.
fn progress_line(judged: Judged, r: &StepRecord) -> String {
    match judged {
        Judged::Pass => format!("pass ({:.0} s)", r.duration_s),
        Judged::Fail => format!(
            "fail: {} ({:.0} s)",
            r.failing
                .iter()
                .map(|f| format!("{} {}", f.expr, f.observed_text))
                .collect::<Vec<_>>()
                .join("; "),
            r.duration_s
        ),
        Judged::Inconclusive => format!(
            "inconclusive: {}",
            r.inconclusive_because.as_deref().unwrap_or("")
        ),
    }
}

/// The thresholds each step is judged on: `--threshold` (replacing the scenario's), else
/// `[capacity] thresholds` (replacing `[thresholds]`), else `[thresholds]`.
fn gates(
    base: &mut crate::compiled::Plan,
    metric: &Metric,
    given: &[String],
) -> Result<step::Gates, Error> {
    let scopes = base.scopes();
    let mut parsed = Vec::new();
    for expr in given {
        let t = crate::compiled::threshold::parse(expr, &scopes, &base.catalog)
            .map_err(|e| Error::Usage(format!("--threshold '{expr}': {e}")))?;
        parsed.push(t);
    }
    // A scenario's [thresholds] are often written for its own surge (some meant to fail, to
    // show a failure); the question "what rate holds?" is about SLOs, so the ones given for
    // the search replace them rather than add to them.
    let capacity = std::mem::take(&mut base.capacity.thresholds);
    let (from, chosen, mut replaced) = if !parsed.is_empty() {
        (Source::CommandLine, parsed, capacity)
    } else if !capacity.is_empty() {
        (Source::Capacity, capacity, Vec::new())
    } else {
        (
            Source::Scenario,
            std::mem::take(&mut base.thresholds),
            Vec::new(),
        )
    };
    if from != Source::Scenario {
        replaced.extend(std::mem::take(&mut base.thresholds));
    }
    base.thresholds = chosen;
    let replaced = replaced.into_iter().map(|t| t.expr).collect();
    Ok(step::gates(base, metric, from, replaced))
}

/// The search's bounds from the options, `[capacity]` and the scenario's peak rate, checked.
fn limits(
    opts: &CapacityOptions,
    base: &crate::compiled::Plan,
    settings: &Settings,
) -> Result<Limits, Error> {
    let peak = match &settings.metric {
        Metric::Arrivals => step::peak(base).map(|(r, _)| r),
        Metric::Phase { peak, .. } => Some(*peak),
    };
    let from = opts
        .from
        .or(base.capacity.from)
        .unwrap_or_else(|| peak.map_or(10.0, |p| p / 4.0));
    let max = opts.max.or(base.capacity.max).unwrap_or(from * 16.0);
    let precision = opts
        .precision
        .or(base.capacity.precision)
        .unwrap_or(DEFAULT_PRECISION);
    let positive = |v: f64| v.is_finite() && v > 0.0;
    if !positive(from) || !positive(max) || max < from {
        return Err(Error::Usage(format!(
            "--from {from} and --max {max}: both must be rates above 0/s, --max at least --from"
        )));
    }
    if !(positive(precision) && precision <= 1.0) {
        return Err(Error::Usage(format!(
            "--precision {precision}: expected a fraction above 0 and at most 1, e.g. 0.1 or 10%"
        )));
    }
    // The top step may not ask for more than a run may, as `--rate-scale` may not.
    let too_much = match &settings.metric {
        Metric::Arrivals => crate::compiled::load::rate_over_limit(max),
        Metric::Phase { peak, .. } => base
            .scaled(max / peak)
            .phases
            .iter()
            .find_map(|p| p.over_limit()),
    };
    if let Some(why) = too_much {
        return Err(Error::Usage(format!("--max {max}: {why}")));
    }
    let measured = settings.measured(base);
    if measured.is_zero() {
        return Err(Error::Usage(
            "--step-duration must be longer than 0s".into(),
        ));
    }
    let expected = from * measured.as_secs_f64();
    if expected < step::MIN_ARRIVALS as f64 {
        return Err(Error::Usage(format!(
            "a measured window of {} at --from {from}/s brings ~{expected:.0} users, fewer than \
             the {} a step needs to be judged: lengthen --step-duration or raise --from",
            humantime::format_duration(measured),
            step::MIN_ARRIVALS
        )));
    }
    Ok(Limits {
        from,
        max,
        precision,
    })
}

/// The capacity directory: `out`, which must be new or empty, or a new one under `reports/`.
fn capacity_dir(out: Option<&Path>, scenario: &str) -> Result<PathBuf, Error> {
    let dir = match out {
        Some(dir) => {
            let occupied = std::fs::read_dir(dir).is_ok_and(|mut e| e.next().is_some());
            if occupied {
                return Err(Error::Usage(format!(
                    "--out {}: the directory exists and is not empty; give each search a new \
                     directory (or leave --out out)",
                    dir.display()
                )));
            }
            dir.to_path_buf()
        }
        None => crate::run::default_dir(&format!("capacity-{scenario}"), SystemTime::now()),
    };
    std::fs::create_dir_all(dir.join("steps")).map_err(|e| {
        Error::Usage(format!(
            "cannot create the capacity directory {}: {e}",
            dir.display()
        ))
    })?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(capacity: &str) -> crate::compiled::Plan {
        let text = format!(
            "name = \"t\"\n[target]\nurl = \"http://127.0.0.1:9\"\n[load]\n\
             phases = [{{ name = \"surge\", duration = \"10s\", rate = 50 }}]\n\
             [thresholds]\n\"verify.p99\" = \"< 1ms\"\n{capacity}"
        );
        crate::compiled::compile(Path::new("t.toml"), &text, Some(1)).expect("valid")
    }

    fn applied(g: &step::Gates) -> Vec<&str> {
        g.applied.iter().map(|t| t.expr.as_str()).collect()
    }

    #[test]
    fn the_command_line_replaces_capacity_thresholds_which_replace_the_scenarios() {
        let section = "[capacity]\nthresholds = { \"verify.errors\" = \"== 0\" }\n";
        let arrivals = &Metric::Arrivals;
        let g = gates(&mut plan(section), arrivals, &["register.p99 < 2s".into()]).expect("parses");
        assert_eq!(g.from, Source::CommandLine);
        assert_eq!(applied(&g), vec!["measure:register.p99 < 2s"]);
        assert_eq!(g.replaced, vec!["verify.errors == 0", "verify.p99 < 1ms"]);

        let g = gates(&mut plan(section), arrivals, &[]).expect("parses");
        assert_eq!(g.from, Source::Capacity);
        assert_eq!(applied(&g), vec!["measure:verify.errors == 0"]);
        assert_eq!(g.replaced, vec!["verify.p99 < 1ms"]);

        let g = gates(&mut plan(""), arrivals, &[]).expect("parses");
        assert_eq!(g.from, Source::Scenario);
        assert_eq!(applied(&g), vec!["measure:verify.p99 < 1ms"]);
        assert!(g.replaced.is_empty());
    }

    #[test]
    fn a_capacity_section_with_bad_values_is_refused_with_their_positions() {
        let text = "name = \"t\"\n[target]\nurl = \"http://127.0.0.1:9\"\n[load]\n\
                    phases = [{ name = \"surge\", duration = \"10s\", rate = 50 }]\n\
                    [capacity]\nfrom = 0\nmax = 5\nprecision = \"150%\"\nwarmup = \"soon\"\n\
                    thresholds = { \"verify.p99\" = \"<\" }\n";
        let e = crate::compiled::compile(Path::new("t.toml"), text, Some(1))
            .expect_err("refused")
            .to_string();
        for said in [
            "t.toml:7:8: [capacity] from = 0",
            "t.toml:9:13: `150%` is not a precision",
            "t.toml:10:10:",
            "threshold `verify.p99 <`",
        ] {
            assert!(e.contains(said), "{said}: {e}");
        }
    }
}
