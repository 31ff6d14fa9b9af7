//! One worker thread: starts its share of the arrivals on time, and hands its recorder to the
//! collector at every interval boundary.

use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use super::{wait_state, RunState, Shared, WorkerCtx};
use crate::flow::engine;
use crate::metrics::collector::Snapshot;
use crate::metrics::Counter;
use crate::schedule;

/// Starts `n` worker threads; each sends its snapshots to `tx` and ends with a `last` one.
pub fn start(
    shared: Arc<Shared>,
    n: usize,
    tx: mpsc::UnboundedSender<Snapshot>,
) -> std::io::Result<Vec<std::thread::JoinHandle<()>>> {
    (0..n)
        .map(|id| {
            let shared = shared.clone();
            let tx = tx.clone();
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            std::thread::Builder::new()
                .name(format!("inrush-worker-{id}"))
                .spawn(move || {
                    let local = tokio::task::LocalSet::new();
                    local.block_on(&rt, run(id, n, shared, tx));
                })
        })
        .collect()
}

async fn run(id: usize, n: usize, shared: Arc<Shared>, tx: mpsc::UnboundedSender<Snapshot>) {
    let ctx = Rc::new(WorkerCtx::new(shared));
    let spawner = tokio::task::spawn_local(spawn_arrivals(ctx.clone(), id as u64, n as u64));
    let mut start = Duration::ZERO;
    for interval in 0.. {
        let end = schedule::next_boundary(ctx.plan(), start);
        let finished = loop {
            if spawner.is_finished() && ctx.active_users.get() == 0 {
                break true;
            }
            tokio::select! {
                _ = tokio::time::sleep_until(ctx.at(end)) => break false,
                _ = ctx.idle.notified() => {}
            }
        };
        let actual_end = if finished { ctx.now().min(end) } else { end };
        let (recorder, regions) = ctx.take_recorders();
        let snapshot = Snapshot {
            worker: id,
            interval,
            start,
            end: actual_end,
            recorder,
            regions,
            active_users: ctx.active_users.get(),
            open_connections: ctx.open_connections.get(),
            last: finished,
        };
        // The collector only goes away when the run is torn down; nothing left to report to.
        if tx.send(snapshot).is_err() || finished {
            break;
        }
        start = end;
    }
}

/// Starts this worker's users at their intended times, until the schedule ends or the run stops.
async fn spawn_arrivals(ctx: Rc<WorkerCtx>, id: u64, n: u64) {
    let mut state = ctx.shared.state.clone();
    let plan = ctx.shared.plan.clone();
    // Cap per worker: users are dealt evenly, so an even share of the cap keeps the total.
    let cap = plan.max_users.map(|c| c.div_ceil(n));
    let mut arrivals = schedule::arrivals(&plan).filter(|(i, _)| i % n == id);
    for (index, intended) in arrivals.by_ref() {
        tokio::select! {
            _ = tokio::time::sleep_until(ctx.at(intended)) => {}
            _ = wait_state(&mut state, |s| s != RunState::Running) => {}
        }
        match *state.borrow() {
            RunState::Running => {}
            RunState::Stopping => {
                // The schedule ended while this worker was still behind it: arrivals that were
                // due by then were planned and never started, so they count as dropped.
                let later = arrivals.take_while(|&(_, t)| t < plan.duration());
                for i in std::iter::once(index).chain(later.map(|(i, _)| i)) {
                    ctx.record_in(region_of(&ctx, i), |r| {
                        r.add(Counter::ArrivalsPlanned, 1);
                        r.add(Counter::ArrivalsDropped, 1);
                    });
                }
                break;
            }
            RunState::Ended | RunState::Aborted => break,
        }
        let region = region_of(&ctx, index);
        ctx.record_in(region, |r| r.add(Counter::ArrivalsPlanned, 1));
        if cap.is_some_and(|c| ctx.active_users.get() >= c) {
            ctx.record_in(region, |r| r.add(Counter::ArrivalsDropped, 1));
            continue;
        }
        ctx.active_users.set(ctx.active_users.get() + 1);
        let user_ctx = ctx.clone();
        tokio::task::spawn_local(async move {
            let set = user_ctx.shared.plan.flows.clone();
            let draw = user_ctx.shared.identities.cohort_draw(index);
            let (cohort, flow) = set.pick(draw);
            if let Some(flow) = set.flows.get(flow) {
                engine::run_user(&user_ctx, flow, cohort, region, index, intended).await;
            }
            user_ctx.active_users.set(user_ctx.active_users.get() - 1);
            user_ctx.idle.notify_one();
        });
    }
    // Keep the worker's clock running to the end of the plan even when its last arrival is early,
    // so every interval of the plan is reported.
    tokio::select! {
        _ = tokio::time::sleep_until(ctx.at(plan.duration())) => {}
        _ = wait_state(&mut state, |s| s != RunState::Running) => {}
    }
    ctx.idle.notify_one();
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
