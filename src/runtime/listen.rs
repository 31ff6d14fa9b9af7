//! A user waiting between operations — a pause, its stay online, a retry's backoff, the wait
//! for its last acks: it answers what arrives on its socket (the background rules), and notices
//! its deadline and the run's stopping.
//!
//! Every waiting user holds this wait's future for as long as it waits (an idle connected user:
//! for its whole stay), so it is kept small: the timer is the caller's, the wait and the
//! handling of what woke it are never alive at once, and the run's state is looked at rather
//! than waited on (see `next_event`).

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

use crate::clients::connection::{Closed, Frame};
use crate::runtime::{Stop, User};

/// What a listening user woke up for.
enum Event {
    Frame(Frame),
    Closed(Closed),
    /// The caller's deadline passed.
    Deadline,
    /// The run's state changed.
    StateChanged,
    /// The run is gone (its state's sender dropped).
    RunGone,
}

impl User<'_> {
    /// Waits for one event: a frame (handled by the background rules), the deadline, or a change
    /// of the run's state. Errors when the socket closed under the user. `deadline` is the
    /// caller's own timer (none: no deadline), owned by the caller so that it outlives one event
    /// and so that this future, which every waiting user holds, stays small.
    pub(super) async fn listen(
        &mut self,
        deadline: Option<Pin<&mut (dyn Future<Output = ()> + '_)>>,
    ) -> Result<(), Stop> {
        // The event first, then its handling: the waits and the handling are never alive at once,
        // so this future is the larger of the two rather than their sum.
        match self.next_event(deadline).await {
            Event::Frame(frame) => {
                self.count_frame(false);
                self.trace_frame("frame_in", &frame);
                self.background(&frame.to_text()).await;
                if !self.fed() {
                    return Ok(());
                }
                // Boxed: only the frames a rule answers get here, and inline its state would
                // size every listening user's future.
                Box::pin(self.answer_together()).await
            }
            // Boxed: a reconnect's handshake state is large and rare; inline, it would size
            // every listening user's future.
            Event::Closed(closed) => Box::pin(self.dropped(closed)).await,
            Event::Deadline => Ok(()),
            Event::StateChanged => Ok(()),
            Event::RunGone => Err(Stop::CutOff),
        }
    }

    /// The rules fed a reply: the frames already read with this one are handled first, so that
    /// their replies go out in the same write (a server that sends several at once — a backlog
    /// at login, a burst — gets its receipts in one), then the replies are written out. No
    /// frame waits for it: each is one that could be read at once.
    async fn answer_together(&mut self) -> Result<(), Stop> {
        loop {
            let link = &mut self.link;
            let ready = match self.socket.as_mut() {
                // Cancel-safe: a frame read and not yet due through the link stays for the
                // next read.
                Some(s) => futures_util::FutureExt::now_or_never(s.conn.next(link)),
                None => None,
            };
            match ready {
                Some(Ok(frame)) => {
                    self.count_frame(false);
                    self.trace_frame("frame_in", &frame);
                    self.background(&frame.to_text()).await;
                }
                // The socket is gone, and the replies with it.
                Some(Err(closed)) => return Box::pin(self.dropped(closed)).await,
                None => break,
            }
        }
        self.flush_replies().await;
        Ok(())
    }

    /// The next thing a listening user reacts to.
    async fn next_event(
        &mut self,
        deadline: Option<Pin<&mut (dyn Future<Output = ()> + '_)>>,
    ) -> Event {
        let mut deadline = deadline;
        let timed = deadline.is_some();
        let sleep = std::future::poll_fn(|cx| match deadline.as_mut() {
            Some(timer) => timer.as_mut().poll(cx),
            None => Poll::Pending,
        });
        let link = &mut self.link;
        let frame = async {
            match self.socket.as_mut() {
                Some(s) => s.conn.next(link).await,
                None => std::future::pending().await,
            }
        };
        // A look at the run's state, not a wait with a registration of its own: `run_user`'s
        // wait for the abort wakes the user's task at every change of the state, and that
        // wake-up polls this again.
        let run = &self.ctx.run_state;
        let seen = &mut self.seen_changes;
        let changed = std::future::poll_fn(move |_| {
            if run.gone() {
                Poll::Ready(Event::RunGone)
            } else if run.changes() != *seen {
                *seen = run.changes();
                Poll::Ready(Event::StateChanged)
            } else {
                Poll::Pending
            }
        });
        // In this order, not at random: a frame that is there is handled without polling the
        // timer (a timer look per frame, on every message's path), and nothing waits on it —
        // the callers check their deadline and the run's state after each event.
        tokio::select! {
            biased;
            f = frame => match f {
                Ok(frame) => Event::Frame(frame),
                Err(closed) => Event::Closed(closed),
            },
            _ = sleep, if timed => Event::Deadline,
            event = changed => event,
        }
    }
}
