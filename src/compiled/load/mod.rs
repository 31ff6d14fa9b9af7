//! The load profile: phases, each exactly one load shape, with the shape's rate maths beside its
//! type (one file per shape, as k6's `lib/executor/` has one file per executor).
//!
//! A new shape is a new file here with its type, its `compile` and its [`LoadShape`] maths,
//! registered in this file: its `mod` line, its variant in [`Load`] and one arm in
//! [`Load::shape`], and the line of [`compile_phases`] that picks it from the fields it reads in
//! `scenario::PhaseSpec` (the file format).

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

    /// Expected number of open arrivals in the whole phase: the integral of its rate.
    pub fn mass(&self) -> f64 {
        self.load
            .shape()
            .expected_arrivals(self.start, self.duration)
    }

    /// The `inrush validate` columns: how the load goes, and how much of it there is.
    pub fn describe(&self) -> (String, String) {
        self.load.shape().describe_columns(self.mass())
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
        start += duration;
    }
    out
}
