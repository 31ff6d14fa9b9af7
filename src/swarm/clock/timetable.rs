//! The clock's policy: which deadlines a wake-up of the worker's timer ends, and when the timer
//! should wake next. Pure — instants in, decisions out — so that tests run it on made-up times.
//!
//! Precision and CPU pull against each other. Every wake-up of a worker costs tens of
//! microseconds of CPU (on this VM: the timer interrupt, the thread switched back in, the timerfd
//! read and re-armed), and at 1 600 signups/s a worker holds ~8 000 deadlines a second (arrivals,
//! think pauses, stays). Waking once per deadline cost +30 % CPU per signup there; the fixed
//! 500 µs slack that replaced it (every deadline armed 500 µs late, so that close ones shared a
//! wake-up) put ~0.5 ms into every timer-started latency, even at 10 operations/s when nothing
//! needed sharing.
//!
//! Here the timer is armed for the earliest deadline itself, and the *wake-ups* are budgeted
//! instead: on average at most one per [`PERIOD`], with bursts of up to [`BURST`] (a token bucket,
//! kept as one instant: the generic cell rate algorithm). While deadlines come slower than the
//! budget — up to ~1 400 a second with a Poisson stream's bunching (simulated), i.e. ~1 000 timer-started
//! operations a second plus their users' other pauses — each one is woken at its own time. When
//! they come faster, the budget runs out and the wake-ups settle one [`PERIOD`] apart; each ends
//! every sleep due by then, so no deadline waits longer than one [`PERIOD`] for the budget, and
//! the worker wakes no more often than under the fixed slack (~1 600 times a second at 1 600
//! signups/s; the CPU is measured in bench/README.md, "Timer precision").

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

/// The budget's spacing of wake-ups once it is spent, and so the longest a deadline waits for a
/// wake-up: 1 600 wake-ups a second, as many as the fixed 500 µs slack it replaces made at
/// 1 600 signups/s (~8 000 Poisson deadlines a second, simulated: each wake-up came 500 µs after
/// the first deadline due and ended the ~4 others due by then).
pub const PERIOD: Duration = Duration::from_micros(625);

/// How many wake-ups in a row may come closer than [`PERIOD`] when the budget is full: enough
/// that the bunching of a Poisson stream below the budget's rate is woken on time, deadline by
/// deadline.
pub const BURST: u32 = 32;

/// A token bucket of wake-ups as one instant (GCRA): `next` is when the next wake-up would be due
/// if every wake-up so far had been spaced exactly `period` apart; a wake-up may come up to
/// `tolerance` before that.
struct Budget {
    period: Duration,
    tolerance: Duration,
    next: Option<Instant>,
}

impl Budget {
    /// The earliest instant the budget allows the next wake-up at (`None`: any time).
    fn allows_from(&self) -> Option<Instant> {
        self.next.and_then(|next| next.checked_sub(self.tolerance))
    }

    fn spend(&mut self, now: Instant) {
        let base = self.next.filter(|&next| next > now).unwrap_or(now);
        self.next = Some(base + self.period);
    }
}

struct Entry<T> {
    at: Instant,
    item: T,
}

impl<T> PartialEq for Entry<T> {
    fn eq(&self, other: &Self) -> bool {
        self.at == other.at
    }
}
impl<T> Eq for Entry<T> {}
impl<T> PartialOrd for Entry<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<T> Ord for Entry<T> {
    fn cmp(&self, other: &Self) -> Ordering {
        self.at.cmp(&other.at)
    }
}

/// The pending deadlines (each with its item: the waker of the sleep that waits for it) and the
/// wake-up budget.
pub struct Timetable<T> {
    pending: BinaryHeap<Reverse<Entry<T>>>,
    budget: Budget,
}

impl<T> Default for Timetable<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Timetable<T> {
    /// A timetable with the shipped budget ([`PERIOD`], [`BURST`]).
    pub fn new() -> Self {
        Self::with_budget(PERIOD, BURST)
    }

    /// At most one wake-up per `period` on average, `burst` in a row closer than that.
    pub fn with_budget(period: Duration, burst: u32) -> Self {
        Timetable {
            pending: BinaryHeap::new(),
            budget: Budget {
                period,
                tolerance: period * burst.saturating_sub(1),
                next: None,
            },
        }
    }

    pub fn add(&mut self, at: Instant, item: T) {
        self.pending.push(Reverse(Entry { at, item }));
    }

    /// When the timer should wake next: at the earliest deadline, or when the budget next allows
    /// a wake-up if that is later. `None`: nothing is pending.
    pub fn wake_at(&self) -> Option<Instant> {
        let first = self.pending.peek()?.0.at;
        Some(match self.budget.allows_from() {
            Some(allowed) => first.max(allowed),
            None => first,
        })
    }

    /// The timer woke at `now`: counts the wake-up against the budget and takes out every item
    /// due by `now`, earliest first. Never one whose deadline is still to come.
    pub fn wake(&mut self, now: Instant) -> Vec<T> {
        self.budget.spend(now);
        let mut due = Vec::new();
        while self.pending.peek().is_some_and(|Reverse(e)| e.at <= now) {
            if let Some(Reverse(e)) = self.pending.pop() {
                due.push(e.item);
            }
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs a timetable on an ideal timer that wakes exactly when armed, until nothing is
    /// pending: each item with the instant its wake-up came.
    fn run<T>(table: &mut Timetable<T>) -> Vec<(T, Instant)> {
        let mut fired = Vec::new();
        while let Some(at) = table.wake_at() {
            for item in table.wake(at) {
                fired.push((item, at));
            }
        }
        fired
    }

    fn us(n: u64) -> Duration {
        Duration::from_micros(n)
    }

    #[test]
    fn sparse_deadlines_are_each_woken_at_their_own_time_in_order() {
        let t0 = Instant::now();
        let mut table = Timetable::new();
        for offset in [3_000, 1_000, 10_000, 1_200] {
            table.add(t0 + us(offset), offset);
        }
        assert_eq!(table.wake_at(), Some(t0 + us(1_000)));
        let fired = run(&mut table);
        let expected: Vec<(u64, Instant)> = [1_000, 1_200, 3_000, 10_000]
            .into_iter()
            .map(|o| (o, t0 + us(o)))
            .collect();
        assert_eq!(fired, expected);
        assert_eq!(table.wake_at(), None);
    }

    #[test]
    fn a_wake_up_ends_only_what_is_due_earliest_first() {
        let t0 = Instant::now();
        let mut table = Timetable::new();
        for offset in [50, 10, 30, 90] {
            table.add(t0 + us(offset), offset);
        }
        // A late wake-up (the worker was busy) ends everything due by then, never what is not.
        assert_eq!(table.wake(t0 + us(60)), vec![10, 30, 50]);
        assert_eq!(table.wake(t0 + us(89)), Vec::<u64>::new());
        assert_eq!(table.wake_at(), Some(t0 + us(90)));
    }

    #[test]
    fn a_burst_within_the_budget_is_woken_deadline_by_deadline() {
        let t0 = Instant::now();
        let mut table = Timetable::with_budget(us(500), 8);
        // Eight deadlines 10 µs apart: far closer than the period, but no more than the burst.
        for k in 0..8 {
            table.add(t0 + us(10 * k), k);
        }
        for (k, at) in run(&mut table) {
            assert_eq!(at, t0 + us(10 * k), "deadline {k}");
        }
    }

    #[test]
    fn past_the_budget_wake_ups_are_a_period_apart_and_no_deadline_waits_longer() {
        let t0 = Instant::now();
        let (period, burst) = (us(500), 4);
        let mut table = Timetable::with_budget(period, burst);
        // 20 000 deadlines a second for 100 ms: ten times the budget's rate.
        let deadlines: Vec<Instant> = (0..2_000).map(|k| t0 + us(50 * k)).collect();
        for (k, &at) in deadlines.iter().enumerate() {
            table.add(at, k);
        }
        let fired = run(&mut table);
        assert_eq!(fired.len(), deadlines.len());
        let mut wake_ups: Vec<Instant> = fired.iter().map(|&(_, at)| at).collect();
        wake_ups.dedup();
        // The burst, then one wake-up per period: a wheel's count, not one per deadline.
        let span = wake_ups[wake_ups.len() - 1] - wake_ups[0];
        let most = burst as usize + (span.as_micros() / period.as_micros()) as usize + 1;
        assert!(
            wake_ups.len() <= most,
            "{} wake-ups > {most}",
            wake_ups.len()
        );
        for pair in wake_ups[burst as usize..].windows(2) {
            assert!(pair[1] - pair[0] >= period);
        }
        for &(k, at) in &fired {
            assert!(at >= deadlines[k], "deadline {k} woken early");
            assert!(
                at - deadlines[k] <= period,
                "deadline {k} waited past a period"
            );
        }
    }

    #[test]
    fn after_a_quiet_stretch_the_budget_is_full_again() {
        let t0 = Instant::now();
        let (period, burst) = (us(500), 4);
        let mut table = Timetable::with_budget(period, burst);
        // Spend the budget: deadlines every 10 µs for 5 ms.
        for k in 0..500 {
            table.add(t0 + us(10 * k), k);
        }
        run(&mut table);
        // Half a second later (the bucket refills in burst × period = 2 ms), a burst is on time.
        let later = t0 + Duration::from_millis(500);
        for k in 0..burst as u64 {
            table.add(later + us(20 * k), k);
        }
        for (k, at) in run(&mut table) {
            assert_eq!(at, later + us(20 * k));
        }
    }
}
