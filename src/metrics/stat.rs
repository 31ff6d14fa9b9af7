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
    P95,
    P99,
    P999,
    P9999,
    Max,
}

impl Stat {
    pub const ALL: [Stat; 9] = [
        Stat::Min,
        Stat::Mean,
        Stat::P50,
        Stat::P90,
        Stat::P95,
        Stat::P99,
        Stat::P999,
        Stat::P9999,
        Stat::Max,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Stat::Min => "min",
            Stat::Mean => "mean",
            Stat::P50 => "p50",
            Stat::P90 => "p90",
            Stat::P95 => "p95",
            Stat::P99 => "p99",
            Stat::P999 => "p999",
            Stat::P9999 => "p9999",
            Stat::Max => "max",
        }
    }

    /// `p99`, also `avg`, `median`, `med`, `p99.9`, `p99.99` and k6's `p(95)`, `p(99.9)`.
    pub fn parse(s: &str) -> Option<Stat> {
        // k6 writes a percentile as p(N); the same N as pN.
        let s = match s.strip_prefix("p(").and_then(|r| r.strip_suffix(')')) {
            Some(n) => format!("p{}", n.trim()),
            None => s.to_string(),
        };
        match s.as_str() {
            "avg" => Some(Stat::Mean),
            "median" | "med" => Some(Stat::P50),
            "p99.9" => Some(Stat::P999),
            "p99.99" => Some(Stat::P9999),
            "p100" => Some(Stat::Max),
            "p0" => Some(Stat::Min),
            s => Stat::ALL.into_iter().find(|stat| stat.name() == s),
        }
    }

    /// The quantile, or `None` for the mean (`min` is quantile 0, `max` quantile 1).
    pub fn quantile(self) -> Option<f64> {
        match self {
            Stat::Min => Some(0.0),
            Stat::Mean => None,
            Stat::P50 => Some(0.5),
            Stat::P90 => Some(0.9),
            Stat::P95 => Some(0.95),
            Stat::P99 => Some(0.99),
            Stat::P999 => Some(0.999),
            Stat::P9999 => Some(0.9999),
            Stat::Max => Some(1.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Stat;

    #[test]
    fn percentiles_read_as_inrush_and_k6_write_them() {
        for (text, stat) in [
            ("p95", Stat::P95),
            ("p(95)", Stat::P95),
            ("p( 95 )", Stat::P95),
            ("p99.9", Stat::P999),
            ("p(99.9)", Stat::P999),
            ("p999", Stat::P999),
            ("p99.99", Stat::P9999),
            ("p(99.99)", Stat::P9999),
            ("med", Stat::P50),
            ("p(50)", Stat::P50),
            ("avg", Stat::Mean),
            ("p(100)", Stat::Max),
        ] {
            assert_eq!(Stat::parse(text), Some(stat), "{text}");
        }
        for text in ["p(97.5)", "p96", "p(", "p()", "p(95", "95"] {
            assert_eq!(Stat::parse(text), None, "{text}");
        }
        // Every statistic but the mean is the quantile its name says.
        assert_eq!(Stat::P95.quantile(), Some(0.95));
        assert_eq!(Stat::P9999.quantile(), Some(0.9999));
    }
}
