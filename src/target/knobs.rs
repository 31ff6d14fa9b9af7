//! Knobs that make the reference messenger struggle on purpose, and the pure timing rules behind
//! them (stall phases), kept free of I/O so they are easy to test.

use std::time::Duration;

/// How the reference messenger misbehaves. Every field is optional in TOML; the default is a
/// healthy, fast service.
///
/// ```toml
/// latency = "20ms"
/// sms_delay = "300ms"
/// sms_rate = 2000.0
/// verify_capacity = 1500.0
/// failure_rate = 0.01
/// stall_every = "10s"
/// stall_for = "1s"
/// contacts_drop = 0.2
/// drop_sockets = "30s"
/// ```
#[derive(Debug, Clone, Default, serde::Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Knobs {
    /// Added latency on every HTTP request (before handling).  TOML: latency = "20ms"
    #[serde(with = "crate::duration::serde_duration")]
    pub latency: Duration,
    /// SMS gateway delivery delay per message.                    sms_delay = "300ms"
    #[serde(with = "crate::duration::serde_duration")]
    pub sms_delay: Duration,
    /// SMS gateway throughput, messages per second (None = unlimited). sms_rate = 2000.0
    pub sms_rate: Option<f64>,
    /// Max successful-or-attempted verifications per second; beyond it 429 + Retry-After. verify_capacity = 1500.0
    pub verify_capacity: Option<f64>,
    /// Fraction 0..=1 of HTTP requests answered 500 with a JSON error (after the latency). failure_rate = 0.01
    pub failure_rate: f64,
    /// Periodic stalls: every `stall_every`, the server stops answering for `stall_for` (requests and
    /// WebSocket relaying that arrive during the stall wait until it ends). stall_every = "10s", stall_for = "1s"
    ///
    /// A stall occupies the LAST `stall_for` of each `stall_every` period, counted from the moment
    /// the router was built (server start): with every 10s / for 1s the server stalls at 9–10 s,
    /// 19–20 s, … A request (or WebSocket frame) arriving at `t` inside a stall waits until that
    /// stall ends; a response finished inside a stall is also held until its end.
    #[serde(default, with = "crate::duration::serde_duration::option")]
    pub stall_every: Option<Duration>,
    /// Length of each stall; must be shorter than `stall_every`.
    #[serde(with = "crate::duration::serde_duration")]
    pub stall_for: Duration,
    /// Fraction 0..=1 of found contacts that contact discovery silently leaves out (rehearses the
    /// "new users could not see all their contacts" bug). contacts_drop = 0.2
    pub contacts_drop: f64,
    /// Drops every WebSocket after a random lifetime, exponentially distributed with this mean,
    /// without a close frame — as a crashed node, a load balancer reset or a lost mobile network
    /// does. Rehearses the reconnect storm a client `reconnect` policy then sends. drop_sockets = "30s"
    #[serde(default, with = "crate::duration::serde_duration::option")]
    pub drop_sockets: Option<Duration>,
}

impl Knobs {
    /// Checks ranges: rates > 0 and finite, fractions in 0..=1, `stall_for` > 0 and shorter than
    /// `stall_every` (and only set together with it). Every problem is reported, `; `-separated.
    pub fn validate(&self) -> Result<(), String> {
        let mut problems = Vec::new();
        for (name, rate) in [
            ("sms_rate", self.sms_rate),
            ("verify_capacity", self.verify_capacity),
        ] {
            if let Some(r) = rate {
                if !(r.is_finite() && r > 0.0) {
                    problems.push(format!("{name} must be a number above 0 (got {r})"));
                }
            }
        }
        for (name, f) in [
            ("failure_rate", self.failure_rate),
            ("contacts_drop", self.contacts_drop),
        ] {
            if !(0.0..=1.0).contains(&f) {
                problems.push(format!("{name} must be between 0 and 1 (got {f})"));
            }
        }
        match self.stall_every {
            Some(every) => {
                if self.stall_for.is_zero() {
                    problems.push("stall_for must be above 0 when stall_every is set".into());
                } else if self.stall_for >= every {
                    problems.push(format!(
                        "stall_for ({:?}) must be shorter than stall_every ({every:?})",
                        self.stall_for
                    ));
                }
            }
            None if !self.stall_for.is_zero() => {
                problems.push("stall_for needs stall_every (how often to stall)".into());
            }
            None => {}
        }
        if self.drop_sockets.is_some_and(|d| d.is_zero()) {
            problems.push("drop_sockets must be above 0 (the mean socket lifetime)".into());
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    }

    /// A copy that can never make the server panic: invalid rates mean unlimited, fractions are
    /// clamped into 0..=1 (NaN → 0), an impossible stall is dropped.
    pub(crate) fn sanitized(&self) -> Knobs {
        let rate = |r: Option<f64>| r.filter(|r| r.is_finite() && *r > 0.0);
        let fraction = |f: f64| if f.is_nan() { 0.0 } else { f.clamp(0.0, 1.0) };
        let stall_ok = matches!(self.stall_every, Some(every)
            if !self.stall_for.is_zero() && self.stall_for < every);
        Knobs {
            latency: self.latency,
            sms_delay: self.sms_delay,
            sms_rate: rate(self.sms_rate),
            verify_capacity: rate(self.verify_capacity),
            failure_rate: fraction(self.failure_rate),
            stall_every: if stall_ok { self.stall_every } else { None },
            stall_for: if stall_ok {
                self.stall_for
            } else {
                Duration::ZERO
            },
            contacts_drop: fraction(self.contacts_drop),
            drop_sockets: self.drop_sockets.filter(|d| !d.is_zero()),
        }
    }
}

/// If `elapsed` (time since server start) falls inside a stall, returns when that stall ends
/// (also as time since start). Stalls occupy the last `stall_for` of every `every` period.
pub(crate) fn stall_end(
    elapsed: Duration,
    every: Duration,
    stall_for: Duration,
) -> Option<Duration> {
    let (e, f, t) = (every.as_nanos(), stall_for.as_nanos(), elapsed.as_nanos());
    if e == 0 || f == 0 || f >= e {
        return None;
    }
    let period = t / e;
    if t % e >= e - f {
        let end = (period + 1).checked_mul(e)?;
        Some(Duration::from_nanos(u64::try_from(end).ok()?))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn stall_is_the_last_part_of_each_period() {
        let (every, stall) = (ms(10_000), ms(1_000));
        assert_eq!(stall_end(ms(0), every, stall), None);
        assert_eq!(stall_end(ms(8_999), every, stall), None);
        assert_eq!(stall_end(ms(9_000), every, stall), Some(ms(10_000)));
        assert_eq!(stall_end(ms(9_999), every, stall), Some(ms(10_000)));
        assert_eq!(stall_end(ms(10_000), every, stall), None);
        assert_eq!(stall_end(ms(19_500), every, stall), Some(ms(20_000)));
        assert_eq!(stall_end(ms(5), Duration::ZERO, stall), None);
        assert_eq!(stall_end(ms(5), every, every), None);
    }

    #[test]
    fn partial_toml_tables_deserialize() {
        let k: Knobs =
            toml::from_str("latency = \"20ms\"\nstall_every = \"10s\"\nstall_for = \"1s\"")
                .expect("valid knobs");
        assert_eq!(k.latency, ms(20));
        assert_eq!(k.stall_every, Some(ms(10_000)));
        assert_eq!(k.stall_for, ms(1_000));
        assert_eq!(k.sms_rate, None);
        assert!(k.validate().is_ok());
        let empty: Knobs = toml::from_str("").expect("empty table");
        assert_eq!(empty, Knobs::default());
        assert!(toml::from_str::<Knobs>("latncy = \"1s\"").is_err());
        assert!(toml::from_str::<Knobs>("latency = \"fast\"").is_err());
    }

    #[test]
    fn validation_reports_every_problem() {
        let k = Knobs {
            sms_rate: Some(0.0),
            verify_capacity: Some(f64::NAN),
            failure_rate: 1.5,
            contacts_drop: -0.1,
            stall_every: Some(ms(1_000)),
            stall_for: ms(1_000),
            drop_sockets: Some(Duration::ZERO),
            ..Knobs::default()
        };
        let err = k.validate().expect_err("invalid");
        for word in [
            "drop_sockets",
            "sms_rate",
            "verify_capacity",
            "failure_rate",
            "contacts_drop",
            "stall_for",
        ] {
            assert!(err.contains(word), "{err}");
        }
        let safe = k.sanitized();
        assert!(safe.validate().is_ok());
        assert_eq!(safe.failure_rate, 1.0);
        assert_eq!(safe.stall_every, None);
        assert_eq!(safe.drop_sockets, None);
        let lonely = Knobs {
            stall_for: ms(5),
            ..Knobs::default()
        };
        assert!(lonely.validate().is_err());
    }
}
