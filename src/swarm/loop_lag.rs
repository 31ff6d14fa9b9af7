//! The loop-lag probe: how late a worker services ready work, as Node's `monitorEventLoopDelay`
//! and jHiccup measure it. A task of the worker ticks every [`PERIOD`]; each tick's lateness —
//! past its deadline and the timer's own slack — is time that any ready work on this worker (a
//! response read off a socket, a frame, a woken user) also waited before the worker got to it.
//!
//! Schedule lag sees only operations started by a timer. A response that arrives while the
//! worker is busy with other users, or while another process holds its core, waits unseen
//! inside the generator and is counted as the target's latency; the probe catches that wait,
//! whoever caused it (the worker's own CPU share does not: a worker starved by other processes
//! is not busy).
//!
//! Ticks are meant for fixed times, so a stall is sampled as evenly as the rest of the run: a
//! stall of 100 ms over 10 ms ticks records the lateness of each of the ten ticks it swallowed
//! (100, 90, … 10 ms), as HdrHistogram's `record_correct` does, not one sample.

use std::time::Duration;

use super::WorkerCtx;
use crate::metrics::MetricId;

/// How often the probe ticks: 100 wake-ups a second per worker, a few hundredths of a percent
/// of a core; fine enough that a stall of a few milliseconds is caught in proportion.
pub const PERIOD: Duration = Duration::from_millis(10);

/// Ticks for as long as the worker runs (the worker drops the task when it ends).
pub async fn probe(ctx: &WorkerCtx) {
    let slack = ctx.timer_slack();
    let mut due = ctx.now() + PERIOD;
    loop {
        ctx.sleep_until(due).await;
        let now = ctx.now();
        let ticks = ticks_due(now, due);
        ctx.record_in(None, |r| {
            // Every tick due by now, each late by its own share of the wait.
            for k in 0..ticks {
                r.value(MetricId::LOOP_LAG, lateness(now, due + PERIOD * k, slack));
            }
        });
        // Never woken early (no timer is), but should it be, the same tick is awaited again.
        due += PERIOD * ticks;
    }
}

/// How many ticks, the first due at `due` and then every [`PERIOD`], are due by `now`.
fn ticks_due(now: Duration, due: Duration) -> u32 {
    match now.checked_sub(due) {
        Some(past) => (past.as_nanos() / PERIOD.as_nanos()) as u32 + 1,
        None => 0,
    }
}

/// How late a tick due at `due` ran at `now`, past what the timer itself may add (`slack`: it
/// wakes a deadline up to that late by design, and that is not the worker's delay).
pub fn lateness(now: Duration, due: Duration, slack: Duration) -> Duration {
    now.saturating_sub(due + slack)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lateness_counts_past_the_timers_own_slack() {
        let ms = Duration::from_millis;
        let slack = Duration::from_micros(500);
        assert_eq!(lateness(ms(10), ms(10), slack), Duration::ZERO);
        // Woken within the slack: on time.
        assert_eq!(lateness(ms(10) + slack, ms(10), slack), Duration::ZERO);
        assert_eq!(lateness(ms(35), ms(10), slack), ms(25) - slack);
    }

    #[test]
    fn a_stall_is_sampled_once_per_tick_it_swallowed() {
        let ms = Duration::from_millis;
        assert_eq!(ticks_due(ms(9), ms(10)), 0);
        assert_eq!(ticks_due(ms(10), ms(10)), 1);
        // Woken 100 ms late: the ticks of 10, 20, … 110 ms were all due.
        assert_eq!(ticks_due(ms(110), ms(10)), 11);
    }
}
