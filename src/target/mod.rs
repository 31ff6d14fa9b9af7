// TEMPORARY: replaced by the built-in messenger being written in /work/wt-target.
use std::time::Duration;
#[derive(Debug, Clone, Default, serde::Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Knobs {
    #[serde(with = "crate::units::serde_duration")]
    pub latency: Duration,
    #[serde(with = "crate::units::serde_duration")]
    pub sms_delay: Duration,
    pub sms_rate: Option<f64>,
    pub verify_capacity: Option<f64>,
    pub failure_rate: f64,
    #[serde(default, with = "crate::units::serde_duration::option")]
    pub stall_every: Option<Duration>,
    #[serde(with = "crate::units::serde_duration")]
    pub stall_for: Duration,
    pub contacts_drop: f64,
}
impl Knobs {
    pub fn validate(&self) -> Result<(), String> {
        Ok(())
    }
}
