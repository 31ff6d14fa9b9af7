//! One worker thread: starts its share of the arrivals on time, and hands its recorder to the
//! collector at every interval boundary.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::metrics::collector::Snapshot;
use crate::metrics::Counter;
use crate::runtime::{self, Session};
use crate::schedule;
use crate::swarm::run_state::{NotRunning, Reached};
use crate::swarm::{caps, wait_state, RunState, Shared, WorkerCtx};

/// The most worker threads a run may have. One per core is the design (README); the largest
/// machines have a few hundred cores, and every worker holds its own thread, runtime and
/// recorder (1–3 MB: 1 024 of them took 1.46 GB of RSS for ten arrivals, README), so beyond
/// this a count is a typo, not a machine.
pub const MAX_WORKERS: usize = 1024;

/// The run's worker threads: `wanted` (`--workers`), at most [`MAX_WORKERS`], or one per CPU.
pub fn count(wanted: Option<usize>) -> Result<usize, crate::Error> {
    match wanted {
        Some(n) if n > MAX_WORKERS => Err(crate::Error::Usage(format!(
            "--workers {n}: at most {MAX_WORKERS} worker threads (one per core is the design)"
        ))),
        Some(n) => Ok(n.max(1)),
        None => Ok(std::thread::available_parallelism()
            .map_or(2, |n| n.get())
            .min(MAX_WORKERS)),
    }
}

/// Worker threads that are up and waiting for the run's shared state (its `t0` among it).
pub struct Ready {
    threads: Vec<std::thread::JoinHandle<()>>,
    go: Vec<std::sync::mpsc::Sender<Arc<Shared>>>,
}

/// Starts `n` worker threads, each with its runtime built, and returns once every one of them
/// runs and waits: the schedule's start is then chosen from when they are ready (`Ready::go`)
/// rather than a guessed lead. Each sends its snapshots to `tx` and ends with a `last` one.
/// A thread or runtime the system refuses is an error (the threads already up end).
pub fn start(n: usize, tx: mpsc::UnboundedSender<Snapshot>) -> std::io::Result<Ready> {
    start_with(n, tx, |id| {
        std::thread::Builder::new().name(format!("inrush-worker-{id}"))
    })
}

/// [`start`] with each worker's thread made by `thread` (a test makes the system refuse one).
fn start_with(
    n: usize,
    tx: mpsc::UnboundedSender<Snapshot>,
    thread: impl Fn(usize) -> std::thread::Builder,
) -> std::io::Result<Ready> {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<std::io::Result<()>>();
    let mut threads = Vec::with_capacity(n);
    let mut go = Vec::with_capacity(n);
    for id in 0..n {
        let tx = tx.clone();
        let ready = ready_tx.clone();
        let (go_tx, go_rx) = std::sync::mpsc::channel::<Arc<Shared>>();
        // The runtime is built, used and dropped on the worker's own thread: `start` is called
        // from async code, where dropping a runtime (as a failed spawn would drop its closure)
        // panics.
        threads.push(thread(id).spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = ready.send(Err(e));
                    return;
                }
            };
            let _ = ready.send(Ok(()));
            // No shared state: the run gave up before it started; nothing to do.
            let Ok(shared) = go_rx.recv() else { return };
            let first_closed_index = shared.first_closed_index;
            let local = tokio::task::LocalSet::new();
            // The worker's loop as a task of its own, polled only when it is woken: the future
            // `block_on` runs is polled at every wake-up of the thread, before the tasks (as
            // tokio's LocalSet does), which made the loop's wait a cost of every arrival.
            local.block_on(&rt, async move {
                let worker = tokio::task::spawn_local(run(id, n, shared, tx, first_closed_index));
                if let Err(e) = worker.await {
                    if e.is_panic() {
                        std::panic::resume_unwind(e.into_panic());
                    }
                }
            });
        })?);
        go.push(go_tx);
    }
    drop(ready_tx);
    // Every thread says it runs (a thread that died before is counted by its closed channel).
    for _ in 0..n {
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e),
            Err(_) => break,
        }
    }
    Ok(Ready { threads, go })
}

impl Ready {
    /// Hands every worker the run's shared state: they start the schedule at its `t0`.
    pub fn go(self, shared: &Arc<Shared>) -> Vec<std::thread::JoinHandle<()>> {
        for g in &self.go {
            let _ = g.send(shared.clone());
        }
        self.threads
    }
}

async fn run(
    id: usize,
    n: usize,
    shared: Arc<Shared>,
    tx: mpsc::UnboundedSender<Snapshot>,
    first_closed_index: u64,
) {
    let ctx = Rc::new(WorkerCtx::for_worker(shared, id, n));
    let driver = ctx.clone();
    // Ends with the worker: the LocalSet drops it when `run` returns.
    tokio::task::spawn_local(async move {
        if let Some(clock) = &driver.clock {
            clock.drive().await;
        }
    });
    // The users' copy of the run's state; ends with the run's channel or the worker.
    let follower = ctx.clone();
    tokio::task::spawn_local(async move {
        let run = follower.shared.state.clone();
        follower.run_state.follow(run).await;
    });
    // Also ends with the worker.
    let prober = ctx.clone();
    tokio::task::spawn_local(async move { crate::swarm::loop_lag::probe(&prober).await });
    let spawner = tokio::task::spawn_local(spawn_all(
        ctx.clone(),
        id as u64,
        n as u64,
        first_closed_index,
    ));
    let mut start = Duration::ZERO;
    // The worker's own CPU time per interval of wall time: how busy this thread was. A thread
    // near 100 % cannot start users or read frames on time, whatever the target does.
    let mut cpu_before = crate::resource_usage::thread_cpu();
    let mut wall_before = std::time::Instant::now();
    for interval in 0.. {
        let end = schedule::next_boundary(ctx.plan(), start);
        let finished = loop {
            if spawner.is_finished() && ctx.users_gone() {
                break true;
            }
            tokio::select! {
                biased;
                _ = ctx.sleep_until(end) => break false,
                _ = ctx.idle.notified() => {}
            }
        };
        let actual_end = if finished { ctx.now().min(end) } else { end };
        if finished {
            // Nobody is left to use the pool's connections: none is counted open at the end.
            if let Some(pool) = &ctx.http_pool {
                pool.close_idle();
            }
        }
        let (cpu_now, wall_now) = (
            crate::resource_usage::thread_cpu(),
            std::time::Instant::now(),
        );
        let wall = wall_now.duration_since(wall_before).as_secs_f64();
        let cpu_busy = if wall > 0.0 {
            ((cpu_now - cpu_before) / wall).clamp(0.0, 1.0)
        } else {
            0.0
        };
        (cpu_before, wall_before) = (cpu_now, wall_now);
        if let (Some(pool), Some((opened, replaced))) = (&ctx.http_pool, ctx.plan().catalog.pool())
        {
            let (o, r) = pool.take_counts();
            ctx.record_in(None, |rec| {
                rec.add_named(opened, o);
                rec.add_named(replaced, r);
            });
        }
        let (recorder, regions) = ctx.take_recorders();
        let snapshot = Snapshot {
            worker: id,
            interval,
            start,
            end: actual_end,
            recorder,
            regions,
            active_users: ctx.active_users.get(),
            open_websockets: ctx.open_websockets.get(),
            open_http: ctx.open_http.get(),
            cpu_busy,
            last: finished,
        };
        // The collector only goes away when the run is torn down; nothing left to report to.
        if tx.send(snapshot).is_err() || finished {
            break;
        }
        start = end;
    }
}

/// Everything this worker starts: its share of the open arrivals and of every closed phase's
/// users. Ends when the schedule is over (users and returns still running are counted apart).
async fn spawn_all(ctx: Rc<WorkerCtx>, id: u64, n: u64, first_closed_index: u64) {
    let plan = ctx.shared.plan.clone();
    // Closed-phase users take indexes after every open arrival's, interleaved by worker, so
    // their identities collide with nobody's.
    let next = Rc::new(Cell::new(0u64));
    let mut slots = Vec::new();
    for phase in plan.phases.iter() {
        let Some(closed) = phase.closed() else {
            continue;
        };
        for first in closed.first_starts(phase.start, plan.shard, id, n) {
            let ids = ClosedIds {
                base: first_closed_index,
                next: next.clone(),
                worker: id,
                workers: n,
                shard: plan.shard,
            };
            slots.push(tokio::task::spawn_local(closed_slot(
                ctx.clone(),
                first,
                phase.end(),
                ids,
            )));
        }
    }
    spawn_arrivals(ctx.clone(), id, n).await;
    for slot in slots {
        // A slot task only ends by returning; a panic in it is already reported by tokio.
        let _ = slot.await;
    }
    ctx.spawned_all.set(true);
    ctx.idle.notify_one();
}

/// Why an arrival cannot start now, if a cap stops it: `max_users` active users or
/// `max_inflight` operations in flight (each worker keeps an even share of the caps).
fn refused(ctx: &WorkerCtx, n: u64) -> Option<Counter> {
    match caps::refused(ctx.plan(), n, &mut &*ctx)? {
        caps::Cap::MaxUsers => Some(Counter::DroppedMaxUsers),
        caps::Cap::MaxInflight => Some(Counter::DroppedMaxInflight),
    }
}

/// The most users a worker's spawner has spawned whose task has not run yet. On schedule there
/// are a few (the arrivals one timer wake-up finds due); far more only when the worker is behind.
const SPAWN_AHEAD: u64 = 256;

/// Starts this worker's users at their intended times, until the schedule ends or the run stops.
async fn spawn_arrivals(ctx: Rc<WorkerCtx>, id: u64, n: u64) {
    let plan = ctx.shared.plan.clone();
    let shard = plan.shard;
    let mut arrivals =
        schedule::shard_arrivals(&plan).filter(|(i, _)| schedule::worker_of(shard, *i, n) == id);
    // One wait for the whole schedule, on the worker's copy of the run's state: a wait made
    // per arrival took the channel's lock twice (its waiter in, then out) on every arrival.
    let stopped = Reached::<NotRunning>::new(&ctx.run_state);
    tokio::pin!(stopped);
    for (index, intended) in arrivals.by_ref() {
        tokio::select! {
            biased;
            () = &mut stopped => {}
            () = ctx.sleep_until(intended) => {}
        }
        let region = region_of(&ctx, index);
        if ctx.run_state.reached::<NotRunning>() {
            // The run stopped starting users (at the schedule's end, or straight to the end
            // with a zero drain, or interrupted) while this worker was still behind: every
            // arrival that was due by then was planned and never started.
            if ctx.missed(region, intended) {
                for (i, t) in arrivals.by_ref() {
                    if !ctx.missed(region_of(&ctx, i), t) {
                        break;
                    }
                }
            }
            break;
        }
        // Reached after its deadline: dropped here rather than spawned only to be dropped.
        if ctx.too_late(intended) {
            ctx.drop_arrival(region, intended, Counter::DroppedBehindSchedule);
            continue;
        }
        // A worker behind its schedule reaches every past-due arrival at once: spawned without
        // a pause, they would wait as tasks (counted active, taking `max_users` places and
        // memory) while the spawner raced ahead. Their tasks run first, and each is admitted
        // or dropped behind schedule by its own deadline.
        while ctx.starting.get() >= SPAWN_AHEAD {
            tokio::task::yield_now().await;
        }
        if let Some(reason) = refused(&ctx, n) {
            ctx.drop_arrival(region, intended, reason);
            continue;
        }
        start_user(ctx.clone(), n, index, intended, None, None);
    }
    // Keep the worker's clock running to the end of the plan even when its last arrival is early,
    // so every interval of the plan is reported.
    tokio::select! {
        biased;
        () = &mut stopped => {}
        () = tokio::time::sleep_until(ctx.at(plan.duration())) => {}
    }
}

/// Runs one open-model user (or a returning one: `flow` is its return flow, `session` what it
/// kept), then, if its cohort's users come back and it does, schedules its return. The session
/// is boxed: the task keeps it for its whole life, and a first arrival has none.
fn start_user(
    ctx: Rc<WorkerCtx>,
    n: u64,
    index: u64,
    intended: Duration,
    session: Option<Box<Session>>,
    flow: Option<usize>,
) {
    // Active from its task's first poll, not from here: a worker behind its schedule spawns
    // several users before any runs, and those are not users yet (no `max_users` place, not in
    // the active-users gauge) until admitted or dropped.
    ctx.starting.set(ctx.starting.get() + 1);
    // Boxed before it is spawned: the task then holds a pointer, not the user's whole future
    // (~800 bytes), which tokio would otherwise copy into the task and write over again as the
    // task finishes — kilobytes of memory traffic per arrival for nothing.
    //
    // While the user runs, this future is its arguments and the user's future, nothing else:
    // what comes before is worked out in `admitted` and what comes after in `left` and
    // `come_back`, so no local of theirs is laid out beside the user's future for the user's
    // whole stay (it was 88 bytes, enough to take the box to the allocator's next size).
    tokio::task::spawn_local(Box::pin(async move {
        ctx.starting.set(ctx.starting.get() - 1);
        let active = Active::enter(ctx);
        let Some(user) = admitted(&active.0, index, intended, session, flow) else {
            return;
        };
        let ended = user.await;
        if let Some((at, return_flow)) =
            left(&active.0, index, ended.completed, ended.session.visits())
        {
            // A task of its own, not awaited here: a second wait in this future would be laid
            // out beside the user's (the compiler gave it 88 bytes there).
            let away = come_back(active.0.clone(), n, index, at, return_flow, ended.session);
            tokio::task::spawn_local(Box::pin(away));
        }
    }));
}

/// A user's place among the worker's active users (or a closed phase's slot's), given back
/// when its task ends, however it ends: when the user leaves, and when a panic — a bug of
/// inrush's — unwinds the task. The worker ends once no user is active, so a place not given
/// back would keep the run from ever ending. A user who ended without an outcome is then
/// said in the summary's warnings (`run::summary::unaccounted`).
struct Active(Rc<WorkerCtx>);

impl Active {
    fn enter(ctx: Rc<WorkerCtx>) -> Active {
        ctx.active_users.set(ctx.active_users.get() + 1);
        Active(ctx)
    }
}

impl Drop for Active {
    fn drop(&mut self) {
        let ctx = &self.0;
        ctx.active_users
            .set(ctx.active_users.get().saturating_sub(1));
        notify_if_idle(ctx);
    }
}

/// Admits the arrival (decided when its task runs, not when it was spawned: a saturated worker
/// may get to it only after its deadline) and builds its user's future; `None` when it was
/// dropped (counted by `admit`).
fn admitted(
    ctx: &WorkerCtx,
    index: u64,
    intended: Duration,
    session: Option<Box<Session>>,
    flow: Option<usize>,
) -> Option<impl std::future::Future<Output = runtime::Ended> + '_> {
    let (cohort, first_flow) = cohort_of(ctx, index);
    let region = region_of(ctx, index);
    let f = ctx.shared.plan.flows.flows.get(flow.unwrap_or(first_flow));
    let f = f.filter(|_| ctx.admit(region, intended, flow.is_some()))?;
    let session = session.map_or_else(Session::default, |s| *s);
    Some(runtime::run_user(
        ctx, f, cohort, region, index, intended, session,
    ))
}

/// The user's cohort and first flow, worked out again when needed rather than kept: the task
/// holds what lives across the user's run for as long as the user stays (an idle connected
/// user: for the whole run).
fn cohort_of(ctx: &WorkerCtx, index: u64) -> (usize, usize) {
    ctx.shared
        .plan
        .flows
        .pick(ctx.shared.identities.cohort_draw(index))
}

/// The user left: if its cohort's users come back and it does (within the schedule), when and
/// with which flow; it is then counted as away. (It stops counting as active as its task ends:
/// `Active`.)
fn left(ctx: &WorkerCtx, index: u64, completed: bool, visits: u32) -> Option<(Duration, usize)> {
    let (cohort, _) = cohort_of(ctx, index);
    let returns = ctx.shared.plan.flows.cohorts.get(cohort);
    let returns = returns.and_then(|c| c.returns.as_ref());
    let back = match returns {
        Some(r) if completed && *ctx.shared.state.borrow() == RunState::Running => ctx
            .shared
            .identities
            .comes_back(index, visits, r.share, &r.away)
            .map(|away| (ctx.now() + away, r.flow)),
        _ => None,
    };
    // Only a return that falls within the schedule is planned.
    let back = back.filter(|(at, _)| *at < ctx.plan().duration());
    if back.is_some() {
        ctx.away.set(ctx.away.get() + 1);
    }
    back
}

/// A user away until `at`: it comes back then with `return_flow` and what it kept, unless the
/// run stopped starting users meanwhile or a cap refuses it.
async fn come_back(
    ctx: Rc<WorkerCtx>,
    n: u64,
    index: u64,
    at: Duration,
    return_flow: usize,
    session: Session,
) {
    let mut state = ctx.shared.state.clone();
    tokio::select! {
        _ = ctx.sleep_until(at) => {}
        _ = wait_state(&mut state, |s| s != RunState::Running) => {}
    }
    ctx.away.set(ctx.away.get() - 1);
    let region = region_of(&ctx, index);
    if *state.borrow() == RunState::Running {
        match refused(&ctx, n) {
            Some(reason) => ctx.drop_arrival(region, at, reason),
            None => {
                let session = Some(Box::new(session));
                start_user(ctx.clone(), n, index, at, session, Some(return_flow));
            }
        }
    } else {
        // Due before the run stopped starting users, the worker was behind: dropped.
        ctx.missed(region, at);
    }
    notify_if_idle(&ctx);
}

/// Wakes the worker's loop when its last user has left (none is away to come back, and no more
/// will be started): what it waits for to end early. Only then: a wake-up per user that leaves
/// would be a poll of the worker's own future and a system call more per arrival, for a check
/// that fails.
fn notify_if_idle(ctx: &WorkerCtx) {
    if ctx.spawned_all.get() && ctx.users_gone() {
        ctx.idle.notify_one();
    }
}

/// How closed-phase users of this worker get their indexes.
struct ClosedIds {
    base: u64,
    next: Rc<Cell<u64>>,
    worker: u64,
    workers: u64,
    shard: crate::compiled::shard::Shard,
}

impl ClosedIds {
    fn take(&self) -> u64 {
        let k = self.next.get();
        self.next.set(k + 1);
        schedule::closed_index(self.base, k, self.worker, self.workers, self.shard)
    }
}

/// One user slot of a closed phase: from its first start until the phase ends, a new user
/// starts as soon as the previous one finished (intended start = the previous one's end).
async fn closed_slot(ctx: Rc<WorkerCtx>, first: Duration, end: Duration, ids: ClosedIds) {
    let mut state = ctx.shared.state.clone();
    tokio::select! {
        _ = ctx.sleep_until(first) => {}
        _ = wait_state(&mut state, |s| s != RunState::Running) => {}
    }
    let set = ctx.shared.plan.flows.clone();
    // The slot's user counts as active for the whole loop: one leaves as the next arrives.
    let _active = Active::enter(ctx.clone());
    let mut intended = first;
    while *state.borrow() == RunState::Running && ctx.now() < end {
        let index = ids.take();
        // A closed phase drops nobody by design, unless its worker reaches the slot's next
        // user only after the deadline (a saturated worker, or `max_start_lag`).
        let region = region_of(&ctx, index);
        let (cohort, flow) = set.pick(ctx.shared.identities.cohort_draw(index));
        let Some(f) = set.flows.get(flow) else { break };
        if ctx.admit(region, intended, false) {
            runtime::run_user(&ctx, f, cohort, region, index, intended, Session::default()).await;
        }
        intended = ctx.now();
        // A flow that fails at once must not starve the worker's other tasks.
        tokio::task::yield_now().await;
    }
}

/// The region of user `index` (seeded by its index alone), if the scenario has regions.
fn region_of(ctx: &WorkerCtx, index: u64) -> Option<usize> {
    let shared = &ctx.shared;
    if shared.plan.regions.is_empty() {
        return None;
    }
    shared
        .plan
        .regions
        .pick(shared.identities.region_draw(index))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clients::Endpoint;

    /// A user's task that panics (a bug of inrush's) still gives its place back: the worker is
    /// told it is idle and ends, instead of waiting forever for a user who is gone.
    #[test]
    fn a_user_whose_task_panics_still_leaves() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        tokio::task::LocalSet::new().block_on(&rt, async {
            let text = r#"
name = "panic"
seed = 1
[target]
url = "http://127.0.0.1:1"
[load]
phases = [ { name = "only", duration = "1s", rate = 1 } ]
[[flows.f.steps]]
think = { constant = "1s" }
"#;
            let plan = crate::compiled::compile(std::path::Path::new("panic.toml"), text, None)
                .unwrap_or_else(|e| panic!("scenario compiles: {e:?}"));
            let (_state_tx, state) = tokio::sync::watch::channel(RunState::Running);
            let endpoint = Endpoint::plain(([127, 0, 0, 1], 1).into());
            let shared = Shared::for_test(Arc::new(plan), endpoint, state);
            let ctx = Rc::new(WorkerCtx::new(shared));
            ctx.spawned_all.set(true);
            let active = Active::enter(ctx.clone());
            assert_eq!(ctx.active_users.get(), 1);
            let task = tokio::task::spawn_local(async move {
                let _active = active;
                panic!("a bug, made on purpose by this test");
            });
            assert!(task.await.is_err_and(|e| e.is_panic()));
            assert_eq!(ctx.active_users.get(), 0);
            // The worker's wait for its last user (`run`) ends.
            tokio::time::timeout(Duration::from_secs(5), ctx.idle.notified())
                .await
                .expect("the worker is told it is idle");
        });
    }

    #[test]
    fn a_worker_thread_the_system_refuses_is_an_error_not_a_panic() {
        // From async code, as the run starts its workers. A stack of 1 PiB is beyond any
        // address space, so the system refuses the second thread; the first one is up.
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime");
        let (tx, _rx) = mpsc::unbounded_channel();
        let refused = rt.block_on(async {
            start_with(2, tx, |id| match id {
                0 => std::thread::Builder::new(),
                _ => std::thread::Builder::new().stack_size(1 << 50),
            })
            .err()
        });
        assert!(refused.is_some(), "a refused thread is an error");
    }
}
