//! `retry` and `reconnect` as a scenario file writes them: `true`, `false` or a table of
//! settings. The compiled policies (backoff, which failures are retried) are in
//! `compiled/retry.rs`.

use serde::Deserialize;

/// `retry = { attempts = 3, on = [429, 503, "connect"], backoff = "200ms", max_backoff = "10s",
/// jitter = "full" }`, or `retry = false` on a step to turn off `[run] retry`.
#[derive(Debug)]
pub enum RetrySetting {
    Switch(bool),
    Policy(RetrySpec),
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetrySpec {
    /// Attempts in all, the first one included (default 3).
    pub attempts: Option<i64>,
    /// HTTP statuses and the words "connect" and "timeout" (default [429, 503, "connect"]).
    pub on: Option<Vec<toml::Value>>,
    /// The first wait; each further one doubles (default 200ms).
    pub backoff: Option<String>,
    /// No wait is longer than this (default 10s).
    pub max_backoff: Option<String>,
    /// "full" (default: a uniform draw in [0, backoff·2^k]) or "none".
    pub jitter: Option<String>,
}

/// `reconnect = { attempts = 5, backoff = "500ms", max_backoff = "10s", jitter = "full" }` on a
/// `ws` step (or in `[run]`), or `reconnect = false`.
#[derive(Debug)]
pub enum ReconnectSetting {
    Switch(bool),
    Policy(ReconnectSpec),
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReconnectSpec {
    /// Connection attempts after each drop before the user gives up (default 5).
    pub attempts: Option<i64>,
    /// The wait before the first attempt; each further one doubles (default 500ms).
    pub backoff: Option<String>,
    pub max_backoff: Option<String>,
    pub jitter: Option<String>,
}

enum SwitchOr<T> {
    Switch(bool),
    Table(T),
}

/// `true`, `false` or a table. Written by hand rather than `untagged` so that a misspelt key
/// says which keys exist instead of "did not match any variant".
fn switch_or_table<'de, D, T>(d: D, what: &str) -> Result<SwitchOr<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    use serde::de::Error;
    match toml::Value::deserialize(d)? {
        toml::Value::Boolean(b) => Ok(SwitchOr::Switch(b)),
        v @ toml::Value::Table(_) => v
            .try_into::<T>()
            .map(SwitchOr::Table)
            .map_err(|e| D::Error::custom(format!("{what}: {}", e.message()))),
        other => Err(D::Error::custom(format!(
            "{what} takes true, false or a table, not `{other}`"
        ))),
    }
}

impl<'de> Deserialize<'de> for RetrySetting {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(match switch_or_table(d, "retry")? {
            SwitchOr::Switch(b) => RetrySetting::Switch(b),
            SwitchOr::Table(spec) => RetrySetting::Policy(spec),
        })
    }
}

impl<'de> Deserialize<'de> for ReconnectSetting {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(match switch_or_table(d, "reconnect")? {
            SwitchOr::Switch(b) => ReconnectSetting::Switch(b),
            SwitchOr::Table(spec) => ReconnectSetting::Policy(spec),
        })
    }
}
