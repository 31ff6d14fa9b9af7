//! `--start-at`: the schedule's time zero at a wall-clock instant, so that N shards started
//! apart (N pods of an Indexed Job) begin their schedules together. Each shard waits on its own
//! clock: the shards' alignment is as good as their machines' clock sync (NTP: a few ms).

use std::time::{Duration, Instant, SystemTime};

use crate::error::Error;
use crate::report::summary::Start;

/// A `--start-at` already this far past when the run is ready is worth a warning (the shard
/// starts at once and records how late); below it, a start "now" is just that.
pub const LATE_WARN: Duration = Duration::from_millis(100);

/// How long before time zero the run stops waiting and hands the workers their schedule.
const WAKE_AHEAD: Duration = Duration::from_millis(50);

/// The farthest ahead `--start-at` may be: further is taken for a mistake (a wrong date).
pub const MAX_AHEAD: Duration = Duration::from_secs(24 * 3600);

/// Reads `--start-at`: an RFC 3339 time in UTC (`2026-12-01T06:00:00Z`, fractions allowed).
pub fn parse(s: &str) -> Result<SystemTime, String> {
    humantime::parse_rfc3339(s.trim()).map_err(|e| {
        format!(
            "`{s}` is not a start time: {e} (expected RFC 3339 in UTC, e.g. 2026-12-01T06:00:00Z)"
        )
    })
}

/// Refuses a start time beyond [`MAX_AHEAD`] before anything runs.
pub fn check(start_at: SystemTime) -> Result<(), Error> {
    match start_at.duration_since(SystemTime::now()) {
        Ok(ahead) if ahead > MAX_AHEAD => Err(Error::Usage(format!(
            "--start-at {} is {:.1} h ahead, over the limit of {} h: is the date right?",
            humantime::format_rfc3339_millis(start_at),
            ahead.as_secs_f64() / 3600.0,
            MAX_AHEAD.as_secs() / 3600
        ))),
        _ => Ok(()),
    }
}

/// The run's time zero, chosen.
pub struct Zero {
    /// On this process's monotonic clock: every intended start is an offset from it.
    pub t0: Instant,
    /// The same instant on the wall clock.
    pub wall: SystemTime,
    pub start: Start,
    /// Said on stderr and kept in the summary: the start time had passed.
    pub warning: Option<String>,
}

/// Chooses time zero: `lead` from now without `--start-at`; else the start time itself, after
/// waiting for it (the workers are ready and wait too), or — when it has passed — now, late.
pub async fn zero(start_at: Option<SystemTime>, lead: Duration) -> Zero {
    let (wall_now, now) = (SystemTime::now(), Instant::now());
    let Some(at) = start_at else {
        return at_offset(wall_now, now, lead, None);
    };
    match at.duration_since(wall_now + lead) {
        Ok(ahead) => {
            let t0 = now + lead + ahead;
            // Woken well before time zero (tokio's timer is coarse, and a loaded machine wakes
            // a process late); the workers' precise timers wait out the rest.
            let wake = t0.checked_sub(WAKE_AHEAD).unwrap_or(now).max(now);
            tokio::time::sleep_until(tokio::time::Instant::from_std(wake)).await;
            let mut z = at_offset(wall_now, now, lead + ahead, Some(at));
            // Woken after time zero (a stalled machine): the schedule starts late, and says so.
            let late = Instant::now().saturating_duration_since(t0);
            if !late.is_zero() {
                z = late_start(at, lead);
            }
            z
        }
        Err(_) => late_start(at, lead),
    }
}

/// Time zero at `after` from (`wall_now`, `now`), one instant read on both clocks.
fn at_offset(wall_now: SystemTime, now: Instant, after: Duration, at: Option<SystemTime>) -> Zero {
    let wall = wall_now + after;
    Zero {
        t0: now + after,
        wall,
        start: Start {
            unix_us: unix_us(wall),
            requested: at.map(|a| humantime::format_rfc3339_micros(a).to_string()),
            offset_ms: at.map(|a| offset_ms(wall, a)),
        },
        warning: None,
    }
}

/// `--start-at` has passed: start now (`lead` ahead), and record and say how late.
fn late_start(at: SystemTime, lead: Duration) -> Zero {
    let mut z = at_offset(SystemTime::now(), Instant::now(), lead, Some(at));
    let late = z.wall.duration_since(at).unwrap_or_default();
    if late > LATE_WARN {
        z.warning = Some(format!(
            "--start-at {} had passed when this run was ready: it started {:.1} ms late, so its \
             schedule is shifted by that much against shards that started on time",
            humantime::format_rfc3339_millis(at),
            late.as_secs_f64() * 1000.0
        ));
    }
    z
}

/// `wall - at` in ms (negative when early), rounded to µs.
fn offset_ms(wall: SystemTime, at: SystemTime) -> f64 {
    let ms = match wall.duration_since(at) {
        Ok(d) => d.as_secs_f64() * 1000.0,
        Err(e) => -e.duration().as_secs_f64() * 1000.0,
    };
    (ms * 1000.0).round() / 1000.0
}

pub fn unix_us(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_utc_rfc3339_and_refuses_the_rest() {
        let t = parse("2026-12-01T06:00:00.250Z").expect("valid");
        assert_eq!(unix_us(t) % 1_000_000, 250_000);
        for bad in ["tomorrow", "2026-12-01", "2026-13-01T00:00:00Z", ""] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        let far = SystemTime::now() + MAX_AHEAD + Duration::from_secs(60);
        assert!(check(far).is_err());
        assert!(check(SystemTime::now()).is_ok());
    }

    #[tokio::test]
    async fn a_past_start_time_starts_now_and_says_how_late() {
        let at = SystemTime::now() - Duration::from_secs(2);
        let z = zero(Some(at), Duration::from_millis(2)).await;
        let late = z.start.offset_ms.expect("an offset");
        assert!(late >= 2000.0, "{late}");
        assert!(z.warning.is_some_and(|w| w.contains("late")));
        // Without --start-at: no offset, no warning.
        let z = zero(None, Duration::from_millis(2)).await;
        assert!(z.start.offset_ms.is_none() && z.warning.is_none());
    }
}
