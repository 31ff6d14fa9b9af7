//! `[capacity]`: the scenario's own settings for `inrush find-capacity`. The SLOs a search gates
//! on are often not the run's `[thresholds]` — those may assert what a surge is expected to
//! break (a known bug, a region over budget), which fails at every rate — so a scenario can
//! name them apart, with the search's bounds. Each is overridden by its command-line flag.

use std::time::Duration;

use toml::Spanned;

use crate::compiled::positive_duration;
use crate::compiled::threshold::{compile_threshold, Threshold};
use crate::metrics::Catalog;
use crate::scenario::{CapacitySection, NumberOrText, Problems};

/// `[capacity]` compiled; `None` fields fall back to the command line's defaults.
#[derive(Debug, Clone, Default)]
pub struct CapacitySettings {
    /// The SLOs each step is judged on, in place of `[thresholds]` (empty: `[thresholds]`).
    pub thresholds: Vec<Threshold>,
    pub from: Option<f64>,
    pub max: Option<f64>,
    pub precision: Option<f64>,
    pub step_duration: Option<Duration>,
    pub warmup: Option<Duration>,
    /// `arrivals` or the name of a phase to scale (checked to be one).
    pub metric: Option<String>,
}

impl CapacitySettings {
    /// Whether the scenario has a `[capacity]` section that says anything.
    pub fn is_set(&self) -> bool {
        !self.thresholds.is_empty()
            || self.from.is_some()
            || self.max.is_some()
            || self.precision.is_some()
            || self.step_duration.is_some()
            || self.warmup.is_some()
            || self.metric.is_some()
    }
}

pub(super) fn compile(
    section: &CapacitySection,
    phases: &[String],
    scopes: &[String],
    catalog: &Catalog,
    problems: &mut Problems,
) -> CapacitySettings {
    let thresholds = section
        .thresholds
        .iter()
        .filter_map(|(subject, spec)| compile_threshold(subject, spec, scopes, catalog, problems))
        .collect();
    let mut rate = |field: &Option<Spanned<f64>>, name: &str| {
        let r = field.as_ref()?;
        let v = *r.get_ref();
        if v.is_finite() && v > 0.0 {
            Some(v)
        } else {
            problems.add(
                r.span(),
                format!("[capacity] {name} = {v}: expected users per second above 0"),
            );
            None
        }
    };
    let from = rate(&section.from, "from");
    let max = rate(&section.max, "max");
    if let (Some(f), Some(m), Some(span)) = (from, max, section.max.as_ref().map(|m| m.span())) {
        if m < f {
            problems.add(
                span,
                format!("[capacity] max = {m} is below from = {f}: the search goes upwards"),
            );
        }
    }
    let precision = section.precision.as_ref().and_then(|p| {
        let parsed = match p.get_ref() {
            NumberOrText::Number(n) => check_precision(*n, &n.to_string()),
            NumberOrText::Text(t) => parse_precision(t),
        };
        parsed.map_err(|e| problems.add(p.span(), e)).ok()
    });
    let metric = section.metric.as_ref().and_then(|m| {
        let name = m.get_ref();
        if name == "arrivals" || phases.contains(name) {
            Some(name.clone())
        } else {
            problems.add(
                m.span(),
                format!(
                    "[capacity] metric = \"{name}\": expected \"arrivals\" or a phase ({})",
                    phases.join(", ")
                ),
            );
            None
        }
    });
    let mut duration = |field: &Option<Spanned<String>>, what: &str| {
        field.as_ref().map(|d| positive_duration(d, what, problems))
    };
    CapacitySettings {
        metric,
        thresholds,
        from,
        max,
        precision,
        step_duration: duration(&section.step_duration, "[capacity] step_duration"),
        warmup: duration(&section.warmup, "[capacity] warmup"),
    }
}

/// A search's precision, `10%` or `0.1`: the largest relative width of the answer's bracket.
pub fn parse_precision(s: &str) -> Result<f64, String> {
    let (text, scale) = match s.trim().strip_suffix('%') {
        Some(t) => (t, 0.01),
        None => (s.trim(), 1.0),
    };
    match text.trim().parse::<f64>() {
        Ok(v) => check_precision(v * scale, s),
        Err(_) => check_precision(f64::NAN, s),
    }
}

fn check_precision(v: f64, written: &str) -> Result<f64, String> {
    if v.is_finite() && v > 0.0 && v <= 1.0 {
        Ok(v)
    } else {
        Err(format!(
            "`{written}` is not a precision: expected e.g. 10% or 0.1 (above 0, at most 1)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precision_is_a_fraction_or_a_percentage_above_zero_and_at_most_one() {
        assert_eq!(parse_precision("10%"), Ok(0.1));
        assert_eq!(parse_precision("0.25"), Ok(0.25));
        assert_eq!(parse_precision(" 100% "), Ok(1.0));
        for bad in ["0", "0%", "150%", "1.5", "-3%", "ten", "", "NaN"] {
            assert!(parse_precision(bad).is_err(), "{bad}");
        }
    }
}
