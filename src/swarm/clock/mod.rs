//! A worker's precise timer for intended start times: arrivals, returns and think pauses.
//!
//! tokio's timer wheel has 1 ms slots and rounds every deadline up to the next slot, so an
//! operation meant for t starts up to ~2 ms late: that is a floor under the schedule lag a
//! generator can show, and it is the generator's, not the target's. Here one `timerfd` per
//! worker (nanosecond resolution, woken by the same epoll that drives the worker's sockets — no
//! spinning, no extra thread) is armed for the earliest pending deadline, and a wake-up ends
//! every sleep that is due; when deadlines come faster than a budget of wake-ups allows, the
//! wake-ups are spaced instead and each ends more of them ([`timetable`] decides, and says why).
//! A dropped sleep leaves its entry behind; it wakes its task once, spuriously, at its deadline,
//! which every waiter tolerates.

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

use timetable::Timetable;

/// The longest the clock makes a due deadline wait by design (for a wake-up the budget allows).
pub const SLACK: std::time::Duration = timetable::PERIOD;

pub struct Clock {
    fd: AsyncFd<OwnedFd>,
    table: RefCell<Timetable<Waker>>,
    /// The instant the timerfd is armed for.
    armed: Cell<Option<Instant>>,
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
        })
    }

    /// Resolves at `at` (at once when it has passed).
    pub fn sleep_until(&self, at: Instant) -> Sleep<'_> {
        Sleep {
            clock: self,
            at,
            registered: None,
        }
    }

    fn arm(&self, at: Instant) {
        if timerfd::arm(
            self.fd.get_ref(),
            at.saturating_duration_since(Instant::now()),
        ) {
            self.armed.set(Some(at));
        }
    }

    fn register(&self, at: Instant, waker: Waker) {
        let wake_at = {
            let mut table = self.table.borrow_mut();
            table.add(at, waker);
            table.wake_at()
        };
        if let Some(wake_at) = wake_at {
            if self.armed.get().is_none_or(|armed| armed > wake_at) {
                self.arm(wake_at);
            }
        }
    }

    /// Wakes every sleep whose deadline has come, for as long as the worker runs.
    pub async fn drive(&self) {
        loop {
            let Ok(mut guard) = self.fd.readable().await else {
                return;
            };
            // Reading clears the expiration count. tokio's readiness is cleared too, or the next
            // `readable()` would return at once: a second pass per expiration, with a read that
            // fails, a re-arm and a wake-up counted against the budget for nothing. (An expiration
            // after the read is a new edge, which clearing this guard's readiness keeps.)
            let expired = timerfd::expired(guard.get_inner());
            guard.clear_ready();
            if !expired {
                // Not due after all (WouldBlock): nothing woke, nothing to do.
                continue;
            }
            self.armed.set(None);
            let (due, next) = {
                let mut table = self.table.borrow_mut();
                (table.wake(Instant::now()), table.wake_at())
            };
            if let Some(at) = next {
                self.arm(at);
            }
            for waker in due {
                waker.wake();
            }
        }
    }
}

pub struct Sleep<'c> {
    clock: &'c Clock,
    at: Instant,
    /// The waker this sleep is registered with.
    registered: Option<Waker>,
}

impl Future for Sleep<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if Instant::now() >= self.at {
            return Poll::Ready(());
        }
        let fresh = self
            .registered
            .as_ref()
            .is_none_or(|w| !w.will_wake(cx.waker()));
        if fresh {
            self.clock.register(self.at, cx.waker().clone());
            self.registered = Some(cx.waker().clone());
        }
        Poll::Pending
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
}
