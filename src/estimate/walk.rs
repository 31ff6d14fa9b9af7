//! One user's life, walked through its flow's compiled steps without sending anything: when it
//! is online, when its connections open and close, when it sends requests and messages.
//!
//! It follows the engine's rules (src/runtime/) on one assumed clock:
//! - every timed operation (HTTP request, WebSocket upgrade, a send that awaits a reply, a
//!   receive) takes the assumed latency; a send without `expect` takes no time, its ack comes
//!   one latency later, and a user waits for outstanding acks before leaving;
//! - a user in a region (`[[regions]]`) adds its region's mean one-way delay as the engine's
//!   link does (src/clients/region_link.rs): a round trip before each new connection, one way out and one
//!   back for each request, one way out for each frame sent and one way in for each awaited;
//! - think times and `stay_online` are sampled from the user's own seeded random stream
//!   (`Identities::rng(index)`, as in the run; the run also draws contacts and peers from it, so
//!   the individual draws differ while their distribution is the same);
//! - an HTTP connection opens at the first request and closes when the WebSocket opens (the
//!   engine lets it go then) or when the user leaves;
//! - when the schedule ends, no new operation starts: a user it cuts off holding a socket stays
//!   until the end of the drain, a user without one leaves at once — unless it polls in an
//!   `online` loop: that loop goes on through the drain, its pauses and polls as before, its
//!   sends of new messages left out (the run's rule, src/runtime/steps.rs); a `stay_online` is a
//!   wait, not an operation: it goes on through the drain and, ending in it, the user leaves;
//! - a long-poll (an `http` step with `long_poll`) returns at once (the assumed latency) when
//!   the user sent a message since its previous poll — the server has something new for it: its
//!   own message, as Matrix's /sync shows a sender its own events, and whatever peers sent
//!   meanwhile — and is otherwise held its whole `long_poll` first (no message from a peer is
//!   assumed to cut it short: an upper bound on its duration);
//! - `when` conditions are assumed to hold and `until` loops to end after one iteration (the
//!   values they test only exist in a real run).
//!
//! Extension points: a new step kind is one arm in [`Walker::action`]; a retried operation (the
//! actions for which [`Action::retried`] holds, the run's rule) would be a further call of
//! [`Walker::timed`] with the user's clock moved on (retries are not modelled yet: each is walked
//! as one attempt, as [`Walker::action`] does). Who starts when — open arrivals, closed-phase loops, returns, caps — is
//! [`super::model`]'s business: it calls [`user`] once per visit.

use std::time::Duration;

use rand::rngs::SmallRng;

use crate::compiled::flow::{Action, Flow, LoopKind, Step};
use crate::compiled::Dist;
use crate::metrics::MetricId;

/// What the walk assumes about the world.
#[derive(Debug, Clone, Copy)]
pub struct Assumptions {
    /// Seconds each timed operation takes.
    pub latency: f64,
    /// When the schedule ends (seconds): no operation starts after it.
    pub stop: f64,
    /// How long users with an open socket keep listening after `stop`.
    pub drain: f64,
}

/// Which connection a [`Sink::connection`] call is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conn {
    Http,
    WebSocket,
}

/// Receives what a walked user does, in seconds since the start of the run.
pub trait Sink {
    /// The user was active over `[start, end)`.
    fn user(&mut self, start: f64, end: f64);
    /// A connection was open over `[open, close)`.
    fn connection(&mut self, kind: Conn, open: f64, close: f64);
    /// A request (HTTP request or WebSocket upgrade) started at `at`.
    fn request(&mut self, at: f64);
    /// A tracked message (a frame or request that uses `msg.id`, as the run counts them) at `at`.
    fn message(&mut self, at: f64);
    /// A timed operation (what `max_inflight` counts) ran over `[from, to)`.
    fn operation(&mut self, _from: f64, _to: f64) {}
}

/// How a walked user's visit ended.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Left {
    /// When it left (seconds since the start of the run).
    pub at: f64,
    /// Its flow ran to the end (the schedule's end did not cut it short): only such a user
    /// may come back, as in the run.
    pub completed: bool,
}

/// What the walk assumed about long-polls, for the plan's notes: how it timed the `long_poll`
/// steps, and which requests read deliveries (a sync) without saying how long the server holds
/// them — taken as the assumed latency, such a poll may be counted many times over.
pub fn long_poll_notes(plan: &crate::compiled::Plan) -> Vec<String> {
    /// The `long_poll` steps (metric, hold) and the delivery-reading requests without one.
    #[derive(Default)]
    struct Polls {
        held: Vec<(Option<MetricId>, Duration)>,
        unheld: Vec<Option<MetricId>>,
    }
    fn visit(steps: &[Step], out: &mut Polls) {
        for step in steps {
            match &step.action {
                Action::Http(h) => match (h.long_poll, &h.deliveries) {
                    (Some(hold), _) => out.held.push((step.metric, hold)),
                    (None, Some(_)) => out.unheld.push(step.metric),
                    (None, None) => {}
                },
                Action::Loop { steps, .. } => visit(steps, out),
                _ => {}
            }
        }
    }
    let mut found = Polls::default();
    for flow in &plan.flows.flows {
        visit(&flow.steps, &mut found);
    }
    let name = |m: Option<MetricId>| match m {
        Some(m) => format!("`{}`", plan.catalog.name(m)),
        None => "an unnamed request".to_string(),
    };
    let mut notes = Vec::new();
    if !found.held.is_empty() {
        let held: Vec<String> = found
            .held
            .iter()
            .map(|(m, hold)| format!("{} {}", name(*m), humantime::format_duration(*hold)))
            .collect();
        notes.push(format!(
            "long-polls ({}): a poll right after the user's own message returns in the assumed \
             latency, any other is held its whole long_poll; messages from peers end holds \
             sooner in a run, which then polls more often than planned",
            held.join(", ")
        ));
    }
    for m in found.unheld {
        notes.push(format!(
            "{} reads deliveries but has no long_poll: planned as one assumed latency; if the \
             server holds it until something arrives, say how long with long_poll, or the plan \
             counts far more of these requests than the run sends",
            name(m)
        ));
    }
    notes
}

/// Most operations one user's walk may take: a loop whose body takes no time must not spin
/// the planner forever (the run would be bounded by real time, the walk is not).
const MAX_OPERATIONS: u32 = 100_000;

/// Walks one user who arrives at `start` through `flow`; `one_way` is its region's mean one-way
/// network delay (0 without regions). `rng` is the user's stream for this visit.
pub fn user(
    flow: &Flow,
    start: f64,
    one_way: f64,
    rng: SmallRng,
    a: &Assumptions,
    sink: &mut impl Sink,
) -> Left {
    let mut w = Walker {
        a,
        one_way: one_way.max(0.0),
        rng,
        now: start,
        http: None,
        ws: None,
        last_send: None,
        polling: 0,
        news: false,
        stopped: false,
        operations: 0,
        sink,
    };
    // A flow that stopped early ends like one that finished: the user leaves.
    let completed = w.steps(&flow.steps).is_ok();
    w.leave(start);
    Left {
        at: w.now,
        completed,
    }
}

struct Walker<'a, S: Sink> {
    a: &'a Assumptions,
    one_way: f64,
    rng: SmallRng,
    now: f64,
    /// When the open HTTP connection / WebSocket opened.
    http: Option<f64>,
    ws: Option<f64>,
    /// When the last message without a reply was sent (its ack is awaited before leaving).
    last_send: Option<f64>,
    /// How many `online` loops the user is inside: it polls on through the drain.
    polling: u32,
    /// The user sent a message since its last long-poll: the next one returns at once.
    news: bool,
    stopped: bool,
    operations: u32,
    sink: &'a mut S,
}

/// `Err(())`: the flow stops here (the schedule ended, or the operation budget is spent).
type Walked = Result<(), ()>;

impl<S: Sink> Walker<'_, S> {
    fn steps(&mut self, steps: &[Step]) -> Walked {
        steps.iter().try_for_each(|s| self.step(s))
    }

    fn step(&mut self, step: &Step) -> Walked {
        for _ in 0..step.repeat {
            if let Some(think) = &step.think_before {
                self.wait(*think, self.end())?;
            }
            self.action(step)?;
        }
        Ok(())
    }

    fn action(&mut self, step: &Step) -> Walked {
        let sends = matches!(step.action, Action::Http(_) | Action::Send(_));
        if sends && step.tracked && self.now >= self.a.stop {
            // Through the drain a polling user sends no new message: the step is left out
            // (`begin` ends the flow of a user who is not polling, or once the drain is over).
            return self.begin();
        }
        match &step.action {
            Action::Http(h) => {
                // A new connection costs a round trip first; the request goes out and back.
                let connect = if self.http.is_none() {
                    self.http = Some(self.now);
                    2.0 * self.one_way
                } else {
                    0.0
                };
                // A long-poll with nothing new for the user is held by the server first.
                let held = match h.long_poll {
                    Some(hold) if !self.news => hold.as_secs_f64(),
                    _ => 0.0,
                };
                self.timed(connect + 2.0 * self.one_way + self.a.latency + held)?;
                if h.long_poll.is_some() {
                    self.news = false;
                }
                // The run counts an HTTP message once the target accepted it.
                if step.tracked {
                    self.sink.message(self.now);
                    self.news = true;
                }
                Ok(())
            }
            Action::WsConnect { .. } => {
                self.close_ws();
                self.timed(4.0 * self.one_way + self.a.latency)?;
                // The engine drops the idle HTTP connection once the socket is up.
                if let Some(open) = self.http.take() {
                    self.sink.connection(Conn::Http, open, self.now);
                }
                self.ws = Some(self.now);
                Ok(())
            }
            Action::Send(_) => {
                self.begin()?;
                // Only a frame carrying `msg.id` is a message; others are protocol chatter.
                if step.tracked {
                    self.sink.message(self.now);
                    self.news = true;
                }
                // On its way out through the region's network, then (with `expect`) the reply
                // back; without one, its ack comes back while the user goes on.
                self.advance(self.one_way);
                if step.matcher.is_some() {
                    // A send awaiting its reply is a timed step: in flight until the reply.
                    let from = self.now - self.one_way;
                    self.advance(self.a.latency + self.one_way);
                    self.sink.operation(from, self.now);
                } else {
                    self.last_send = Some(self.now);
                }
                Ok(())
            }
            Action::Receive => self.timed(self.a.latency + self.one_way),
            Action::Close => {
                self.close_ws();
                Ok(())
            }
            Action::Think(d) => self.wait(*d, self.end()),
            // Staying online goes on through the drain, polling or not (the run's rule).
            Action::StayOnline(d) => self.wait(*d, self.a.stop + self.a.drain),
            Action::Loop {
                kind,
                steps,
                online,
            } => {
                let online = u32::from(*online);
                self.polling += online;
                let walked = self.run_loop(kind, steps);
                self.polling -= online;
                walked
            }
        }
    }

    fn run_loop(&mut self, kind: &LoopKind, body: &[Step]) -> Walked {
        let started = self.now;
        let mut i = 0u64;
        loop {
            let go_on = match kind {
                LoopKind::Times(n) => i < *n,
                LoopKind::For(d, max) => self.now < started + d.as_secs_f64() && i < *max,
                // What `until` tests only exists in a real run: assume one iteration.
                LoopKind::Until(_, _) => i < 1,
            };
            if !go_on {
                return Ok(());
            }
            self.steps(body)?;
            i += 1;
        }
    }

    /// When the user's flow is cut short: the schedule's end, or the drain's for a user polling
    /// in an `online` loop.
    fn end(&self) -> f64 {
        if self.polling > 0 {
            self.a.stop + self.a.drain
        } else {
            self.a.stop
        }
    }

    /// Counts an operation against the budget and refuses to start one after [`Self::end`].
    fn begin(&mut self) -> Walked {
        self.operations += 1;
        if self.now >= self.end() || self.operations > MAX_OPERATIONS {
            self.stopped = self.now >= self.a.stop;
            return Err(());
        }
        Ok(())
    }

    /// A request-like operation taking `latency`.
    fn timed(&mut self, latency: f64) -> Walked {
        self.begin()?;
        self.sink.request(self.now);
        let from = self.now;
        self.advance(latency);
        self.sink.operation(from, self.now);
        Ok(())
    }

    fn advance(&mut self, seconds: f64) {
        self.now += seconds.max(0.0);
    }

    /// A pause; the run's state change at `end` (the schedule's end, or the drain's) interrupts
    /// it.
    fn wait(&mut self, d: Dist, end: f64) -> Walked {
        self.operations += 1;
        let until = self.now + d.sample(&mut self.rng).as_secs_f64();
        if until >= end {
            self.now = self.now.max(end);
            self.stopped = true;
            return Err(());
        }
        self.now = until;
        if self.operations > MAX_OPERATIONS {
            return Err(());
        }
        Ok(())
    }

    fn close_ws(&mut self) {
        if let Some(open) = self.ws.take() {
            let close = self.now;
            self.sink.connection(Conn::WebSocket, open, close);
        }
    }

    /// The end of the flow: wait for acks, or through the drain if the run's end cut the flow
    /// short while the socket was open; then close everything.
    fn leave(&mut self, start: f64) {
        if self.ws.is_some() {
            if let Some(sent) = self.last_send {
                self.now = self.now.max(sent + self.a.latency + 2.0 * self.one_way);
            }
            if self.stopped {
                self.now = self.now.max(self.a.stop + self.a.drain);
            }
        }
        self.close_ws();
        if let Some(open) = self.http.take() {
            self.sink.connection(Conn::Http, open, self.now);
        }
        self.sink.user(start, self.now);
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    /// What one walked user did.
    #[derive(Default)]
    struct Log {
        users: Vec<(f64, f64)>,
        http: Vec<(f64, f64)>,
        requests: Vec<f64>,
        messages: Vec<f64>,
    }

    impl Sink for Log {
        fn user(&mut self, start: f64, end: f64) {
            self.users.push((start, end));
        }
        fn connection(&mut self, kind: Conn, open: f64, close: f64) {
            if kind == Conn::Http {
                self.http.push((open, close));
            }
        }
        fn request(&mut self, at: f64) {
            self.requests.push(at);
        }
        fn message(&mut self, at: f64) {
            self.messages.push(at);
        }
    }

    /// One user walked from 0 s through `steps` (a flow's TOML), 10 ms per operation, the
    /// schedule ending at 1 s and the drain at 2 s.
    fn walk(steps: &str) -> (Log, Left) {
        let text = format!(
            "name = \"t\"\n[target]\nurl = \"http://127.0.0.1:9\"\n[load]\narrivals = \"uniform\"\n\
             phases = [{{ name = \"a\", duration = \"1s\", rate = 1 }}]\n{steps}"
        );
        let plan = crate::compiled::compile(std::path::Path::new("t.toml"), &text, Some(1))
            .expect("valid");
        let a = Assumptions {
            latency: 0.01,
            stop: 1.0,
            drain: 1.0,
        };
        let mut log = Log::default();
        let rng = SmallRng::seed_from_u64(1);
        let left = user(&plan.flows.flows[0], 0.0, 0.0, rng, &a, &mut log);
        (log, left)
    }

    const CHAT: &str = r#"
[[flows.f.steps]]
name = "login"
http = "POST /login"

[[flows.f.steps]]
loop = { for = "60s", online = ONLINE, steps = [
  { name = "send", think = { constant = "100ms" }, http = "POST /send", json = { id = "{{ msg.id }}" } },
  { name = "sync", http = "GET /sync", long_poll = "300ms" },
] }
"#;

    fn near(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn a_polling_user_polls_through_the_drain_without_sending() {
        // Login 0–10 ms; then each iteration is a 100 ms think, a send (10 ms) and a poll that
        // returns at once after the user's own message (10 ms): sends at 0.11 + 0.12 k s while
        // the schedule runs (k = 0..7). From 0.97 s on the sends are left out and each poll is
        // held its 300 ms: think to 1.07, poll to 1.38; 1.48–1.79; 1.89–2.20 (begun inside the
        // drain, it ends after it); the next think is cut at the drain's end.
        let (log, left) = walk(&CHAT.replace("ONLINE", "true"));
        assert_eq!(log.messages.len(), 8, "{:?}", log.messages);
        assert!(near(log.messages[7], 0.96), "{:?}", log.messages);
        assert_eq!(log.requests.len(), 1 + 2 * 8 + 3, "{:?}", log.requests);
        let drain_polls: Vec<f64> = log.requests[17..].to_vec();
        for (got, want) in drain_polls.iter().zip([1.07, 1.48, 1.89]) {
            assert!(near(*got, want), "{drain_polls:?}");
        }
        assert!(near(left.at, 2.2) && !left.completed, "{left:?}");
        assert!(near(log.users[0].1, 2.2) && near(log.http[0].1, 2.2));
    }

    #[test]
    fn a_user_outside_an_online_loop_stops_with_the_schedule() {
        let (log, left) = walk(&CHAT.replace("ONLINE", "false"));
        assert_eq!(log.messages.len(), 8);
        assert_eq!(log.requests.len(), 1 + 2 * 8);
        assert!(near(left.at, 1.0), "{left:?}");
    }

    #[test]
    fn a_long_poll_with_nothing_new_is_held_its_whole_long_poll() {
        // A receiver that sends nothing: every poll is held 300 ms, plus the 10 ms latency.
        let (log, left) = walk(
            r#"
[[flows.f.steps]]
loop = { times = 3, steps = [ { name = "sync", http = "GET /sync", long_poll = "300ms" } ] }
"#,
        );
        assert_eq!(log.requests.len(), 3);
        assert!(near(log.requests[2], 0.62), "{:?}", log.requests);
        assert!(near(left.at, 0.93) && left.completed, "{left:?}");
    }
}
