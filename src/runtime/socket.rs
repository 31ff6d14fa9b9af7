//! A user's socket over its life: opened by a `ws` step, listened to between operations (its
//! frames go to the background rules), reopened after a drop under a `reconnect` policy,
//! drained and closed when the user leaves. The connection itself is `clients::connection`'s.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::task::Poll;
use std::time::Duration;

use crate::clients::connection::{Closed, Connection, Frame};
use crate::clients::OpError;
use crate::compiled::flow::{Action, FrameRule, JsonKeys, Matcher, RuleAction, Step};
use crate::compiled::retry::ReconnectPolicy;
use crate::metrics::{ErrorClass, MetricId};
use crate::runtime::{checks, frame_json, Stop, User};
use crate::swarm::RunState;
use serde_json::json;

impl<'f> Socket<'f> {
    /// The frame rules of the step that opened the socket: looked up rather than kept, so that
    /// the socket (boxed, one per connected user) fits the allocator's next smaller size.
    pub fn rules(&self) -> &'f [FrameRule] {
        match &self.step.action {
            Action::WsConnect { rules, .. } => rules,
            _ => &[],
        }
    }
}

/// Why a user's socket is being closed.
#[derive(Clone, Copy)]
pub(super) enum Why<'c> {
    /// The user leaves, or opens another: our close, after reading what is still on its way.
    Leaving,
    /// The socket is gone: the peer closed it, the transport broke, or inrush gave up on it.
    /// `counted` when that is not (or not again) the socket step's error: the step that waited
    /// on it counts it, or a reconnect will mend it.
    Lost { closed: &'c Closed, counted: bool },
}

/// The user's open socket and what it was opened with.
pub(super) struct Socket<'f> {
    pub conn: Connection,
    /// The step that opened it: a socket the server closes is that step's error (its metric's),
    /// its frame rules are the socket's, and it opens the socket again after a drop
    /// (`reconnect`).
    pub step: &'f Step,
    /// Whether its rules say what acknowledges a message (an `acked` rule): only then is a
    /// message's ack awaited, and one never acked an error.
    pub acks: bool,
    /// How much of a frame's JSON its rules read (the step's, shared by its sockets).
    pub json_keys: &'f JsonKeys,
    /// A burst is on: frames are fed, not yet written (`User::burst`).
    pub hold: bool,
    /// Frames were fed and wait for a flush.
    pub held: bool,
}

impl<'a> User<'a> {
    /// After the flow (or when it stopped): wait for outstanding acks, then close the socket. A
    /// user the run's end cut off stays for the drain instead (it would still be online), while
    /// one whose flow ended by itself leaves as it would during the run. `Err(Stop::Failed)`
    /// when the socket broke meanwhile and that was counted as the socket step's error: the
    /// user failed, whatever its flow had come to (an error is never a completed or cut-off
    /// user's).
    pub(super) async fn leave(&mut self, cut_off: bool) -> Result<(), Stop> {
        if self.socket.is_none() {
            return Ok(());
        }
        let mut left = Ok(());
        let timeout = self.ctx.plan().timeout;
        loop {
            let state = self.ctx.run_state.get();
            let deadline = match state {
                RunState::Ended | RunState::Aborted => break,
                // The run drains: keep listening so messages in flight still arrive.
                RunState::Stopping if cut_off => None,
                RunState::Running | RunState::Stopping if !self.messages.awaits_acks() => break,
                RunState::Running | RunState::Stopping => Some(self.messages.last_sent + timeout),
            };
            if deadline.is_some_and(|d| self.ctx.now() >= d) {
                break;
            }
            let ctx = self.ctx;
            let timer = deadline.map(|d| tokio::time::sleep_until(ctx.at(d)));
            let mut timer = std::pin::pin!(timer);
            let timer = timer
                .as_mut()
                .as_pin_mut()
                .map(|t| t as Pin<&mut dyn Future<Output = ()>>);
            if let Err(stop) = self.listen(timer).await {
                // Lost after the run ended is a cut-off user's (not counted); lost before it,
                // the socket step's error was counted.
                if stop == Stop::Failed {
                    left = Err(stop);
                }
                break;
            }
        }
        self.close_socket(Why::Leaving).await;
        left
    }

    /// The server or the network dropped the socket under a listening user (or inrush gave up
    /// on it): with a `reconnect` policy (and the run not over, drain included) the user opens
    /// it again, as an app does; otherwise the drop is the socket step's error and the flow ends.
    pub(super) async fn dropped(&mut self, closed: Closed) -> Result<(), Stop> {
        // Also while the run drains: reconnecting is how an app gets what was sent meanwhile.
        let policy = match &self.socket {
            Some(s) if !self.ended() => {
                s.step.reconnect.resolve(self.ctx.plan().reconnect.as_ref())
            }
            _ => None,
        };
        let (Some(policy), Some(step)) = (policy, self.socket.as_ref().map(|s| s.step)) else {
            let counted = false;
            self.close_socket(Why::Lost {
                closed: &closed,
                counted,
            })
            .await;
            // Lost once the run was over, the socket is not an error: the user was cut off.
            return Err(if self.ended() {
                Stop::CutOff
            } else {
                Stop::Failed
            });
        };
        // A drop is not an error yet: only a reconnect that gives up is one. A socket inrush
        // gave up on is the target's protocol error whatever follows. Unacked messages still are.
        let counted = !matches!(closed, Closed::Refused(_));
        self.close_socket(Why::Lost {
            closed: &closed,
            counted,
        })
        .await;
        self.reconnect(step, policy).await
    }

    /// Opens `step`'s socket again after a drop: up to `attempts` tries, each after its backoff.
    /// The sample counts from the intended reconnect time (the drop plus the first backoff), so
    /// failed tries and their waits are part of what the user felt.
    async fn reconnect(&mut self, step: &'a Step, policy: &ReconnectPolicy) -> Result<(), Stop> {
        let ctx = self.ctx;
        let mut at = ctx.now() + policy.backoff.delay(0, &mut self.scope.rng);
        let intended = at;
        let mut last = OpError::new(ErrorClass::Connect, "no reconnect attempt");
        // As a retry is: the step's own metric, or else its transaction's.
        let metric = self.failure_metric(step);
        for k in 0..policy.attempts {
            if k > 0 {
                at = ctx.now() + policy.backoff.delay(k, &mut self.scope.rng);
            }
            if !self.sleep_unless_ended(at).await {
                // The run ended while this user waited to reconnect: it would have, so the drop
                // is not an error (as an operation the end of the run prevented is not one).
                return Err(Stop::CutOff);
            }
            let started = ctx.now();
            let result = match tokio::time::timeout(step.timeout, self.open_socket(step)).await {
                Ok(r) => r,
                Err(_) => Err(OpError::new(
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
            ctx.record_error(self.region, m, last.class, &reason);
        }
        Err(Stop::Failed)
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
            // The run's state is looked at, not waited on: `run_user`'s wait for the abort
            // wakes the user's task at every change.
            let run = &ctx.run_state;
            let seen = &mut self.seen_changes;
            let changed = std::future::poll_fn(|_| {
                if run.gone() {
                    Poll::Ready(true)
                } else if run.changes() != *seen {
                    *seen = run.changes();
                    Poll::Ready(false)
                } else {
                    Poll::Pending
                }
            });
            tokio::select! {
                _ = tokio::time::sleep_until(ctx.at(at)) => {}
                gone = changed => if gone { return false },
            }
        }
    }

    /// Closes the socket, for `why`. A lost socket not counted elsewhere is the socket step's
    /// error. Messages still awaiting their ack become `message_ack` errors: of the loss's class
    /// when the socket was lost, else timed out.
    ///
    /// Boxed: closing (the drain, the close handshake) happens once per socket, and inline its
    /// state would size the future of every step that may close one — those every idle user
    /// holds among them.
    pub(super) fn close_socket<'s>(
        &'s mut self,
        why: Why<'s>,
    ) -> Pin<Box<dyn Future<Output = ()> + 's>> {
        Box::pin(self.close_now(why))
    }

    async fn close_now(&mut self, why: Why<'_>) {
        if self.socket.is_none() {
            return;
        }
        // A user polling in an `online` loop stays online without its socket.
        let stays_online = self.present();
        let lost = match why {
            Why::Leaving => None,
            Why::Lost { closed, counted } => Some((closed.error(), counted)),
        };
        if lost.is_none() {
            // Nobody picks a user who is leaving; what was sent to it before the server saw it
            // leave still arrives (and is counted) before the socket goes.
            if let (Some(m), false) = (&self.member, stays_online) {
                self.ctx.shared.registry.go_offline(m);
            }
            self.drain_socket().await;
        }
        let Some(mut socket) = self.socket.take() else {
            return;
        };
        self.trace("ws_close", |t| match &why {
            Why::Leaving => json!({ "by_peer": false }),
            Why::Lost { closed, .. } => json!({
                "by_peer": closed.by_peer(),
                "reason": t.mask(&closed.to_string()),
            }),
        });
        let ctx = self.ctx;
        ctx.open_websockets
            .set(ctx.open_websockets.get().saturating_sub(1));
        let ended = self.ended();
        if let (Some(m), false) = (&self.member, stays_online) {
            ctx.shared.registry.go_offline(m);
            if !ended {
                // Left before the end: messages still on their way are held by the target.
                m.left.store(true, Ordering::Relaxed);
            }
        }
        if let (Some((e, false)), false, Some(m)) = (&lost, ended, socket.step.metric) {
            ctx.record_error(self.region, m, e.class, &e.reason);
        }
        let unacked = self.messages.drop_unacked();
        if unacked > 0 {
            let (class, reason) = match &lost {
                Some((e, _)) => (
                    e.class,
                    format!("no ack before the socket closed: {}", e.reason),
                ),
                None if ended => (
                    ErrorClass::Timeout,
                    "no ack by the end of the run (drain included)".to_string(),
                ),
                None => (
                    ErrorClass::Timeout,
                    format!(
                        "no ack before the user closed its socket (it waits {:?} after its last \
                         message)",
                        ctx.plan().timeout
                    ),
                ),
            };
            for _ in 0..unacked {
                ctx.record_error(self.region, MetricId::MESSAGE_ACK, class, &reason);
            }
        }
        if lost.is_none() {
            // Bounded (`CLOSE_WITHIN`): a peer that never answers cannot hold the user.
            let _ = socket.conn.close().await;
        }
        self.count_socket_bytes(&socket);
    }

    /// Closes our side of the socket and reads on until the server's close: frames it wrote
    /// before it saw the close are the user's (a returning user would never get them again, as
    /// the server counts them delivered); frames relayed after it are held for the next visit.
    async fn drain_socket(&mut self) {
        let Some(s) = self.socket.as_mut() else {
            return;
        };
        let deadline =
            tokio::time::Instant::now() + self.ctx.plan().timeout.min(Duration::from_secs(1));
        // The close itself is bounded too (a peer that does not read never takes it).
        if s.conn.close().await.is_err() {
            return;
        }
        loop {
            let Some(s) = self.socket.as_mut() else {
                return;
            };
            let frame = tokio::select! {
                f = s.conn.next(&mut self.link) => f,
                _ = tokio::time::sleep_until(deadline) => return,
            };
            match frame {
                Ok(frame) => {
                    self.count_frame(false);
                    self.trace_frame("frame_in", &frame);
                    self.background(&frame.to_text()).await
                }
                Err(_) => return,
            }
        }
    }

    /// Sends a frame on the user's socket. A socket found dropped as the frame goes out is, under
    /// a `reconnect` policy, reopened and the frame sent on the new one, as an app that queued
    /// it would; otherwise the send fails.
    pub(super) async fn send_frame(&mut self, frame: Frame) -> Result<(), OpError> {
        self.trace_frame("frame_out", &frame);
        let closed = || OpError::new(ErrorClass::WsClosed, "the socket closed while sending");
        let failed = |c: &Closed| {
            let e = c.error();
            OpError::new(e.class, format!("{} while sending", e.reason))
        };
        let reconnects = !self.ended()
            && self.socket.as_ref().is_some_and(|s| {
                s.step
                    .reconnect
                    .resolve(self.ctx.plan().reconnect.as_ref())
                    .is_some()
            });
        // Kept for a second try only when there can be one (a clone shares the frame's bytes).
        let again = reconnects.then(|| frame.clone());
        let Some(socket) = self.socket.as_mut() else {
            return Err(closed());
        };
        // In a burst the frame is fed, and written with the burst's last one.
        let written = if socket.hold {
            socket.conn.feed(frame).await
        } else {
            socket.conn.send(frame).await
        };
        let Err(lost) = written else {
            socket.held = socket.hold;
            self.count_frame(true);
            return Ok(());
        };
        let Some(frame) = again else {
            // The send counts the loss as its error; the socket is gone.
            let counted = true;
            self.close_socket(Why::Lost {
                closed: &lost,
                counted,
            })
            .await;
            return Err(failed(&lost));
        };
        // Boxed like the reconnect in `listen`. A reconnect that gives up counts as the socket
        // step's error; this send then fails too (under its own metric, if it has one).
        Box::pin(self.dropped(lost.clone()))
            .await
            .map_err(|_| failed(&lost))?;
        match self.socket.as_mut() {
            Some(socket) => socket.conn.send(frame).await.map_err(|c| failed(&c))?,
            None => return Err(closed()),
        }
        self.count_frame(true);
        Ok(())
    }

    /// Starts (`true`) or ends a burst on the user's socket: while it is on, sent frames are fed
    /// and written together by the first send outside it, or by `end_burst`.
    pub(super) fn hold_writes(&mut self, on: bool) {
        if let Some(s) = self.socket.as_mut() {
            s.hold = on;
        }
    }

    /// Ends a burst: frames still fed and unwritten (its last send was skipped or cut off) go
    /// out now. A socket lost meanwhile is lost as under any send.
    pub(super) async fn end_burst(&mut self) {
        let Some(s) = self.socket.as_mut() else {
            return;
        };
        s.hold = false;
        if !std::mem::take(&mut s.held) {
            return;
        }
        if let Err(lost) = s.conn.flush().await {
            // No step failed on it: the socket's step counts the loss.
            let counted = false;
            self.close_socket(Why::Lost {
                closed: &lost,
                counted,
            })
            .await;
        }
    }

    /// Writes out the replies the rules fed (`send_reply`), unless a burst holds its frames for
    /// its last send. A write that fails is left to the next read, which finds the socket lost,
    /// as a reply's failed send always was.
    pub(super) async fn flush_replies(&mut self) {
        let Some(s) = self.socket.as_mut() else {
            return;
        };
        if s.hold || !std::mem::take(&mut s.held) {
            return;
        }
        let _ = s.conn.flush().await;
    }

    /// Whether frames wait in the socket to be written (rules' replies, or a burst's).
    pub(super) fn fed(&self) -> bool {
        self.socket.as_ref().is_some_and(|s| s.held)
    }

    /// A data frame went out on (`sent`) or came in from the user's socket: counted on the `ws`
    /// step that opened it (its metric, or else its transaction's), whatever step or rule sent
    /// it, so a flow of plain sends still says how many frames left.
    pub(super) fn count_frame(&self, sent: bool) {
        let Some(socket) = self.socket.as_ref() else {
            return;
        };
        let m = socket.step.metric.or(socket.step.transaction);
        // The socket's bytes since the last frame (control frames in between included).
        let (out, read) = socket.conn.take_bytes();
        self.ctx.record_in(self.region, |r| {
            if let Some(m) = m {
                r.frame(m, sent);
            }
            r.bytes(m, out, read);
        });
    }

    /// The bytes of `socket` not yet counted (its upgrade, the frames and closes since its last
    /// data frame), on the `ws` step that opened it.
    fn count_socket_bytes(&self, socket: &Socket<'_>) {
        let (out, read) = socket.conn.take_bytes();
        if out + read > 0 {
            let m = socket.step.metric.or(socket.step.transaction);
            self.ctx.record_in(self.region, |r| r.bytes(m, out, read));
        }
    }

    /// Opens the user's socket as `step` (a `ws` step) says, closing any other first.
    pub(super) async fn open_socket(&mut self, step: &'a Step) -> Result<(), OpError> {
        let Action::WsConnect {
            target,
            headers,
            subprotocols,
            rules,
            json_keys,
        } = &step.action
        else {
            return Err(OpError::new(ErrorClass::Protocol, "not a ws step"));
        };
        if self.socket.is_some() {
            self.close_socket(Why::Leaving).await;
        }
        let w = self.world();
        let path = target.render_with(|e| self.scope.eval(e, &w));
        let headers = self.scope.render_headers(headers, &w);
        let endpoint = &self.ctx.shared.endpoint;
        // By the user's place in its shard: a shard's users are every N-th index.
        let source = endpoint.source_for(self.ctx.plan().shard.local(self.scope.index));
        // The region's network: a round trip for TCP's handshake (and one for TLS's), then the
        // upgrade request out and its response back, as for an HTTP request on a new connection.
        self.link.round_trip().await;
        let tls = self.http.tls().cloned();
        if tls.is_some() {
            self.link.round_trip().await;
        }
        self.link.one_way().await;
        let prefix = &endpoint.prefix;
        self.trace("ws_connect", |t| {
            let hs: Vec<_> = headers.iter().map(|(n, v)| json!([n, t.mask(v)])).collect();
            json!({ "path": t.mask(&format!("{prefix}{path}")), "headers": hs })
        });
        let conn = Connection::open_ws(
            endpoint,
            &path,
            &headers,
            subprotocols,
            source,
            tls.as_deref(),
        )
        .await;
        self.record_tls_handshakes();
        let conn = match conn {
            Ok(conn) => conn.stall_limit(step.timeout),
            Err(e) => {
                self.trace("ws_failed", |t| json!({ "reason": t.mask(&e.reason) }));
                return Err(e);
            }
        };
        self.trace("ws_open", |_| json!({}));
        self.link.one_way().await;
        let ctx = self.ctx;
        ctx.open_websockets.set(ctx.open_websockets.get() + 1);
        // Like an app once its socket is up, let the idle HTTP connection go: it would
        // otherwise hold a second descriptor per online user on both sides.
        self.http.disconnect();
        let acks = rules
            .iter()
            .any(|r| r.actions.iter().any(|a| matches!(a, RuleAction::Acked(_))));
        let json_keys = json_keys.get_or_init(|| {
            rules
                .iter()
                .any(FrameRule::needs_json)
                .then(|| frame_json::keys_read(rules))
        });
        self.socket = Some(Box::new(Socket {
            conn,
            step,
            acks,
            json_keys,
            hold: false,
            held: false,
        }));
        if let Some(m) = &self.member {
            ctx.shared.registry.go_online(m);
        }
        Ok(())
    }

    /// Reads frames until one matches, handing the others to the background rules.
    pub(super) async fn receive(
        &mut self,
        step: &'a Step,
        matcher: &Matcher,
    ) -> Result<(), OpError> {
        let within = step
            .expect
            .as_ref()
            .and_then(|e| e.within)
            .unwrap_or(step.timeout);
        // On the worker's clock, and one for the whole wait however many frames come first.
        let ctx = self.ctx;
        let mut deadline = std::pin::pin!(ctx.sleep_until(ctx.now() + within));
        loop {
            let Some(socket) = self.socket.as_mut() else {
                return Err(OpError::new(
                    ErrorClass::Protocol,
                    "expect before the socket was opened",
                ));
            };
            // A frame that is there first, without a look at the timer (see `next_event`): one
            // that came by the deadline is taken rather than timed out at random.
            let frame = tokio::select! {
                biased;
                f = socket.conn.next(&mut self.link) => f,
                _ = &mut deadline => {
                    return Err(OpError::new(ErrorClass::Timeout, format!("no matching frame within {within:?}")));
                }
            };
            let frame = match frame {
                Ok(frame) => frame,
                Err(lost) => {
                    let counted = true;
                    self.close_socket(Why::Lost {
                        closed: &lost,
                        counted,
                    })
                    .await;
                    let e = lost.error();
                    return Err(OpError::new(
                        e.class,
                        format!("{} while waiting for a frame", e.reason),
                    ));
                }
            };
            self.count_frame(false);
            self.trace_frame("frame_in", &frame);
            let text = frame.to_text();
            // Every awaited frame's: built over the worker's last frame (`frame_json::parse`).
            let json = frame_json::parse(&text, None, &self.ctx.scratch.frame);
            let w = self.world();
            // A frame the step takes — to fail on it, or as its answer, passing its checks or
            // not — still acks, delivers or rejects what it carries.
            if let Some(f) = &step.fail_on {
                if let Some(e) = checks::failed_on(f, &text, json.as_ref(), &mut self.scope, &w) {
                    self.track_taken(&text, json).await;
                    return Err(e);
                }
            }
            if checks::matches(matcher, &text, json.as_ref(), &mut self.scope, &w) {
                let expect = step.expect.as_ref();
                let checked = checks::check_text(
                    expect,
                    &text,
                    json.as_ref(),
                    &mut self.scope,
                    &w,
                    &mut self.checked,
                );
                let seen = match checked {
                    Ok(seen) => seen,
                    Err(e) => {
                        self.track_taken(&text, json).await;
                        return Err(e);
                    }
                };
                self.record_contacts(seen);
                checks::capture(
                    &step.captures,
                    None,
                    &text,
                    json.as_ref(),
                    &mut self.scope,
                    &w,
                );
                self.track_taken(&text, json).await;
                return Ok(());
            }
            frame_json::recycle(json, &self.ctx.scratch.frame);
            self.background(&text).await;
            self.flush_replies().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::metrics::{Counter, ErrorClass, MetricId};
    use crate::runtime::tests::{errors, metric, run_one};

    #[test]
    fn messages_never_acked_are_timeouts_with_a_reason() {
        // The peer reads and never acks: the user, leaving, waits the timeout (2 s) for acks.
        let (_, ended, rec) = run_one(
            r#"
[[flows.f.steps]]
name = "ws"
ws = "/ws/deaf"
on_frame = [ { match = { "$.type" = "ack" }, acked = "$.id" } ]

[[flows.f.steps]]
repeat = 2
send = { type = "send", id = "{{ msg.id }}" }
"#,
        );
        assert!(ended.completed);
        assert_eq!(errors(&rec, MetricId::MESSAGE_ACK, ErrorClass::Timeout), 2);
        let example = rec.metric(MetricId::MESSAGE_ACK).examples[ErrorClass::Timeout as usize]
            .as_deref()
            .unwrap_or_default();
        assert!(
            example.starts_with("no ack before the user closed its socket"),
            "{example}"
        );
        assert!(example.contains("2s after its last message"), "{example}");
    }

    #[test]
    fn a_dropped_socket_is_reopened_under_a_reconnect_policy_and_is_no_error() {
        // The peer closes the socket on the first frame; the user reopens it and stays online.
        let (plan, ended, rec) = run_one(
            r#"
[[flows.f.steps]]
name = "ws"
ws = "/ws/silent"
reconnect = { attempts = 2, backoff = "20ms", jitter = "none" }
on_frame = [ { match = { "$.type" = "ack" }, acked = "$.id" } ]

[[flows.f.steps]]
send = { type = "send", id = "{{ msg.id }}" }

[[flows.f.steps]]
stay_online = { constant = "300ms" }
"#,
        );
        assert!(ended.completed, "the flow goes on after the reconnect");
        let ws = metric(&plan, "ws");
        let r = rec.metric(ws);
        // The first open and the reconnect are both samples of the step; neither is an error.
        assert_eq!((r.reconnects, r.count(), r.error_count()), (1, 2, 0));
        // The message the peer closed on was never acked: still an ack error (the socket's rules
        // say what an ack is).
        assert_eq!(rec.counter(Counter::MessagesSent), 1);
        assert_eq!(errors(&rec, MetricId::MESSAGE_ACK, ErrorClass::WsClosed), 1);
    }
}
