//! The run's checks, as k6 users know them: every `expect` condition of the flows, with how
//! many answers passed and failed it, and the overall pass rate (`checks` in summary.json,
//! `checks.rate` / `.passed` / `.failed` in thresholds); and the bytes a run moved, written
//! for people.
//!
//! A check is one condition of a step's `expect` (`status = 200`, one JSON path, `exists`,
//! `contains`, `regex`, one XML path…), named `<step> <condition>`: `verify status == 200`,
//! `login $.token exists`. Each answer a step judges (an HTTP response, the frame a receive
//! matched) evaluates every condition once; a step's final attempt counts, a retried one does
//! not (as its error does not).

use serde::{Deserialize, Serialize};

use crate::metrics::{Catalog, Recorder};

/// Every check of the run, passed and failed, and the share that passed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Checks {
    pub passed: u64,
    pub failed: u64,
    /// `passed / (passed + failed)`, 0..=1; `null` when no check was evaluated.
    pub rate: Option<f64>,
    /// Every check of the flows in file order, evaluated or not.
    pub by_check: Vec<Check>,
}

/// One check's evaluations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    /// `<step> <condition>`: the step's name (its transaction's, or its request line, when it
    /// has none) and the condition as the scenario writes it.
    pub name: String,
    pub passed: u64,
    pub failed: u64,
}

impl Checks {
    /// The run's checks from its recorder, named by the catalog.
    pub fn of(r: &Recorder, catalog: &Catalog) -> Checks {
        let by_check: Vec<Check> = catalog
            .checks()
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let [passed, failed] = r.check_counts(i);
                Check {
                    name: name.clone(),
                    passed,
                    failed,
                }
            })
            .collect();
        let passed = by_check.iter().map(|c| c.passed).sum();
        let failed = by_check.iter().map(|c| c.failed).sum();
        Checks {
            passed,
            failed,
            rate: rate(passed, failed),
            by_check,
        }
    }

    /// Whether the flows have no check at all (summary.json then leaves `checks` out).
    pub fn is_empty(&self) -> bool {
        self.by_check.is_empty() && self.passed + self.failed == 0
    }

    /// `99.8 % (12034 passed, 21 failed)`, or `none evaluated`.
    pub fn text(&self) -> String {
        match percent(self.passed, self.failed) {
            Some(p) => format!("{p} ({} passed, {} failed)", self.passed, self.failed),
            None => "none evaluated".to_string(),
        }
    }

    /// The checks that failed at least once, most failures first (then in file order): the
    /// only ones the reports break down.
    pub fn failing(&self) -> Vec<&Check> {
        let mut f: Vec<&Check> = self.by_check.iter().filter(|c| c.failed > 0).collect();
        f.sort_by_key(|c| std::cmp::Reverse(c.failed));
        f
    }
}

impl Check {
    /// The share of this check's evaluations that passed, as `99.8 %`.
    pub fn rate_text(&self) -> String {
        percent(self.passed, self.failed).unwrap_or_else(|| "-".into())
    }
}

fn rate(passed: u64, failed: u64) -> Option<f64> {
    let all = passed + failed;
    (all > 0).then(|| crate::decimals::round(passed as f64 / all as f64, 6))
}

/// The pass rate rounded down to 0.1 % (in integers, so that a run with any failure never
/// reads `100.0 %`); `None` without evaluations.
fn percent(passed: u64, failed: u64) -> Option<String> {
    let all = u128::from(passed) + u128::from(failed);
    let tenths = (all > 0).then(|| u128::from(passed) * 1000 / all)?;
    Some(format!("{}.{} %", tenths / 10, tenths % 10))
}

/// A byte count in decimal units as k6 writes them: `512 B`, `1.5 kB`, `12.3 MB`, `4.0 GB`.
pub fn bytes_text(n: u64) -> String {
    const UNITS: [&str; 4] = ["kB", "MB", "GB", "TB"];
    if n < 1000 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1000.0;
    let mut unit = 0;
    while v >= 1000.0 && unit + 1 < UNITS.len() {
        v /= 1000.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_sum_their_evaluations_and_rate_never_rounds_up_to_all() {
        let catalog = Catalog::new(["login"]).with_checks(vec![
            "login status == 200".into(),
            "login $.token exists".into(),
            "login matches /x/".into(),
        ]);
        let mut r = Recorder::new(catalog.len());
        for _ in 0..9999 {
            r.check(0, true);
        }
        r.check(1, false);
        let c = Checks::of(&r, &catalog);
        assert_eq!((c.passed, c.failed), (9999, 1));
        assert_eq!(c.rate, Some(0.9999));
        assert_eq!(c.text(), "99.9 % (9999 passed, 1 failed)");
        assert_eq!(c.by_check.len(), 3, "a check never evaluated is listed");
        let failing: Vec<&str> = c.failing().iter().map(|c| c.name.as_str()).collect();
        assert_eq!(failing, ["login $.token exists"]);
        assert_eq!(c.by_check[1].rate_text(), "0.0 %");
        assert_eq!(c.by_check[2].rate_text(), "-");
        let none = Checks::of(&Recorder::new(1), &Catalog::new(["a"]));
        assert!(none.is_empty());
        assert_eq!(none.rate, None);
        assert_eq!(none.text(), "none evaluated");
    }

    #[test]
    fn bytes_are_written_in_decimal_units() {
        assert_eq!(bytes_text(0), "0 B");
        assert_eq!(bytes_text(999), "999 B");
        assert_eq!(bytes_text(1500), "1.5 kB");
        assert_eq!(bytes_text(12_345_678), "12.3 MB");
        assert_eq!(bytes_text(4_000_000_000), "4.0 GB");
    }
}
