//! The latency statistics a report shows and thresholds and comparisons name.

use serde::Serialize;

/// A latency statistic, as thresholds and comparisons name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Stat {
    Min,
    Mean,
    P50,
    P90,
    P99,
    P999,
    Max,
}

impl Stat {
    pub const ALL: [Stat; 7] = [
        Stat::Min,
        Stat::Mean,
        Stat::P50,
        Stat::P90,
        Stat::P99,
        Stat::P999,
        Stat::Max,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Stat::Min => "min",
            Stat::Mean => "mean",
            Stat::P50 => "p50",
            Stat::P90 => "p90",
            Stat::P99 => "p99",
            Stat::P999 => "p999",
            Stat::Max => "max",
        }
    }

    /// `p99`, also `avg`, `median` and `p99.9`.
    pub fn parse(s: &str) -> Option<Stat> {
        match s {
            "avg" => Some(Stat::Mean),
            "median" => Some(Stat::P50),
            "p99.9" => Some(Stat::P999),
            _ => Stat::ALL.into_iter().find(|stat| stat.name() == s),
        }
    }

    /// The quantile, or `None` for the mean (`min` is quantile 0, `max` quantile 1).
    pub fn quantile(self) -> Option<f64> {
        match self {
            Stat::Min => Some(0.0),
            Stat::Mean => None,
            Stat::P50 => Some(0.5),
            Stat::P90 => Some(0.9),
            Stat::P99 => Some(0.99),
            Stat::P999 => Some(0.999),
            Stat::Max => Some(1.0),
        }
    }
}
