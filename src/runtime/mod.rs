//! Runs a compiled flow for one simulated user: HTTP requests, one persistent connection with
//! background frame rules, captures, checks, loops, think times, and message correlation.
//!
//! Timing follows the same rule as everywhere in inrush: an operation's latency counts from its
//! intended start — the user's arrival for the first step, the end of the previous step (plus
//! the think time) for the next — so a generator that falls behind cannot hide a slow target.
//!
//! One [`User`] per simulated user, its work split by concern:
//! - `steps`: the step loop, repeats, loops, pauses, timed steps with retries, transactions;
//! - `actions`: one attempt at a timed step's work (a request, a socket's opening, a send, a
//!   receive);
//! - `socket`: the socket's life (open, drop and reconnect, drain, close, send);
//! - `listen`: waiting between operations, answering what the socket brings meanwhile;
//! - `messages` (with `message_id`, `received`, `frame_json`): acks, deliveries, background
//!   frame rules (a frame's JSON parsed only as far as they read it);
//! - `eval` and `render`: expressions and templates, over the user's `Scope`;
//! - `checks`: checks on answers, and captures.
//!
//! `eval`, `render`, `checks` and the tracking in `messages` are functions of small structs
//! (`Scope`, `Messages`), tested without a worker or a network. The socket itself is a
//! `clients::connection::Connection`: no protocol library's types appear here.

mod actions;
mod checks;
mod eval;
mod frame_json;
mod listen;
mod message_id;
mod messages;
mod outcome;
pub mod received;
mod render;
mod socket;
mod steps;
#[cfg(test)]
mod tests;
mod trace;

use std::sync::Arc;
use std::time::Duration;

use crate::clients::http::HttpClient;
use crate::clients::region_link::Link;
use crate::compiled::flow::template::Value;
use crate::compiled::flow::Flow;
use crate::metrics::MetricId;
use crate::runtime::eval::{Scope, World};
use crate::runtime::messages::Messages;
use crate::runtime::received::Received;
use crate::runtime::socket::Socket;
use crate::swarm::registry::Member;
use crate::swarm::run_state::{Aborted, Reached};
use crate::swarm::{RunState, WorkerCtx};

pub use message_id::{message_id, parse_message_id};

/// Why the flow ended early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// An operation failed (already counted as its step's error).
    Failed,
    /// The run stopped the user mid-flow: its schedule ended, its drain ran out, or it was
    /// interrupted.
    CutOff,
}

/// One simulated user while it runs its flow.
pub struct User<'a> {
    ctx: &'a WorkerCtx,
    cohort: usize,
    /// The user's region (its metrics are also recorded there), and the network it makes.
    region: Option<usize>,
    link: Link,
    http: HttpClient,
    /// How many changes of the run's state the user has seen (`WorkerCtx::run_state`).
    seen_changes: u8,
    /// When the next operation is meant to start.
    intended: Duration,
    /// The user's place in the swarm, once it published itself.
    member: Option<Arc<Member>>,
    /// Boxed: its state is the largest part of a user, and many users (every one before its
    /// `ws` step, and those of flows without one) have no socket.
    socket: Option<Box<Socket<'a>>>,
    /// What expressions read and change: variables, loop counters, random stream, peers.
    scope: Scope,
    /// Messages sent and awaiting acks, and those received.
    messages: Messages,
    /// The open transaction: its metric and intended start (set when its first step's action
    /// begins: the think pause before it is not part of the transaction).
    txn: Option<(MetricId, Option<Duration>)>,
    /// When this user last reopened its socket after a drop (a pause a reconnect overran is not
    /// lag).
    reconnected_at: Option<Duration>,
    /// How many `online = true` loops the user is inside: while it is in one, it is online
    /// without a socket and keeps polling through the drain.
    polling: u32,
    /// The user was admitted and has not issued its first operation yet: that operation goes out
    /// even if the run began stopping since, so every started user has an outcome.
    admitted: bool,
    /// `--trace`: this user's events, when it is one of the traced few.
    /// Boxed: few users are traced, and every user would carry its room.
    trace: Option<Box<trace::UserTrace<'a>>>,
    /// The innermost step the user is in (waiting for or doing): where a cut-off user was.
    at: Option<&'a crate::compiled::flow::Step>,
    /// The checks the current attempt judged its answer by, until the step records them.
    checked: checks::Tally,
}

/// What a user keeps while it is away, so that it comes back as the same person: its captured
/// variables (by name: the token of its signup), its place in the swarm, the messages it has
/// already received (duplicates stay detectable) and its message numbering.
#[derive(Debug, Default)]
pub struct Session {
    vars: Vec<(String, Value)>,
    member: Option<Arc<Member>>,
    received: Received,
    next_msg: u32,
    /// Sessions before this one (0 on the first arrival).
    visits: u32,
}

impl Session {
    /// Sessions this user has had so far.
    pub fn visits(&self) -> u32 {
        self.visits
    }
}

/// How a user's flow ended, and what it carries into a later return.
#[derive(Debug)]
pub struct Ended {
    /// The flow ran to its end (no failed step, the run did not stop it).
    pub completed: bool,
    pub session: Session,
}

/// Runs `flow` for user `index`, who was meant to arrive at `intended` and was admitted just now
/// (`WorkerCtx::admit`, which counted it as started); `session` is what a returning user kept
/// from before.
///
/// The user is built before the future is: the future holds the user and what its flow awaits,
/// not also the arguments it was built from (an async fn keeps its arguments for its whole
/// life, and a connected user's task lives as long as it stays online).
pub fn run_user<'a>(
    ctx: &'a WorkerCtx,
    flow: &'a Flow,
    cohort: usize,
    region: Option<usize>,
    index: u64,
    intended: Duration,
    session: Session,
) -> impl std::future::Future<Output = Ended> + 'a {
    let link = match region.and_then(|i| ctx.plan().regions.get(i)) {
        Some(r) => Link::new(r.latency, r.jitter, ctx.shared.identities.link_rng(index)),
        None => Link::ideal(),
    };
    let visits = session.visits;
    let mut vars = vec![None; flow.slots];
    for (name, value) in session.vars {
        if let Some(slot) = flow.vars.iter().position(|n| *n == name) {
            vars[slot] = Some(value);
        }
    }
    // A returning user draws from a stream of its own per visit, not its first visit's again.
    let rng = if visits > 0 {
        ctx.shared.identities.visit_rng(index, visits)
    } else {
        ctx.shared.identities.rng(index)
    };
    let mut user = User {
        ctx,
        cohort,
        region,
        link,
        http: HttpClient::new(
            // By the user's place in its shard (every N-th index is the shard's), so a shard
            // spreads its users over all the addresses too.
            ctx.shared
                .endpoint
                .source_for(ctx.shared.plan.shard.local(index)),
            ctx.shared.endpoint.user_tls(),
            ctx.open_http.clone(),
            ctx.http_pool.clone(),
        ),
        seen_changes: ctx.run_state.changes(),
        intended,
        member: session.member,
        socket: None,
        scope: Scope::new(index, rng, vars, session.next_msg),
        messages: Messages::new(session.received),
        txn: None,
        reconnected_at: None,
        polling: 0,
        admitted: true,
        at: None,
        checked: checks::Tally::default(),
        trace: ctx
            .shared
            .trace
            .as_ref()
            .filter(|t| t.traces(index))
            .map(|t| Box::new(trace::UserTrace::new(t, index, visits, intended))),
    };
    if user.trace.is_some() {
        user.scope.derived_secrets = Some(Box::default());
    }
    async move {
        // The abort's wait first: its receiver is made as the future is, not kept beside it.
        // In this order, not at random: the wait is two plain reads, and a random order costs
        // a draw of the thread's generator on every poll of every user.
        let ended = tokio::select! {
            biased;
            () = Reached::<Aborted>::new(&ctx.run_state) => Err(Stop::CutOff),
            done = user.live(flow) => done,
        };
        // Every started user ends in exactly one outcome (`metrics::outcomes`).
        user.record_outcome(flow, ended);
        let completed = ended.is_ok();
        let vars = flow
            .vars
            .iter()
            .zip(user.scope.vars)
            .filter_map(|(n, v)| Some((n.clone(), v?)))
            .collect();
        Ended {
            completed,
            session: Session {
                vars,
                member: user.member,
                received: user.messages.received,
                next_msg: user.scope.next_msg,
                visits: visits + 1,
            },
        }
    }
}

impl<'a> User<'a> {
    fn running(&self) -> bool {
        self.ctx.run_state.get() == RunState::Running
    }

    fn ended(&self) -> bool {
        matches!(
            self.ctx.run_state.get(),
            RunState::Ended | RunState::Aborted
        )
    }

    /// Whether the user's flow goes on: while the run runs, and through the drain for a user
    /// polling in an `online` loop (what it fetches then is how messages in flight arrive).
    fn goes_on(&self) -> bool {
        match self.ctx.run_state.get() {
            RunState::Running => true,
            RunState::Stopping => self.polling > 0,
            RunState::Ended | RunState::Aborted => false,
        }
    }

    /// Whether the user is online without a socket of its own (in an `online` loop).
    fn present(&self) -> bool {
        self.polling > 0
    }

    /// What expressions read from the run, for the operation starting now. Its lifetime is the
    /// worker's, not this borrow's, so it can be used while the user's scope changes.
    fn world(&self) -> World<'a> {
        let shared: &'a crate::swarm::Shared = &self.ctx.shared;
        World {
            identities: &shared.identities,
            registry: &shared.registry,
            feeders: &shared.plan.flows.feeders,
            seed: shared.plan.seed,
            intended: self.intended,
            scratch: &self.ctx.scratch,
        }
    }
}
