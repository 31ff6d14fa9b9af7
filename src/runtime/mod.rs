//! Runs a compiled flow for one simulated user: HTTP requests, one WebSocket with background
//! frame rules, captures, checks, loops, think times, and message correlation.
//!
//! Timing follows the same rule as everywhere in inrush: an operation's latency counts from its
//! intended start — the user's arrival for the first step, the end of the previous step (plus
//! the think time) for the next — so a generator that falls behind cannot hide a slow target.

pub mod received;

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use futures_util::SinkExt;
use rand::rngs::SmallRng;
use rand::RngExt;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use crate::clients::http::{HttpClient, Response};
use crate::clients::region_link::{Inbox, Link};
use crate::clients::retry_after::parse_retry_after;
use crate::clients::{ws, OpError};
use crate::compiled::flow::template::Value;
use crate::compiled::flow::*;
use crate::compiled::retry::ReconnectPolicy;
use crate::metrics::{Counter, ErrorClass, MetricId};
use crate::runtime::received::{Arrival, Received};
use crate::swarm::registry::Member;
use crate::swarm::{wait_state, RunState, WorkerCtx};

/// The flow ended early: an operation failed (already counted) or the run is stopping.
#[derive(Debug)]
pub struct Stop;

type Step<'a> = Pin<Box<dyn Future<Output = Result<(), Stop>> + 'a>>;

/// A message this user sent and whose ack it waits for.
struct Outgoing {
    started: Duration,
    intended: Duration,
    recipient: Option<Arc<Member>>,
}

struct Socket<'f> {
    conn: ws::Socket,
    /// Frames read off the socket, each seen after the user's one-way delay.
    inbox: Inbox<Result<Message, WsError>>,
    rules: &'f [FrameRule],
    /// The step that opened it: a socket the server closes is that step's error.
    metric: Option<MetricId>,
    /// That step itself, to open the socket again after a drop (`reconnect`).
    step: &'f crate::compiled::flow::Step,
}

pub struct User<'a> {
    ctx: &'a WorkerCtx,
    index: u64,
    cohort: usize,
    /// The user's region (its metrics are also recorded there), and the network it makes.
    region: Option<usize>,
    link: Link,
    /// Chat contacts per cohort, for `swarm.cohort(...).online`.
    cohort_contacts: HashMap<usize, Vec<Arc<Member>>>,
    rng: SmallRng,
    http: HttpClient,
    state: watch::Receiver<RunState>,
    /// When the next operation is meant to start.
    intended: Duration,
    vars: Vec<Option<Value>>,
    seq: Vec<u64>,
    member: Option<Arc<Member>>,
    socket: Option<Socket<'a>>,
    /// Per step: the message id and peer of this step, so two uses agree.
    step_msg: Option<(u32, Duration)>,
    step_peer: Option<Arc<Member>>,
    /// The step asked for an online peer and there was none.
    step_no_peer: bool,
    sampled: Vec<Arc<Member>>,
    chat_contacts: Vec<Arc<Member>>,
    msg_seq: u32,
    unacked: HashMap<u32, Outgoing>,
    last_sent: Duration,
    received: Received,
    /// The open transaction: its metric and intended start.
    txn: Option<(MetricId, Duration)>,
    /// When this user last reopened its socket after a drop (a pause a reconnect overran is not
    /// lag).
    reconnected_at: Option<Duration>,
}

/// How many online users a user keeps as chat contacts for `swarm.online`.
const CHAT_CONTACTS: usize = 5;

/// What a user keeps while it is away, so that it comes back as the same person: its captured
/// variables (by name: the token of its signup), its place in the swarm, the messages it has
/// already received (duplicates stay detectable) and its message numbering.
#[derive(Debug, Default)]
pub struct Session {
    vars: Vec<(String, Value)>,
    member: Option<Arc<Member>>,
    received: Received,
    msg_seq: u32,
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

/// Runs `flow` for user `index`, who was meant to arrive at `intended`; `session` is what a
/// returning user kept from before.
pub async fn run_user(
    ctx: &WorkerCtx,
    flow: &Flow,
    cohort: usize,
    region: Option<usize>,
    index: u64,
    intended: Duration,
    session: Session,
) -> Ended {
    ctx.record_in(region, |r| {
        r.add(Counter::ArrivalsStarted, 1);
        r.value(MetricId::SCHEDULE_LAG, ctx.now().saturating_sub(intended));
    });
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
    let mut user = User {
        ctx,
        index,
        cohort,
        region,
        link,
        cohort_contacts: HashMap::new(),
        rng: ctx.shared.identities.rng(index),
        http: HttpClient::with_source(ctx.shared.endpoint.source_for(index)),
        state: ctx.shared.state.clone(),
        intended,
        vars,
        seq: Vec::new(),
        member: session.member,
        socket: None,
        step_msg: None,
        step_peer: None,
        step_no_peer: false,
        sampled: Vec::new(),
        chat_contacts: Vec::new(),
        msg_seq: session.msg_seq,
        unacked: HashMap::new(),
        last_sent: Duration::ZERO,
        received: session.received,
        txn: None,
        reconnected_at: None,
    };
    if visits > 0 {
        // A returning user draws from a stream of its own per visit, not its first visit's again.
        user.rng = ctx.shared.identities.visit_rng(index, visits);
    }
    let mut aborted = ctx.shared.state.clone();
    let completed = tokio::select! {
        done = user.live(flow) => done,
        _ = wait_state(&mut aborted, |s| s == RunState::Aborted) => false,
    };
    let vars = flow
        .vars
        .iter()
        .zip(user.vars)
        .filter_map(|(n, v)| Some((n.clone(), v?)))
        .collect();
    Ended {
        completed,
        session: Session {
            vars,
            member: user.member,
            received: user.received,
            msg_seq: user.msg_seq,
            visits: visits + 1,
        },
    }
}

/// Message ids carry the sender, a sequence number and the intended send time (µs since the
/// run started), so the recipient measures delivery on the same clock without shared state.
pub fn message_id(sender: u64, seq: u32, intended: Duration) -> String {
    format!("{sender}-{seq}-{}", intended.as_micros())
}

pub fn parse_message_id(id: &str) -> Option<(u64, u32, Duration)> {
    let mut parts = id.splitn(3, '-');
    let sender = parts.next()?.parse().ok()?;
    let seq = parts.next()?.parse().ok()?;
    let micros = parts.next()?.parse().ok()?;
    Some((sender, seq, Duration::from_micros(micros)))
}

fn fail(class: ErrorClass, reason: impl Into<String>) -> OpError {
    OpError::new(class, reason)
}

impl<'a> User<'a> {
    fn running(&self) -> bool {
        *self.state.borrow() == RunState::Running
    }

    /// Runs the flow and leaves; true when every step succeeded.
    async fn live(&mut self, flow: &'a Flow) -> bool {
        let finished = self.steps(&flow.steps).await.is_ok();
        if finished {
            self.close_txn(self.intended);
        }
        // Boxed, like a step's work: leaving happens once, at the end, and its state would
        // otherwise be carried by every user for its whole life.
        Box::pin(self.leave()).await;
        finished
    }

    /// After the flow (or when it stopped): wait for outstanding acks, stay for the drain while
    /// the run stops, then close the socket.
    async fn leave(&mut self) {
        if self.socket.is_none() {
            return;
        }
        let timeout = self.ctx.plan().timeout;
        loop {
            let state = *self.state.borrow();
            let deadline = match state {
                RunState::Ended | RunState::Aborted => break,
                // The run drains: keep listening so messages in flight still arrive.
                RunState::Stopping => None,
                RunState::Running if self.unacked.is_empty() => break,
                RunState::Running => Some(self.last_sent + timeout),
            };
            if deadline.is_some_and(|d| self.ctx.now() >= d) {
                break;
            }
            if self.listen(deadline, None).await.is_err() {
                break;
            }
        }
        self.close_socket(false, false).await;
    }

    fn steps<'s>(&'s mut self, steps: &'a [crate::compiled::flow::Step]) -> Step<'s> {
        Box::pin(async move {
            for step in steps {
                self.step(step).await?;
            }
            Ok(())
        })
    }

    async fn step(&mut self, step: &'a crate::compiled::flow::Step) -> Result<(), Stop> {
        if step.when.as_ref().is_some_and(|cond| !self.holds(cond)) {
            return Ok(());
        }
        // A transaction starts at the intended start of its first step.
        if step.transaction != self.txn.map(|t| t.0) {
            self.close_txn(self.intended);
            self.txn = step.transaction.map(|m| (m, self.intended));
        }
        for i in 0..step.repeat {
            self.seq.push(i);
            let result = self.once(step).await;
            self.seq.pop();
            result?;
        }
        Ok(())
    }

    fn close_txn(&mut self, end: Duration) {
        if let Some((metric, start)) = self.txn.take() {
            self.ctx
                .record_in(self.region, |r| r.ok(metric, start, start, end));
        }
    }

    async fn once(&mut self, step: &'a crate::compiled::flow::Step) -> Result<(), Stop> {
        if let Some(think) = &step.think_before {
            let at = self.intended + think.sample(&mut self.rng);
            self.pause_until(at).await?;
        }
        self.step_msg = None;
        self.step_peer = None;
        self.step_no_peer = false;
        match &step.action {
            Action::Think(d) => {
                let at = self.intended + d.sample(&mut self.rng);
                self.pause_until(at).await
            }
            Action::StayOnline(d) => {
                let until = self.ctx.now() + d.sample(&mut self.rng);
                while self.ctx.now() < until && self.running() {
                    self.listen(Some(until), None).await?;
                }
                self.intended = self.ctx.now();
                if self.running() {
                    Ok(())
                } else {
                    Err(Stop)
                }
            }
            Action::Loop(kind, body) => self.run_loop(step, kind, body).await,
            Action::Close => {
                self.close_socket(false, false).await;
                Ok(())
            }
            _ => self.timed(step).await,
        }
    }

    async fn run_loop(
        &mut self,
        step: &'a crate::compiled::flow::Step,
        kind: &LoopKind,
        body: &'a [crate::compiled::flow::Step],
    ) -> Result<(), Stop> {
        let started = self.ctx.now();
        let intended = self.intended;
        let mut i = 0u64;
        loop {
            let go_on = match kind {
                LoopKind::Times(n) => i < *n,
                LoopKind::For(d, max) => self.ctx.now() < started + *d && i < *max,
                LoopKind::Until(_, max) => i < *max,
            };
            if !go_on {
                break;
            }
            self.seq.push(i);
            let r = self.steps(body).await;
            self.seq.pop();
            r?;
            i += 1;
            if let LoopKind::Until(cond, _) = kind {
                if self.holds(cond) {
                    if let Some(m) = step.metric {
                        let end = self.ctx.now();
                        self.ctx
                            .record_in(self.region, |r| r.ok(m, intended, started, end));
                    }
                    return Ok(());
                }
            }
        }
        if let LoopKind::Until(_, max) = kind {
            // The awaited condition never came within the limit: the loop failed.
            let reason = format!("until condition not met after {max} iterations");
            if let Some(m) = step.metric {
                self.ctx.record_in(self.region, |r| {
                    r.error_because(m, ErrorClass::CheckFailed, &reason)
                });
            }
            return Err(Stop);
        }
        if let Some(m) = step.metric {
            let end = self.ctx.now();
            self.ctx
                .record_in(self.region, |r| r.ok(m, intended, started, end));
        }
        Ok(())
    }

    fn holds(&self, cond: &Until) -> bool {
        let get = |slot: &usize| self.vars.get(*slot).and_then(Option::as_ref);
        match cond {
            Until::Equals(slot, v) => get(slot).is_some_and(|x| x.to_text() == v.to_text()),
            Until::NotEquals(slot, v) => get(slot).is_some_and(|x| x.to_text() != v.to_text()),
            Until::Exists(slot, e) => get(slot).is_some() == *e,
        }
    }

    /// Waits until `at` while answering frames; records the timer's lag.
    async fn pause_until(&mut self, at: Duration) -> Result<(), Stop> {
        // One timer for the whole pause, however many frames interrupt it: each new one would
        // leave an entry in the worker's clock until the deadline.
        let ctx = self.ctx;
        let mut timer = std::pin::pin!(futures_util::FutureExt::fuse(ctx.sleep_until(at)));
        while self.ctx.now() < at {
            if !self.running() {
                return Err(Stop);
            }
            self.listen(Some(at), Some(timer.as_mut())).await?;
        }
        // Schedule lag is the generator's lateness. A pause that a reconnect overran ended late
        // because the service dropped the socket (that wait is in the reconnect's sample, and in
        // the next operation's latency, which still counts from `at`), not because of the timer.
        if self.reconnected_at.is_none_or(|t| t < at) {
            let ctx = self.ctx;
            ctx.record_in(self.region, |r| {
                r.value(MetricId::SCHEDULE_LAG, ctx.now().saturating_sub(at))
            });
        }
        self.intended = at;
        Ok(())
    }

    /// Waits for one event: a frame (handled by the background rules), the deadline, or a change
    /// of the run's state. Errors when the socket closed under the user. `timer`, when given, is
    /// the deadline's precise sleep (an operation's intended start, on the worker's clock instead
    /// of tokio's 1 ms wheel), owned by the caller so that it outlives one event.
    async fn listen(
        &mut self,
        deadline: Option<Duration>,
        timer: Option<Pin<&mut (dyn Future<Output = ()> + '_)>>,
    ) -> Result<(), Stop> {
        let ctx = self.ctx;
        let at = deadline.unwrap_or_default();
        let sleep = async move {
            match timer {
                Some(timer) => timer.await,
                None => tokio::time::sleep_until(ctx.at(at)).await,
            }
        };
        let link = &mut self.link;
        let frame = async {
            match self.socket.as_mut() {
                Some(s) => s.inbox.next(&mut s.conn, link).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            f = frame => match f {
                Some(Ok(Message::Text(text))) => {
                    self.background(text.as_str()).await;
                    Ok(())
                }
                Some(Ok(Message::Binary(bytes))) => {
                    let text = String::from_utf8_lossy(&bytes).into_owned();
                    self.background(&text).await;
                    Ok(())
                }
                Some(Ok(_)) => Ok(()),
                // Boxed: a reconnect's handshake state is large and rare; inline, it would size
                // every listening user's future.
                Some(Err(_)) | None => Box::pin(self.dropped()).await,
            },
            _ = sleep, if deadline.is_some() => Ok(()),
            changed = self.state.changed() => if changed.is_err() { Err(Stop) } else { Ok(()) },
        }
    }

    /// The server or the network dropped the socket under a listening user: with a `reconnect`
    /// policy (and the run not over, drain included) the user opens it again, as an app does;
    /// otherwise the drop is the socket step's error and the flow ends.
    async fn dropped(&mut self) -> Result<(), Stop> {
        // Also while the run drains: reconnecting is how an app gets what was sent meanwhile.
        let policy = match &self.socket {
            Some(s) if !self.ended() => {
                s.step.reconnect.resolve(self.ctx.plan().reconnect.as_ref())
            }
            _ => None,
        };
        let (Some(policy), Some(step)) = (policy, self.socket.as_ref().map(|s| s.step)) else {
            self.close_socket(true, false).await;
            return Err(Stop);
        };
        // Not an error yet: only a reconnect that gives up is one. Unacked messages still are.
        self.close_socket(true, true).await;
        self.reconnect(step, policy).await
    }

    /// Opens `step`'s socket again after a drop: up to `attempts` tries, each after its backoff.
    /// The sample counts from the intended reconnect time (the drop plus the first backoff), so
    /// failed tries and their waits are part of what the user felt.
    async fn reconnect(
        &mut self,
        step: &'a crate::compiled::flow::Step,
        policy: &ReconnectPolicy,
    ) -> Result<(), Stop> {
        let ctx = self.ctx;
        let mut at = ctx.now() + policy.backoff.delay(0, &mut self.rng);
        let intended = at;
        let mut last = fail(ErrorClass::Connect, "no reconnect attempt");
        // As a retry is: the step's own metric, or else its transaction's.
        let metric = self.failure_metric(step);
        for k in 0..policy.attempts {
            if k > 0 {
                at = ctx.now() + policy.backoff.delay(k, &mut self.rng);
            }
            if !self.sleep_unless_ended(at).await {
                // The run ended while this user waited to reconnect: it would have, so the drop
                // is not an error (as an operation the end of the run prevented is not one).
                return Err(Stop);
            }
            let started = ctx.now();
            let result = match tokio::time::timeout(step.timeout, self.open_socket(step)).await {
                Ok(r) => r,
                Err(_) => Err(fail(
                    ErrorClass::Timeout,
                    "no answer within the step's timeout",
                )),
            };
            match result {
                Ok(()) => {
                    let ended = ctx.now();
                    self.reconnected_at = Some(ended);
                    if let Some(m) = metric {
                        ctx.record_in(self.region, |r| {
                            r.reconnect(m);
                            r.ok(m, intended, started, ended);
                        });
                    }
                    return Ok(());
                }
                Err(e) => last = e,
            }
        }
        if let Some(m) = metric {
            let reason = format!(
                "reconnect gave up after {} attempts: {}",
                policy.attempts, last.reason
            );
            ctx.record_in(self.region, |r| r.error_because(m, last.class, &reason));
        }
        Err(Stop)
    }

    fn ended(&self) -> bool {
        matches!(*self.state.borrow(), RunState::Ended | RunState::Aborted)
    }

    /// Sleeps until `at` unless the run ends first (then false).
    async fn sleep_unless_ended(&mut self, at: Duration) -> bool {
        let ctx = self.ctx;
        loop {
            if self.ended() {
                return false;
            }
            if ctx.now() >= at {
                return true;
            }
            tokio::select! {
                _ = tokio::time::sleep_until(ctx.at(at)) => {}
                changed = self.state.changed() => if changed.is_err() { return false },
            }
        }
    }

    /// Waits out a retry's backoff while answering frames; false when the run stops meanwhile
    /// (or the socket is lost), so the attempt that failed stays the final one.
    async fn wait_for_retry(&mut self, at: Duration) -> bool {
        while self.ctx.now() < at {
            if !self.running() || self.listen(Some(at), None).await.is_err() {
                return false;
            }
        }
        self.running()
    }

    /// Closes the socket; `by_peer` when the server (or the network) closed it first.
    /// `step_failed` when a waiting step already counts that close as its own error, so the
    /// socket's step does not count it a second time.
    async fn close_socket(&mut self, by_peer: bool, step_failed: bool) {
        if self.socket.is_none() {
            return;
        }
        if !by_peer {
            // Nobody picks a user who is leaving; what was sent to it before the server saw it
            // leave still arrives (and is counted) before the socket goes.
            if let Some(m) = &self.member {
                self.ctx.shared.registry.go_offline(m);
            }
            self.drain_socket().await;
        }
        let Some(mut socket) = self.socket.take() else {
            return;
        };
        let ctx = self.ctx;
        ctx.open_connections
            .set(ctx.open_connections.get().saturating_sub(1));
        let ended = matches!(*self.state.borrow(), RunState::Ended | RunState::Aborted);
        if let Some(m) = &self.member {
            ctx.shared.registry.go_offline(m);
            if !ended {
                // Left before the end: messages still on their way are held by the target.
                m.left.store(true, Ordering::Relaxed);
            }
        }
        if let (true, false, false, Some(m)) = (by_peer, step_failed, ended, socket.metric) {
            ctx.record_in(self.region, |r| {
                r.error_because(m, ErrorClass::WsClosed, "the server closed the socket")
            });
        }
        let class = if by_peer {
            ErrorClass::WsClosed
        } else {
            ErrorClass::Timeout
        };
        let unacked = std::mem::take(&mut self.unacked).len();
        ctx.record_in(self.region, |r| {
            for _ in 0..unacked {
                r.error(MetricId::MESSAGE_ACK, class);
            }
        });
        if !by_peer {
            let _ = socket.conn.close(None).await;
        }
    }

    /// Closes our side of the socket and reads on until the server's close: frames it wrote
    /// before it saw the close are the user's (a returning user would never get them again, as
    /// the server counts them delivered); frames relayed after it are held for the next visit.
    async fn drain_socket(&mut self) {
        let Some(s) = self.socket.as_mut() else {
            return;
        };
        if s.conn.close(None).await.is_err() {
            return;
        }
        let deadline =
            tokio::time::Instant::now() + self.ctx.plan().timeout.min(Duration::from_secs(1));
        loop {
            let Some(s) = self.socket.as_mut() else {
                return;
            };
            let frame = tokio::select! {
                f = s.inbox.next(&mut s.conn, &mut self.link) => f,
                _ = tokio::time::sleep_until(deadline) => return,
            };
            match frame {
                Some(Ok(Message::Text(text))) => self.background(text.as_str()).await,
                Some(Ok(Message::Binary(bytes))) => {
                    let text = String::from_utf8_lossy(&bytes).into_owned();
                    self.background(&text).await;
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return,
            }
        }
    }

    /// Handles a frame no `expect` is waiting for.
    async fn background(&mut self, text: &str) {
        let Some(socket) = &self.socket else { return };
        let rules = socket.rules;
        // Parsing is the costly part of a frame: only when a rule looks into the JSON.
        let json: Option<serde_json::Value> = if rules.iter().any(FrameRule::needs_json) {
            serde_json::from_str(text).ok()
        } else {
            None
        };
        for rule in rules {
            if !self.matches(&rule.matcher, text, json.as_ref()) {
                continue;
            }
            for action in &rule.actions {
                match action {
                    RuleAction::Delivered(src) => {
                        if let Some(id) = self.extract_id(src, text, json.as_ref()) {
                            self.delivered(&id);
                        }
                    }
                    RuleAction::Acked(src) => {
                        if let Some(id) = self.extract_id(src, text, json.as_ref()) {
                            self.acked(&id);
                        }
                    }
                    RuleAction::Rejected(src) => {
                        let id = self.extract_id(src, text, json.as_ref());
                        let seq = id.as_deref().and_then(parse_message_id).map(|m| m.1);
                        if seq.is_some_and(|s| self.unacked.remove(&s).is_some()) {
                            self.ctx.record_in(self.region, |r| {
                                r.error_because(
                                    MetricId::MESSAGE_ACK,
                                    ErrorClass::Protocol,
                                    "the target rejected the message",
                                )
                            });
                        }
                    }
                    RuleAction::Count(i) => self.ctx.record_in(self.region, |r| r.count(*i)),
                    RuleAction::Reply(frame) => {
                        let msg = self.render_frame(frame);
                        self.link.one_way().await;
                        if let Some(s) = self.socket.as_mut() {
                            let _ = s.conn.send(msg).await;
                        }
                    }
                }
            }
            return;
        }
    }

    fn extract_id(
        &mut self,
        src: &IdSource,
        text: &str,
        json: Option<&serde_json::Value>,
    ) -> Option<String> {
        match src {
            IdSource::Json(path) => {
                let json = json?;
                let found = path.select(json, |e| self.eval(e).to_text());
                found.first().map(|v| Value::from_json(v).to_text())
            }
            IdSource::Regex(re) => {
                let caps = re.captures(text)?;
                caps.get(1)
                    .or_else(|| caps.get(0))
                    .map(|m| m.as_str().to_string())
            }
        }
    }

    fn delivered(&mut self, id: &str) {
        let ctx = self.ctx;
        let Some((sender, seq, intended)) = parse_message_id(id) else {
            ctx.record_in(self.region, |r| {
                r.error(MetricId::MESSAGE_DELIVERY, ErrorClass::Protocol)
            });
            return;
        };
        let now = ctx.now();
        let reordered = match self.received.record(sender, seq) {
            Arrival::Duplicate => {
                ctx.record_in(self.region, |r| r.add(Counter::MessagesDuplicated, 1));
                return;
            }
            Arrival::New { reordered } => reordered,
        };
        if let Some(m) = &self.member {
            m.received.fetch_add(1, Ordering::Relaxed);
        }
        ctx.record_in(self.region, |r| {
            r.value(MetricId::MESSAGE_DELIVERY, now.saturating_sub(intended));
            r.add(Counter::MessagesDelivered, 1);
            if reordered {
                r.add(Counter::MessagesReordered, 1);
            }
        });
    }

    fn acked(&mut self, id: &str) {
        let ctx = self.ctx;
        let Some((_, seq, _)) = parse_message_id(id) else {
            return;
        };
        if let Some(out) = self.unacked.remove(&seq) {
            if let Some(peer) = &out.recipient {
                peer.accepted.fetch_add(1, Ordering::Relaxed);
            }
            let now = ctx.now();
            ctx.record_in(self.region, |r| {
                r.ok(MetricId::MESSAGE_ACK, out.intended, out.started, now);
                r.add(Counter::MessagesAcked, 1);
            });
        }
    }

    fn matches(&mut self, m: &Matcher, text: &str, json: Option<&serde_json::Value>) -> bool {
        if let Some(re) = &m.regex {
            if !re.is_match(text) {
                return false;
            }
        }
        if m.json.is_empty() {
            return true;
        }
        let Some(json) = json else { return false };
        m.json.iter().all(|(path, want)| {
            path.select(json, |e| self.eval(e).to_text())
                .iter()
                .any(|v| json_eq(v, want))
        })
    }

    /// Runs a timed step (HTTP, connect, send, receive) with its timeout, checks and captures.
    /// Under a retry policy a failed attempt is waited out and tried again; only the final
    /// outcome is an operation (ok or error), timed from the step's intended start.
    async fn timed(&mut self, step: &'a crate::compiled::flow::Step) -> Result<(), Stop> {
        if !self.running() {
            return Err(Stop);
        }
        let ctx = self.ctx;
        // Requests and connects are retried; a frame on an open socket is not (an app does not
        // resend a chat message blindly; a socket found dropped is `reconnect`'s business).
        let policy = match step.action {
            Action::Http(_) | Action::WsConnect { .. } => {
                step.retry.resolve(ctx.plan().retry.as_ref())
            }
            _ => None,
        };
        let mut attempt = 0u32;
        let (result, started) = loop {
            let started = ctx.now();
            if matches!(step.action, Action::Http(_) | Action::WsConnect { .. }) {
                if let Some(m) = self.failure_metric(step) {
                    ctx.record_in(self.region, |r| r.attempt(m));
                }
            }
            // Counted against `max_inflight` while it runs (not while it waits to retry).
            let inflight = ctx.inflight();
            // Boxed: a request's or handshake's state is large and lives only while it runs;
            // inline, it would size every user's future for its whole life, idle or not.
            let perform = Box::pin(self.perform(step));
            let result = match tokio::time::timeout(step.timeout, perform).await {
                Ok(r) => r,
                Err(_) => Err(fail(
                    ErrorClass::Timeout,
                    "no answer within the step's timeout",
                )),
            };
            drop(inflight);
            let retry = match (&result, policy) {
                (Err(e), Some(p)) if attempt + 1 < p.attempts => {
                    p.reason(e).map(|reason| (p, reason, e.retry_after))
                }
                _ => None,
            };
            let Some((p, reason, retry_after)) = retry else {
                break (result, started);
            };
            // The server's Retry-After wins over the backoff, within the step's timeout.
            let wait = match retry_after {
                Some(ra) => ra.min(step.timeout),
                None => p.backoff.delay(attempt, &mut self.rng),
            };
            if !self.wait_for_retry(ctx.now() + wait).await {
                break (result, started);
            }
            if let Some(m) = self.failure_metric(step) {
                ctx.record_in(self.region, |r| r.retry(m, reason));
            }
            attempt += 1;
        };
        let ended = ctx.now();
        match result {
            Ok(()) => {
                if let Some(m) = step.metric {
                    ctx.record_in(self.region, |r| r.ok(m, self.intended, started, ended));
                }
                self.intended = ended;
                if !step.publish.is_empty() && self.member.is_none() {
                    let vars = step
                        .publish
                        .iter()
                        .map(|(n, e)| (n.clone(), self.eval(e)))
                        .collect();
                    let member = Arc::new(Member::new(self.index, self.cohort, vars));
                    ctx.shared.registry.publish(member.clone());
                    if self.socket.is_some() {
                        ctx.shared.registry.go_online(&member);
                    }
                    self.member = Some(member);
                }
                Ok(())
            }
            Err(e) => {
                if let Some(m) = self.failure_metric(step) {
                    ctx.record_in(self.region, |r| r.error_because(m, e.class, &e.reason));
                }
                self.txn = None;
                Err(Stop)
            }
        }
    }

    /// Where a step's failures (and retries) are counted: its metric, else its transaction's,
    /// else (a plain send) the metric of the step that opened the socket.
    fn failure_metric(&self, step: &crate::compiled::flow::Step) -> Option<MetricId> {
        let socket_metric = self.socket.as_ref().and_then(|s| s.metric);
        step.metric.or(self.txn.map(|t| t.0)).or(socket_metric)
    }

    async fn perform(&mut self, step: &'a crate::compiled::flow::Step) -> Result<(), OpError> {
        match &step.action {
            Action::Http(h) => {
                let resp = self.http_request(h).await?;
                let json = self.check_response(step, &resp).map_err(|e| {
                    if e.class != ErrorClass::HttpStatus {
                        return e;
                    }
                    let retry_after = resp
                        .headers
                        .get(hyper::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| parse_retry_after(v, std::time::SystemTime::now()));
                    e.with_status(resp.status, retry_after)
                })?;
                self.capture(
                    step,
                    Some(&resp),
                    &String::from_utf8_lossy(&resp.body),
                    json.as_ref(),
                );
                Ok(())
            }
            Action::WsConnect { .. } => self.open_socket(step).await,
            Action::Send(frame) => {
                let msg = self.render_frame(frame);
                if self.step_no_peer {
                    // Nobody else is online to talk to: this message is not sent (and not
                    // counted); the flow goes on.
                    return Ok(());
                }
                let started = self.ctx.now();
                if self.socket.is_none() {
                    return Err(fail(
                        ErrorClass::Protocol,
                        "send before the socket was opened",
                    ));
                }
                // On its way out through the region's network.
                self.link.one_way().await;
                self.send_frame(msg).await?;
                if let Some((seq, intended)) = self.step_msg {
                    self.ctx
                        .record_in(self.region, |r| r.add(Counter::MessagesSent, 1));
                    self.last_sent = started;
                    let recipient = self.step_peer.clone();
                    self.unacked.insert(
                        seq,
                        Outgoing {
                            started,
                            intended,
                            recipient,
                        },
                    );
                }
                if let Some(matcher) = &step.matcher {
                    self.receive(step, matcher).await?;
                }
                Ok(())
            }
            Action::Receive => match &step.matcher {
                Some(matcher) => self.receive(step, matcher).await,
                None => Ok(()),
            },
            _ => Ok(()),
        }
    }

    /// Sends a frame on the user's socket. A socket found dropped as the frame goes out is, under
    /// a `reconnect` policy, reopened and the frame sent on the new one, as an app that queued
    /// it would; otherwise the send fails.
    async fn send_frame(&mut self, msg: Message) -> Result<(), OpError> {
        let closed = || fail(ErrorClass::WsClosed, "the socket closed while sending");
        let reconnects = !self.ended()
            && self.socket.as_ref().is_some_and(|s| {
                s.step
                    .reconnect
                    .resolve(self.ctx.plan().reconnect.as_ref())
                    .is_some()
            });
        // Kept for a second try only when there can be one (a clone shares the frame's bytes).
        let again = reconnects.then(|| msg.clone());
        let Some(socket) = self.socket.as_mut() else {
            return Err(closed());
        };
        if socket.conn.send(msg).await.is_ok() {
            return Ok(());
        }
        let Some(msg) = again else {
            return Err(closed());
        };
        // Boxed like the reconnect in `listen`. A reconnect that gives up counts as the socket
        // step's error; this send then fails too (under its own metric, if it has one).
        Box::pin(self.dropped()).await.map_err(|_| closed())?;
        match self.socket.as_mut() {
            Some(socket) => socket.conn.send(msg).await.map_err(|_| closed()),
            None => Err(closed()),
        }
    }

    /// Opens the user's socket as `step` (a `ws` step) says, closing any other first.
    async fn open_socket(&mut self, step: &'a crate::compiled::flow::Step) -> Result<(), OpError> {
        let Action::WsConnect {
            target,
            headers,
            subprotocols,
            rules,
        } = &step.action
        else {
            return Err(fail(ErrorClass::Protocol, "not a ws step"));
        };
        if self.socket.is_some() {
            self.close_socket(false, false).await;
        }
        let path = target.render_with(|e| self.eval(e));
        let headers: Vec<(String, String)> = headers
            .iter()
            .map(|(k, v)| (k.clone(), v.render_with(|e| self.eval(e))))
            .collect();
        let endpoint = &self.ctx.shared.endpoint;
        let source = endpoint.source_for(self.index);
        // The region's network: a round trip for TCP's handshake, then the upgrade request out
        // and its response back, as for an HTTP request on a new connection.
        self.link.round_trip().await;
        self.link.one_way().await;
        let conn = ws::connect_with(endpoint, &path, &headers, subprotocols, source).await?;
        self.link.one_way().await;
        let ctx = self.ctx;
        ctx.open_connections.set(ctx.open_connections.get() + 1);
        // Like an app once its socket is up, let the idle HTTP connection go: it would
        // otherwise hold a second descriptor per online user on both sides.
        self.http = HttpClient::with_source(source);
        self.socket = Some(Socket {
            conn,
            inbox: Inbox::default(),
            rules,
            metric: step.metric,
            step,
        });
        if let Some(m) = &self.member {
            ctx.shared.registry.go_online(m);
        }
        Ok(())
    }

    /// Reads frames until one matches, handing the others to the background rules.
    async fn receive(
        &mut self,
        step: &'a crate::compiled::flow::Step,
        matcher: &Matcher,
    ) -> Result<(), OpError> {
        let within = step
            .expect
            .as_ref()
            .and_then(|e| e.within)
            .unwrap_or(step.timeout);
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let Some(socket) = self.socket.as_mut() else {
                return Err(fail(
                    ErrorClass::Protocol,
                    "expect before the socket was opened",
                ));
            };
            let frame = tokio::select! {
                f = socket.inbox.next(&mut socket.conn, &mut self.link) => f,
                _ = tokio::time::sleep_until(deadline) => {
                    return Err(fail(ErrorClass::Timeout, format!("no matching frame within {within:?}")));
                }
            };
            let text = match frame {
                Some(Ok(Message::Text(t))) => t.as_str().to_string(),
                Some(Ok(Message::Binary(b))) => String::from_utf8_lossy(&b).into_owned(),
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => {
                    self.close_socket(true, true).await;
                    return Err(fail(
                        ErrorClass::WsClosed,
                        "the socket closed while waiting for a frame",
                    ));
                }
            };
            let json: Option<serde_json::Value> = serde_json::from_str(&text).ok();
            if self.matches(matcher, &text, json.as_ref()) {
                self.check_text(step, &text, json.as_ref())?;
                self.capture(step, None, &text, json.as_ref());
                return Ok(());
            }
            self.background(&text).await;
        }
    }

    fn render_frame(&mut self, frame: &Frame) -> Message {
        match frame {
            Frame::Text(t) => Message::text(t.render_with(|e| self.eval(e))),
            Frame::Binary(t) => Message::binary(t.render_with(|e| self.eval(e)).into_bytes()),
            Frame::Json(j) => {
                let mut out = String::with_capacity(128);
                self.write_json(j, &mut out);
                Message::text(out)
            }
        }
    }

    /// Writes a JSON template straight into text, without building a JSON tree first (this is
    /// on every message's path).
    fn write_json(&mut self, j: &JsonTemplate, out: &mut String) {
        let string = |s: &str, out: &mut String| {
            // Serialising a str into a String cannot fail.
            if let Ok(quoted) = serde_json::to_string(s) {
                out.push_str(&quoted);
            }
        };
        match j {
            JsonTemplate::Const(v) => out.push_str(&v.to_string()),
            JsonTemplate::Text(t) => {
                let text = t.render_with(|e| self.eval(e));
                string(&text, out);
            }
            JsonTemplate::Expr(e) => match self.eval(e) {
                Value::Str(s) => string(&s, out),
                other => out.push_str(&other.to_json().to_string()),
            },
            JsonTemplate::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    self.write_json(item, out);
                }
                out.push(']');
            }
            JsonTemplate::Object(fields) => {
                out.push('{');
                for (i, (k, v)) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    string(k, out);
                    out.push(':');
                    self.write_json(v, out);
                }
                out.push('}');
            }
        }
    }

    async fn http_request(&mut self, h: &Http) -> Result<Response, OpError> {
        let mut path = h.target.render_with(|e| self.eval(e));
        for (i, (k, v)) in h.query.iter().enumerate() {
            path.push(if i == 0 && !path.contains('?') {
                '?'
            } else {
                '&'
            });
            crate::compiled::flow::template::percent_encode(k, &mut path);
            path.push('=');
            path.push_str(&v.render_with(|e| self.eval(e)));
        }
        let headers: Vec<(String, String)> = h
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), v.render_with(|e| self.eval(e))))
            .collect();
        let body = match &h.body {
            Body::None => None,
            Body::Json(j) => {
                let mut out = String::with_capacity(256);
                self.write_json(j, &mut out);
                Some(("application/json", out.into_bytes()))
            }
            Body::Text(t) => Some((
                "text/plain; charset=utf-8",
                t.render_with(|e| self.eval(e)).into_bytes(),
            )),
            Body::Form(fields) => {
                let mut s = String::new();
                for (i, (k, v)) in fields.iter().enumerate() {
                    if i > 0 {
                        s.push('&');
                    }
                    crate::compiled::flow::template::percent_encode(k, &mut s);
                    s.push('=');
                    s.push_str(&v.render_with(|e| self.eval(e)));
                }
                Some(("application/x-www-form-urlencoded", s.into_bytes()))
            }
        };
        let endpoint = &self.ctx.shared.endpoint;
        self.http
            .request(
                endpoint,
                &mut self.link,
                h.method.clone(),
                &path,
                &headers,
                body,
            )
            .await
    }

    /// Checks an HTTP response; returns its body as JSON when it is JSON.
    fn check_response(
        &mut self,
        step: &crate::compiled::flow::Step,
        resp: &Response,
    ) -> Result<Option<serde_json::Value>, OpError> {
        let expected_status = step.expect.as_ref().and_then(|e| {
            e.checks.iter().find_map(|c| match c {
                Check::Status(s) => Some(s.clone()),
                _ => None,
            })
        });
        let status_ok = match &expected_status {
            Some(s) => s.contains(&resp.status),
            None => (200..300).contains(&resp.status),
        };
        if !status_ok {
            let expected = expected_status.map_or("2xx".to_string(), |s| {
                s.iter()
                    .map(u16::to_string)
                    .collect::<Vec<_>>()
                    .join(" or ")
            });
            return Err(fail(
                ErrorClass::HttpStatus,
                format!("expected HTTP {expected}, got {}", resp.status),
            ));
        }
        let json: Option<serde_json::Value> = serde_json::from_slice(&resp.body).ok();
        let text = String::from_utf8_lossy(&resp.body);
        self.check_text(step, &text, json.as_ref())?;
        Ok(json)
    }

    fn check_text(
        &mut self,
        step: &crate::compiled::flow::Step,
        text: &str,
        json: Option<&serde_json::Value>,
    ) -> Result<(), OpError> {
        let Some(expect) = &step.expect else {
            return Ok(());
        };
        for c in &expect.checks {
            let ok = match c {
                Check::Status(_) => true,
                Check::JsonEquals(path, want) => json.is_some_and(|j| {
                    path.select(j, |e| self.eval(e).to_text())
                        .iter()
                        .any(|v| json_eq(v, want))
                }),
                Check::JsonContains(path, want) => json.is_some_and(|j| {
                    path.select(j, |e| self.eval(e).to_text())
                        .iter()
                        .any(|v| match v {
                            serde_json::Value::Array(items) => {
                                items.iter().any(|i| json_eq(i, want))
                            }
                            v => json_eq(v, want),
                        })
                }),
                Check::JsonExists(path) => {
                    json.is_some_and(|j| !path.select(j, |e| self.eval(e).to_text()).is_empty())
                }
                Check::Contains(s) => text.contains(s.as_str()),
                Check::Regex(re) => re.is_match(text),
            };
            if !ok {
                let what = match c {
                    Check::Status(_) => "status".to_string(),
                    Check::JsonEquals(_, want) => format!("a JSON value is not {want}"),
                    Check::JsonExists(_) => "a JSON path selects nothing".to_string(),
                    Check::JsonContains(_, want) => {
                        format!("no selected JSON value contains {want}")
                    }
                    Check::Contains(s) => format!("the answer does not contain `{s}`"),
                    Check::Regex(re) => format!("the answer does not match /{}/", re.as_str()),
                };
                let class = if json.is_none()
                    && matches!(
                        c,
                        Check::JsonEquals(..) | Check::JsonExists(_) | Check::JsonContains(..)
                    ) {
                    ErrorClass::Protocol
                } else {
                    ErrorClass::CheckFailed
                };
                return Err(fail(class, what));
            }
        }
        if let (Some(all), Some(json)) = (&expect.contains_all, json) {
            let wanted: Vec<String> = match &all.values_expr {
                Some(e) => match self.eval(e) {
                    Value::List(items) => items.iter().map(Value::to_text).collect(),
                    v => vec![v.to_text()],
                },
                None => vec![all.values.render_with(|e| self.eval(e))],
            };
            let found: HashSet<String> = all
                .path
                .select(json, |e| self.eval(e).to_text())
                .iter()
                .map(|v| Value::from_json(v).to_text())
                .collect();
            let missing = wanted.iter().filter(|w| !found.contains(*w)).count();
            self.ctx.record_in(self.region, |r| {
                r.add(Counter::ContactsExpected, wanted.len() as u64);
                r.add(Counter::ContactsMissing, missing as u64);
            });
        }
        Ok(())
    }

    fn capture(
        &mut self,
        step: &crate::compiled::flow::Step,
        resp: Option<&Response>,
        text: &str,
        json: Option<&serde_json::Value>,
    ) {
        for (slot, cap) in &step.captures {
            let value = match cap {
                Capture::Json(path) => json.and_then(|j| {
                    let found = path.select(j, |e| self.eval(e).to_text());
                    match found.as_slice() {
                        [] => None,
                        [one] if !path.is_multi() => Some(Value::from_json(one)),
                        many => Some(Value::List(
                            many.iter().map(|v| Value::from_json(v)).collect(),
                        )),
                    }
                }),
                Capture::Regex(re, group) => re
                    .captures(text)
                    .and_then(|c| c.get(*group))
                    .map(|m| Value::Str(m.as_str().to_string())),
                Capture::Header(name) => resp
                    .and_then(|r| r.headers.get(name.as_str()))
                    .and_then(|v| v.to_str().ok())
                    .map(|v| Value::Str(v.to_string())),
                Capture::Status => resp.map(|r| Value::Num(r.status as f64)),
            };
            if let Some(v) = self.vars.get_mut(*slot) {
                *v = value;
            }
        }
    }

    /// Evaluates an expression for this user.
    pub fn eval(&mut self, e: &Expr) -> Value {
        match e {
            Expr::Lit(v) => v.clone(),
            Expr::Var(slot) => self
                .vars
                .get(*slot)
                .cloned()
                .flatten()
                .unwrap_or(Value::Null),
            Expr::Seq => Value::Num(self.seq.last().copied().unwrap_or(0) as f64),
            Expr::UserIndex => Value::Num(self.index as f64),
            Expr::UserPhone => Value::Str(self.ctx.shared.identities.phone(self.index)),
            Expr::MsgId => {
                let (seq, intended) = match self.step_msg {
                    Some(m) => m,
                    None => {
                        let m = (self.msg_seq, self.intended);
                        self.msg_seq += 1;
                        self.step_msg = Some(m);
                        m
                    }
                };
                Value::Str(message_id(self.index, seq, intended))
            }
            Expr::Uuid => {
                let a: u64 = self.rng.random();
                let b: u64 = self.rng.random();
                let b = (b & 0x3fff_ffff_ffff_ffff) | 0x8000_0000_0000_0000;
                let a = (a & 0xffff_ffff_ffff_0fff) | 0x4000;
                Value::Str(format!(
                    "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
                    a >> 32,
                    (a >> 16) & 0xffff,
                    a & 0xffff,
                    b >> 48,
                    b & 0xffff_ffff_ffff
                ))
            }
            Expr::RandomInt(lo, hi) => {
                let lo = num(&self.eval(lo)) as i64;
                let hi = num(&self.eval(hi)) as i64;
                Value::Num(if hi > lo {
                    self.rng.random_range(lo..=hi)
                } else {
                    lo
                } as f64)
            }
            Expr::RandomString(n) => {
                let n = num(&self.eval(n)).clamp(0.0, 4096.0) as usize;
                const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
                Value::Str(
                    (0..n)
                        .map(|_| ALPHABET[self.rng.random_range(0..ALPHABET.len())] as char)
                        .collect(),
                )
            }
            Expr::TimestampMs => Value::Num(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0.0, |d| d.as_millis() as f64),
            ),
            Expr::Base64(x) => {
                let text = self.eval(x).to_text();
                Value::Str(base64::engine::general_purpose::STANDARD.encode(text.as_bytes()))
            }
            Expr::SwarmOnline(var) => {
                let peer = match &self.step_peer {
                    Some(p) => Some(p.clone()),
                    None => self.pick_peer(),
                };
                self.step_peer = peer.clone();
                self.step_no_peer |= peer.is_none();
                peer.and_then(|p| p.var(var).cloned())
                    .unwrap_or(Value::Null)
            }
            Expr::SwarmOnlineIn(cohort, var) => {
                let peer = match &self.step_peer {
                    Some(p) => Some(p.clone()),
                    None => self.pick_peer_in(*cohort),
                };
                self.step_peer = peer.clone();
                self.step_no_peer |= peer.is_none();
                peer.and_then(|p| p.var(var).cloned())
                    .unwrap_or(Value::Null)
            }
            Expr::SwarmSample(n, var) => {
                let n = num(&self.eval(n)).clamp(0.0, 10_000.0) as usize;
                self.sampled =
                    self.ctx
                        .shared
                        .registry
                        .sample_registered(&mut self.rng, n, self.index);
                Value::List(
                    self.sampled
                        .iter()
                        .filter_map(|m| m.var(var).cloned())
                        .collect(),
                )
            }
            Expr::SwarmSampled(var) => Value::List(
                self.sampled
                    .iter()
                    .filter_map(|m| m.var(var).cloned())
                    .collect(),
            ),
            Expr::FakePhones(n) => {
                let n = num(&self.eval(n)).clamp(0.0, 10_000.0) as usize;
                Value::List(
                    (0..n)
                        .map(|_| {
                            Value::Str(self.ctx.shared.identities.unknown_phone(&mut self.rng))
                        })
                        .collect(),
                )
            }
            Expr::Feed { feeder, column } => {
                let shared = &self.ctx.shared;
                shared
                    .plan
                    .flows
                    .feeders
                    .get(*feeder)
                    .and_then(|f| f.row(self.index, shared.plan.seed).get(*column))
                    .map_or(Value::Null, |v| Value::Str(v.clone()))
            }
            Expr::Concat(parts) => {
                let values: Vec<Value> = parts.iter().map(|p| self.eval(p)).collect();
                if values.iter().all(|v| matches!(v, Value::List(_))) {
                    Value::List(
                        values
                            .into_iter()
                            .flat_map(|v| match v {
                                Value::List(items) => items,
                                other => vec![other],
                            })
                            .collect(),
                    )
                } else {
                    let mut s = String::new();
                    for v in &values {
                        v.write_to(&mut s);
                    }
                    Value::Str(s)
                }
            }
        }
    }

    /// An online chat contact: kept while online, refreshed from the swarm when none is.
    fn pick_peer(&mut self) -> Option<Arc<Member>> {
        self.chat_contacts.retain(|m| m.is_online());
        if self.chat_contacts.is_empty() {
            self.chat_contacts =
                self.ctx
                    .shared
                    .registry
                    .sample_online(&mut self.rng, CHAT_CONTACTS, self.index);
        }
        if self.chat_contacts.is_empty() {
            return None;
        }
        let i = self.rng.random_range(0..self.chat_contacts.len());
        Some(self.chat_contacts[i].clone())
    }
}

impl User<'_> {
    /// An online contact from one cohort, kept like `pick_peer`'s.
    fn pick_peer_in(&mut self, cohort: usize) -> Option<Arc<Member>> {
        let mut contacts = self.cohort_contacts.remove(&cohort).unwrap_or_default();
        contacts.retain(|m| m.is_online());
        if contacts.is_empty() {
            contacts = self.ctx.shared.registry.sample_online_in(
                &mut self.rng,
                CHAT_CONTACTS,
                self.index,
                cohort,
            );
        }
        let peer = (!contacts.is_empty())
            .then(|| contacts[self.rng.random_range(0..contacts.len())].clone());
        self.cohort_contacts.insert(cohort, contacts);
        peer
    }
}

fn num(v: &Value) -> f64 {
    match v {
        Value::Num(n) => *n,
        Value::Str(s) => s.trim().parse().unwrap_or(0.0),
        Value::Bool(b) => f64::from(u8::from(*b)),
        _ => 0.0,
    }
}

/// JSON equality where numbers compare by value (1 == 1.0).
fn json_eq(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    match (a, b) {
        (serde_json::Value::Number(x), serde_json::Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}
