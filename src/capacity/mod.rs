//! `inrush find-capacity`: the largest constant arrival rate at which every threshold of the
//! scenario holds, searched step by step on `inrush run`'s own engine (docs/capacity.md).
//!
//! `search.rs` is the policy (pure), `step.rs` runs and judges one step, `report.rs` writes the
//! answer (`chart.rs` draws it, `html.rs` is its page). This file only wires them: search → step → search … → report.

pub mod chart;
pub mod html;
pub mod report;
pub mod search;
pub mod step;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use crate::compiled::inputs::Inputs;
use crate::error::Error;
use search::{End, Judged, Limits, Next, Search};
use step::{Settings, StepRecord};

/// What `inrush find-capacity` was asked.
#[derive(Debug, Clone)]
pub struct CapacityOptions {
    pub scenario: PathBuf,
    pub inputs: Inputs,
    /// First rate, users/s; default: a quarter of the scenario's peak rate, or 10/s.
    pub from: Option<f64>,
    /// Highest rate tried; default: 16 × `from`.
    pub max: Option<f64>,
    /// Relative width of the answer's bracket, e.g. 0.1.
    pub precision: f64,
    pub warmup: Duration,
    /// The measured window of each step.
    pub measure: Duration,
    pub target: Option<String>,
    /// The capacity directory; default `reports/capacity-<scenario>-<UTC stamp>/`.
    pub out: Option<PathBuf>,
    pub workers: Option<usize>,
    /// `--threshold`, as `run` parses them: when any is given, only these gate the steps
    /// (the scenario's own are left out and listed); else the scenario's.
    pub thresholds: Vec<String>,
    pub accept_overload: bool,
    /// No progress lines and no answer on the terminal (tests).
    pub quiet: bool,
}

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

/// `inrush find-capacity`: searches, writes the capacity directory, prints the answer.
pub fn find_capacity(opts: &CapacityOptions) -> Result<Capacity, Error> {
    let mut base = crate::compiled::load_with(&opts.scenario, &opts.inputs)?;
    let scopes = base.scopes();
    let mut given = Vec::new();
    for expr in &opts.thresholds {
        let t = crate::compiled::threshold::parse(expr, &scopes, &base.catalog)
            .map_err(|e| Error::Usage(format!("--threshold '{expr}': {e}")))?;
        given.push(t);
    }
    // A scenario's thresholds are often written for its own surge (some meant to fail, to show
    // a failure); the question "what rate holds?" may be about other ones, so given ones
    // replace them rather than add to them.
    let replaced: Vec<String> = if given.is_empty() {
        Vec::new()
    } else {
        std::mem::replace(&mut base.thresholds, given)
            .into_iter()
            .map(|t| t.expr)
            .collect()
    };
    let gates = step::gates(&base, replaced);
    if gates.applied.is_empty() {
        return Err(Error::Usage(format!(
            "{}: find-capacity needs thresholds (the answer is the largest rate at which they all \
             hold): add [thresholds] to the scenario or --threshold 'verify.p99 < 250ms'",
            opts.scenario.display()
        )));
    }
    let limits = limits(opts, step::peak(&base).map(|(r, _)| r))?;
    let dir = capacity_dir(opts.out.as_deref(), &base.name)?;
    let settings = Settings {
        warmup: opts.warmup,
        measure: opts.measure,
        target: opts.target.clone(),
        workers: opts.workers,
        accept_overload: opts.accept_overload,
    };
    let began = Instant::now();
    let started_at = SystemTime::now();
    let mut search = Search::new(limits);
    let mut steps: Vec<StepRecord> = Vec::new();
    let end = loop {
        let rate = match search.next() {
            Next::Done(end) => break Some(end),
            Next::Run(rate) => rate,
        };
        let index = steps.len() + 1;
        let name = format!("{index:02}-{}", step::rate_label(rate));
        let step_dir = dir.join("steps").join(&name);
        let Some((judged, record)) = step::run(&base, &gates, rate, &settings, &step_dir)? else {
            break None;
        };
        let repeat = steps.last().is_some_and(|s| s.rate == rate);
        if !opts.quiet {
            // After the step: a step that does not pass has said why on stderr already.
            eprintln!(
                "step {index}: {} users/s: {}",
                step::rate_label(rate),
                progress_line(judged, &record)
            );
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
        print!("{}", report::terminal(&report));
        println!("capacity: {}", dir.display());
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

/// The search's bounds from the options and the scenario's peak rate, checked.
fn limits(opts: &CapacityOptions, peak: Option<f64>) -> Result<Limits, Error> {
    let from = opts.from.unwrap_or_else(|| peak.map_or(10.0, |p| p / 4.0));
    let max = opts.max.unwrap_or(from * 16.0);
    let positive = |v: f64| v.is_finite() && v > 0.0;
    if !positive(from) || !positive(max) || max < from {
        return Err(Error::Usage(format!(
            "--from {from} and --max {max}: both must be rates above 0/s, --max at least --from"
        )));
    }
    if !(positive(opts.precision) && opts.precision <= 1.0) {
        return Err(Error::Usage(format!(
            "--precision {}: expected a fraction above 0 and at most 1, e.g. 0.1 or 10%",
            opts.precision
        )));
    }
    if opts.measure.is_zero() {
        return Err(Error::Usage(
            "--step-duration must be longer than 0s".into(),
        ));
    }
    let expected = from * opts.measure.as_secs_f64();
    if expected < step::MIN_ARRIVALS as f64 {
        return Err(Error::Usage(format!(
            "a measured window of {} at --from {from}/s brings ~{expected:.0} users, fewer than \
             the {} a step needs to be judged: lengthen --step-duration or raise --from",
            humantime::format_duration(opts.measure),
            step::MIN_ARRIVALS
        )));
    }
    Ok(Limits {
        from,
        max,
        precision: opts.precision,
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
