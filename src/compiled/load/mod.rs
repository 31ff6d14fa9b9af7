//! The load profile: phases, each exactly one load shape, with the shape's rate maths beside its
//! type (one file per shape, as k6's `lib/executor/` has one file per executor).
//!
//! A new shape is a new file here with its type, its `compile` and its maths, plus its variant
//! in [`Load`] (the match arms below follow from it) and the fields it reads in
//! `scenario::PhaseSpec`.

pub mod closed;
pub mod curve;
pub mod ramp;

use std::time::Duration;

use toml::Spanned;

pub use closed::Closed;
pub use curve::Curve;
pub use ramp::{Ramp, Shape};

use super::positive_duration;
use crate::scenario::{self, Problems};

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
        match &self.load {
            Load::Ramp(ramp) => vec![Piece {
                start: self.start,
                duration: self.duration,
                ramp: *ramp,
            }],
            Load::Curve(curve) => curve.pieces(self.start),
            Load::Closed(_) => Vec::new(),
        }
    }

    /// Expected number of open arrivals in the whole phase: the integral of its rate.
    pub fn mass(&self) -> f64 {
        match &self.load {
            Load::Ramp(ramp) => ramp.mass(self.duration),
            Load::Curve(curve) => curve.mass(self.start),
            Load::Closed(_) => 0.0,
        }
    }

    /// The `inrush validate` columns: how the load goes, and how much of it there is.
    pub fn describe(&self) -> (String, String) {
        let arrivals = || format!("~{:.0} arrivals", self.mass());
        match &self.load {
            Load::Ramp(ramp) => (ramp.describe(), arrivals()),
            Load::Curve(curve) => (curve.describe(), arrivals()),
            Load::Closed(closed) => closed.describe(),
        }
    }
}

/// `[load] phases`: each phase named, timed and given its shape; an open phase without `rate`
/// starts where the previous phase ended (a closed phase ends at zero).
pub(super) fn compile_phases(
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
