//! The load profile: phases, each exactly one load shape, with the shape's rate maths beside its
//! type (one file per shape, as k6's `lib/executor/` has one file per executor).
//!
//! A new shape is a new file here with its type, its `compile` and its [`LoadShape`] maths,
//! registered in this file: its `mod` line, its variant in [`Load`] and one arm in
//! [`Load::shape`], and the line that picks it from the fields it reads in `scenario::PhaseSpec`
//! (the file format): in [`compile_phases`] for a phase, in [`compile`] for a whole-profile
//! shape such as a recorded curve.

pub mod closed;
pub mod curve;
pub mod ramp;

use std::path::Path;
use std::time::Duration;

use toml::Spanned;

pub use closed::Closed;
pub use curve::Curve;
pub use ramp::{Ramp, Shape};

use super::positive_duration;
use crate::scenario::{self, Problems};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrivals {
    /// Exponential inter-arrival times: independent users, as in a real surge.
    Poisson,
    /// Evenly spaced arrivals: a deterministic rate.
    Uniform,
}

/// `[load]` compiled: how arrivals are drawn, the phases, and the caps.
pub struct Section {
    pub arrivals: Arrivals,
    pub phases: Vec<Phase>,
    pub max_users: Option<u64>,
    pub max_inflight: Option<u64>,
}

/// `[load]`: `arrivals`, exactly one of `phases` or `curve`, and the caps (a closed phase's
/// users must fit under `max_users`).
pub(super) fn compile(
    path: &Path,
    section: &scenario::LoadSection,
    problems: &mut Problems,
) -> Section {
    let arrivals = match section
        .arrivals
        .as_ref()
        .map(|a| (a.get_ref().as_str(), a.span()))
    {
        None | Some(("poisson", _)) => Arrivals::Poisson,
        Some(("uniform", _)) => Arrivals::Uniform,
        Some((other, span)) => {
            problems.add(
                span,
                format!("arrivals `{other}` is unknown: expected \"poisson\" or \"uniform\""),
            );
            Arrivals::Poisson
        }
    };
    let phases = match (&section.phases, &section.curve) {
        (Some(phases), None) => compile_phases(phases, problems),
        (None, Some(curve)) => curve::compile(path, curve, problems),
        _ => {
            problems.add(
                0..0,
                "[load] needs exactly one of `phases = [...]` or `curve = { file = ... }`",
            );
            Vec::new()
        }
    };
    let cap = |cap: &Option<Spanned<i64>>, what: &str, problems: &mut Problems| match cap {
        Some(c) if *c.get_ref() < 1 => {
            problems.add(c.span(), format!("{what} must be at least 1"));
            None
        }
        Some(c) => Some(*c.get_ref() as u64),
        None => None,
    };
    let max_users = cap(&section.max_users, "max_users", problems);
    let max_inflight = cap(&section.max_inflight, "max_inflight", problems);
    if let (Some(limit), Some(specs)) = (max_users, &section.phases) {
        // A closed phase keeps its users by construction; a cap below them could never hold.
        for (spec, p) in specs.get_ref().iter().zip(&phases) {
            if p.closed().is_some_and(|c| c.users > limit) {
                if let Some(u) = &spec.get_ref().users {
                    problems.add(
                        u.span(),
                        format!("a closed phase's users must not exceed max_users ({limit})"),
                    );
                }
            }
        }
    }
    Section {
        arrivals,
        phases,
        max_users,
        max_inflight,
    }
}

/// One phase of the load profile.
#[derive(Debug, Clone, PartialEq)]
pub struct Phase {
    pub name: String,
    pub start: Duration,
    pub duration: Duration,
    pub load: Load,
}

/// What brings users during a phase: exactly one shape.
#[derive(Debug, Clone, PartialEq)]
pub enum Load {
    /// Arrivals at a rate going from one value to another (linearly or exponentially).
    Ramp(Ramp),
    /// Arrivals following a recorded curve.
    Curve(Curve),
    /// No arrivals: a fixed number of users looping.
    Closed(Closed),
}

/// What every load shape provides, each in its own file.
pub trait LoadShape {
    /// The open arrivals of a phase at `start` lasting `duration`, as pieces of one closed-form
    /// rate each (what the schedule inverts).
    fn arrival_pieces(&self, start: Duration, duration: Duration) -> Vec<Piece>;
    /// Expected open arrivals over the phase: the integral of its rate.
    fn expected_arrivals(&self, start: Duration, duration: Duration) -> f64;
    /// The `inrush validate` rate and volume columns; `expected` is [`Self::expected_arrivals`].
    fn describe_columns(&self, expected: f64) -> (String, String);
    /// The same shape with its rates (or its users) multiplied by `factor` (> 0): what a
    /// sampled plan walks, 1 in `1/factor` users.
    fn scaled(&self, factor: f64) -> Load;
    /// The same shape over a phase `factor` (> 0) times as long: rates as they were, times
    /// within the phase (curve points, a closed phase's ramp) multiplied.
    fn stretched(&self, factor: f64) -> Load;
    /// What the shape asks for beyond [`MAX_RATE`] or [`MAX_CLOSED_USERS`], in words (`None`
    /// within them): checked again once `--rate-scale` has multiplied it.
    fn over_limit(&self) -> Option<String>;
}

impl Load {
    /// The one place that lists the shapes: each variant's maths.
    pub fn shape(&self) -> &dyn LoadShape {
        match self {
            Load::Ramp(ramp) => ramp,
            Load::Curve(curve) => curve,
            Load::Closed(closed) => closed,
        }
    }
}

/// The volume column of a shape that brings arrivals.
fn arrivals_column(expected: f64) -> String {
    format!("~{expected:.0} arrivals")
}

/// A stretch of the open timeline with one closed-form rate: what the schedule inverts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Piece {
    pub start: Duration,
    pub duration: Duration,
    pub ramp: Ramp,
}

impl Piece {
    /// Expected arrivals in the piece.
    pub fn mass(&self) -> f64 {
        self.ramp.mass(self.duration)
    }

    /// Seconds into the piece at which the cumulative intensity reaches `m`.
    pub fn invert(&self, m: f64) -> f64 {
        self.ramp.invert(self.duration, m)
    }
}

impl Phase {
    pub fn end(&self) -> Duration {
        self.start + self.duration
    }

    /// The ramp of this phase, if its arrivals follow one (what tests look into).
    #[cfg(test)]
    pub fn ramp(&self) -> Option<Ramp> {
        match self.load {
            Load::Ramp(r) => Some(r),
            _ => None,
        }
    }

    /// The closed-model users of this phase, if it is a closed phase.
    pub fn closed(&self) -> Option<Closed> {
        match self.load {
            Load::Closed(c) => Some(c),
            _ => None,
        }
    }

    /// The phase's open arrivals as pieces of one closed-form rate each (none for a closed
    /// phase: the open timeline brings nobody during it).
    pub fn pieces(&self) -> Vec<Piece> {
        self.load.shape().arrival_pieces(self.start, self.duration)
    }

    /// The phase starting and lasting `factor` times as long, its shape stretched with it.
    pub fn stretched(&self, factor: f64) -> Phase {
        let times = |d: Duration| Duration::from_secs_f64(d.as_secs_f64() * factor);
        Phase {
            start: times(self.start),
            duration: times(self.duration),
            load: self.load.shape().stretched(factor),
            ..self.clone()
        }
    }

    /// The phase with its rates (or users) multiplied by `factor`.
    pub fn scaled(&self, factor: f64) -> Phase {
        Phase {
            load: self.load.shape().scaled(factor),
            ..self.clone()
        }
    }

    /// Why the phase asks for more than a run may ([`LoadShape::over_limit`], with its name).
    pub fn over_limit(&self) -> Option<String> {
        let why = self.load.shape().over_limit()?;
        Some(format!("phase `{}` {why}", self.name))
    }

    /// Expected number of open arrivals in the whole phase: the integral of its rate.
    pub fn mass(&self) -> f64 {
        self.load
            .shape()
            .expected_arrivals(self.start, self.duration)
    }
}

/// `[load] phases`: each phase named, timed and given its shape; an open phase without `rate`
/// starts where the previous phase ended (a closed phase ends at zero).
fn compile_phases(
    phases: &Spanned<Vec<Spanned<scenario::PhaseSpec>>>,
    problems: &mut Problems,
) -> Vec<Phase> {
    if phases.get_ref().is_empty() {
        problems.add(phases.span(), "load.phases needs at least one phase");
    }
    let mut out = Vec::new();
    let mut start = Duration::ZERO;
    let mut previous_rate = 0.0;
    for spec in phases.get_ref() {
        let p = spec.get_ref();
        let name = p.name.get_ref().trim().to_string();
        if name.is_empty() || name.contains(|c: char| c.is_whitespace() || c == ':' || c == ',') {
            problems.add(
                p.name.span(),
                "phase name must be non-empty, without spaces, `:` or `,` (it scopes metrics)",
            );
        } else if out.iter().any(|q: &Phase| q.name == name) {
            problems.add(p.name.span(), format!("phase `{name}` is defined twice"));
        }
        let duration = positive_duration(&p.duration, "phase duration", problems);
        let load = match closed::compile(spec, duration, problems) {
            // A closed phase has no arrival rate: the open timeline brings nobody during it.
            Some(closed) => {
                previous_rate = 0.0;
                Load::Closed(closed)
            }
            None => {
                let ramp = ramp::compile(spec, previous_rate, problems);
                previous_rate = ramp.to;
                Load::Ramp(ramp)
            }
        };
        out.push(Phase {
            name,
            start,
            duration,
            load,
        });
        start = start.saturating_add(duration);
    }
    if start.as_secs_f64() > MAX_PROFILE_S {
        problems.add(
            phases.span(),
            format!(
                "the phases last {:.0} s in all, over the limit of {MAX_PROFILE_S:.0} s (~115 days): a run keeps one timeline point per second",
                start.as_secs_f64()
            ),
        );
    }
    out
}

/// The longest load profile a scenario may have, phases or a recorded curve (seconds).
pub(crate) const MAX_PROFILE_S: f64 = 1e7;

/// The highest arrival rate (users per second) a phase or a curve may reach, as written or
/// scaled: ten million a second is far beyond what a fleet of generators starts, and the
/// schedule, the plan's counts and the summary's integers stay finite and exact below it.
pub(crate) const MAX_RATE: f64 = 1e7;

/// The most users a closed phase may keep active, as written or scaled (each one is a task and
/// its memory for the whole phase).
pub(crate) const MAX_CLOSED_USERS: u64 = 10_000_000;

/// A number for a message: as it is, or in exponent form when that would be hundreds of digits
/// (`5e300`).
pub(crate) fn amount(v: f64) -> String {
    if v.abs() < 1e15 {
        format!("{v}")
    } else {
        format!("{v:e}")
    }
}

/// [`LoadShape::over_limit`] for a shape whose highest rate is `peak` (a NaN is over too).
pub(crate) fn rate_over_limit(peak: f64) -> Option<String> {
    (peak.is_nan() || peak > MAX_RATE).then(|| {
        format!(
            "would reach {} users per second, over the limit of {MAX_RATE} per second",
            amount(peak)
        )
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::compiled::{compile, describe, Plan};
    use crate::error::ScenarioErrors;

    /// The ramp of an open phase (a test failure otherwise).
    fn ramp(p: &Phase) -> Ramp {
        p.ramp()
            .unwrap_or_else(|| panic!("phase {} is not a ramp: {:?}", p.name, p.load))
    }

    fn compile_str(text: &str) -> Result<Plan, ScenarioErrors> {
        compile(Path::new("s.toml"), text, None)
    }

    #[test]
    fn exponential_phases_need_positive_rates() {
        let ok = "name = \"t\"\n[target]\nbuiltin = {}\n[load]\nphases = [ { name = \"a\", duration = \"1s\", rate = 5 }, { name = \"b\", duration = \"9s\", grow_to = 500 } ]\n";
        let plan = compile_str(ok).expect("valid");
        assert_eq!(ramp(&plan.phases[1]).shape, Shape::Exponential);
        assert_eq!(
            (ramp(&plan.phases[1]).from, ramp(&plan.phases[1]).to),
            (5.0, 500.0)
        );
        let bad = ok.replace("rate = 5", "rate = 0");
        let errs = compile_str(&bad).expect_err("from zero").0;
        assert!(errs[0].message.contains("grow_to"), "{errs:?}");
        let both = ok.replace("grow_to = 500", "grow_to = 500, ramp_to = 9");
        assert!(compile_str(&both).is_err());
    }

    #[test]
    fn a_recorded_day_is_compressed_and_scaled() {
        // One hour at 1 000 signups/s, then a second hour ramping to 3 000/s: 3.6 M + 7.2 M
        // recorded users. Played 60× faster at 1/1000 of the users: 2 minutes, 10 800 arrivals.
        let dir = tempfile::tempdir().expect("tmp");
        std::fs::write(
            dir.path().join("day.csv"),
            "time,rate\n3600,1000\n7200,1000\n10800,3000\n",
        )
        .expect("csv");
        let scenario = dir.path().join("s.toml");
        let text = "name = \"t\"\n[target]\nbuiltin = {}\n[load]\ncurve = { file = \"day.csv\", time_scale = 60, rate_scale = 0.001, name = \"day\" }\n";
        let plan = compile(&scenario, text, Some(1)).expect("valid");
        assert_eq!(plan.phases.len(), 1);
        assert_eq!(plan.phases[0].name, "day");
        assert_eq!(plan.duration(), Duration::from_secs(120));
        let expected = plan.phases[0].mass();
        assert!((expected - 10_800.0).abs() < 1e-6, "{expected}");
        let uniform = Plan {
            arrivals: Arrivals::Uniform,
            ..plan
        };
        let n = crate::schedule::arrivals(&uniform).count() as f64;
        assert!((n - 10_800.0).abs() / 10_800.0 < 0.01, "{n}");

        std::fs::write(dir.path().join("day.csv"), "time,rate\n0,1\n10,2\n5,3\n").expect("csv");
        let errs = compile(&scenario, text, Some(1)).expect_err("decreasing").0;
        assert!(
            errs[0].message.contains("day.csv:4: times must increase"),
            "{errs:?}"
        );
        // A rate_scale that takes the curve over the rate limit is refused, as a phase's rate.
        std::fs::write(dir.path().join("day.csv"), "time,rate\n0,1\n10,2\n").expect("csv");
        let huge = text.replace("rate_scale = 0.001", "rate_scale = 1e300");
        let errs = compile(&scenario, &huge, Some(1))
            .expect_err("over the limit")
            .0;
        assert!(
            errs[0]
                .message
                .contains("curve would reach 1.2e302 users per second"),
            "{errs:?}"
        );
        let both = text.replace("[load]\n", "[load]\nphases = []\n");
        assert!(compile(&scenario, &both, Some(1)).is_err());
    }

    #[test]
    fn closed_phases_and_caps_compile() {
        let text = "name = \"t\"\n[target]\nbuiltin = {}\n[load]\nmax_inflight = 8\nphases = [ { name = \"a\", duration = \"2s\", rate = 5 }, { name = \"soak\", duration = \"10s\", users = 200 }, { name = \"b\", duration = \"1s\", ramp_to = 9 } ]\n";
        let plan = compile_str(text).expect("valid");
        assert_eq!(plan.max_inflight, Some(8));
        let soak = &plan.phases[1];
        assert_eq!(
            soak.closed(),
            Some(Closed {
                users: 200,
                ramp: Duration::from_secs(1)
            })
        );
        // An open phase after a closed one ramps from zero.
        assert_eq!(ramp(&plan.phases[2]).from, 0.0);
        assert!(describe(&plan).contains("closed: 200 users"));
        // A shard runs every third slot: 67, 67 and 66 of the 200.
        let mut sharded = plan.clone();
        for (i, share) in [(0, 67), (1, 67), (2, 66)] {
            sharded.shard = crate::compiled::shard::Shard::parse(&format!("{i}/3")).expect("shard");
            let text = describe(&sharded);
            assert!(
                text.contains(&format!("closed: {share} of 200 users")),
                "{text}"
            );
        }
        let ramped = text.replace("users = 200", "users = 200, ramp = \"20s\"");
        let errs = compile_str(&ramped).expect_err("ramp too long").0;
        assert!(errs[0].message.contains("ramp"), "{errs:?}");
        let stray = text.replace("rate = 5 }", "rate = 5, ramp = \"1s\" }");
        let errs = compile_str(&stray).expect_err("ramp without users").0;
        assert!(errs[0].message.contains("needs `users"), "{errs:?}");
        let capped = text.replace("max_inflight = 8", "max_users = 100");
        let errs = compile_str(&capped).expect_err("users above max_users").0;
        assert!(errs[0].message.contains("max_users"), "{errs:?}");
    }
}
