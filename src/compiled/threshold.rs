//! Thresholds as the compiled scenario holds them: an expression such as
//! `surge:verify.p99 < 250ms` parsed once (errors say at which column) and checked against the
//! plan's metrics, phases and regions. Evaluating one against a run's summary is `gate`'s job.

use std::fmt;
use std::time::Duration;

use toml::Spanned;

use crate::duration::parse_duration;
use crate::metrics::stat::Stat;
use crate::metrics::Catalog;
use crate::scenario::{self, Problems};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

impl Op {
    /// Whether `observed op limit` holds. Values equal but for float rounding are equal for
    /// every operator: `<=` holds and `<` fails on them, as `==` holds.
    pub fn holds(self, observed: f64, limit: f64) -> bool {
        let same = same_value(observed, limit);
        match self {
            Op::Lt => observed < limit && !same,
            Op::Le => observed < limit || same,
            Op::Gt => observed > limit && !same,
            Op::Ge => observed > limit || same,
            Op::Eq => same,
            Op::Ne => !same,
        }
    }
}

/// Whether two values are one number written two ways. What inrush observes has a coarse
/// resolution (a latency is whole microseconds, a share a ratio of counts), a limit is a
/// decimal, and binary floats hold neither exactly: `29.0 / 125.0` and `23.2 / 100.0` differ in
/// the last bit. One part in 10^12 is far above that rounding (a few parts in 10^16) and far
/// below any real difference: two latencies under a day differ by over one part in 10^11, two
/// shares of under 10^11 operations by more than that too.
fn same_value(a: f64, b: f64) -> bool {
    a == b || (a - b).abs() <= 1e-12 * a.abs().max(b.abs())
}

/// What a threshold looks at.
#[derive(Debug, Clone, PartialEq)]
pub enum Subject {
    /// `<metric>.<stat>`: latency from the intended start, milliseconds.
    Latency(String, Stat),
    /// `<metric>.count`, `.errors`, `.rate` (per second), `.error_rate` (fraction).
    MetricCount(String, MetricField),
    /// `errors.rate` (fraction of all operations) or `errors.count`, across every metric.
    AllErrors(MetricField),
    /// `messages.sent|acked|delivered|pending|lost|late|skipped|duplicated`, `messages.loss_rate`.
    Messages(&'static str),
    /// `arrivals.planned|started|dropped|completed|failed|cut_off`, `arrivals.drop_rate`.
    Arrivals(&'static str),
    /// `arrivals.lag.<stat>`: schedule lag, milliseconds.
    Lag(Stat),
    /// `contacts.expected|missing`, `contacts.missing_rate`.
    Contacts(&'static str),
    /// `counts.<name>`: frames counted by a flow's `count` rule.
    Count(String),
    /// `retries.count`, `retries.rate` (retried attempts among all attempts), `reconnects.count`,
    /// across every metric.
    Retries(&'static str),
    /// `bytes.sent|received`: the run's totals (a phase's or region's: its metrics' sum).
    Bytes(&'static str),
    /// `checks.passed|failed` (evaluations of the flows' `expect` conditions), `checks.rate`
    /// (the share that passed); whole run only.
    Checks(&'static str),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricField {
    Count,
    Errors,
    Rate,
    ErrorRate,
    /// Attempts retried under `retry` (not errors).
    Retries,
    /// Sockets reopened under `reconnect`.
    Reconnects,
    /// Bytes written and read for the metric (`bytes_sent`, `bytes_received`).
    BytesSent,
    BytesReceived,
}

/// What unit a subject is in: how a limit is read and an observed value written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    /// Milliseconds (latencies, lag).
    Millis,
    /// A number of things.
    #[default]
    Count,
    /// Per second of load.
    PerSecond,
    /// A share of a whole, 0..=1 (written as a percentage).
    Fraction,
    /// Bytes (limits in B, kB, MB, GB or KiB, MiB, GiB).
    Bytes,
}

impl Unit {
    /// `v` written with its unit: `2.569 ms`, `0.5666 %`, `197.2/s`, `20`.
    pub fn format(self, v: f64) -> String {
        // Observed values are rounded to 1e-6; this keeps float noise out of what is shown.
        let short = |x: f64| {
            let r = (x * 1e4).round() / 1e4;
            if r == 0.0 && x != 0.0 {
                format!("{x:.2e}")
            } else {
                format!("{r}")
            }
        };
        match self {
            Unit::Millis => format!("{} ms", short(v)),
            Unit::Count => short(v),
            Unit::PerSecond => format!("{}/s", short(v)),
            Unit::Fraction => format!("{} %", short(v * 100.0)),
            Unit::Bytes => format!("{} B", short(v)),
        }
    }
}

impl Subject {
    pub fn unit(&self) -> Unit {
        match self {
            Subject::Latency(..) | Subject::Lag(_) => Unit::Millis,
            Subject::MetricCount(_, f) | Subject::AllErrors(f) => match f {
                MetricField::Count
                | MetricField::Errors
                | MetricField::Retries
                | MetricField::Reconnects => Unit::Count,
                MetricField::Rate => Unit::PerSecond,
                MetricField::ErrorRate => Unit::Fraction,
                MetricField::BytesSent | MetricField::BytesReceived => Unit::Bytes,
            },
            Subject::Count(_) => Unit::Count,
            Subject::Bytes(_) => Unit::Bytes,
            Subject::Checks("rate") => Unit::Fraction,
            Subject::Checks(_) => Unit::Count,
            Subject::Retries(f) if f.ends_with("rate") => Unit::Fraction,
            Subject::Retries(_) => Unit::Count,
            Subject::Messages(f) | Subject::Arrivals(f) | Subject::Contacts(f) => {
                if f.ends_with("_rate") {
                    Unit::Fraction
                } else {
                    Unit::Count
                }
            }
        }
    }
}

impl Subject {
    /// Whether the subject exists for the whole run only, so that a phase or region prefix on
    /// it could never be observed: frame counts and the flows' checks are kept for the run, and
    /// messages lost or pending (so the loss rate) are decided at its end from every user's
    /// mailbox, not per phase or region.
    pub fn whole_run_only(&self) -> bool {
        match self {
            Subject::Count(_) | Subject::Checks(_) => true,
            Subject::Messages(f) => matches!(*f, "lost" | "pending" | "loss_rate"),
            _ => false,
        }
    }
}

/// A parsed threshold.
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    /// As the user wrote it (normalised spacing), for reports.
    pub expr: String,
    pub phase: Option<String>,
    pub subject: Subject,
    pub op: Op,
    /// In the subject's unit: milliseconds, a count, per second, or a fraction.
    pub limit: f64,
    /// Stop the run as soon as this threshold fails (after `grace`).
    pub abort_on_fail: bool,
    pub grace: Duration,
}

/// A parse error: what is wrong and at which character (0-based) of the expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub offset: usize,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "column {}: {}", self.offset + 1, self.message)
    }
}

fn err(offset: usize, message: impl Into<String>) -> ParseError {
    ParseError {
        offset,
        message: message.into(),
    }
}

const SUBJECTS_HELP: &str =
    "expected <metric>.<p50|p90|p95|p99|p99.9|p99.99|p(N)|min|mean|max|count|errors|rate|error_rate|retries|reconnects|bytes_sent|bytes_received>, bytes.<sent|received>, \
errors.rate, retries.<count|rate>, reconnects.count, messages.<sent|acked|delivered|pending|lost|late|skipped|duplicated|loss_rate>, \
arrivals.<planned|started|dropped|completed|failed|cut_off|drop_rate|lag.p99>, contacts.<expected|missing|missing_rate>, checks.<passed|failed|rate>";

/// The fields of `checks.<field>`.
const CHECKS: [&str; 3] = ["passed", "failed", "rate"];

/// Parses `[scope:]subject op value` (the scope a phase or a region), e.g. `verify.p99 < 250ms`, `surge:errors.rate < 1%`,
/// `messages.lost == 0`. `phases` and `catalog` are the plan's, to check names.
pub fn parse(text: &str, phases: &[String], catalog: &Catalog) -> Result<Threshold, ParseError> {
    let op_at = text
        .find(['<', '>', '=', '!'])
        .ok_or_else(|| err(text.len(), "expected a comparison: <, <=, >, >=, == or !="))?;
    let (left, rest) = text.split_at(op_at);
    let (op, op_len) = match rest.get(..2) {
        Some("<=") => (Op::Le, 2),
        Some(">=") => (Op::Ge, 2),
        Some("==") => (Op::Eq, 2),
        Some("!=") => (Op::Ne, 2),
        _ if rest.starts_with('<') => (Op::Lt, 1),
        _ if rest.starts_with('>') => (Op::Gt, 1),
        _ => return Err(err(op_at, "expected a comparison: <, <=, >, >=, == or !=")),
    };
    let lead = left.len() - left.trim_start().len();
    let left = left.trim();
    if left.is_empty() {
        return Err(err(lead, format!("missing subject: {SUBJECTS_HELP}")));
    }
    let (phase, subject_text, subject_at) = match left.split_once(':') {
        Some((p, s)) => {
            let p = p.trim();
            if !phases.iter().any(|q| q == p) {
                return Err(err(
                    lead,
                    format!(
                        "unknown phase or region `{p}`: the scenario has {}",
                        phases.join(", ")
                    ),
                ));
            }
            (
                Some(p.to_string()),
                s.trim(),
                lead + left.find(':').unwrap_or(0) + 1,
            )
        }
        None => (None, left, lead),
    };
    let subject = parse_subject(subject_text, catalog).map_err(|m| err(subject_at, m))?;
    if let (Some(scope), true) = (&phase, subject.whole_run_only()) {
        return Err(err(
            lead,
            format!(
                "`{subject_text}` is known for the whole run only, not per phase or region: \
                 drop the `{scope}:` prefix"
            ),
        ));
    }
    let value_at = op_at + op_len;
    let value_text = &text[value_at..];
    let value_at = value_at + (value_text.len() - value_text.trim_start().len());
    let limit = parse_value(value_text.trim(), subject.unit()).map_err(|m| err(value_at, m))?;
    let expr = format!(
        "{}{} {} {}",
        phase
            .as_deref()
            .map(|p| format!("{p}:"))
            .unwrap_or_default(),
        subject_text,
        match op {
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Eq => "==",
            Op::Ne => "!=",
        },
        value_text.trim()
    );
    Ok(Threshold {
        expr,
        phase,
        subject,
        op,
        limit,
        abort_on_fail: false,
        grace: Duration::ZERO,
    })
}

fn parse_subject(s: &str, catalog: &Catalog) -> Result<Subject, String> {
    let parts: Vec<&str> = s.split('.').collect();
    let field = |f: &str| match f {
        "count" => Some(MetricField::Count),
        "errors" => Some(MetricField::Errors),
        "rate" => Some(MetricField::Rate),
        "error_rate" => Some(MetricField::ErrorRate),
        "retries" => Some(MetricField::Retries),
        "reconnects" => Some(MetricField::Reconnects),
        "bytes_sent" => Some(MetricField::BytesSent),
        "bytes_received" => Some(MetricField::BytesReceived),
        _ => None,
    };
    let pick = |f: &str, allowed: &[&'static str]| allowed.iter().copied().find(|a| *a == f);
    let subject = match parts.as_slice() {
        ["errors", "rate"] => Some(Subject::AllErrors(MetricField::ErrorRate)),
        ["bytes", f] => pick(f, &["sent", "received"]).map(Subject::Bytes),
        ["errors", "count"] => Some(Subject::AllErrors(MetricField::Errors)),
        ["retries", "count"] => Some(Subject::Retries("count")),
        ["retries", "rate"] => Some(Subject::Retries("rate")),
        ["reconnects", "count"] => Some(Subject::Retries("reconnects")),
        ["messages", f] => pick(
            f,
            &[
                "sent",
                "acked",
                "delivered",
                "pending",
                "lost",
                "duplicated",
                "reordered",
                "late",
                "skipped",
                "loss_rate",
            ],
        )
        .map(Subject::Messages),
        ["arrivals", "lag", stat @ ..] if !stat.is_empty() => {
            Stat::parse(&stat.join(".")).map(Subject::Lag)
        }
        ["arrivals", f] => {
            let fields = [
                "planned",
                "started",
                "dropped",
                "completed",
                "failed",
                "cut_off",
                "drop_rate",
            ];
            pick(f, &fields).map(Subject::Arrivals)
        }
        // A step named `checks` keeps its other fields (`checks.count`, `checks.p99`).
        ["checks", f] if pick(f, &CHECKS).is_some() => pick(f, &CHECKS).map(Subject::Checks),
        ["counts", name] if catalog.counters().iter().any(|c| c == name) => {
            Some(Subject::Count(name.to_string()))
        }
        ["contacts", f] => pick(f, &["expected", "missing", "missing_rate"]).map(Subject::Contacts),
        [metric, rest @ ..] if !rest.is_empty() => {
            if !catalog.reported().any(|(_, name)| name == *metric) {
                let known: Vec<&str> = catalog.reported().map(|(_, n)| n).collect();
                return Err(format!(
                    "unknown metric `{metric}`: known metrics are {}",
                    known.join(", ")
                ));
            }
            let stat = rest.join(".");
            match (Stat::parse(&stat), field(&stat)) {
                (Some(st), _) => Some(Subject::Latency(metric.to_string(), st)),
                (None, Some(f)) => Some(Subject::MetricCount(metric.to_string(), f)),
                _ => None,
            }
        }
        _ => None,
    };
    subject.ok_or_else(|| format!("unknown subject `{s}`: {SUBJECTS_HELP}"))
}

/// A share written as a percentage (`1%`) or a fraction (`0.01`), as thresholds take it.
pub(crate) fn parse_fraction(s: &str) -> Result<f64, String> {
    parse_value(s.trim(), Unit::Fraction)
}

fn parse_value(s: &str, kind: Unit) -> Result<f64, String> {
    if s.is_empty() {
        return Err("missing value after the comparison".into());
    }
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-'))
        .unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let n: f64 = number
        .parse()
        .map_err(|_| format!("`{s}` is not a number"))?;
    if !n.is_finite() {
        return Err(format!("`{s}` is not a finite number"));
    }
    let unit = unit.trim();
    match (kind, unit) {
        (Unit::Millis, "") => Err(format!(
            "`{s}` needs a unit: this is a latency, write e.g. `{n}ms` or `{n}s`"
        )),
        (Unit::Millis, _) => {
            // The unit's name, its sign and range are checked as every duration's are; the
            // value is then read straight into milliseconds (not through a `Duration`'s whole
            // nanoseconds), so `0.779ms` is the very number a 779 µs latency is shown as.
            parse_duration(s)?;
            let (exponent, factor) = match unit {
                "us" | "µs" => (-3, 1.0),
                "ms" => (0, 1.0),
                "s" => (3, 1.0),
                "m" | "min" => (3, 60.0),
                "h" => (3, 3600.0),
                other => return Err(format!("`{other}` is not a unit a latency takes")),
            };
            Ok(shifted(number, exponent, n) * factor)
        }
        (Unit::Fraction, "%") => Ok(shifted(number, -2, n)),
        (Unit::Fraction, "") if (0.0..=1.0).contains(&n) => Ok(n),
        (Unit::Fraction, "") => Err(format!(
            "`{s}` is not a fraction between 0 and 1: write a percentage such as `1%`"
        )),
        (Unit::Count | Unit::PerSecond, "") => Ok(n),
        (Unit::PerSecond, "/s") => Ok(n),
        (Unit::Bytes, _) => {
            let scale = match unit {
                "" | "B" => 1.0,
                "kB" | "KB" => 1e3,
                "MB" => 1e6,
                "GB" => 1e9,
                "KiB" => 1024.0,
                "MiB" => 1024.0 * 1024.0,
                "GiB" => 1024.0 * 1024.0 * 1024.0,
                _ => {
                    return Err(format!(
                        "`{unit}` is not a size: use B, kB, MB, GB, KiB, MiB or GiB"
                    ))
                }
            };
            Ok(n * scale)
        }
        (_, unit) => Err(format!("`{unit}` is not a unit this subject takes")),
    }
}

/// `number` (the text of `n`) times 10^`exponent`, rounded once: `23.2%` is read as the
/// decimal 0.232, the number a share of 29 in 125 is, where `23.2 / 100.0` would be one bit
/// off it.
fn shifted(number: &str, exponent: i32, n: f64) -> f64 {
    format!("{number}e{exponent}")
        .parse()
        .unwrap_or(n * 10f64.powi(exponent))
}

/// `"subject" = "op value"` (or `{ check = "op value", ... }`) becomes one threshold; an error
/// points into the value string where the expression went wrong.
pub(super) fn compile_threshold(
    subject: &str,
    spec: &Spanned<scenario::ThresholdSpec>,
    phases: &[String],
    catalog: &Catalog,
    problems: &mut Problems,
) -> Option<Threshold> {
    let (check, abort_on_fail, grace) = match spec.get_ref() {
        scenario::ThresholdSpec::Check(c) => (c.as_str(), false, None),
        scenario::ThresholdSpec::Full(o) => (o.check.as_str(), o.abort_on_fail, o.grace.as_deref()),
    };
    let expr = format!("{subject} {check}");
    let mut t = match parse(&expr, phases, catalog) {
        Ok(t) => t,
        Err(e) => {
            problems.add(spec.span(), format!("threshold `{expr}`: {}", e.message));
            return None;
        }
    };
    t.abort_on_fail = abort_on_fail;
    if let Some(g) = grace {
        match parse_duration(g) {
            Ok(d) => t.grace = d,
            Err(e) => problems.add(spec.span(), format!("threshold grace: {e}")),
        }
    }
    Some(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phases() -> Vec<String> {
        vec!["baseline".into(), "surge".into()]
    }

    fn parse(text: &str, phases: &[String]) -> Result<Threshold, ParseError> {
        super::parse(text, phases, &Catalog::new(["register", "verify"]))
    }

    #[test]
    fn observed_values_carry_the_unit_their_limit_was_written_in() {
        let unit = |text: &str| parse(text, &phases()).expect("ok").subject.unit();
        // The cases: a latency read as a bare number looked like a pass against 100us.
        assert_eq!(unit("verify.p99 < 100us").format(2.569), "2.569 ms");
        assert_eq!(unit("verify.error_rate < 1%").format(0.005666), "0.5666 %");
        assert_eq!(unit("errors.rate < 1%").format(0.0), "0 %");
        assert_eq!(unit("verify.rate > 10").format(197.2), "197.2/s");
        assert_eq!(unit("messages.lost == 0").format(20.0), "20");
        assert_eq!(
            unit("arrivals.lag.p99 < 5ms").format(0.000_03),
            "3.00e-5 ms"
        );
    }

    #[test]
    fn a_k6_percentile_is_a_latency_threshold() {
        let t = parse("verify.p(95) < 250ms", &phases()).expect("ok");
        assert_eq!(t.subject, Subject::Latency("verify".into(), Stat::P95));
        let t = parse("surge:verify.p99.99 <= 1s", &phases()).expect("ok");
        assert_eq!(t.subject, Subject::Latency("verify".into(), Stat::P9999));
        assert_eq!(t.limit, 1000.0);
        let t = parse("arrivals.lag.p(99.9) < 5ms", &phases()).expect("ok");
        assert_eq!(t.subject, Subject::Lag(Stat::P999));
    }

    #[test]
    fn parses_each_form() {
        let t = parse("verify.p99 < 250ms", &phases()).expect("ok");
        assert_eq!(t.subject, Subject::Latency("verify".into(), Stat::P99));
        assert_eq!((t.op, t.limit), (Op::Lt, 250.0));
        let t = parse("surge:errors.rate<1%", &phases()).expect("ok");
        assert_eq!(t.phase.as_deref(), Some("surge"));
        assert_eq!(t.expr, "surge:errors.rate < 1%");
        assert!((t.limit - 0.01).abs() < 1e-12);
        let t = parse(" messages.lost == 0", &phases()).expect("ok");
        assert_eq!(
            (t.subject, t.op, t.limit),
            (Subject::Messages("lost"), Op::Eq, 0.0)
        );
        let t = parse("message_delivery.max <= 1.5s", &phases()).expect("ok");
        assert_eq!(t.limit, 1500.0);
        let t = parse("arrivals.lag.p99 < 5ms", &phases()).expect("ok");
        assert_eq!(t.subject, Subject::Lag(Stat::P99));
        let t = parse("register.rate >= 40/s", &phases()).expect("ok");
        assert_eq!(
            t.subject,
            Subject::MetricCount("register".into(), MetricField::Rate)
        );
        let t = parse("verify.retries < 100", &phases()).expect("ok");
        assert_eq!(
            t.subject,
            Subject::MetricCount("verify".into(), MetricField::Retries)
        );
        let t = parse("surge:retries.rate < 5%", &phases()).expect("ok");
        assert_eq!((t.subject, t.limit), (Subject::Retries("rate"), 0.05));
        let t = parse("reconnects.count <= 10", &phases()).expect("ok");
        assert_eq!(t.subject, Subject::Retries("reconnects"));
        assert!(parse("retries.rate < 5", &phases()).is_err(), "a fraction");
    }

    #[test]
    fn checks_have_a_rate_and_counts_for_the_whole_run() {
        let t = parse("checks.rate > 99%", &phases()).expect("ok");
        assert_eq!((t.subject.clone(), t.op), (Subject::Checks("rate"), Op::Gt));
        assert!((t.limit - 0.99).abs() < 1e-12);
        assert_eq!(t.subject.unit().format(0.998), "99.8 %");
        let t = parse("checks.failed == 0", &phases()).expect("ok");
        assert_eq!(
            (t.subject.clone(), t.limit),
            (Subject::Checks("failed"), 0.0)
        );
        assert_eq!(t.subject.unit(), Unit::Count);
        assert_eq!(
            parse("checks.passed >= 10", &phases()).map(|t| t.subject),
            Ok(Subject::Checks("passed"))
        );
        assert!(parse("checks.rate > 99", &phases()).is_err(), "a fraction");
        assert!(
            parse("checks.count > 1", &phases()).is_err(),
            "no such metric"
        );
        let with_step = Catalog::new(["checks"]);
        let t = super::parse("checks.count > 1", &phases(), &with_step).expect("the step's");
        assert_eq!(
            t.subject,
            Subject::MetricCount("checks".into(), MetricField::Count)
        );
        let e = parse("surge:checks.rate > 99%", &phases()).expect_err("whole run");
        assert!(e.message.contains("whole run"), "{e}");
    }

    #[test]
    fn subjects_known_for_the_whole_run_only_take_no_scope() {
        let catalog = Catalog::new(["verify"]).with_counters(vec!["presence".into()]);
        let parse = |text: &str| super::parse(text, &phases(), &catalog);
        for subject in [
            "messages.lost == 0",
            "messages.pending == 0",
            "messages.loss_rate < 1%",
            "counts.presence > 0",
            "checks.failed == 0",
        ] {
            assert!(parse(subject).is_ok(), "{subject}: the whole run's");
            let e = parse(&format!("surge:{subject}")).expect_err(subject);
            assert_eq!(e.offset, 0, "{subject}");
            assert!(
                e.message.contains("whole run only") && e.message.contains("`surge:`"),
                "{e}"
            );
        }
        // What a phase does keep stays open to a prefix.
        for scoped in [
            "surge:messages.sent > 0",
            "surge:messages.late == 0",
            "surge:verify.count > 0",
        ] {
            assert!(parse(scoped).is_ok(), "{scoped}");
        }
    }

    #[test]
    fn bytes_take_sizes() {
        let t = parse("verify.bytes_received < 2MB", &phases()).expect("ok");
        assert_eq!(
            (t.subject.clone(), t.limit),
            (
                Subject::MetricCount("verify".into(), MetricField::BytesReceived),
                2e6
            )
        );
        assert_eq!(t.subject.unit().format(1234.0), "1234 B");
        let t = parse("surge:bytes.sent <= 1KiB", &phases()).expect("ok");
        assert_eq!((t.subject, t.limit), (Subject::Bytes("sent"), 1024.0));
        assert_eq!(
            parse("bytes.received > 10", &phases()).map(|t| t.limit),
            Ok(10.0)
        );
        let e = parse("bytes.sent < 3 parsecs", &phases()).expect_err("no such size");
        assert!(e.message.contains("`parsecs` is not a size"), "{e}");
    }

    #[test]
    fn errors_point_at_the_wrong_part() {
        let e = parse("verify.p99 < 250", &phases()).expect_err("no unit");
        assert_eq!(e.offset, 13);
        assert!(e.message.contains("unit"), "{e}");
        let e = parse("verfy.p99 < 1s", &phases()).expect_err("unknown metric");
        assert_eq!(e.offset, 0);
        assert!(
            e.message.contains("verfy") && e.message.contains("verify"),
            "{e}"
        );
        let e = parse("plateau:verify.p99 < 1s", &phases()).expect_err("unknown phase");
        assert!(
            e.message.contains("plateau") && e.message.contains("surge"),
            "{e}"
        );
        let e = parse("verify.p99 ~ 1s", &phases()).expect_err("no operator");
        assert!(e.message.contains("comparison"), "{e}");
        let e = parse("errors.rate < 5", &phases()).expect_err("fraction");
        assert_eq!(e.offset, 14);
        let e = parse("verify.p42 < 1s", &phases()).expect_err("stat");
        assert!(e.message.contains("p99"), "{e}");
    }

    #[test]
    fn comparisons_hold_as_written() {
        assert!(Op::Lt.holds(1.0, 2.0) && !Op::Lt.holds(2.0, 2.0));
        assert!(Op::Le.holds(2.0, 2.0) && Op::Ge.holds(2.0, 2.0));
        assert!(Op::Eq.holds(0.1 + 0.2, 0.3) && Op::Ne.holds(1.0, 2.0));
        assert!(Op::Gt.holds(3.0, 2.0) && !Op::Gt.holds(2.0, 2.0));
    }

    /// `holds(text, observed)`: whether the threshold `text` holds on `observed`.
    fn holds(text: &str, observed: f64) -> bool {
        let t = parse(text, &phases()).expect("a valid threshold");
        t.op.holds(observed, t.limit)
    }

    #[test]
    fn a_limit_written_as_the_observed_value_is_shown_is_equal_to_it() {
        // The audit's cases: a max of 779 µs and a min of 413 µs (latencies are whole
        // microseconds, shown in ms), 29 errors in 125 operations.
        let max = 779.0 / 1000.0;
        assert_eq!(Unit::Millis.format(max), "0.779 ms");
        for limit in ["0.779ms", "779us", "0.000779s"] {
            assert!(holds(&format!("verify.max <= {limit}"), max), "{limit}");
            assert!(holds(&format!("verify.max == {limit}"), max), "{limit}");
            assert!(!holds(&format!("verify.max < {limit}"), max), "{limit}");
            assert!(!holds(&format!("verify.max != {limit}"), max), "{limit}");
        }
        assert!(!holds("verify.max <= 0.778ms", max), "a microsecond over");
        let min = 413.0 / 1000.0;
        assert!(holds("register.min >= 0.413ms", min));
        assert!(!holds("register.min > 0.413ms", min));
        assert!(
            !holds("register.min >= 0.414ms", min),
            "a microsecond under"
        );
        assert!(holds("verify.p99 <= 1.5m", 90_000.0) && !holds("verify.p99 < 0.025h", 90_000.0));
        let share = 29.0 / 125.0;
        assert_eq!(Unit::Fraction.format(share), "23.2 %");
        assert!(holds("register.error_rate <= 23.2%", share));
        assert!(holds("register.error_rate >= 0.232", share));
        assert!(!holds("register.error_rate < 23.2%", share));
        assert!(!holds("register.error_rate > 23.2%", share));
        assert!(!holds("register.error_rate <= 23.1999%", share));

        // Every latency to 20 ms, and every share of up to 200 operations whose percentage is
        // shown whole (to 4 decimals): written back as shown, the limit is met by <= and >=.
        for us in 0..20_000u32 {
            let observed = f64::from(us) / 1000.0;
            let shown = Unit::Millis.format(observed).replace(" ms", "ms");
            assert!(
                holds(&format!("verify.p99 <= {shown}"), observed),
                "{shown}"
            );
            assert!(
                holds(&format!("verify.p99 >= {shown}"), observed),
                "{shown}"
            );
            assert!(
                !holds(&format!("verify.p99 < {shown}"), observed),
                "{shown}"
            );
        }
        for count in 1..=200u64 {
            for errors in (0..=count).filter(|e| (e * 1_000_000) % count == 0) {
                let observed = errors as f64 / count as f64;
                let shown = Unit::Fraction.format(observed).replace(" %", "%");
                let text = |op: &str| format!("verify.error_rate {op} {shown}");
                assert!(holds(&text("<="), observed), "{errors}/{count}: {shown}");
                assert!(holds(&text(">="), observed), "{errors}/{count}: {shown}");
                assert!(!holds(&text(">"), observed), "{errors}/{count}: {shown}");
            }
        }
    }
}
