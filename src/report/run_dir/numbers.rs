//! The times a summary states must be times a run can have: a duration that is not finite,
//! negative or longer than any run would otherwise reach the charts and the HTML's end time
//! (`started_at + duration_s`) as nonsense, or as a date no formatter can write.

use std::path::Path;

use crate::error::Error;
use crate::report::summary::Summary;

/// The longest a run's seconds can be: twice the longest load profile a scenario may declare
/// (`compiled::load::MAX_PROFILE_S`, ~115 days), room for its drain and for merged shards
/// started up to a day apart. Anything beyond was not written by a run.
pub const MAX_RUN_S: f64 = 2.0 * crate::compiled::load::MAX_PROFILE_S;

/// Whether `s` is a time within a run: finite, not negative, at most [`MAX_RUN_S`].
pub fn plausible(s: f64) -> bool {
    s.is_finite() && (0.0..=MAX_RUN_S).contains(&s)
}

/// The words for a time that is not [`plausible`].
pub fn why(s: f64) -> String {
    if !s.is_finite() {
        format!("{s} is not a number of seconds")
    } else if s < 0.0 {
        format!("{s} s is negative")
    } else {
        format!("{s} s is longer than any run ({MAX_RUN_S:.0} s)")
    }
}

/// Refuses a summary whose run or phase times are not [`plausible`].
pub fn summary(path: &Path, s: &Summary) -> Result<(), Error> {
    let mut times = vec![("duration_s".to_string(), s.duration_s)];
    times.push(("drain_s".to_string(), s.drain_s));
    for (name, p) in &s.phases {
        times.push((format!("phases.{name}.start_s"), p.start_s));
        times.push((format!("phases.{name}.end_s"), p.end_s));
    }
    for (field, value) in times {
        if !plausible(value) {
            return Err(Error::Usage(format!(
                "{}: `{field}` {}: the file is damaged or edited",
                path.display(),
                why(value)
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_times_a_run_can_have_are_plausible() {
        assert!(plausible(0.0) && plausible(7.012) && plausible(MAX_RUN_S));
        for bad in [f64::NAN, f64::INFINITY, -0.5, 1e15, 1e18] {
            assert!(!plausible(bad), "{bad}");
        }
        assert!(why(1e18).contains("longer than any run"));
        assert!(why(-1.0).contains("negative"));
    }
}
