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

/// A pending deadline in the heap: the slot of its item, and which use of that slot it is (a slot
/// is reused once its item fired or was cancelled; an entry of an earlier use is stale).
struct Entry {
    at: Instant,
    slot: u32,
    generation: u32,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.at == other.at
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    fn cmp(&self, other: &Self) -> Ordering {
        self.at.cmp(&other.at)
    }
}

struct Slot<T> {
    generation: u32,
    /// The item while its deadline is pending; taken when it fires or is cancelled.
    item: Option<T>,
}

/// A pending deadline's claim on its item: to replace the item or cancel the deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket {
    slot: u32,
    generation: u32,
}

/// The pending deadlines (each with its item: the waker of the sleep that waits for it) and the
/// wake-up budget.
///
/// A cancelled deadline (a sleep dropped before its time: the timeout of an operation that
/// finished) is left in the heap, stale, and never comes out of [`Timetable::wake`] nor decides
/// [`Timetable::wake_at`]; the heap is compacted once the stale entries outnumber the live ones,
/// so its size stays within twice the pending deadlines (an operation's timeout per request at
/// 100 000 requests/s would otherwise pile up 500 000 entries over a 5 s timeout).
pub struct Timetable<T> {
    pending: BinaryHeap<Reverse<Entry>>,
    slots: Vec<Slot<T>>,
    free: Vec<u32>,
    /// Entries in `pending` whose deadline was cancelled.
    stale: usize,
    budget: Budget,
}

/// Stale entries tolerated before the heap is compacted, whatever the live count.
const STALE_FLOOR: usize = 1024;

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
            slots: Vec::new(),
            free: Vec::new(),
            stale: 0,
            budget: Budget {
                period,
                tolerance: period * burst.saturating_sub(1),
                next: None,
            },
        }
    }

    pub fn add(&mut self, at: Instant, item: T) -> Ticket {
        let slot = match self.free.pop() {
            Some(i) => i,
            None => {
                self.slots.push(Slot {
                    generation: 0,
                    item: None,
                });
                (self.slots.len() - 1) as u32
            }
        };
        let s = &mut self.slots[slot as usize];
        s.item = Some(item);
        let generation = s.generation;
        self.pending.push(Reverse(Entry {
            at,
            slot,
            generation,
        }));
        Ticket { slot, generation }
    }

    /// The item of a deadline still pending (`None` once it fired or was cancelled).
    pub fn item_mut(&mut self, ticket: Ticket) -> Option<&mut T> {
        let s = self.slots.get_mut(ticket.slot as usize)?;
        if s.generation != ticket.generation {
            return None;
        }
        s.item.as_mut()
    }

    /// Drops a deadline that has not fired (nothing when it has).
    pub fn cancel(&mut self, ticket: Ticket) {
        if self.release(ticket.slot, ticket.generation).is_none() {
            return;
        }
        self.stale += 1;
        let live = self.pending.len() - self.stale;
        if self.stale > STALE_FLOOR.max(live) {
            let slots = &self.slots;
            self.pending
                .retain(|Reverse(e)| slots[e.slot as usize].generation == e.generation);
            self.stale = 0;
        }
    }

    /// Frees a slot in use `generation`: its item, if it still had one.
    fn release(&mut self, slot: u32, generation: u32) -> Option<T> {
        let s = self.slots.get_mut(slot as usize)?;
        if s.generation != generation {
            return None;
        }
        let item = s.item.take()?;
        s.generation = s.generation.wrapping_add(1);
        self.free.push(slot);
        Some(item)
    }

    /// Pops stale entries off the top of the heap, so that the top is a live deadline.
    fn drop_stale_top(&mut self) {
        while let Some(Reverse(e)) = self.pending.peek() {
            if self.slots[e.slot as usize].generation == e.generation {
                return;
            }
            self.pending.pop();
            self.stale -= 1;
        }
    }

    /// When the timer should wake next: at the earliest deadline, or when the budget next allows
    /// a wake-up if that is later. `None`: nothing is pending.
    pub fn wake_at(&mut self) -> Option<Instant> {
        self.drop_stale_top();
        let first = self.pending.peek()?.0.at;
        Some(match self.budget.allows_from() {
            Some(allowed) => first.max(allowed),
            None => first,
        })
    }

    /// The timer woke at `now`: counts the wake-up against the budget and takes out every item
    /// due by `now`, earliest first. Never one whose deadline is still to come, nor a cancelled
    /// one.
    pub fn wake(&mut self, now: Instant) -> Vec<T> {
        self.budget.spend(now);
        let mut due = Vec::new();
        while self.pending.peek().is_some_and(|Reverse(e)| e.at <= now) {
            let Some(Reverse(e)) = self.pending.pop() else {
                break;
            };
            match self.release(e.slot, e.generation) {
                Some(item) => due.push(item),
                None => self.stale -= 1,
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
    fn a_cancelled_deadline_never_fires_nor_sets_the_wake_up() {
        let t0 = Instant::now();
        let mut table = Timetable::new();
        let early = table.add(t0 + us(100), "timeout");
        table.add(t0 + us(300), "pause");
        assert_eq!(table.wake_at(), Some(t0 + us(100)));
        table.cancel(early);
        // The worker would wake at 300 µs for the pause only, not at 100 µs for nothing.
        assert_eq!(table.wake_at(), Some(t0 + us(300)));
        assert_eq!(table.wake(t0 + us(1_000)), vec!["pause"]);
        assert_eq!(table.wake_at(), None);
        // Cancelling again, or after it fired, changes nothing.
        table.cancel(early);
        assert_eq!(table.wake_at(), None);
    }

    #[test]
    fn a_reused_slot_is_not_cancelled_by_its_old_ticket() {
        let t0 = Instant::now();
        let mut table = Timetable::new();
        let first = table.add(t0 + us(10), 1);
        assert_eq!(table.wake(t0 + us(10)), vec![1]);
        // The slot is free again: the next deadline takes it.
        let second = table.add(t0 + us(20), 2);
        table.cancel(first);
        assert_eq!(table.item_mut(first), None);
        assert_eq!(table.item_mut(second), Some(&mut 2));
        assert_eq!(table.wake(t0 + us(20)), vec![2]);
    }

    #[test]
    fn cancelled_deadlines_do_not_pile_up() {
        let t0 = Instant::now();
        let mut table = Timetable::new();
        let pause = table.add(t0 + Duration::from_secs(60), u32::MAX);
        // A timeout per request, each request done long before it: 100 000 of them.
        for k in 0..100_000u32 {
            let ticket = table.add(t0 + Duration::from_secs(5) + us(k as u64), k);
            table.cancel(ticket);
            assert!(
                table.pending.len() <= STALE_FLOOR + 2,
                "{} entries",
                table.pending.len()
            );
        }
        assert!(table.slots.len() <= 2, "{} slots", table.slots.len());
        assert_eq!(table.wake_at(), Some(t0 + Duration::from_secs(60)));
        assert_eq!(table.wake(t0 + Duration::from_secs(61)), vec![u32::MAX]);
        assert_eq!(table.item_mut(pause), None);
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
