//! `[run] overload`: the limits beyond which the generator's own numbers are compromised and a
//! run's verdict is `inconclusive` (exit 4), whatever its thresholds say. They travel with the
//! summary, so `inrush report` re-gates a saved run by the limits it ran with.

use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::duration::parse_duration;
use crate::scenario::{OverloadSpec, Problems};

/// The generator's limits, in the summary's units.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct OverloadLimits {
    /// Schedule lag p99 (actual − intended start of arrivals and timed pauses) above this, in
    /// milliseconds: the load arrived late, so the target saw less than planned.
    pub schedule_lag_p99_ms: f64,
    /// Loop lag p99 (how late a worker's periodic probe tick ran) above this, in milliseconds:
    /// ready work, responses included, waited for the generator.
    pub loop_lag_p99_ms: f64,
    /// Share of planned arrivals dropped behind schedule above this (0 to 1).
    pub behind_schedule: f64,
}

impl Default for OverloadLimits {
    /// 5 ms of lag is where the summary has always warned (and `compare` calls a run
    /// unreliable): a whole millisecond-scale latency budget. Any arrival the generator could
    /// not start is load the target never saw.
    fn default() -> Self {
        OverloadLimits {
            schedule_lag_p99_ms: 5.0,
            loop_lag_p99_ms: 5.0,
            behind_schedule: 0.0,
        }
    }
}

/// The scenario's limits, each defaulting on its own; errors are positioned.
pub fn compile(spec: &Option<Spanned<OverloadSpec>>, problems: &mut Problems) -> OverloadLimits {
    let mut limits = OverloadLimits::default();
    let Some(spec) = spec else {
        return limits;
    };
    let spec = spec.get_ref();
    let millis =
        |text: &Spanned<String>, problems: &mut Problems| match parse_duration(text.get_ref()) {
            Ok(d) => Some(d.as_secs_f64() * 1000.0),
            Err(e) => {
                problems.add(text.span(), e);
                None
            }
        };
    if let Some(ms) = spec
        .schedule_lag_p99
        .as_ref()
        .and_then(|t| millis(t, problems))
    {
        limits.schedule_lag_p99_ms = ms;
    }
    if let Some(ms) = spec.loop_lag_p99.as_ref().and_then(|t| millis(t, problems)) {
        limits.loop_lag_p99_ms = ms;
    }
    if let Some(text) = &spec.behind_schedule {
        match crate::compiled::threshold::parse_fraction(text.get_ref()) {
            Ok(share) if (0.0..=1.0).contains(&share) => limits.behind_schedule = share,
            Ok(_) => problems.add(text.span(), "behind_schedule must be between 0% and 100%"),
            Err(e) => problems.add(text.span(), e),
        }
    }
    limits
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compile_run(run: &str) -> Result<crate::compiled::Plan, crate::error::ScenarioErrors> {
        let text = format!(
            "name = \"t\"\n[target]\nbuiltin = {{}}\n[load]\nphases = [ {{ name = \"a\", duration = \"1s\", rate = 1 }} ]\n[run]\n{run}\n"
        );
        crate::compiled::compile(std::path::Path::new("t.toml"), &text, Some(1))
    }

    #[test]
    fn limits_default_each_on_their_own_and_errors_say_where() {
        let plan = compile_run("").expect("valid");
        assert_eq!(plan.overload, OverloadLimits::default());
        let plan = compile_run(r#"overload = { loop_lag_p99 = "20ms", behind_schedule = "0.5%" }"#)
            .expect("valid");
        assert_eq!(plan.overload.loop_lag_p99_ms, 20.0);
        assert_eq!(plan.overload.behind_schedule, 0.005);
        assert_eq!(plan.overload.schedule_lag_p99_ms, 5.0);
        let errs = compile_run(r#"overload = { schedule_lag_p99 = "fast" }"#)
            .expect_err("not a duration")
            .0;
        assert!(errs[0].to_string().contains("t.toml:7:"), "{}", errs[0]);
        let errs = compile_run(r#"overload = { behind_schedule = "150%" }"#)
            .expect_err("over 100 %")
            .0;
        assert!(errs[0].message.contains("between 0% and 100%"), "{errs:?}");
        assert!(compile_run(r#"overload = { lag = "1ms" }"#).is_err());
    }
}
