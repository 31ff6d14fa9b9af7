//! The swarm: what a run's users share — each worker's context (`WorkerCtx`: its clock,
//! recorders and gauges), the precise clock, identities, the registry of registered and online
//! users, admission (who may still start, and how each arrival is counted), the loop-lag probe,
//! the caps decision and the stop slack. The worker threads themselves are `run::worker`.
//!
//! Each worker is one OS thread running a single-threaded tokio runtime, like wrk's threads: a
//! user lives on one worker for its whole life, so the worker's recorder is plain data touched by
//! one thread (no lock or atomic per sample) and is handed to the collector once per interval.
//! Arrivals are dealt round-robin (user i runs on worker i mod N), each worker computing its share
//! of the same seeded timeline with no coordinator.

pub mod admission;
pub mod blocks;
pub mod caps;
pub mod clock;
pub mod identity;
pub mod loop_lag;
pub mod registry;
pub mod run_state;
pub mod secrets;
pub mod trace;

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::clients::kept::OpenConnections;
use crate::clients::pool::Pool;
use crate::clients::Endpoint;
use crate::compiled::Plan;
use crate::metrics::{ErrorClass, MetricId, Recorder};
pub use registry::Registry;

/// How long after the schedule's end a run stops starting operations (timer slack: an arrival
/// due at the very end still starts). The run's stop and the dry run's assumed stop both use it.
pub const STOP_SLACK: Duration = Duration::from_millis(10);

/// Where the run stands; every user watches it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunState {
    /// Arrivals on schedule.
    Running,
    /// The schedule is over: no new users, no new operations; online users stay connected so
    /// messages in flight can still arrive (the drain).
    Stopping,
    /// The drain is over: users disconnect.
    Ended,
    /// Interrupted (Ctrl-C): users stop at once.
    Aborted,
}

/// What all workers share for the whole run.
pub struct Shared {
    pub plan: Arc<Plan>,
    pub endpoint: Endpoint,
    pub registry: Registry,
    pub identities: identity::Identities,
    /// The run's time origin: every intended and actual time is an offset from it.
    pub t0: Instant,
    pub state: watch::Receiver<RunState>,
    /// The first user index of closed-phase users: after every open arrival's.
    pub first_closed_index: u64,
    /// The `env.*` values of the run, hidden in every error example a worker keeps.
    pub secrets: secrets::Secrets,
    /// `--trace N`: the few users whose every request and frame is written down.
    pub trace: Option<trace::Tracer>,
}

#[cfg(test)]
impl Shared {
    /// What a unit test's worker shares: `plan` against `endpoint`, the run's clock starting
    /// now, no closed phase's users, no trace.
    pub(crate) fn for_test(
        plan: Arc<Plan>,
        endpoint: Endpoint,
        state: watch::Receiver<RunState>,
    ) -> Arc<Shared> {
        let plan_secrets = plan.flows.secrets.clone();
        Arc::new(Shared {
            identities: identity::Identities::new(plan.seed, &plan.user.phone_prefix),
            plan,
            endpoint,
            registry: Registry::default(),
            t0: Instant::now(),
            state,
            first_closed_index: 0,
            secrets: secrets::Secrets::new(&plan_secrets),
            trace: None,
        })
    }
}

/// A worker's own state, touched only by its thread.
pub struct WorkerCtx {
    pub shared: Arc<Shared>,
    /// Wakes intended start times to the microsecond; driven by a task of the worker.
    pub clock: Option<clock::Clock>,
    pub rec: RefCell<Recorder>,
    /// One more recorder per region: a region's users record into both (plain data too).
    pub regions: RefCell<Vec<Recorder>>,
    pub active_users: Cell<u64>,
    /// Users whose task is spawned and has not run yet (not yet admitted or dropped, not
    /// active): the spawner waits while too many are (`run::worker`'s `SPAWN_AHEAD`).
    pub starting: Cell<u64>,
    /// The users' open WebSockets, and their open HTTP connections (a handle their clients and
    /// connection tasks share): both gauges of this thread alone.
    pub open_websockets: Cell<u64>,
    pub open_http: OpenConnections,
    /// The worker's share of the HTTP connection pool, when `[run] connections` asks for one.
    pub http_pool: Option<std::rc::Rc<Pool>>,
    /// Timed operations running now (for `max_inflight`).
    pub inflight: Cell<u64>,
    /// Users offline between visits, waiting to come back (the worker runs until they have).
    pub away: Cell<u64>,
    /// Woken when the worker may have become idle (its last user left, or the spawner finished).
    pub idle: tokio::sync::Notify,
    /// The worker's spawner has started every user it will: from then on, the last user to
    /// leave ends the worker.
    pub spawned_all: Cell<bool>,
    /// Buffers the worker's users borrow in turn on every message's path.
    pub scratch: Scratch,
    /// The run's state as the worker's users see it, followed by a task of the worker
    /// ([`run_state::RunStateCopy::follow`]).
    pub run_state: run_state::RunStateCopy,
}

/// A worker's reusable buffers: what they hold between two uses means nothing, only their
/// memory is kept (allocations per frame cost more than the frame's handling).
#[derive(Default)]
pub struct Scratch {
    /// The last parsed frame's JSON object, for the next frame's parse to build over
    /// (`runtime::frame_json`); an empty map while a user holds the last one.
    pub frame: RefCell<serde_json::Map<String, serde_json::Value>>,
    /// The buffer a JSON frame is written into before it is copied out at its size.
    pub rendered: Cell<String>,
    /// The memory of the users' attempts in flight (`runtime::actions`).
    pub blocks: blocks::Blocks,
}

impl WorkerCtx {
    pub fn new(shared: Arc<Shared>) -> Self {
        let metrics = shared.plan.catalog.len();
        let regions = shared.plan.regions.len();
        let run_state = run_state::RunStateCopy::new(*shared.state.borrow());
        WorkerCtx {
            shared,
            rec: RefCell::new(Recorder::new(metrics)),
            regions: RefCell::new((0..regions).map(|_| Recorder::new(metrics)).collect()),
            active_users: Cell::new(0),
            starting: Cell::new(0),
            open_websockets: Cell::new(0),
            open_http: OpenConnections::default(),
            http_pool: None,
            inflight: Cell::new(0),
            away: Cell::new(0),
            idle: tokio::sync::Notify::new(),
            spawned_all: Cell::new(false),
            scratch: Scratch::default(),
            run_state,
            // Without a timerfd (not Linux-like), tokio's millisecond timer does the job; the
            // `tokio-timer` feature forces it, for the bench's baseline (bench/README.md).
            clock: if cfg!(feature = "tokio-timer") {
                None
            } else {
                clock::Clock::new().ok()
            },
        }
    }

    /// No user is active, about to start or away to come back: once the spawner is done too,
    /// the worker's work is over.
    pub fn users_gone(&self) -> bool {
        self.active_users.get() == 0 && self.starting.get() == 0 && self.away.get() == 0
    }

    /// The context of worker `worker` of `workers`, with its share of the HTTP connection pool
    /// when the scenario pools connections.
    pub fn for_worker(shared: Arc<Shared>, worker: usize, workers: usize) -> Self {
        let mut ctx = WorkerCtx::new(shared);
        if let Some(share) = ctx.plan().connections.share(worker, workers) {
            let pool = Pool::new(share, &ctx.shared.endpoint, ctx.open_http.clone());
            ctx.http_pool = Some(std::rc::Rc::new(pool));
        }
        ctx
    }

    /// Sleeps until an offset from the start of the run, precisely (see `clock`).
    pub fn sleep_until(&self, offset: Duration) -> Timer<'_> {
        match &self.clock {
            Some(clock) => Timer::Clock(clock.sleep_until(self.shared.t0 + offset)),
            None => Timer::Tokio(Box::pin(tokio::time::sleep_until(self.at(offset)))),
        }
    }

    /// `fut`'s output, or `None` when it has not finished within `limit` from now (it is
    /// dropped then). On the worker's clock: a timeout per operation costs no lock and no
    /// wake-up of the worker's poll, as a tokio timer does (see `clock`).
    pub async fn within<F: Future + Unpin>(&self, limit: Duration, fut: F) -> Option<F::Output> {
        self.within_from(self.now(), limit, fut).await
    }

    /// `fut`'s output, or `None` when it has not finished `limit` after `start` (an offset from
    /// the start of the run, read just before): [`Self::within`] without reading the clock again.
    pub async fn within_from<F: Future + Unpin>(
        &self,
        start: Duration,
        limit: Duration,
        fut: F,
    ) -> Option<F::Output> {
        match &self.clock {
            Some(clock) => {
                // `start` was read just before: a deadline far enough past it is not read again.
                let deadline = clock.sleep_ahead(self.shared.t0 + start, limit);
                match futures_util::future::select(fut, deadline).await {
                    futures_util::future::Either::Left((out, _)) => Some(out),
                    futures_util::future::Either::Right(_) => None,
                }
            }
            None => tokio::time::timeout_at(self.at(start + limit), fut)
                .await
                .ok(),
        }
    }

    /// How late the worker's timer may wake a deadline by design: the precise clock's slack, or
    /// tokio's millisecond wheel rounding up.
    pub fn timer_slack(&self) -> Duration {
        match &self.clock {
            Some(_) => clock::SLACK,
            None => Duration::from_millis(1),
        }
    }

    /// Time since the start of the run.
    pub fn now(&self) -> Duration {
        self.shared.t0.elapsed()
    }

    /// The tokio instant of an offset from the start of the run.
    pub fn at(&self, offset: Duration) -> tokio::time::Instant {
        tokio::time::Instant::from_std(self.shared.t0 + offset)
    }

    pub fn plan(&self) -> &Plan {
        &self.shared.plan
    }

    /// Counts one timed operation as in flight until the guard is dropped.
    pub fn inflight(&self) -> Inflight<'_> {
        self.inflight.set(self.inflight.get() + 1);
        Inflight(&self.inflight)
    }

    /// Records into the worker's recorder and, for a user in a region, into that region's too.
    /// An error of `m` with its reason, into the worker's recorder and its region's; the reason
    /// becomes the interval's example (masked) when it has none yet.
    pub fn record_error(
        &self,
        region: Option<usize>,
        m: MetricId,
        class: ErrorClass,
        reason: &str,
    ) {
        let secrets = &self.shared.secrets;
        self.record_in(region, |r| {
            r.error_because(m, class, || secrets.mask(reason))
        });
    }

    pub fn record_in(&self, region: Option<usize>, f: impl Fn(&mut Recorder)) {
        f(&mut self.rec.borrow_mut());
        if let Some(i) = region {
            if let Some(r) = self.regions.borrow_mut().get_mut(i) {
                f(r);
            }
        }
    }

    /// Moves the interval's recorders out (the whole worker's, then one per region) and starts
    /// fresh ones.
    pub fn take_recorders(&self) -> (Recorder, Vec<Recorder>) {
        let n = self.plan().catalog.len();
        let total = self.rec.replace(Recorder::new(n));
        let fresh = (0..self.plan().regions.len())
            .map(|_| Recorder::new(n))
            .collect();
        (total, self.regions.replace(fresh))
    }
}

/// A sleep on the worker's clock, or on tokio's timer where there is no clock. The tokio one is
/// boxed: a waiting user holds its timer for as long as it waits, and tokio's is several times
/// the clock's size.
pub enum Timer<'c> {
    Clock(clock::Sleep<'c>),
    Tokio(std::pin::Pin<Box<tokio::time::Sleep>>),
}

impl Future for Timer<'_> {
    type Output = ();

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        match self.get_mut() {
            Timer::Clock(sleep) => std::pin::Pin::new(sleep).poll(cx),
            Timer::Tokio(sleep) => sleep.as_mut().poll(cx),
        }
    }
}

/// One timed operation in flight; dropping it (however the operation ended) counts it out.
pub struct Inflight<'a>(&'a Cell<u64>);

impl Drop for Inflight<'_> {
    fn drop(&mut self) {
        self.0.set(self.0.get().saturating_sub(1));
    }
}

/// Resolves once `until` holds for the run state (or the run's control loop is gone).
pub async fn wait_state(state: &mut watch::Receiver<RunState>, until: impl Fn(RunState) -> bool) {
    // A dropped sender means the run is over; treat it as reached.
    let _ = state.wait_for(|s| until(*s)).await;
}
