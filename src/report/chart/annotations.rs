//! What a run's charts take from its summary besides the timeline: the order the flow declares
//! its metrics in (panels follow it, as the tables do) and the latency thresholds, drawn as
//! reference lines on the panel of the metric they gate.

use crate::compiled::threshold::{self, Op, Subject, Unit};
use crate::metrics::stat::Stat;
use crate::metrics::{Catalog, MetricId};
use crate::report::summary::Summary;

/// A latency threshold's limit, to be drawn on `metric`'s panel.
#[derive(Debug, Clone, PartialEq)]
pub struct ThresholdLine {
    pub metric: String,
    /// The limit, milliseconds.
    pub limit_ms: f64,
    /// What the line says: `p99 < 100 ms`, `surge: p99 < 250 ms`.
    pub label: String,
    /// The phase the threshold is scoped to (the line spans only it), `None` for the whole run.
    pub phase: Option<String>,
    pub passed: bool,
}

/// The order of panels and the threshold lines of a run's charts. The default has neither:
/// panels in name order, no lines (a timeline drawn without its summary).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Annotations {
    /// Metric names in flow order; names not listed come after them, in name order.
    pub order: Vec<String>,
    pub lines: Vec<ThresholdLine>,
}

impl Annotations {
    /// From a run's summary: its metrics' order (the catalog's, as the tables show them) and a
    /// line per threshold on a latency statistic (`verify.p99 < 100ms` on `verify`,
    /// `arrivals.lag.p99 < 5ms` on `schedule_lag`). A threshold scoped to a region is left
    /// out: the charts draw the whole run, not one region's users.
    pub fn of(summary: &Summary) -> Annotations {
        let catalog = Catalog::new(summary.metrics.keys());
        let phases: Vec<String> = summary.phases.keys().cloned().collect();
        let scopes: Vec<String> = phases
            .iter()
            .chain(summary.regions.keys())
            .cloned()
            .collect();
        let lines = summary
            .thresholds
            .iter()
            .filter_map(|t| {
                // Every saved threshold parsed when the run (or `report`) checked it; one that
                // no longer does simply gets no line.
                let parsed = threshold::parse(&t.expr, &scopes, &catalog).ok()?;
                if parsed
                    .phase
                    .as_ref()
                    .is_some_and(|scope| !phases.contains(scope))
                {
                    return None;
                }
                let (metric, stat) = match parsed.subject {
                    Subject::Latency(metric, stat) => (metric, stat),
                    Subject::Lag(stat) => (catalog.name(MetricId::SCHEDULE_LAG).to_string(), stat),
                    _ => return None,
                };
                let scope = parsed
                    .phase
                    .as_deref()
                    .map_or(String::new(), |p| format!("{p}: "));
                Some(ThresholdLine {
                    metric,
                    limit_ms: parsed.limit,
                    label: format!(
                        "{scope}{} {} {}",
                        stat_label(stat),
                        op_symbol(parsed.op),
                        Unit::Millis.format(parsed.limit)
                    ),
                    phase: parsed.phase,
                    passed: t.passed,
                })
            })
            .collect();
        Annotations {
            order: summary.metrics.keys().cloned().collect(),
            lines,
        }
    }

    /// `names` in flow order: those in [`Annotations::order`] first, as listed, then the rest
    /// in name order.
    pub fn ordered<'a>(&self, names: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
        let mut names: Vec<&str> = names.into_iter().collect();
        names.sort_by_key(|n| (self.order.iter().position(|o| o == n), *n));
        // `None` sorts first: move the unlisted names after the listed ones.
        let unlisted = names
            .iter()
            .take_while(|n| !self.order.iter().any(|o| o == *n))
            .count();
        names.rotate_left(unlisted);
        names
    }

    /// The threshold lines on `metric`'s panel.
    pub fn lines_on<'a>(&'a self, metric: &'a str) -> impl Iterator<Item = &'a ThresholdLine> {
        self.lines.iter().filter(move |l| l.metric == metric)
    }
}

/// Whether `name` is one of the generator's measurements of itself (schedule lag, loop lag),
/// by the catalog's own rule: they are not operations of the target.
pub fn is_generator(name: &str) -> bool {
    Catalog::new(std::iter::empty::<&str>())
        .id(name)
        .is_some_and(MetricId::is_generator)
}

/// A statistic as a reader writes it: `p99`, `p99.9`, `mean`.
fn stat_label(stat: Stat) -> &'static str {
    match stat {
        Stat::P999 => "p99.9",
        Stat::P9999 => "p99.99",
        other => other.name(),
    }
}

fn op_symbol(op: Op) -> &'static str {
    match op {
        Op::Lt => "<",
        Op::Le => "≤",
        Op::Gt => ">",
        Op::Ge => "≥",
        Op::Eq => "=",
        Op::Ne => "≠",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flow_order_first_then_the_rest_by_name() {
        let notes = Annotations {
            order: vec!["register".into(), "verify".into(), "discover".into()],
            lines: Vec::new(),
        };
        let names = ["zeta", "discover", "alpha", "verify", "register"];
        assert_eq!(
            notes.ordered(names),
            ["register", "verify", "discover", "alpha", "zeta"]
        );
        assert_eq!(
            Annotations::default().ordered(names),
            ["alpha", "discover", "register", "verify", "zeta"]
        );
    }

    #[test]
    fn lag_metrics_are_the_generators() {
        assert!(is_generator("schedule_lag") && is_generator("loop_lag"));
        assert!(!is_generator("message_ack") && !is_generator("verify"));
    }
}
