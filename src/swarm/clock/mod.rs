//! A worker's precise timer for intended start times (arrivals, returns and think pauses) and for
//! operations' timeouts.
//!
//! tokio's timer wheel has 1 ms slots and rounds every deadline up to the next slot, so an
//! operation meant for t starts up to ~2 ms late: that is a floor under the schedule lag a
//! generator can show, and it is the generator's, not the target's. Here one `timerfd` per
//! worker (nanosecond resolution, woken by the same epoll that drives the worker's sockets — no
//! spinning, no extra thread) is armed for the earliest pending deadline, and a wake-up ends
//! every sleep that is due; when deadlines come faster than a budget of wake-ups allows, the
//! wake-ups are spaced instead and each ends more of them ([`timetable`] decides, and says why).
//!
//! The clock is also cheaper per deadline than tokio's timer, which matters for a timeout per
//! request: no lock, no wheel entry to unlink, and no wake-up of the worker's poll to register one
//! (tokio writes its driver's eventfd whenever a new timer is earlier than the next one it parked
//! for — once per request in a keep-alive loop). A dropped sleep cancels its deadline. After a
//! wake-up the timer is armed once, after the tasks it woke have run and set their next
//! deadlines, instead of once for what was pending and again for each earlier one they set.

mod timerfd;
pub mod timetable;

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::io;
use std::os::fd::OwnedFd;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use tokio::io::unix::AsyncFd;

use timetable::{Ticket, Timetable};

/// The longest the clock makes a due deadline wait by design (for a wake-up the budget allows).
pub const SLACK: std::time::Duration = timetable::PERIOD;

/// How far ahead of a clock read a deadline must be for its sleep's first poll to skip the
/// clock ([`Clock::sleep_ahead`]): the read and the first poll are the same few microseconds
/// of one task's run, so a deadline this far out cannot have passed between them.
pub const AHEAD: std::time::Duration = std::time::Duration::from_millis(10);

pub struct Clock {
    fd: AsyncFd<OwnedFd>,
    table: RefCell<Timetable<Waker>>,
    /// The instant the timerfd is armed for.
    armed: Cell<Option<Instant>>,
    /// The clock has just woken sleeps and arms the timer once their tasks have run: until then
    /// a new deadline does not arm it.
    rearming: Cell<bool>,
}

impl Clock {
    /// A clock for the current worker; call it inside a tokio runtime with I/O enabled.
    pub fn new() -> io::Result<Clock> {
        let fd = timerfd::create()?;
        // SAFETY: the OwnedFd keeps the descriptor open and the same for the AsyncFd's life.
        let fd = unsafe { AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE) }
            .map_err(io::Error::from)?;
        Ok(Clock {
            fd,
            table: RefCell::new(Timetable::new()),
            armed: Cell::new(None),
            rearming: Cell::new(false),
        })
    }

    /// Resolves at `at` (at once when it has passed).
    pub fn sleep_until(&self, at: Instant) -> Sleep<'_> {
        Sleep {
            clock: self,
            at,
            ticket: None,
            ahead: false,
        }
    }

    /// [`Self::sleep_until`] `read + limit`, `read` a clock read the caller just made (an
    /// operation's timeout, from the attempt's start): a deadline at least [`AHEAD`] after it
    /// is registered by the first poll without reading the clock again (a read per request in
    /// a keep-alive loop); a closer one is checked on the first poll, as any sleep's.
    pub fn sleep_ahead(&self, read: Instant, limit: std::time::Duration) -> Sleep<'_> {
        Sleep {
            ahead: limit >= AHEAD,
            ..self.sleep_until(read + limit)
        }
    }

    /// Arms the timer for the earliest deadline, unless it is armed for that or earlier already
    /// (an earlier instant that passed in vain costs one spurious wake-up, not a lost deadline).
    fn arm_for_earliest(&self) {
        let Some(at) = self.table.borrow_mut().wake_at() else {
            return;
        };
        if self.armed.get().is_some_and(|armed| armed <= at) {
            return;
        }
        if timerfd::arm(
            self.fd.get_ref(),
            at.saturating_duration_since(Instant::now()),
        ) {
            self.armed.set(Some(at));
        }
    }

    fn register(&self, at: Instant, waker: Waker) -> Ticket {
        let ticket = self.table.borrow_mut().add(at, waker);
        // Armed for this deadline or earlier already (a keep-alive loop's next timeout is
        // later than the pending ones): the wake-up then decides what comes next, as it would
        // have without this deadline. Nothing to look at in the table (its stale top included:
        // cancelled entries go when the table compacts them, or as they come due).
        let armed_in_time = self.armed.get().is_some_and(|armed| armed <= at);
        if !self.rearming.get() && !armed_in_time {
            self.arm_for_earliest();
        }
        ticket
    }

    /// Wakes every sleep whose deadline has come, for as long as the worker runs.
    pub async fn drive(&self) {
        loop {
            let Ok(mut guard) = self.fd.readable().await else {
                return;
            };
            // tokio's readiness is cleared, or the next `readable()` would return at once. The
            // expiration count is not read: arming the timer again resets it, and each
            // expiration is a new edge for the epoll — a read per wake-up would be a system call
            // for nothing.
            guard.clear_ready();
            self.armed.set(None);
            let due = self.table.borrow_mut().wake(Instant::now());
            if !due.is_empty() {
                self.rearming.set(true);
                for waker in due {
                    waker.wake();
                }
                // Behind the tasks just woken in the worker's queue: they run first and set
                // their next deadlines (the next arrival, a timeout), and the timer is armed
                // once for all of them.
                YieldBehind::default().await;
                self.rearming.set(false);
            }
            self.arm_for_earliest();
        }
    }
}

/// Pending once, with its task woken again at once: it goes to the back of the worker's queue.
/// (`tokio::task::yield_now` would defer the wake-up until after the runtime polled its I/O,
/// which is a system call more.)
#[derive(Default)]
pub struct YieldBehind {
    yielded: bool,
}

impl Future for YieldBehind {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.yielded {
            return Poll::Ready(());
        }
        self.yielded = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

pub struct Sleep<'c> {
    clock: &'c Clock,
    at: Instant,
    /// The deadline this sleep registered, once polled before it.
    ticket: Option<Ticket>,
    /// Known to be ahead of the clock on the first poll ([`Clock::sleep_ahead`]).
    ahead: bool,
}

impl Future for Sleep<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.ticket.is_none() && std::mem::take(&mut self.ahead) {
            self.ticket = Some(self.clock.register(self.at, cx.waker().clone()));
            return Poll::Pending;
        }
        if Instant::now() >= self.at {
            return Poll::Ready(());
        }
        if let Some(ticket) = self.ticket {
            let mut table = self.clock.table.borrow_mut();
            if let Some(waker) = table.item_mut(ticket) {
                if !waker.will_wake(cx.waker()) {
                    *waker = cx.waker().clone();
                }
                return Poll::Pending;
            }
        }
        // Not registered yet (or, defensively, woken before its time): register now.
        self.ticket = Some(self.clock.register(self.at, cx.waker().clone()));
        Poll::Pending
    }
}

impl Drop for Sleep<'_> {
    fn drop(&mut self) {
        if let Some(ticket) = self.ticket {
            self.clock.table.borrow_mut().cancel(ticket);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::rc::Rc;
    use std::time::Duration;

    /// Runs `test` on a worker-like runtime (current thread, LocalSet) with a driven clock.
    fn with_clock<Fut: Future<Output = ()>>(test: impl FnOnce(Rc<Clock>) -> Fut) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        tokio::task::LocalSet::new().block_on(&rt, async {
            let clock = Rc::new(Clock::new().expect("timerfd"));
            let driver = tokio::task::spawn_local({
                let clock = clock.clone();
                async move { clock.drive().await }
            });
            test(clock).await;
            driver.abort();
        });
    }

    #[test]
    fn sleeps_end_in_deadline_order_and_never_early() {
        with_clock(|clock| async move {
            let start = Instant::now();
            let order = Rc::new(RefCell::new(Vec::new()));
            let mut tasks = Vec::new();
            // Each has its own wake-up: they are sparse, well within the wake-up budget.
            for ms in [30u64, 10, 20, 5] {
                let (clock, order) = (clock.clone(), order.clone());
                let at = start + Duration::from_millis(ms);
                tasks.push(tokio::task::spawn_local(async move {
                    clock.sleep_until(at).await;
                    assert!(Instant::now() >= at, "woke before its deadline");
                    order.borrow_mut().push(ms);
                }));
            }
            for t in tasks {
                t.await.expect("task");
            }
            assert_eq!(*order.borrow(), vec![5, 10, 20, 30]);
            // A deadline in the past resolves at once.
            clock.sleep_until(start).await;
        });
    }

    #[test]
    fn a_deadline_set_by_a_task_the_clock_just_woke_is_armed() {
        with_clock(|clock| async move {
            let start = Instant::now();
            let far = start + Duration::from_millis(400);
            let background = tokio::task::spawn_local({
                let clock = clock.clone();
                async move { clock.sleep_until(far).await }
            });
            // Woken at 5 ms, the task sets 10 ms while the clock waits to arm (the 400 ms
            // deadline is pending): the timer must still be armed for 10 ms, not 400.
            clock.sleep_until(start + Duration::from_millis(5)).await;
            let near = start + Duration::from_millis(10);
            clock.sleep_until(near).await;
            let woke = Instant::now();
            assert!(woke >= near);
            assert!(
                woke < far,
                "woken at the far deadline: the near one was not armed"
            );
            background.await.expect("task");
        });
    }

    #[test]
    fn a_dropped_sleep_does_not_stop_later_ones() {
        with_clock(|clock| async move {
            let start = Instant::now();
            // Registered, then dropped before its deadline (a select that took another branch).
            let early = clock.sleep_until(start + Duration::from_millis(5));
            let _ = tokio::time::timeout(Duration::from_millis(1), early).await;
            let at = start + Duration::from_millis(15);
            clock.sleep_until(at).await;
            assert!(Instant::now() >= at);
        });
    }

    #[test]
    fn a_timeout_behind_the_armed_one_fires_on_time_once_that_one_is_dropped() {
        with_clock(|clock| async move {
            // The first timeout arms the timer, and is dropped before its time (its request
            // was answered): the timer stays armed for it.
            let first = clock.sleep_ahead(Instant::now(), Duration::from_millis(30));
            let _ = tokio::time::timeout(Duration::from_millis(1), first).await;
            // The next, later, is registered without arming the timer again: the wake-up for
            // the dropped one must arm it for this one.
            let read = Instant::now();
            let limit = Duration::from_millis(60);
            clock.sleep_ahead(read, limit).await;
            let took = read.elapsed();
            assert!(took >= limit, "early: {took:?}");
            // The wake-up comes within the clock's slack; five times the deadline's time for a
            // loaded machine (a lost deadline would hang, not be late).
            assert!(took < limit * 5, "{took:?}");
        });
    }

    #[test]
    fn a_deadline_ahead_is_not_read_again_but_a_close_one_that_passed_ends_at_once() {
        with_clock(|clock| async move {
            let past = Instant::now() - Duration::from_millis(50);
            // Closer than AHEAD to its read: looked at on the first poll, and already over.
            let close = clock.sleep_ahead(past, AHEAD / 2);
            assert_eq!(futures_util::FutureExt::now_or_never(close), Some(()));
            // At least AHEAD past its read: registered on the first poll without a look (the
            // caller's read was recent, so it has not passed)...
            let mut far = Box::pin(clock.sleep_ahead(past, AHEAD));
            assert_eq!(futures_util::FutureExt::now_or_never(&mut far), None);
            // ...and a deadline that had passed anyway still ends, on the next wake-up.
            tokio::time::timeout(Duration::from_secs(5), far)
                .await
                .expect("a passed deadline is not lost");
        });
    }
}
