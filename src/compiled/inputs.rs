//! What the command line adds to a scenario file, applied as it compiles: a seed, `-e KEY=VAL`
//! values for `env.*` templates, and scales that stretch the load profile in time
//! (`--time-scale F`, `--duration D`) or in users (`--rate-scale F`) — so a four-minute
//! outage-day can be looked at in 30 s, or at double the crowd, without editing the file.
//! Precedence, as k6 and Locust users expect: a flag, then an `INRUSH_*` environment variable
//! (clap reads both), then the scenario file.

use std::collections::BTreeMap;
use std::time::Duration;

/// Values for `env.NAME` templates given on the command line; they take precedence over the
/// process environment. Secrets like any `env.*` value: masked in traces, never reported.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Env {
    given: BTreeMap<String, String>,
}

impl Env {
    /// `KEY=VAL` pairs as `-e` takes them; a pair without `=` or with an empty key is an error.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = &'a str>) -> Result<Env, String> {
        let given = pairs
            .into_iter()
            .map(parse_pair)
            .collect::<Result<_, _>>()?;
        Ok(Env { given })
    }

    /// The value of `env.NAME`: given with `-e`, else the process environment's.
    pub fn get(&self, name: &str) -> Option<String> {
        match self.given.get(name) {
            Some(v) => Some(v.clone()),
            None => std::env::var(name).ok(),
        }
    }
}

/// One `-e` argument: `KEY=VAL` (the value may hold `=`; only the first splits).
pub fn parse_pair(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() && !k.contains(char::is_whitespace) => {
            Ok((k.to_string(), v.to_string()))
        }
        _ => Err(format!(
            "`-e` takes KEY=VALUE for the scenario's env.KEY, e.g. -e API_TOKEN=abc; got `{}`",
            // The value may be a secret: name the key only.
            s.split_once('=').map_or(s, |(k, _)| k)
        )),
    }
}

/// How the load profile is stretched in time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TimeScale {
    /// Every phase (and curve point, closed-phase ramp) lasts `factor` times as long.
    Factor(f64),
    /// The load profile lasts this long in all: the factor is this over the scenario's length.
    Total(Duration),
}

/// Everything the command line adds to the file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Inputs {
    pub seed: Option<u64>,
    pub env: Env,
    pub time: Option<TimeScale>,
    /// Every rate (and closed phase's users, `max_users`, `max_inflight`) multiplied by this.
    pub rate_scale: Option<f64>,
    /// `--shard i/N`: this process runs shard i's share of the scenario (whole by default).
    pub shard: super::shard::Shard,
    /// `inrush plan --target URL`: plan for this target instead of the scenario's (`run`
    /// takes its `--target` through `RunOptions`, as `find-capacity` does for every step).
    pub target: Option<String>,
}

impl Inputs {
    /// Just a seed (or none): the file as written.
    pub fn seed(seed: Option<u64>) -> Inputs {
        Inputs {
            seed,
            ..Inputs::default()
        }
    }
}

/// A scale factor as the flags take it: a finite number above 0.
pub fn parse_factor(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(f) if f.is_finite() && f > 0.0 => Ok(f),
        _ => Err(format!(
            "`{s}` is not a scale factor: expected a number above 0, e.g. 0.5 or 2"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_given_value_wins_over_the_process_environment_and_a_bad_pair_names_only_its_key() {
        // PATH is set in any test process; a given value replaces it for env.PATH.
        let env = Env::from_pairs(["PATH=/given", "TOKEN=a=b"]).expect("valid");
        assert_eq!(env.get("PATH").as_deref(), Some("/given"));
        assert_eq!(
            env.get("TOKEN").as_deref(),
            Some("a=b"),
            "only the first = splits"
        );
        assert!(Env::default().get("PATH").is_some());
        let err = Env::from_pairs(["SECRET"]).expect_err("no =");
        assert!(err.contains("KEY=VALUE"), "{err}");
        let err = Env::from_pairs(["=hunter2"]).expect_err("no key");
        assert!(!err.contains("hunter2"), "the value is never echoed: {err}");
        for bad in ["0", "-1", "nan", "inf", "x"] {
            assert!(parse_factor(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_factor("0.125"), Ok(0.125));
    }
}
