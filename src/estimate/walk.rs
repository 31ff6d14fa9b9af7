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
//! - when the schedule ends, no new operation starts: a user holding a socket stays until the
//!   end of the drain, a user without one leaves at once;
//! - `when` conditions are assumed to hold and `until` loops to end after one iteration (the
//!   values they test only exist in a real run).
//!
//! Extension points: a new step kind is one arm in [`Walker::action`]; a retried operation (the
//! actions for which [`Action::retried`] holds, the run's rule) would be a further call of
//! [`Walker::timed`] with the user's clock moved on (retries are not modelled yet: each is walked
//! as one attempt, as [`Walker::action`] does). Who starts when — open arrivals, closed-phase loops, returns, caps — is
//! [`super::model`]'s business: it calls [`user`] once per visit.

use rand::rngs::SmallRng;

use crate::compiled::flow::{Action, Flow, LoopKind, Step};
use crate::compiled::Dist;

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
                self.wait(*think)?;
            }
            self.action(step)?;
        }
        Ok(())
    }

    fn action(&mut self, step: &Step) -> Walked {
        match &step.action {
            Action::Http(_) => {
                // A new connection costs a round trip first; the request goes out and back.
                let connect = if self.http.is_none() {
                    self.http = Some(self.now);
                    2.0 * self.one_way
                } else {
                    0.0
                };
                self.timed(connect + 2.0 * self.one_way + self.a.latency)?;
                // The run counts an HTTP message once the target accepted it.
                if step.tracked {
                    self.sink.message(self.now);
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
            Action::Think(d) => self.wait(*d),
            Action::StayOnline(d) => self.wait(*d),
            Action::Loop { kind, steps, .. } => self.run_loop(kind, steps),
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

    /// Counts an operation against the budget and refuses to start one after the schedule.
    fn begin(&mut self) -> Walked {
        self.operations += 1;
        if self.now >= self.a.stop || self.operations > MAX_OPERATIONS {
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

    /// A pause; the run's state change at the schedule's end interrupts it.
    fn wait(&mut self, d: Dist) -> Walked {
        self.operations += 1;
        let until = self.now + d.sample(&mut self.rng).as_secs_f64();
        if until >= self.a.stop {
            self.now = self.now.max(self.a.stop);
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

    /// The end of the flow: wait for acks, or through the drain if the schedule ended while the
    /// socket was open; then close everything.
    fn leave(&mut self, start: f64) {
        if self.ws.is_some() {
            if let Some(sent) = self.last_send {
                self.now = self.now.max(sent + self.a.latency + 2.0 * self.one_way);
            }
            if self.stopped || self.now >= self.a.stop {
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
