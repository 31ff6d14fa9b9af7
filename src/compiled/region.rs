//! Regions: named shares of the users with client-side network conditions (an added one-way
//! delay and its jitter), so a rehearsal can show that "the Americas saw it slower". Which
//! region a user is in is drawn from the seed and the user's index; how a region's delay is
//! applied to connects, sends and receives lives in `clients::region_link`.

use std::time::Duration;

use toml::Spanned;

use crate::duration::parse_duration;
use crate::scenario::{Problems, RegionSpec};

/// How far the shares may be from adding up to 1 (decimal fractions such as 0.1 + 0.2 + 0.7).
const SHARE_TOLERANCE: f64 = 1e-6;

#[derive(Debug, Clone, PartialEq)]
pub struct Region {
    pub name: String,
    /// Fraction of the users, in (0, 1].
    pub share: f64,
    /// Added one-way delay: the mean of every draw.
    pub latency: Duration,
    /// Each draw is uniform within `latency ± jitter` (never below zero).
    pub jitter: Duration,
}

/// The scenario's regions in file order; empty when it declares none (then no breakdown and
/// no added delay).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Regions {
    pub list: Vec<Region>,
}

impl Regions {
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn get(&self, i: usize) -> Option<&Region> {
        self.list.get(i)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.list.iter().map(|r| r.name.as_str())
    }

    /// The region of a user whose uniform draw in [0, 1) is `draw`: the regions tile [0, 1) in
    /// file order, each as wide as its share. `None` when there are no regions.
    pub fn pick(&self, draw: f64) -> Option<usize> {
        let mut upper = 0.0;
        for (i, r) in self.list.iter().enumerate() {
            upper += r.share;
            if draw < upper {
                return Some(i);
            }
        }
        // Rounding can leave the sum a hair below 1: the last region takes the rest.
        self.list.len().checked_sub(1)
    }
}

/// Checks `[[regions]]`: names (unique, not a phase's name, usable in a threshold's scope),
/// shares (> 0, adding up to 1) and durations. Every problem is reported with its position.
pub fn compile(
    specs: &[Spanned<RegionSpec>],
    phases: &[String],
    problems: &mut Problems,
) -> Regions {
    let mut list: Vec<Region> = Vec::new();
    for spec in specs {
        let r = spec.get_ref();
        let name = r.name.get_ref().trim().to_string();
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            problems.add(
                r.name.span(),
                "region name must be non-empty and use only letters, digits, `-` and `_` (it scopes metrics and hlog tags)",
            );
        } else if list.iter().any(|q| q.name == name) {
            problems.add(r.name.span(), format!("region `{name}` is defined twice"));
        } else if phases.contains(&name) {
            problems.add(
                r.name.span(),
                format!("region `{name}` has the name of a phase: `{name}:` in a threshold must name one of them"),
            );
        }
        let share = *r.share.get_ref();
        if !(share.is_finite() && share > 0.0 && share <= 1.0) {
            problems.add(
                r.share.span(),
                "share must be a fraction of the users greater than 0 and at most 1",
            );
        }
        let mut delay = |d: &Option<Spanned<String>>| match d {
            None => Duration::ZERO,
            Some(text) => parse_duration(text.get_ref()).unwrap_or_else(|e| {
                problems.add(text.span(), e);
                Duration::ZERO
            }),
        };
        let latency = delay(&r.latency);
        let jitter = delay(&r.jitter);
        list.push(Region {
            name,
            share,
            latency,
            jitter,
        });
    }
    let sum: f64 = list.iter().map(|r| r.share).sum();
    if let Some(last) = specs.last() {
        if (sum - 1.0).abs() > SHARE_TOLERANCE {
            problems.add(
                last.get_ref().share.span(),
                format!("region shares add up to {sum}; they must add up to 1 (every user is in one region)"),
            );
        }
    }
    Regions { list }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn regions(shares: &[f64]) -> Regions {
        Regions {
            list: shares
                .iter()
                .enumerate()
                .map(|(i, s)| Region {
                    name: format!("r{i}"),
                    share: *s,
                    latency: Duration::ZERO,
                    jitter: Duration::ZERO,
                })
                .collect(),
        }
    }

    #[test]
    fn draws_tile_the_unit_interval_by_share() {
        let r = regions(&[0.3, 0.7]);
        assert_eq!(r.pick(0.0), Some(0));
        assert_eq!(r.pick(0.299), Some(0));
        assert_eq!(r.pick(0.3), Some(1));
        assert_eq!(r.pick(0.999_999), Some(1));
        // A sum a rounding error below 1 still places every draw.
        assert_eq!(
            regions(&[0.1, 0.2, 0.7 - 1e-9]).pick(0.999_999_999),
            Some(2)
        );
        assert_eq!(Regions::default().pick(0.5), None);
    }
}
