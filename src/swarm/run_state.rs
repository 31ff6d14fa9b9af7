//! The run's state as one worker's users see it: a copy on the worker's thread, followed by one
//! task of the worker ([`RunStateCopy::follow`]), which wakes every user of the worker at each
//! change.
//!
//! Why not each user its own `watch::Receiver`: a receiver and the wait for its next change are
//! 136 bytes in every user's task for its whole life (its intrusive waiter node), they took the
//! task past the allocator's 640-byte class, and every look at the state took the channel's
//! lock, shared with the other workers. Here a user holds a key into the worker's list of tasks
//! to wake (16 bytes, [`Reached`]) and a look at the state is a plain read.
//!
//! The copy changes only when its task runs, between two polls of any user on the same thread,
//! so a user never sees the state change in the middle of a poll, and every change wakes every
//! user registered before it (each registers on its first poll, before it could wait on
//! anything).

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use slab::Slab;
use tokio::sync::watch;

use crate::swarm::RunState;

/// The worker's copy of the run's state, and the users to wake when it changes.
pub struct RunStateCopy {
    now: Cell<RunState>,
    /// The run's side of the channel is gone (the run is over, however it ended).
    gone: Cell<bool>,
    /// Changes so far, wrapping: a user compares it with the count it last saw. A run's state
    /// changes a handful of times (running, stopping, ended or aborted, gone), so a byte is
    /// enough and the user's copy of it fits in its padding.
    changes: Cell<u8>,
    /// The tasks of the users that wait on the run (one entry per user, for its whole life).
    waiting: RefCell<Slab<Waker>>,
}

impl RunStateCopy {
    pub fn new(now: RunState) -> RunStateCopy {
        RunStateCopy {
            now: Cell::new(now),
            gone: Cell::new(false),
            changes: Cell::new(0),
            waiting: RefCell::new(Slab::new()),
        }
    }

    pub fn get(&self) -> RunState {
        self.now.get()
    }

    pub fn gone(&self) -> bool {
        self.gone.get()
    }

    /// Whether the run's state is one `U` waits for, or the run is gone (what [`Reached`]
    /// waits for, looked at now).
    pub fn reached<U: Until>(&self) -> bool {
        self.gone() || U::reached(self.get())
    }

    /// How many times the state changed (wrapping): compare with a count seen before.
    pub fn changes(&self) -> u8 {
        self.changes.get()
    }

    /// Keeps the copy up to date with the run's state, and wakes every registered user at each
    /// change, until the run's side of the channel is gone. One task of the worker runs it.
    pub async fn follow(&self, mut run: watch::Receiver<RunState>) {
        loop {
            let changed = run.changed().await;
            match changed {
                Ok(()) => self.now.set(*run.borrow_and_update()),
                Err(_) => self.gone.set(true),
            }
            self.changes.set(self.changes.get().wrapping_add(1));
            // Waking a task of this thread only queues it: no user runs inside this loop.
            for (_, task) in self.waiting.borrow().iter() {
                task.wake_by_ref();
            }
            if changed.is_err() {
                return;
            }
        }
    }

    fn register(&self, task: &Waker) -> usize {
        self.waiting.borrow_mut().insert(task.clone())
    }

    fn update(&self, key: usize, task: &Waker) {
        if let Some(held) = self.waiting.borrow_mut().get_mut(key) {
            if !held.will_wake(task) {
                held.clone_from(task);
            }
        }
    }

    fn unregister(&self, key: usize) {
        self.waiting.borrow_mut().try_remove(key);
    }
}

/// Resolves once the run's state is one `U` waits for, or the run is gone. While it waits, its
/// task is woken at every change of the run's state: the wait looks at the state when polled
/// rather than following the channel itself. Polled again once reached, it is ready again.
pub struct Reached<'a, U> {
    state: &'a RunStateCopy,
    /// Its entry in the worker's list, from its first poll ([`NOT_YET`] before).
    key: usize,
    /// What it waits for, as a type: a user's task holds its wait for its whole life, so the
    /// wait stays two words.
    until: PhantomData<fn() -> U>,
}

/// What a [`Reached`] waits for.
pub trait Until {
    fn reached(state: RunState) -> bool;
}

/// Interrupted: a user's flow stops at once.
pub struct Aborted;

impl Until for Aborted {
    fn reached(state: RunState) -> bool {
        state == RunState::Aborted
    }
}

/// The run no longer starts users (stopping, ended or aborted): the spawner's wait.
pub struct NotRunning;

impl Until for NotRunning {
    fn reached(state: RunState) -> bool {
        state != RunState::Running
    }
}

const NOT_YET: usize = usize::MAX;

impl<'a, U: Until> Reached<'a, U> {
    pub fn new(state: &'a RunStateCopy) -> Reached<'a, U> {
        Reached {
            state,
            key: NOT_YET,
            until: PhantomData,
        }
    }
}

impl<U: Until> Future for Reached<'_, U> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        if this.state.reached::<U>() {
            return Poll::Ready(());
        }
        match this.key {
            NOT_YET => this.key = this.state.register(cx.waker()),
            key => this.state.update(key, cx.waker()),
        }
        Poll::Pending
    }
}

impl<U> Drop for Reached<'_, U> {
    fn drop(&mut self) {
        if self.key != NOT_YET {
            self.state.unregister(self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    struct Count(AtomicUsize);

    impl std::task::Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// Every change wakes every registered waiter once, the copy follows the run's state, a
    /// waiter dropped is forgotten, and the wait ends on the abort and when the run is gone.
    #[tokio::test]
    async fn every_change_wakes_every_waiter_and_the_abort_ends_the_wait() {
        let (tx, rx) = watch::channel(RunState::Running);
        let copy = RunStateCopy::new(*rx.borrow());
        let follow = copy.follow(rx);
        tokio::pin!(follow);
        let counts: Vec<Arc<Count>> = (0..3)
            .map(|_| Arc::new(Count(AtomicUsize::new(0))))
            .collect();
        let mut waits: Vec<Reached<'_, Aborted>> = (0..3).map(|_| Reached::new(&copy)).collect();
        for (wait, count) in waits.iter_mut().zip(&counts) {
            let waker = Waker::from(count.clone());
            let mut cx = Context::from_waker(&waker);
            assert!(Pin::new(wait).poll(&mut cx).is_pending());
        }
        assert_eq!(copy.waiting.borrow().len(), 3);
        // A waiter dropped leaves the list.
        drop(waits.pop());
        assert_eq!(copy.waiting.borrow().len(), 2);

        let noop = Waker::noop();
        let mut cx = Context::from_waker(noop);
        tx.send_replace(RunState::Stopping);
        let _ = follow.as_mut().poll(&mut cx);
        assert_eq!(copy.get(), RunState::Stopping);
        assert_eq!(copy.changes(), 1);
        let woken: Vec<usize> = counts.iter().map(|c| c.0.load(Ordering::SeqCst)).collect();
        assert_eq!(woken, vec![1, 1, 0], "the dropped waiter is not woken");
        for wait in &mut waits {
            assert!(Pin::new(wait).poll(&mut cx).is_pending(), "not aborted yet");
        }
        // The spawner's wait ends as the run stops starting users, and stays ended.
        let mut stopped = std::pin::pin!(Reached::<NotRunning>::new(&copy));
        assert!(stopped.as_mut().poll(&mut cx).is_ready());
        assert!(stopped.as_mut().poll(&mut cx).is_ready());

        tx.send_replace(RunState::Aborted);
        let _ = follow.as_mut().poll(&mut cx);
        for wait in &mut waits {
            assert!(Pin::new(wait).poll(&mut cx).is_ready(), "aborted");
        }
        assert_eq!(copy.changes(), 2);
    }

    #[tokio::test]
    async fn a_run_gone_ends_the_wait_and_the_following() {
        let (tx, rx) = watch::channel(RunState::Running);
        let copy = RunStateCopy::new(RunState::Running);
        drop(tx);
        copy.follow(rx).await;
        assert!(copy.gone());
        assert_eq!(copy.get(), RunState::Running, "the last state stays");
        Reached::<Aborted>::new(&copy).await;
        Reached::<NotRunning>::new(&copy).await;
    }
}
