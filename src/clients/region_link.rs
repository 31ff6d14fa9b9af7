//! One user's network as its region makes it: every one-way trip (a request or frame leaving,
//! a response or frame arriving) takes an added delay drawn uniformly within `latency ± jitter`,
//! and a new connection first waits a round trip (two draws). The delay is a timer on the
//! user's own task: nothing shared, nothing locked. A user without a region has an ideal link
//! that adds nothing and never touches a timer.

use std::collections::VecDeque;
use std::pin::Pin;
use std::time::Duration;

use std::future::Future;
use std::task::{Context, Poll};

use futures_util::{Stream, StreamExt};
use rand::rngs::SmallRng;
use rand::RngExt;
use tokio::time::{Instant, Sleep};

/// A user's link: ideal (no delay), or a region's.
pub struct Link {
    /// Boxed: most users have no region, and every one would carry its room.
    delay: Option<Box<Delay>>,
}

struct Delay {
    latency: Duration,
    jitter: Duration,
    rng: SmallRng,
}

impl Link {
    /// No added delay.
    pub fn ideal() -> Link {
        Link { delay: None }
    }

    pub fn new(latency: Duration, jitter: Duration, rng: SmallRng) -> Link {
        if latency.is_zero() && jitter.is_zero() {
            return Link::ideal();
        }
        Link {
            delay: Some(Box::new(Delay {
                latency,
                jitter,
                rng,
            })),
        }
    }

    pub fn is_ideal(&self) -> bool {
        self.delay.is_none()
    }

    /// One one-way delay: uniform within `latency ± jitter`, clamped at zero.
    pub fn draw(&mut self) -> Duration {
        let Some(d) = self.delay.as_mut() else {
            return Duration::ZERO;
        };
        if d.jitter.is_zero() {
            return d.latency;
        }
        let j = d.jitter.as_secs_f64();
        let x = d.latency.as_secs_f64() + d.rng.random_range(-j..=j);
        Duration::from_secs_f64(x.max(0.0))
    }

    /// Waits one one-way delay: a request or frame on its way out, a response on its way in.
    pub async fn one_way(&mut self) {
        if !self.is_ideal() {
            let d = self.draw();
            tokio::time::sleep(d).await;
        }
    }

    /// Waits a round trip (two draws): what a TCP handshake costs before a connection is up.
    pub async fn round_trip(&mut self) {
        if !self.is_ideal() {
            let d = self.draw() + self.draw();
            tokio::time::sleep(d).await;
        }
    }
}

/// Frames read ahead of their handling, each with the time it is seen by the user: at most
/// this many, and no more once they hold [`INBOX_BYTES`] (one frame may take it over, by at most
/// the client's 1 MiB frame limit), so a flood of large frames is not read into memory ahead.
const INBOX: usize = 1024;
pub const INBOX_BYTES: usize = 1 << 20;

/// A stream of incoming frames seen through a link: a frame read from the socket at `t` is
/// handed over at `max(previous frame's time, t + draw)`, so frames keep their order and the
/// delay does not pile up across frames. Frames are read ahead while earlier ones wait (up to
/// a bounded inbox), and every wait is cancel-safe: a frame read is kept, never lost, when the
/// caller stops waiting.
///
/// Over an ideal link nothing waits, so frames go straight through and the read-ahead state is
/// never allocated: an idle socket's inbox is one pointer.
pub struct Inbox<T> {
    ahead: Option<Box<Ahead<T>>>,
}

/// The frames read ahead of their time, and the wait for the first of them.
struct Ahead<T> {
    queue: VecDeque<(Instant, Option<T>)>,
    /// What the queued items weigh, by the caller's measure.
    bytes: usize,
    last: Option<Instant>,
    ended: bool,
    /// The wait for the front item's time, kept here rather than in each call's future: a
    /// waiting user's future stays small, and the timer is reset rather than made anew.
    timer: Pin<Box<Sleep>>,
}

impl<T> Default for Inbox<T> {
    fn default() -> Self {
        Inbox { ahead: None }
    }
}

impl<T> Inbox<T> {
    /// The next item of `stream` as the user sees it (`None` once the stream ended); `weight`
    /// is what an item holds in memory, for the read-ahead bound. A hand-written poll rather
    /// than an async fn: every listening user holds this future, and so it holds only its
    /// arguments.
    pub fn next<'s, S: Stream<Item = T> + Unpin>(
        &'s mut self,
        stream: &'s mut S,
        link: &'s mut Link,
        weight: impl Fn(&T) -> usize + 's,
    ) -> impl Future<Output = Option<T>> + 's {
        std::future::poll_fn(move |cx| {
            if link.is_ideal() && self.ahead.as_ref().is_none_or(|a| a.queue.is_empty()) {
                return stream.poll_next_unpin(cx);
            }
            let ahead = self.ahead.get_or_insert_with(|| {
                Box::new(Ahead {
                    queue: VecDeque::new(),
                    bytes: 0,
                    last: None,
                    ended: false,
                    timer: Box::pin(tokio::time::sleep_until(Instant::now())),
                })
            });
            ahead.poll_next(cx, stream, link, &weight)
        })
    }
}

impl<T> Ahead<T> {
    /// The front item once its time comes; meanwhile, what the stream has is read ahead (the
    /// front item's time is looked at first, so one that is due is never held up by reading).
    fn poll_next<S: Stream<Item = T> + Unpin>(
        &mut self,
        cx: &mut Context<'_>,
        stream: &mut S,
        link: &mut Link,
        weight: &impl Fn(&T) -> usize,
    ) -> Poll<Option<T>> {
        loop {
            let due = self.queue.front().map(|(at, _)| *at);
            if let Some(at) = due {
                if at != self.timer.deadline() {
                    self.timer.as_mut().reset(at);
                }
                if self.timer.as_mut().poll(cx).is_ready() {
                    if let Some((_, item)) = self.queue.pop_front() {
                        self.bytes -= item.as_ref().map_or(0, weight);
                        return Poll::Ready(item);
                    }
                }
            } else if self.ended {
                return Poll::Ready(None);
            }
            // Not reading happens only with items queued (an ended stream with none returned
            // above; a full inbox has some): the front item's timer then wakes the caller.
            let read = !self.ended && self.queue.len() < INBOX && self.bytes < INBOX_BYTES;
            if !read {
                return Poll::Pending;
            }
            let item = std::task::ready!(stream.poll_next_unpin(cx));
            self.ended |= item.is_none();
            self.bytes += item.as_ref().map_or(0, weight);
            let at = Instant::now() + link.draw();
            let at = self.last.map_or(at, |last| at.max(last));
            self.last = Some(at);
            self.queue.push_back((at, item));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn draws_stay_within_latency_plus_minus_jitter_and_average_to_latency() {
        let ms = Duration::from_millis;
        let mut link = Link::new(ms(40), ms(10), SmallRng::seed_from_u64(1));
        let n = 10_000;
        let draws: Vec<Duration> = (0..n).map(|_| link.draw()).collect();
        assert!(draws.iter().all(|d| *d >= ms(30) && *d <= ms(50)));
        let mean = draws.iter().map(Duration::as_secs_f64).sum::<f64>() / n as f64;
        // Uniform on ±10 ms: sd 5.77 ms, so the mean of 10 000 is within 0.3 ms at 5 sd.
        assert!((mean - 0.040).abs() < 0.0003, "{mean}");
        // Spread over the whole range, not stuck at the centre.
        assert!(draws.iter().any(|d| *d < ms(32)) && draws.iter().any(|d| *d > ms(48)));
        // No jitter: exactly the latency; jitter above the latency clamps at zero.
        let mut fixed = Link::new(ms(40), Duration::ZERO, SmallRng::seed_from_u64(1));
        assert_eq!(fixed.draw(), ms(40));
        let mut wide = Link::new(ms(5), ms(20), SmallRng::seed_from_u64(1));
        assert!((0..1000).map(|_| wide.draw()).any(|d| d.is_zero()));
        assert!(Link::ideal().is_ideal() && Link::ideal().draw().is_zero());
    }

    #[tokio::test]
    async fn frames_are_seen_one_delay_later_without_piling_up() {
        let ms = Duration::from_millis;
        let mut link = Link::new(ms(30), Duration::ZERO, SmallRng::seed_from_u64(1));
        let mut inbox = Inbox::default();
        // Three frames already there at t = 0, then the stream ends.
        let mut frames = futures_util::stream::iter([1, 2, 3]);
        let t0 = Instant::now();
        for want in [Some(1), Some(2), Some(3), None] {
            assert_eq!(inbox.next(&mut frames, &mut link, |_| 1).await, want);
            assert!(Instant::now() - t0 >= ms(30), "seen before its delay");
        }
        // All arrived together, so all are seen ~30 ms later: piled up they would take 90 ms.
        assert!(Instant::now() - t0 < ms(60), "{:?}", Instant::now() - t0);
        assert_eq!(inbox.next(&mut frames, &mut link, |_| 1).await, None);
    }

    #[tokio::test]
    async fn read_ahead_stops_at_the_byte_bound() {
        let mut link = Link::new(
            Duration::from_millis(5),
            Duration::ZERO,
            SmallRng::seed_from_u64(1),
        );
        let mut inbox = Inbox::default();
        // Items of 400 KiB each: three are read ahead (the third crosses the bound), no more.
        let big = INBOX_BYTES * 2 / 5;
        let mut items = futures_util::stream::iter(0..10);
        assert_eq!(inbox.next(&mut items, &mut link, |_| big).await, Some(0));
        let ahead = inbox.ahead.as_ref().expect("a delayed link reads ahead");
        assert!(ahead.queue.len() <= 2, "{} read ahead", ahead.queue.len());
        assert!(ahead.bytes <= INBOX_BYTES);
        for want in 1..10 {
            assert_eq!(inbox.next(&mut items, &mut link, |_| big).await, Some(want));
        }
        assert_eq!(inbox.ahead.as_ref().map(|a| a.bytes), Some(0));
    }
}
