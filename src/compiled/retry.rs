//! Retries and reconnects as real clients do them: exponential backoff with jitter, a server's
//! `Retry-After` honoured, and a dropped socket reopened. A surge is not only new users: every
//! client that got a 429 or lost its socket comes back, and the target must survive that storm
//! too.
//!
//! Everything here is pure (no I/O): the engine asks which failures to retry, how long to wait,
//! and counts what happened.

use std::ops::Range;
use std::time::Duration;

use rand::Rng;
use rand::RngExt;
use toml::Spanned;

use crate::clients::OpError;
use crate::duration::parse_duration;
pub use crate::metrics::recorder::RetryReason;
use crate::metrics::ErrorClass;
use crate::scenario::retry::{ReconnectSetting, ReconnectSpec, RetrySetting, RetrySpec};
use crate::scenario::Problems;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Jitter {
    /// AWS "full jitter": a uniform draw in [0, backoff·2^k]; spreads a herd of retries out.
    Full,
    /// Exactly backoff·2^k: synchronised retry waves, as naive clients send them.
    None,
}

/// Exponential backoff: the k-th wait (k from 0) is at most `base·2^k`, capped at `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub max: Duration,
    pub jitter: Jitter,
}

impl Backoff {
    fn describe(&self) -> String {
        let jitter = match self.jitter {
            Jitter::Full => "full jitter",
            Jitter::None => "no jitter",
        };
        format!(
            "backoff {:?} doubling to {:?}, {jitter}",
            self.base, self.max
        )
    }

    /// The ceiling of the k-th wait, before jitter.
    pub fn ceiling(&self, k: u32) -> Duration {
        let factor = 1u32.checked_shl(k.min(31)).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.max)
    }

    /// The k-th wait (k from 0), drawn from the user's seeded rng.
    pub fn delay<R: Rng>(&self, k: u32, rng: &mut R) -> Duration {
        let ceiling = self.ceiling(k);
        match self.jitter {
            Jitter::None => ceiling,
            Jitter::Full if ceiling.is_zero() => ceiling,
            Jitter::Full => Duration::from_nanos(rng.random_range(0..=ceiling.as_nanos() as u64)),
        }
    }
}

/// When and how a timed step is tried again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (at least 1).
    pub attempts: u32,
    pub on: Vec<RetryReason>,
    pub backoff: Backoff,
}

impl RetryPolicy {
    /// The reason to retry this failure, when the policy covers it. A status counts first: a
    /// WebSocket handshake refused with 503 is retried under `on = [503]` as under "connect".
    pub fn reason(&self, e: &OpError) -> Option<RetryReason> {
        let covered = |r: RetryReason| self.on.contains(&r).then_some(r);
        let by_class = match e.class {
            ErrorClass::Connect => Some(RetryReason::Connect),
            ErrorClass::Timeout => Some(RetryReason::Timeout),
            _ => None,
        };
        // An answer with a status is judged by its status alone: a WebSocket upgrade refused with
        // 401 (a bad token) is not a connection failure to retry, whatever its error class.
        match e.status {
            Some(status) => covered(RetryReason::Status(status)),
            None => by_class.and_then(covered),
        }
    }
}

impl RetryPolicy {
    /// One line for `inrush validate`.
    pub fn describe(&self) -> String {
        let on: Vec<String> = self.on.iter().map(|r| r.name()).collect();
        format!(
            "{} attempts on {}; {}",
            self.attempts,
            on.join(", "),
            self.backoff.describe()
        )
    }
}

impl ReconnectPolicy {
    /// One line for `inrush validate`.
    pub fn describe(&self) -> String {
        format!(
            "{} tries per drop; {}",
            self.attempts,
            self.backoff.describe()
        )
    }
}

/// How a `ws` step's socket is reopened after the server or the network dropped it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReconnectPolicy {
    /// Connection attempts per drop (at least 1).
    pub attempts: u32,
    pub backoff: Backoff,
}

/// A step's own setting, resolved against `[run]` when the step runs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Override<T> {
    /// Whatever `[run]` says.
    #[default]
    Inherit,
    Off,
    On(T),
}

impl<T> Override<T> {
    pub fn resolve<'a>(&'a self, run: Option<&'a T>) -> Option<&'a T> {
        match self {
            Override::Inherit => run,
            Override::Off => None,
            Override::On(p) => Some(p),
        }
    }
}

/// Where a table's problems are reported: at the key inside the table's span (TOML keeps no
/// positions inside an untagged value, so the key is found in the text).
struct At<'s, 'p, 'a> {
    span: &'s Range<usize>,
    problems: &'p mut Problems<'a>,
}

impl At<'_, '_, '_> {
    fn add(&mut self, key: &str, message: impl Into<String>) {
        // ` backoff` so that `max_backoff` is not taken for `backoff`.
        let spaced = self.problems.locate(self.span, &format!(" {key}"));
        let at = if spaced == self.span.start {
            self.problems.locate(self.span, key)
        } else {
            spaced + 1
        };
        self.problems.add(at..at, message);
    }

    fn duration(&mut self, key: &str, value: &Option<String>, default: Duration) -> Duration {
        match value {
            None => default,
            Some(s) => parse_duration(s).unwrap_or_else(|e| {
                self.add(key, format!("{key}: {e}"));
                default
            }),
        }
    }

    fn attempts(&mut self, value: Option<i64>, default: u32) -> u32 {
        match value {
            None => default,
            Some(a) if (1..=1000).contains(&a) => a as u32,
            Some(_) => {
                self.add("attempts", "attempts must be between 1 and 1000");
                default
            }
        }
    }

    fn backoff(
        &mut self,
        base: &Option<String>,
        max: &Option<String>,
        jitter: &Option<String>,
        default_base: Duration,
    ) -> Backoff {
        let base = self.duration("backoff", base, default_base);
        let max = self.duration("max_backoff", max, Duration::from_secs(10).max(base));
        if max < base {
            self.add(
                "max_backoff",
                "max_backoff must not be shorter than backoff",
            );
        }
        let jitter = match jitter.as_deref() {
            None | Some("full") => Jitter::Full,
            Some("none") => Jitter::None,
            Some(other) => {
                self.add(
                    "jitter",
                    format!("jitter `{other}` is unknown: expected \"full\" or \"none\""),
                );
                Jitter::Full
            }
        };
        Backoff {
            base,
            max: max.max(base),
            jitter,
        }
    }
}

/// Compiles a retry table found at `span`; problems point at the wrong key.
pub fn compile_retry(spec: &RetrySpec, span: Range<usize>, problems: &mut Problems) -> RetryPolicy {
    let mut at = At {
        span: &span,
        problems,
    };
    let attempts = at.attempts(spec.attempts, 3);
    let on = match &spec.on {
        None => vec![
            RetryReason::Status(429),
            RetryReason::Status(503),
            RetryReason::Connect,
        ],
        Some(list) => {
            let mut on = Vec::new();
            for v in list {
                match v {
                    toml::Value::Integer(n) if (100..=599).contains(n) => {
                        on.push(RetryReason::Status(*n as u16))
                    }
                    toml::Value::String(s) if s == "connect" => on.push(RetryReason::Connect),
                    toml::Value::String(s) if s == "timeout" => on.push(RetryReason::Timeout),
                    _ => at.add(
                        "on",
                        format!(
                            "retry on `{v}` is unknown: expected HTTP statuses (e.g. 429, 503), \"connect\" or \"timeout\""
                        ),
                    ),
                }
            }
            if list.is_empty() {
                at.add("on", "retry `on` is empty: nothing would be retried");
            }
            on
        }
    };
    let backoff = at.backoff(
        &spec.backoff,
        &spec.max_backoff,
        &spec.jitter,
        Duration::from_millis(200),
    );
    RetryPolicy {
        attempts,
        on,
        backoff,
    }
}

pub fn compile_reconnect(
    spec: &ReconnectSpec,
    span: Range<usize>,
    problems: &mut Problems,
) -> ReconnectPolicy {
    let mut at = At {
        span: &span,
        problems,
    };
    ReconnectPolicy {
        attempts: at.attempts(spec.attempts, 5),
        backoff: at.backoff(
            &spec.backoff,
            &spec.max_backoff,
            &spec.jitter,
            Duration::from_millis(500),
        ),
    }
}

/// A step's `retry = ...`: `true` takes the defaults, `false` turns `[run] retry` off.
pub fn retry_override(
    setting: Option<&Spanned<RetrySetting>>,
    problems: &mut Problems,
) -> Override<RetryPolicy> {
    match setting {
        None => Override::Inherit,
        Some(s) => match s.get_ref() {
            RetrySetting::Switch(false) => Override::Off,
            RetrySetting::Switch(true) => {
                Override::On(compile_retry(&RetrySpec::default(), s.span(), problems))
            }
            RetrySetting::Policy(p) => Override::On(compile_retry(p, s.span(), problems)),
        },
    }
}

pub fn reconnect_override(
    setting: Option<&Spanned<ReconnectSetting>>,
    problems: &mut Problems,
) -> Override<ReconnectPolicy> {
    match setting {
        None => Override::Inherit,
        Some(s) => match s.get_ref() {
            ReconnectSetting::Switch(false) => Override::Off,
            ReconnectSetting::Switch(true) => Override::On(compile_reconnect(
                &ReconnectSpec::default(),
                s.span(),
                problems,
            )),
            ReconnectSetting::Policy(p) => Override::On(compile_reconnect(p, s.span(), problems)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn backoff_doubles_up_to_its_cap_and_full_jitter_stays_below_the_ceiling() {
        let ms = Duration::from_millis;
        let b = Backoff {
            base: ms(100),
            max: ms(1000),
            jitter: Jitter::None,
        };
        let mut rng = rand::rngs::SmallRng::seed_from_u64(7);
        let waits: Vec<Duration> = (0..6).map(|k| b.delay(k, &mut rng)).collect();
        assert_eq!(
            waits,
            [ms(100), ms(200), ms(400), ms(800), ms(1000), ms(1000)]
        );
        assert_eq!(
            b.ceiling(200),
            ms(1000),
            "huge k saturates, never overflows"
        );

        let full = Backoff {
            jitter: Jitter::Full,
            ..b
        };
        for k in 0..5 {
            let draws: Vec<Duration> = (0..2000).map(|_| full.delay(k, &mut rng)).collect();
            let ceiling = full.ceiling(k);
            assert!(draws.iter().all(|d| *d <= ceiling));
            // Uniform on [0, ceiling]: the mean is half the ceiling (±5 % over 2000 draws).
            let mean = draws.iter().map(Duration::as_secs_f64).sum::<f64>() / 2000.0;
            let half = ceiling.as_secs_f64() / 2.0;
            assert!(
                (mean - half).abs() < 0.05 * ceiling.as_secs_f64(),
                "k={k} mean {mean}"
            );
            // And it spreads: some draws in the lower and some in the upper quarter.
            assert!(draws.iter().any(|d| d.as_secs_f64() < half / 2.0));
            assert!(draws.iter().any(|d| d.as_secs_f64() > 1.5 * half));
        }
    }

    #[test]
    fn policy_retries_only_what_it_names() {
        let p = RetryPolicy {
            attempts: 3,
            on: vec![RetryReason::Status(429), RetryReason::Connect],
            backoff: Backoff {
                base: Duration::ZERO,
                max: Duration::ZERO,
                jitter: Jitter::None,
            },
        };
        let status = |s| OpError::new(ErrorClass::HttpStatus, "x").with_status(s, None);
        assert_eq!(p.reason(&status(429)), Some(RetryReason::Status(429)));
        assert_eq!(p.reason(&status(500)), None);
        assert_eq!(
            p.reason(&OpError::new(ErrorClass::Connect, "refused")),
            Some(RetryReason::Connect)
        );
        assert_eq!(p.reason(&OpError::new(ErrorClass::Timeout, "slow")), None);
        assert_eq!(
            p.reason(&OpError::new(ErrorClass::CheckFailed, "bad")),
            None
        );
        // A refused WebSocket handshake is judged by its status, like any answer: a 401 (a bad
        // token) is not retried as a connection failure.
        let handshake = |s| OpError::new(ErrorClass::Connect, "x").with_status(s, None);
        assert_eq!(p.reason(&handshake(429)), Some(RetryReason::Status(429)));
        assert_eq!(p.reason(&handshake(503)), None);
        assert_eq!(p.reason(&handshake(401)), None);
    }
}
