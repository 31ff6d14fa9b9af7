//! A ramp: the arrival rate goes from `from` to `to` over the phase, linearly (constant when both
//! are equal) or exponentially. Also the closed-form piece the schedule inverts for every shape
//! of arrivals (a recorded curve is a chain of linear ramps).

use std::time::Duration;

use toml::Spanned;

use crate::scenario::{self, Problems};

/// How the arrival rate goes from `from` to `to` within a phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Shape {
    /// Linearly (constant when both rates are equal).
    #[default]
    Linear,
    /// Exponentially: multiplied by the same factor every second.
    Exponential,
}

/// Arrival rates (users per second) at the start and at the end of a phase, and the shape between.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ramp {
    pub from: f64,
    pub to: f64,
    pub shape: Shape,
}

impl Ramp {
    /// Expected number of arrivals over `duration`: the integral of the rate.
    pub fn mass(&self, duration: Duration) -> f64 {
        let (a, b, d) = (self.from, self.to, duration.as_secs_f64());
        match self.shape {
            // a·e^(kt) with k = ln(b/a)/D integrates to (b − a)/k.
            Shape::Exponential if a > 0.0 && b > 0.0 && (b / a).ln().abs() > 1e-12 => {
                (b - a) * d / (b / a).ln()
            }
            _ => (a + b) / 2.0 * d,
        }
    }

    /// Seconds into the phase at which the cumulative intensity reaches `m` (the inverse of
    /// [`Ramp::mass`] up to t). Linear: solves a·t + k·t²/2 = m with k = (b−a)/D, in the form that
    /// stays exact as k → 0.
    pub fn invert(&self, duration: Duration, m: f64) -> f64 {
        let a = self.from;
        if self.shape == Shape::Exponential && a > 0.0 && self.to > 0.0 {
            // Λ(t) = a/k·(e^(kt) − 1)  ⇒  t = ln(1 + k·m/a)/k.
            let k = (self.to / a).ln() / duration.as_secs_f64();
            if k.abs() > 1e-12 {
                let arg = 1.0 + k * m / a;
                return if arg > 0.0 {
                    (arg.ln() / k).min(duration.as_secs_f64())
                } else {
                    duration.as_secs_f64()
                };
            }
        }
        let k = (self.to - self.from) / duration.as_secs_f64();
        let disc = (a * a + 2.0 * k * m).max(0.0);
        let denom = a + disc.sqrt();
        if denom <= 0.0 {
            return duration.as_secs_f64();
        }
        (2.0 * m / denom).min(duration.as_secs_f64())
    }

    /// The validate description's rate column.
    pub fn describe(&self) -> String {
        match (self.from == self.to, self.shape) {
            (true, _) => format!("{} users/s", self.from),
            (false, Shape::Linear) => format!("{} → {} users/s", self.from, self.to),
            (false, Shape::Exponential) => format!("{} ⇗ {} users/s", self.from, self.to),
        }
    }
}

impl super::LoadShape for Ramp {
    fn arrival_pieces(&self, start: Duration, duration: Duration) -> Vec<super::Piece> {
        vec![super::Piece {
            start,
            duration,
            ramp: *self,
        }]
    }
    fn expected_arrivals(&self, _start: Duration, duration: Duration) -> f64 {
        self.mass(duration)
    }
    fn describe_columns(&self, expected: f64) -> (String, String) {
        (self.describe(), super::arrivals_column(expected))
    }
    fn scaled(&self, factor: f64) -> super::Load {
        super::Load::Ramp(Ramp {
            from: self.from * factor,
            to: self.to * factor,
            shape: self.shape,
        })
    }

    fn stretched(&self, _factor: f64) -> super::Load {
        // From one rate to another over the phase, whatever its length.
        super::Load::Ramp(*self)
    }

    fn over_limit(&self) -> Option<String> {
        let peak = self.from.max(self.to);
        super::rate_over_limit(peak)
    }
}

/// `rate`, `ramp_to` or `grow_to`: an open phase. A phase without `rate` starts at the rate the
/// previous phase ended at (`previous_rate`).
pub(super) fn compile(
    spec: &Spanned<scenario::PhaseSpec>,
    previous_rate: f64,
    problems: &mut Problems,
) -> Ramp {
    let p = spec.get_ref();
    let rate = |r: &Spanned<f64>, problems: &mut Problems| {
        let v = *r.get_ref();
        if !(v.is_finite() && (0.0..=super::MAX_RATE).contains(&v)) {
            problems.add(
                r.span(),
                "rate must be between 0 and 10000000 users per second",
            );
            0.0
        } else {
            v
        }
    };
    if p.ramp_to.is_some() && p.grow_to.is_some() {
        problems.add(
            spec.span(),
            "a phase has one of ramp_to (linear) or grow_to (exponential)",
        );
    }
    let shape = if p.grow_to.is_some() {
        Shape::Exponential
    } else {
        Shape::Linear
    };
    let (from, to) = match (&p.rate, p.ramp_to.as_ref().or(p.grow_to.as_ref())) {
        (Some(r), None) => {
            let r = rate(r, problems);
            (r, r)
        }
        (Some(r), Some(to)) => (rate(r, problems), rate(to, problems)),
        (None, Some(to)) => (previous_rate, rate(to, problems)),
        (None, None) => {
            problems.add(
                spec.span(),
                "phase needs `rate` (users per second), `ramp_to` or `grow_to`, or both",
            );
            (0.0, 0.0)
        }
    };
    if shape == Shape::Exponential && !(from > 0.0 && to > 0.0) {
        problems.add(
            spec.span(),
            "grow_to needs a starting rate above zero (set `rate`, or follow a phase that ends above zero) and a target above zero",
        );
    }
    Ramp { from, to, shape }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mass_is_the_rates_integral_and_invert_undoes_it() {
        let d = Duration::from_secs(10);
        let linear = Ramp {
            from: 10.0,
            to: 30.0,
            shape: Shape::Linear,
        };
        assert_eq!(linear.mass(d), 200.0);
        let grow = Ramp {
            from: 10.0,
            to: 1000.0,
            shape: Shape::Exponential,
        };
        // 10 users/s growing 100-fold over 10 s: ∫₀¹⁰ 10·100^(t/10) dt = 990·10 / ln 100.
        assert!((grow.mass(d) - 990.0 * 10.0 / 100f64.ln()).abs() < 1e-9);
        // The inverse of the mass: all of it is reached at the end, half of it earlier.
        assert!((grow.invert(d, grow.mass(d)) - 10.0).abs() < 1e-9);
        assert!((linear.invert(d, 75.0) - 5.0).abs() < 1e-9);
    }
}
