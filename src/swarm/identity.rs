//! Who the simulated users are: phone numbers and per-user random streams, all derived from the
//! scenario's seed so that the same seed gives the same people.

use rand::{RngExt, SeedableRng};

const IDENTITY_STREAM: u64 = 0x6964_656e_7469_7479;
const USER_STREAM: u64 = 0x7573_6572_7374_7265;
const COHORT_STREAM: u64 = 0x636f_686f_7274_7321;
const RETURN_STREAM: u64 = 0x7265_7475_726e_7321;
const VISIT_STREAM: u64 = 0x7669_7369_7473_2121;
const REGION_STREAM: u64 = 0x7265_6769_6f6e_7321;
const LINK_STREAM: u64 = 0x6c69_6e6b_6465_6c61;

/// Phone numbers have 12 digits after the `+`: the prefix, then a per-user number.
const PHONE_DIGITS: u32 = 12;

#[derive(Debug, Clone)]
pub struct Identities {
    prefix: String,
    width: usize,
    space: u64,
    offset: u64,
    seed: u64,
}

impl Identities {
    pub fn new(seed: u64, prefix: &str) -> Self {
        let width = PHONE_DIGITS
            .saturating_sub(prefix.len().saturating_sub(1) as u32)
            .max(6);
        let space = 10u64.pow(width);
        let mut rng = rand::rngs::SmallRng::seed_from_u64(seed ^ IDENTITY_STREAM);
        Identities {
            prefix: prefix.to_string(),
            width: width as usize,
            space,
            offset: rng.random_range(0..space),
            seed,
        }
    }

    /// The phone number of user `index`; distinct for the first `space / 2` users.
    pub fn phone(&self, index: u64) -> String {
        let n = (self.offset + index) % self.space;
        format!("{}{:0w$}", self.prefix, n, w = self.width)
    }

    /// A phone number no simulated user has (from the other half of the number space), for the
    /// unknown part of a contact upload.
    pub fn unknown_phone<R: rand::Rng>(&self, rng: &mut R) -> String {
        let half = self.space / 2;
        let n = (self.offset + half + rng.random_range(0..half)) % self.space;
        format!("{}{:0w$}", self.prefix, n, w = self.width)
    }

    /// A uniform number in [0, 1) per user that decides its cohort, independent of its other
    /// random choices.
    pub fn cohort_draw(&self, index: u64) -> f64 {
        let mut rng = rand::rngs::SmallRng::seed_from_u64(
            self.seed ^ COHORT_STREAM ^ index.wrapping_mul(0xD1B5_4A32_D192_ED03),
        );
        rng.random::<f64>()
    }

    /// Whether user `index` comes back after leaving for the `visit`-th time, and after how long
    /// away: its own seeded stream, so the same seed gives the same decisions whatever the
    /// timing of the run.
    pub fn comes_back(
        &self,
        index: u64,
        visit: u32,
        share: f64,
        away: &crate::compiled::Dist,
    ) -> Option<std::time::Duration> {
        let mut rng = rand::rngs::SmallRng::seed_from_u64(
            self.seed
                ^ RETURN_STREAM
                ^ index.wrapping_mul(0xA24B_AED4_963E_E407)
                ^ u64::from(visit).wrapping_mul(0x9FB2_1C65_1E98_DF25),
        );
        let draw: f64 = rng.random();
        (draw < share).then(|| away.sample(&mut rng))
    }

    /// The random stream of a returning user's later visit (`visit` ≥ 1).
    pub fn visit_rng(&self, index: u64, visit: u32) -> rand::rngs::SmallRng {
        rand::rngs::SmallRng::seed_from_u64(
            self.seed
                ^ VISIT_STREAM
                ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15)
                ^ u64::from(visit).wrapping_mul(0xC2B2_AE3D_27D4_EB4F),
        )
    }

    /// A uniform number in [0, 1) per user that decides its region: its own stream, so declaring
    /// regions changes neither cohorts nor think times, and the same seed gives the same regions.
    pub fn region_draw(&self, index: u64) -> f64 {
        let mut rng = rand::rngs::SmallRng::seed_from_u64(
            self.seed ^ REGION_STREAM ^ index.wrapping_mul(0xA24B_AED4_963E_E407),
        );
        rng.random::<f64>()
    }

    /// The random stream of one user's network delays (its region's jitter draws).
    pub fn link_rng(&self, index: u64) -> rand::rngs::SmallRng {
        rand::rngs::SmallRng::seed_from_u64(
            self.seed ^ LINK_STREAM ^ index.wrapping_mul(0x9FB2_1C65_1E98_DF25),
        )
    }

    /// The random stream of one user: think times, contacts, session length.
    pub fn rng(&self, index: u64) -> rand::rngs::SmallRng {
        rand::rngs::SmallRng::seed_from_u64(
            self.seed ^ USER_STREAM ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones_are_seeded_distinct_and_well_formed() {
        let a = Identities::new(1, "+1555");
        let b = Identities::new(1, "+1555");
        let c = Identities::new(2, "+1555");
        assert_eq!(a.phone(0), b.phone(0));
        assert_ne!(a.phone(0), c.phone(0));
        assert_ne!(a.phone(0), a.phone(1));
        let p = a.phone(42);
        assert_eq!(p.len(), 13);
        assert!(p.starts_with("+1555") && p[1..].chars().all(|c| c.is_ascii_digit()));
        let known: std::collections::HashSet<String> = (0..1000).map(|i| a.phone(i)).collect();
        let mut rng = a.rng(0);
        assert!((0..1000).all(|_| !known.contains(&a.unknown_phone(&mut rng))));
    }

    #[test]
    fn returns_are_seeded_per_user_and_visit() {
        use crate::compiled::Dist;
        use std::time::Duration;
        let away = Dist::Exponential(Duration::from_secs(30));
        let a = Identities::new(5, "+1555");
        let b = Identities::new(5, "+1555");
        let c = Identities::new(6, "+1555");
        let decide = |ids: &Identities| -> Vec<Option<Duration>> {
            (0..2_000)
                .map(|i| ids.comes_back(i, (i % 3) as u32, 0.4, &away))
                .collect()
        };
        let (da, db, dc) = (decide(&a), decide(&b), decide(&c));
        assert_eq!(da, db, "same seed, same decisions");
        assert_ne!(da, dc);
        // A share of 0.4: binomial(2000, 0.4) has sd ≈ 22, allow five.
        let back = da.iter().flatten().count();
        assert!((690..=910).contains(&back), "{back} of 2000 come back");
        // Away times follow the distribution: mean 30 s, standard error 30/√800 ≈ 1.1 s.
        let mean = da.iter().flatten().map(Duration::as_secs_f64).sum::<f64>() / back as f64;
        assert!((mean - 30.0).abs() < 5.0, "mean away {mean}");
        // A later visit decides anew; never and always are exact.
        assert_ne!(
            (0..50)
                .map(|i| a.comes_back(i, 0, 0.5, &away))
                .collect::<Vec<_>>(),
            (0..50)
                .map(|i| a.comes_back(i, 1, 0.5, &away))
                .collect::<Vec<_>>()
        );
        assert!((0..100).all(|i| a.comes_back(i, 0, 0.0, &away).is_none()));
        assert!((0..100).all(|i| a.comes_back(i, 0, 1.0, &away).is_some()));
    }

    #[test]
    fn region_draws_are_seeded_uniform_and_independent_of_cohorts() {
        let a = Identities::new(7, "+1555");
        let b = Identities::new(7, "+1555");
        let c = Identities::new(8, "+1555");
        let n = 20_000u64;
        let draws: Vec<f64> = (0..n).map(|i| a.region_draw(i)).collect();
        assert!((0..n).all(|i| draws[i as usize] == b.region_draw(i)));
        assert!((0..100).any(|i| a.region_draw(i) != c.region_draw(i)));
        assert!(draws.iter().all(|d| (0.0..1.0).contains(d)));
        // Uniform: the share below 0.3 is 0.3 within 5 binomial standard deviations
        // (sd = sqrt(0.3 * 0.7 / n) = 0.0032).
        let below = draws.iter().filter(|d| **d < 0.3).count() as f64 / n as f64;
        assert!(
            (below - 0.3).abs() < 5.0 * (0.3f64 * 0.7 / n as f64).sqrt(),
            "{below}"
        );
        // Independent of the cohort stream: the two draws are uncorrelated.
        let cohort: Vec<f64> = (0..n).map(|i| a.cohort_draw(i)).collect();
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        let (mr, mc) = (mean(&draws), mean(&cohort));
        let cov: f64 = draws
            .iter()
            .zip(&cohort)
            .map(|(r, c)| (r - mr) * (c - mc))
            .sum::<f64>()
            / n as f64;
        // Correlation of independent uniforms: sd 1/sqrt(n) = 0.007; variance of each is 1/12.
        assert!((cov * 12.0).abs() < 0.035, "correlation {}", cov * 12.0);
    }
}
