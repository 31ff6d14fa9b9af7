//! The load model of a plan: who starts when. The run's three sources of users — the open
//! arrival timeline, the closed phases' loops and returning users — and its caps, replayed in
//! time order on the walk's assumed clock, each decision taken by the same function the run
//! takes it with (src/run/worker.rs):
//!
//! - open arrivals: [`schedule::shard_arrivals`] (the shard's, all of them without `--shard`), user
//!   `index` on worker [`schedule::worker_of`];
//! - closed phases: [`Closed::first_starts`](crate::compiled::Closed::first_starts) for every
//!   worker's slots; a slot's next user starts when the previous one left, while that is before the phase's end; its index is
//!   [`schedule::closed_index`] with the worker's own count of closed users so far (in the order
//!   its slots start users, as the run's worker does);
//! - returns: a user whose flow completed comes back if [`Identities::comes_back`] says so for
//!   its index and visit, at the time it left plus the drawn away time, if that is before the
//!   schedule's end; it walks its cohort's return flow with [`Identities::visit_rng`];
//! - caps: each worker keeps `max_users`/`max_inflight` divided by the worker count (rounded
//!   up); an open arrival or a return that finds its worker's share reached is dropped. The
//!   plan's users and operations are the walked ones, so with an exact latency the plan drops
//!   what the run drops; a real target's latency varies, which moves drops (see the README).
//!
//! Only timing differs from the run: every operation takes the assumed latency here.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

use super::per_interval::PerInterval;
use super::walk::{self, Assumptions, Left, Sink};
use crate::compiled::Plan;
use crate::schedule;
use crate::swarm::caps::{self, Cap};
use crate::swarm::identity::Identities;

/// What the model counted, for the estimate.
#[derive(Debug, Default)]
pub struct Counts {
    /// Worker threads modelled.
    pub workers: u64,
    /// Open arrivals of the timeline (exact for the seed).
    pub scheduled: u64,
    /// Users started by closed phases' loops.
    pub closed: u64,
    /// Returns that came before the schedule's end (started or dropped).
    pub returns: u64,
    /// Returns started.
    pub returned: u64,
    pub dropped_max_users: u64,
    pub dropped_max_inflight: u64,
    /// Open arrivals and closed-loop users per phase (returns apart).
    pub per_phase: indexmap::IndexMap<String, u64>,
}

/// A time as a heap key (seconds; never NaN here, and `total_cmp` orders it anyway).
#[derive(Debug, Clone, Copy, PartialEq)]
struct At(f64);

impl Eq for At {}
impl PartialOrd for At {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for At {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// A start that is due later: a closed slot's next user or a return.
#[derive(Debug)]
enum Due {
    Closed {
        worker: u64,
        phase_end: f64,
    },
    Return {
        index: u64,
        visits: u32,
        flow: usize,
    },
}

/// Ordered by time, then by when it was planned (a stable order for equal times).
#[derive(Debug)]
struct Pending {
    at: At,
    seq: u64,
    due: Due,
}

impl PartialEq for Pending {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Pending {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

/// One worker thread's view: its active users and its operations in flight, for its share of
/// the caps; and how many closed users it has started (their indexes).
#[derive(Default)]
struct Worker {
    /// When each active user leaves.
    users: BinaryHeap<Reverse<At>>,
    /// Operations of started users that have not begun yet: (start, end).
    ops_later: BinaryHeap<Reverse<(At, At)>>,
    /// Ends of operations in flight.
    ops_now: BinaryHeap<Reverse<At>>,
    closed_started: u64,
}

impl Worker {
    /// Active users at `t` (queries come in time order).
    fn active(&mut self, t: f64) -> u64 {
        while self.users.peek().is_some_and(|Reverse(e)| e.0 <= t) {
            self.users.pop();
        }
        self.users.len() as u64
    }

    /// Operations in flight at `t` (queries come in time order).
    fn inflight(&mut self, t: f64) -> u64 {
        while let Some(&Reverse((from, to))) = self.ops_later.peek() {
            if from.0 > t {
                break;
            }
            self.ops_later.pop();
            self.ops_now.push(Reverse(to));
        }
        while self.ops_now.peek().is_some_and(|Reverse(e)| e.0 <= t) {
            self.ops_now.pop();
        }
        self.ops_now.len() as u64
    }
}

/// A modelled worker at one instant, as the caps decision reads it.
struct WorkerAt<'a> {
    worker: &'a mut Worker,
    t: f64,
}

impl caps::Occupancy for WorkerAt<'_> {
    fn active_users(&mut self) -> u64 {
        self.worker.active(self.t)
    }
    fn inflight(&mut self) -> u64 {
        self.worker.inflight(self.t)
    }
}

/// Forwards a walked user to the per-interval counts and keeps its operations for the
/// `max_inflight` cap.
struct CountingSink<'a> {
    per_interval: &'a mut PerInterval,
    ops: Option<&'a mut BinaryHeap<Reverse<(At, At)>>>,
}

impl Sink for CountingSink<'_> {
    fn user(&mut self, start: f64, end: f64) {
        self.per_interval.user(start, end);
    }
    fn connection(&mut self, kind: walk::Conn, open: f64, close: f64) {
        self.per_interval.connection(kind, open, close);
    }
    fn request(&mut self, at: f64) {
        self.per_interval.request(at);
    }
    fn message(&mut self, at: f64) {
        self.per_interval.message(at);
    }
    fn operation(&mut self, from: f64, to: f64) {
        self.per_interval.operation(from, to);
        if let Some(ops) = self.ops.as_mut() {
            ops.push(Reverse((At(from), At(to))));
        }
    }
}

struct Model<'a> {
    plan: &'a Plan,
    a: &'a Assumptions,
    identities: Identities,
    workers: Vec<Worker>,
    pending: BinaryHeap<Reverse<Pending>>,
    seq: u64,
    counts: Counts,
    per_interval: &'a mut PerInterval,
}

/// Replays the whole load of `plan` on `workers` worker threads into the per-interval counts.
pub(super) fn replay(
    plan: &Plan,
    a: &Assumptions,
    workers: u64,
    per_interval: &mut PerInterval,
) -> Counts {
    let workers = workers.max(1);
    let mut m = Model {
        plan,
        a,
        identities: Identities::new(plan.seed, &plan.user.phone_prefix),
        workers: (0..workers).map(|_| Worker::default()).collect(),
        pending: BinaryHeap::new(),
        seq: 0,
        counts: Counts {
            workers,
            per_phase: plan.phases.iter().map(|p| (p.name.clone(), 0)).collect(),
            ..Counts::default()
        },
        per_interval,
    };
    for phase in &plan.phases {
        let Some(closed) = phase.closed() else {
            continue;
        };
        for w in 0..workers {
            for first in closed.first_starts(phase.start, plan.shard, w, workers) {
                let due = Due::Closed {
                    worker: w,
                    phase_end: phase.end().as_secs_f64(),
                };
                m.later(first.as_secs_f64(), due);
            }
        }
    }
    // Closed users' indexes follow the open timeline's, as in the run.
    let base = schedule::first_closed_index(plan);
    let mut open = schedule::shard_arrivals(plan).peekable();
    loop {
        let next_open = open.peek().map(|(_, t)| t.as_secs_f64());
        let next_due = m.pending.peek().map(|Reverse(p)| p.at.0);
        match (next_open, next_due) {
            (None, None) => break,
            // An open arrival goes first at equal times: the run's order there is a race.
            (Some(o), d) if d.is_none_or(|d| o <= d) => {
                if let Some((index, _)) = open.next() {
                    m.open(index, o);
                }
            }
            _ => {
                if let Some(Reverse(p)) = m.pending.pop() {
                    match p.due {
                        Due::Closed { worker, phase_end } => {
                            m.closed(base, worker, p.at.0, phase_end)
                        }
                        Due::Return {
                            index,
                            visits,
                            flow,
                        } => m.returning(index, visits, flow, p.at.0),
                    }
                }
            }
        }
    }
    m.counts
}

impl Model<'_> {
    fn later(&mut self, at: f64, due: Due) {
        self.seq += 1;
        self.pending.push(Reverse(Pending {
            at: At(at),
            seq: self.seq,
            due,
        }));
    }

    fn phase_count(&mut self, t: f64) {
        let at = std::time::Duration::from_secs_f64(t.max(0.0));
        if let Some(p) = self.plan.phases.get(self.plan.phase_at(at)) {
            if let Some(n) = self.counts.per_phase.get_mut(&p.name) {
                *n += 1;
            }
        }
    }

    /// The run's caps decision ([`caps::refused`]) for `worker` at `t`.
    fn refused(&mut self, worker: u64, t: f64) -> Option<Cap> {
        let n = self.workers.len() as u64;
        let w = self.workers.get_mut(worker as usize)?;
        caps::refused(self.plan, n, &mut WorkerAt { worker: w, t })
    }

    fn drop(&mut self, why: Cap, t: f64) {
        match why {
            Cap::MaxUsers => self.counts.dropped_max_users += 1,
            Cap::MaxInflight => self.counts.dropped_max_inflight += 1,
        }
        let i = self.per_interval.slot(t);
        self.per_interval.dropped[i] += 1;
    }

    /// Walks user `index`'s visit through `flow` from `t` on `worker`.
    fn walk(&mut self, worker: u64, index: u64, flow: usize, visits: u32, t: f64) -> Option<Left> {
        let f = self.plan.flows.flows.get(flow)?;
        // The user's region, drawn as the workers draw it; its mean one-way delay (jitter is
        // symmetric around it).
        let one_way = if self.plan.regions.is_empty() {
            0.0
        } else {
            self.plan
                .regions
                .pick(self.identities.region_draw(index))
                .and_then(|i| self.plan.regions.get(i))
                .map_or(0.0, |r| r.latency.as_secs_f64())
        };
        let rng = if visits == 0 {
            self.identities.rng(index)
        } else {
            self.identities.visit_rng(index, visits)
        };
        let track_ops = self.plan.max_inflight.is_some();
        let w = self.workers.get_mut(worker as usize)?;
        let mut sink = CountingSink {
            per_interval: &mut *self.per_interval,
            ops: track_ops.then_some(&mut w.ops_later),
        };
        let left = walk::user(f, t, one_way, rng, self.a, &mut sink);
        // Kept only for the cap that needs them: a plan of millions of users stays small.
        if self.plan.max_users.is_some() {
            w.users.push(Reverse(At(left.at)));
        }
        let i = self.per_interval.slot(t);
        self.per_interval.arrivals[i] += 1;
        Some(left)
    }

    /// After a visit of an open (or returning) user: its return, if it comes back in time.
    fn maybe_return(&mut self, index: u64, visits: u32, left: Left) {
        let set = &self.plan.flows;
        let (cohort, _) = set.pick(self.identities.cohort_draw(index));
        let Some(r) = set.cohorts.get(cohort).and_then(|c| c.returns.as_ref()) else {
            return;
        };
        // The run decides only for a completed flow that left while the schedule ran.
        if !left.completed || left.at >= self.a.stop {
            return;
        }
        let Some(away) = self.identities.comes_back(index, visits, r.share, &r.away) else {
            return;
        };
        let at = left.at + away.as_secs_f64();
        if at < self.plan.duration().as_secs_f64() {
            let flow = r.flow;
            self.later(
                at,
                Due::Return {
                    index,
                    visits,
                    flow,
                },
            );
        }
    }

    fn open(&mut self, index: u64, t: f64) {
        self.counts.scheduled += 1;
        self.phase_count(t);
        let n = self.workers.len() as u64;
        let worker = schedule::worker_of(self.plan.shard, index, n);
        if let Some(why) = self.refused(worker, t) {
            self.drop(why, t);
            return;
        }
        let (_, flow) = self.plan.flows.pick(self.identities.cohort_draw(index));
        if let Some(left) = self.walk(worker, index, flow, 0, t) {
            self.maybe_return(index, 1, left);
        }
    }

    fn returning(&mut self, index: u64, visits: u32, flow: usize, t: f64) {
        self.counts.returns += 1;
        let n = self.workers.len() as u64;
        let worker = schedule::worker_of(self.plan.shard, index, n);
        if let Some(why) = self.refused(worker, t) {
            self.drop(why, t);
            return;
        }
        self.counts.returned += 1;
        let i = self.per_interval.slot(t);
        self.per_interval.returns[i] += 1;
        if let Some(left) = self.walk(worker, index, flow, visits, t) {
            self.maybe_return(index, visits + 1, left);
        }
    }

    /// One closed-slot user at `t`; the slot's next one when it leaves, within the phase.
    fn closed(&mut self, base: u64, worker: u64, t: f64, phase_end: f64) {
        if t >= phase_end || t >= self.a.stop {
            return;
        }
        let n = self.workers.len() as u64;
        let Some(w) = self.workers.get_mut(worker as usize) else {
            return;
        };
        let index = schedule::closed_index(base, w.closed_started, worker, n, self.plan.shard);
        w.closed_started += 1;
        self.counts.closed += 1;
        self.phase_count(t);
        let (_, flow) = self.plan.flows.pick(self.identities.cohort_draw(index));
        let Some(left) = self.walk(worker, index, flow, 0, t) else {
            return;
        };
        // A flow that takes no time would loop forever on the assumed clock (the run would
        // spin on the real one): the slot stops.
        if left.at > t && left.at < phase_end {
            self.later(left.at, Due::Closed { worker, phase_end });
        }
    }
}
