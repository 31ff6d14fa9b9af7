//! Distributions of durations (think times, time online, time away): sampled per user from its
//! own seeded stream.

use std::time::Duration;

use rand::RngExt;
use toml::Spanned;

use crate::duration::parse_duration;
use crate::scenario::{DistSpec, Problems};

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Dist {
    Constant(Duration),
    Uniform(Duration, Duration),
    Exponential(Duration),
    /// Mean and standard deviation; draws below zero are zero.
    Normal(Duration, Duration),
}

impl Dist {
    pub fn sample<R: rand::Rng + ?Sized>(&self, rng: &mut R) -> Duration {
        match *self {
            Dist::Constant(d) => d,
            Dist::Uniform(lo, hi) if hi > lo => {
                Duration::from_secs_f64(rng.random_range(lo.as_secs_f64()..hi.as_secs_f64()))
            }
            Dist::Uniform(lo, _) => lo,
            Dist::Exponential(mean) => {
                // Inverse transform; 1 - u lies in (0, 1] so the logarithm is finite.
                let u: f64 = rng.random();
                Duration::from_secs_f64(-mean.as_secs_f64() * (1.0 - u).ln())
            }
            Dist::Normal(mean, sd) => {
                // Box–Muller; 1 - u1 lies in (0, 1] so the logarithm is finite.
                let (u1, u2): (f64, f64) = (rng.random(), rng.random());
                let z = (-2.0 * (1.0 - u1).ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
                let v = mean.as_secs_f64() + sd.as_secs_f64() * z;
                Duration::from_secs_f64(v.clamp(0.0, 1e9))
            }
        }
    }
}

/// `{ constant = ... }`, `{ uniform = [lo, hi] }`, `{ exponential = mean }` or `{ normal = [mean, sd] }`.
pub(crate) fn dist(spec: &Spanned<DistSpec>, problems: &mut Problems) -> Dist {
    let d = |t: &str, problems: &mut Problems| {
        parse_duration(t).unwrap_or_else(|e| {
            problems.add(spec.span(), e);
            Duration::ZERO
        })
    };
    match spec.get_ref() {
        DistSpec::Constant(t) => Dist::Constant(d(t, problems)),
        DistSpec::Exponential(t) => Dist::Exponential(d(t, problems)),
        DistSpec::Normal([mean, sd]) => Dist::Normal(d(mean, problems), d(sd, problems)),
        DistSpec::Uniform([lo, hi]) => {
            let (lo, hi) = (d(lo, problems), d(hi, problems));
            if hi < lo {
                problems.add(
                    spec.span(),
                    "uniform range must be [low, high] with low <= high",
                );
            }
            Dist::Uniform(lo, hi)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distributions_sample_within_their_support() {
        use rand::SeedableRng;
        let mut rng = rand::rngs::SmallRng::seed_from_u64(1);
        let u = Dist::Uniform(Duration::from_secs(1), Duration::from_secs(2));
        let e = Dist::Exponential(Duration::from_millis(100));
        let g = Dist::Normal(Duration::from_millis(500), Duration::from_millis(50));
        let n = 20_000;
        let (mut sum, mut gsum, mut gsq) = (0.0, 0.0, 0.0);
        for _ in 0..n {
            let s = u.sample(&mut rng);
            assert!(s >= Duration::from_secs(1) && s < Duration::from_secs(2));
            sum += e.sample(&mut rng).as_secs_f64();
            let x = g.sample(&mut rng).as_secs_f64();
            gsum += x;
            gsq += x * x;
        }
        // Mean of n exponentials: standard error = mean / sqrt(n) ≈ 0.7 ms; allow 5 of them.
        let mean = sum / n as f64;
        assert!((mean - 0.1).abs() < 0.0035, "mean {mean}");
        // Normal(500 ms, 50 ms): mean within 5 standard errors (0.35 ms each), sd within 5 %.
        let mean = gsum / n as f64;
        let sd = (gsq / n as f64 - mean * mean).sqrt();
        assert!((mean - 0.5).abs() < 0.002, "mean {mean}");
        assert!((sd - 0.05).abs() < 0.0025, "sd {sd}");
    }
}
