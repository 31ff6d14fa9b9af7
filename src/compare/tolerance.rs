//! `--max-regression p99=10%,p50=20%,errors=0,rate=5%,lost=0,floor=1ms`: how much worse NEW may
//! be before `compare` calls it a regression.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use crate::duration::parse_duration;

pub use crate::report::summary::Stat;

/// The statistics `compare` can gate on (the minimum says nothing about a regression).
pub const COMPARED: [Stat; 8] = [
    Stat::P50,
    Stat::P90,
    Stat::P95,
    Stat::P99,
    Stat::P999,
    Stat::P9999,
    Stat::Max,
    Stat::Mean,
];

/// Shown for every metric whether or not it has a tolerance.
pub const SHOWN: [Stat; 4] = [Stat::P50, Stat::P95, Stat::P99, Stat::Max];

/// `p95`, `p99.9`, k6's `p(95)`…: as thresholds name them, among the compared ones.
fn parse_stat(s: &str) -> Option<Stat> {
    Stat::parse(s).filter(|stat| COMPARED.contains(stat))
}

/// Default absolute floor: a latency change smaller than this is never a regression.
pub const DEFAULT_FLOOR_MS: f64 = 1.0;

/// How much worse NEW may be than BASE. Absent keys are not checked.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Tolerances {
    /// Largest allowed relative increase per latency statistic (0.10 = 10 %).
    pub latency: BTreeMap<Stat, f64>,
    /// Largest allowed increase of a metric's error rate, in percentage points.
    pub errors_pp: Option<f64>,
    /// Largest allowed relative decrease of a metric's throughput (0.05 = 5 %).
    pub rate: Option<f64>,
    /// Largest allowed increase in lost messages (absolute).
    pub lost: Option<u64>,
    /// A latency increase must also exceed this many milliseconds to count.
    pub floor_ms: f64,
}

impl Default for Tolerances {
    /// `p99=10%,errors=0` with a 1 ms floor.
    fn default() -> Self {
        Tolerances {
            latency: BTreeMap::from([(Stat::P99, 0.10)]),
            errors_pp: Some(0.0),
            rate: None,
            lost: None,
            floor_ms: DEFAULT_FLOOR_MS,
        }
    }
}

const KEYS: &str =
    "p50, p90, p95, p99, p99.9, p99.99 (or k6's p(95)), max, mean, errors, rate, lost, floor";

fn percent(value: &str, example: &str) -> Result<f64, String> {
    let number = value
        .strip_suffix('%')
        .ok_or_else(|| format!("`{value}` needs a percent sign, e.g. {example}"))?;
    let v: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("`{value}` is not a percentage, e.g. {example}"))?;
    if !v.is_finite() || v < 0.0 {
        return Err(format!("`{value}` must be a percentage of 0 or more"));
    }
    Ok(v / 100.0)
}

impl Tolerances {
    /// Parses the flag's value. Errors name the item at fault (1-based) and what was expected.
    pub fn parse(text: &str) -> Result<Tolerances, String> {
        let mut t = Tolerances {
            latency: BTreeMap::new(),
            errors_pp: None,
            rate: None,
            lost: None,
            floor_ms: DEFAULT_FLOOR_MS,
        };
        let mut seen = Vec::new();
        for (i, item) in text.split(',').enumerate() {
            if item.trim().is_empty() {
                return Err(format!(
                    "--max-regression item {}: empty item (keys: {KEYS})",
                    i + 1
                ));
            }
            let at =
                |msg: String| format!("--max-regression item {} `{}`: {msg}", i + 1, item.trim());
            let (key, value) = item
                .split_once('=')
                .map(|(k, v)| (k.trim(), v.trim()))
                .ok_or_else(|| at(format!("expected KEY=VALUE, e.g. p99=10% (keys: {KEYS})")))?;
            if seen.contains(&key) {
                return Err(at(format!("`{key}` is given twice")));
            }
            seen.push(key);
            if let Some(stat) = parse_stat(key) {
                let v =
                    percent(value, &format!("{key}=10% (largest allowed increase)")).map_err(at)?;
                if t.latency.insert(stat, v).is_some() {
                    return Err(at(format!("`{}` is given twice", stat.name())));
                }
                continue;
            }
            match key {
                "errors" => {
                    let v: f64 = value.trim_end_matches('%').trim().parse().map_err(|_| {
                        at(format!(
                            "`{value}` is not a number of percentage points, e.g. errors=0 or errors=0.5%"
                        ))
                    })?;
                    if !v.is_finite() || v < 0.0 {
                        return Err(at("the allowed increase must be 0 or more".into()));
                    }
                    t.errors_pp = Some(v);
                }
                "rate" => {
                    t.rate = Some(percent(value, "rate=5% (largest allowed decrease)").map_err(at)?)
                }
                "lost" => {
                    t.lost = Some(value.parse().map_err(|_| {
                        at(format!("`{value}` is not a count of messages, e.g. lost=0"))
                    })?)
                }
                "floor" => {
                    t.floor_ms = parse_duration(value).map_err(at)?.as_secs_f64() * 1000.0;
                }
                other => return Err(at(format!("unknown key `{other}` (keys: {KEYS})"))),
            }
        }
        Ok(t)
    }
}

impl fmt::Display for Tolerances {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut items: Vec<String> = self
            .latency
            .iter()
            .map(|(s, v)| format!("{}={}%", s.name(), fmt_num(v * 100.0)))
            .collect();
        if let Some(v) = self.errors_pp {
            items.push(format!("errors={}pp", fmt_num(v)));
        }
        if let Some(v) = self.rate {
            items.push(format!("rate={}%", fmt_num(v * 100.0)));
        }
        if let Some(v) = self.lost {
            items.push(format!("lost={v}"));
        }
        items.push(format!("floor={}ms", fmt_num(self.floor_ms)));
        write!(f, "{}", items.join(","))
    }
}

fn fmt_num(v: f64) -> String {
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}
