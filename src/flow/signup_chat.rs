//! The signup-and-chat user of a phone-number messenger: register → read the SMS code → verify →
//! upload contacts → open the socket → send messages to online contacts with think times → stay
//! online for a while → leave.
//!
//! Timing: every operation has an intended start — the arrival time for the first, the end of
//! the previous operation (plus the think time) for the next — and its latency is measured from
//! it, so a generator that falls behind cannot hide a slow target. Where a timer decided the
//! start (arrival, end of a think time), the lag of the actual start is recorded too.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use hyper::Method;
use rand::rngs::SmallRng;
use rand::RngExt;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;

use super::http::{HttpClient, Response};
use super::received::{Arrival, Received};
use super::template::Value;
use super::{ws, OpError};
use crate::metrics::{Counter, ErrorClass, MetricId};
use crate::swarm::registry::Member;
use crate::swarm::{wait_state, RunState, WorkerCtx};

/// The flow's steps, each a metric, in order (their ids follow the built-in metrics).
pub const STEPS: [&str; 5] = [
    "register",
    "sms_code",
    "verify",
    "contacts_sync",
    "ws_connect",
];
const REGISTER: MetricId = MetricId(MetricId::FIRST_STEP);
const SMS_CODE: MetricId = MetricId(MetricId::FIRST_STEP + 1);
const VERIFY: MetricId = MetricId(MetricId::FIRST_STEP + 2);
const CONTACTS_SYNC: MetricId = MetricId(MetricId::FIRST_STEP + 3);
const WS_CONNECT: MetricId = MetricId(MetricId::FIRST_STEP + 4);

/// How many online users a user keeps as chat contacts.
const CHAT_CONTACTS: usize = 5;

/// The flow ended early: an operation failed (already counted) or the run is stopping.
struct Stop;

struct User<'a> {
    ctx: &'a WorkerCtx,
    index: u64,
    rng: SmallRng,
    http: HttpClient,
    clock: OpClock<'a>,
}

/// Times operations one after another, each from its intended start.
struct OpClock<'a> {
    ctx: &'a WorkerCtx,
    state: watch::Receiver<RunState>,
    /// When the next operation is meant to start.
    intended: Duration,
}

pub async fn run_user(ctx: &WorkerCtx, index: u64, intended: Duration) {
    ctx.record(|r| {
        r.add(Counter::ArrivalsStarted, 1);
        r.value(MetricId::SCHEDULE_LAG, ctx.now().saturating_sub(intended));
    });
    let mut user = User {
        ctx,
        index,
        rng: ctx.shared.identities.rng(index),
        http: HttpClient::new(),
        clock: OpClock {
            ctx,
            state: ctx.shared.state.clone(),
            intended,
        },
    };
    let mut aborted = ctx.shared.state.clone();
    // An interrupted run stops every user at once, whatever it was waiting for.
    tokio::select! {
        _ = user.flow() => {}
        _ = wait_state(&mut aborted, |s| s == RunState::Aborted) => {}
    }
}

#[derive(Deserialize)]
struct Registered {
    verification_id: String,
}

#[derive(Deserialize)]
struct SmsCode {
    code: String,
}

#[derive(Deserialize)]
struct Verified {
    user_id: String,
    token: String,
}

#[derive(Deserialize)]
struct Found {
    found: Vec<FoundContact>,
}

#[derive(Deserialize)]
struct FoundContact {
    phone: String,
}

#[derive(Serialize)]
struct SendFrame<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    id: &'a str,
    to: &'a str,
    body: &'a str,
}

#[derive(Deserialize)]
struct InFrame<'a> {
    #[serde(rename = "type", borrow)]
    kind: std::borrow::Cow<'a, str>,
    #[serde(default, borrow)]
    id: Option<std::borrow::Cow<'a, str>>,
}

fn expect_json<T: for<'de> Deserialize<'de>>(resp: Response, status: u16) -> Result<T, OpError> {
    if resp.status != status {
        return Err(OpError::new(
            ErrorClass::HttpStatus,
            format!("expected HTTP {status}, got {}", resp.status),
        ));
    }
    serde_json::from_slice(&resp.body)
        .map_err(|e| OpError::new(ErrorClass::Protocol, format!("response body: {e}")))
}

fn check(ok: bool, reason: &str) -> Result<(), OpError> {
    if ok {
        Ok(())
    } else {
        Err(OpError::new(ErrorClass::CheckFailed, reason))
    }
}

/// Message ids carry the sender, a sequence number and the intended send time (µs since the run
/// started), so the recipient measures delivery on the same clock without shared state.
fn message_id(sender: u64, seq: u32, intended: Duration) -> String {
    format!("{sender}-{seq}-{}", intended.as_micros())
}

fn parse_message_id(id: &str) -> Option<(u64, u32, Duration)> {
    let mut parts = id.splitn(3, '-');
    let sender = parts.next()?.parse().ok()?;
    let seq = parts.next()?.parse().ok()?;
    let micros = parts.next()?.parse().ok()?;
    Some((sender, seq, Duration::from_micros(micros)))
}

fn encode_path(phone: &str) -> String {
    phone.replace('+', "%2B")
}

impl OpClock<'_> {
    fn running(&self) -> bool {
        *self.state.borrow() == RunState::Running
    }

    /// Runs one timed operation: latency from `self.intended`, service time from now.
    async fn op<T>(
        &mut self,
        metric: MetricId,
        fut: impl Future<Output = Result<T, OpError>>,
    ) -> Result<T, Stop> {
        if !self.running() {
            return Err(Stop);
        }
        let ctx = self.ctx;
        let started = ctx.now();
        let result = tokio::time::timeout(ctx.plan().timeout, fut).await;
        let ended = ctx.now();
        match result {
            Ok(Ok(value)) => {
                ctx.record(|r| r.ok(metric, self.intended, started, ended));
                self.intended = ended;
                Ok(value)
            }
            Ok(Err(e)) => {
                ctx.record(|r| r.error_because(metric, e.class, &e.reason));
                Err(Stop)
            }
            Err(_) => {
                let reason = "no answer within the scenario's timeout";
                ctx.record(|r| r.error_because(metric, ErrorClass::Timeout, reason));
                Err(Stop)
            }
        }
    }
}

impl User<'_> {
    async fn flow(&mut self) {
        let Ok((member, token)) = self.signup().await else {
            return;
        };
        if self.sync_contacts(&member, &token).await.is_err() {
            return;
        }
        self.chat(&member, &token).await;
    }

    async fn signup(&mut self) -> Result<(Arc<Member>, String), Stop> {
        let ctx = self.ctx;
        let endpoint = &ctx.shared.endpoint;
        let phone = ctx.shared.identities.phone(self.index);
        let body = serde_json::json!({ "phone": phone })
            .to_string()
            .into_bytes();
        let http = &mut self.http;
        let fut = async {
            let resp = http
                .send(endpoint, Method::POST, "/v1/register", None, Some(body))
                .await?;
            expect_json::<Registered>(resp, 202)
        };
        let registered = self.clock.op(REGISTER, fut).await?;

        let path = format!("/v1/test/sms/{}", encode_path(&phone));
        let http = &mut self.http;
        let fut = async {
            let resp = http.send(endpoint, Method::GET, &path, None, None).await?;
            let sms = expect_json::<SmsCode>(resp, 200)?;
            check(
                sms.code.len() == 6 && sms.code.bytes().all(|b| b.is_ascii_digit()),
                "the SMS code is not 6 digits",
            )?;
            Ok(sms)
        };
        let sms = self.clock.op(SMS_CODE, fut).await?;

        let body = serde_json::json!({
            "verification_id": registered.verification_id,
            "code": sms.code,
        })
        .to_string()
        .into_bytes();
        let http = &mut self.http;
        let fut = async {
            let resp = http
                .send(endpoint, Method::POST, "/v1/verify", None, Some(body))
                .await?;
            let verified = expect_json::<Verified>(resp, 201)?;
            check(
                !verified.user_id.is_empty() && !verified.token.is_empty(),
                "empty user_id or token",
            )?;
            Ok(verified)
        };
        let verified = self.clock.op(VERIFY, fut).await?;
        let member = Arc::new(Member::new(
            self.index,
            vec![
                ("phone".into(), Value::Str(phone)),
                ("user_id".into(), Value::Str(verified.user_id)),
            ],
        ));
        ctx.shared.registry.publish(member.clone());
        Ok((member, verified.token))
    }

    /// Uploads known and unknown phones; every known phone must come back as found.
    async fn sync_contacts(&mut self, member: &Member, token: &str) -> Result<(), Stop> {
        let ctx = self.ctx;
        let plan = &ctx.shared.plan.user;
        if plan.contacts_known + plan.contacts_unknown == 0 {
            return Ok(());
        }
        let known: Vec<String> = ctx
            .shared
            .registry
            .sample_registered(&mut self.rng, plan.contacts_known, member.index)
            .iter()
            .map(|m| m.text("phone"))
            .collect();
        let unknown: Vec<String> = (0..plan.contacts_unknown)
            .map(|_| ctx.shared.identities.unknown_phone(&mut self.rng))
            .collect();
        let phones: Vec<&String> = known.iter().chain(&unknown).collect();
        let body = serde_json::json!({ "phones": phones })
            .to_string()
            .into_bytes();
        let endpoint = &ctx.shared.endpoint;
        let http = &mut self.http;
        let fut = async {
            let resp = http
                .send(
                    endpoint,
                    Method::POST,
                    "/v1/contacts/sync",
                    Some(token),
                    Some(body),
                )
                .await?;
            let found = expect_json::<Found>(resp, 200)?;
            // Discovery may miss contacts (counted below), but must never invent one.
            check(
                !found.found.iter().any(|c| unknown.contains(&c.phone)),
                "a phone nobody registered was found",
            )?;
            Ok(found)
        };
        let found = self.clock.op(CONTACTS_SYNC, fut).await?;
        let found: HashSet<&str> = found.found.iter().map(|c| c.phone.as_str()).collect();
        let missing = known.iter().filter(|p| !found.contains(p.as_str())).count();
        ctx.record(|r| {
            r.add(Counter::ContactsExpected, known.len() as u64);
            r.add(Counter::ContactsMissing, missing as u64);
        });
        Ok(())
    }

    async fn chat(&mut self, member: &Arc<Member>, token: &str) {
        let ctx = self.ctx;
        let endpoint = &ctx.shared.endpoint;
        let path = format!("/v1/ws?token={token}");
        let Ok(mut socket) = self
            .clock
            .op(WS_CONNECT, ws::connect(endpoint, &path))
            .await
        else {
            return;
        };
        ctx.open_connections.set(ctx.open_connections.get() + 1);
        ctx.shared.registry.go_online(member);
        // Like an app once its socket is up, let the idle HTTP connection go: it would otherwise
        // hold a second descriptor per online user on both sides.
        self.http = HttpClient::new();

        let mut session = Session {
            contacts: Vec::new(),
            unacked: HashMap::new(),
            received: Received::default(),
        };
        let user = &ctx.shared.plan.user;
        let mut seq: u32 = 0;
        let mut next_send =
            (seq < user.messages).then(|| self.clock.intended + user.think.sample(&mut self.rng));
        let mut leave_at: Option<Duration> = None;
        let mut last_sent = Duration::ZERO;
        let timeout = ctx.plan().timeout;
        let closed_by_peer = loop {
            let now = ctx.now();
            if next_send.is_none() && leave_at.is_none() {
                leave_at = Some(now + user.stay_online.sample(&mut self.rng));
            }
            let state = *self.clock.state.borrow();
            // Leave when the stay is over and every message was acked (or its ack timed out);
            // while the run drains, stay so that messages in flight can still arrive.
            let acks_done = session.unacked.is_empty() || now >= last_sent + timeout;
            let wake = match state {
                RunState::Ended | RunState::Aborted => break false,
                RunState::Stopping => None,
                RunState::Running => match (next_send, leave_at) {
                    (Some(t), _) => Some(t),
                    (None, Some(t)) if now < t => Some(t),
                    (None, _) if acks_done => break false,
                    (None, _) => Some(last_sent + timeout),
                },
            };
            tokio::select! {
                frame = socket.next() => match frame {
                    Some(Ok(Message::Text(text))) => session.on_frame(ctx, member, text.as_str()),
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break true,
                    Some(Ok(_)) => {}
                },
                _ = tokio::time::sleep_until(ctx.at(wake.unwrap_or_default())), if wake.is_some() => {
                    if let (Some(t), RunState::Running) = (next_send, state) {
                        if ctx.now() < t {
                            continue;
                        }
                        ctx.record(|r| r.value(MetricId::SCHEDULE_LAG, ctx.now().saturating_sub(t)));
                        match session.send(ctx, &mut self.rng, &mut socket, member, seq, t).await {
                            SendResult::Sent => {
                                seq += 1;
                                last_sent = ctx.now();
                                next_send = (seq < user.messages).then(|| ctx.now() + user.think.sample(&mut self.rng));
                            }
                            // Nobody to talk to yet: try again after another think time.
                            SendResult::NoPeer => next_send = Some(ctx.now() + user.think.sample(&mut self.rng)),
                            SendResult::Closed => break true,
                        }
                    }
                }
                changed = self.clock.state.changed() => {
                    // The run's control loop is gone: the run is over.
                    if changed.is_err() {
                        break false;
                    }
                }
            }
        };

        ctx.shared.registry.go_offline(member);
        ctx.open_connections.set(ctx.open_connections.get() - 1);
        let ended = matches!(
            *self.clock.state.borrow(),
            RunState::Ended | RunState::Aborted
        );
        if !ended {
            // Left before the end of the run: messages still on their way are held by the target.
            member.left.store(true, Ordering::Relaxed);
        }
        if closed_by_peer && !ended {
            ctx.record(|r| r.error(WS_CONNECT, ErrorClass::WsClosed));
        }
        // Messages never acknowledged: the ack did not come within the socket's life.
        let unacked = session.unacked.len() as u64;
        ctx.record(|r| {
            for _ in 0..unacked {
                r.error(
                    MetricId::MESSAGE_ACK,
                    if closed_by_peer {
                        ErrorClass::WsClosed
                    } else {
                        ErrorClass::Timeout
                    },
                );
            }
        });
        if !closed_by_peer {
            let _ = socket.close(None).await;
        }
    }
}

enum SendResult {
    Sent,
    NoPeer,
    Closed,
}

/// A user's open socket: its chat contacts, messages awaiting an ack, messages received.
struct Session {
    contacts: Vec<Arc<Member>>,
    /// seq → (actual send time, recipient)
    unacked: HashMap<u32, (Duration, Arc<Member>)>,
    /// Messages received, to count duplicates and reordering.
    received: Received,
}

impl Session {
    /// Picks an online contact, refreshing the contact list from the swarm when none is online.
    fn pick_peer(&mut self, ctx: &WorkerCtx, rng: &mut SmallRng, me: u64) -> Option<Arc<Member>> {
        self.contacts.retain(|m| m.is_online());
        if self.contacts.is_empty() {
            self.contacts = ctx.shared.registry.sample_online(rng, CHAT_CONTACTS, me);
        }
        if self.contacts.is_empty() {
            return None;
        }
        Some(self.contacts[rng.random_range(0..self.contacts.len())].clone())
    }

    async fn send(
        &mut self,
        ctx: &WorkerCtx,
        rng: &mut SmallRng,
        socket: &mut ws::Socket,
        me: &Member,
        seq: u32,
        intended: Duration,
    ) -> SendResult {
        let Some(peer) = self.pick_peer(ctx, rng, me.index) else {
            return SendResult::NoPeer;
        };
        let id = message_id(me.index, seq, intended);
        let body = format!("hi {seq}");
        let to = peer.text("user_id");
        let frame = SendFrame {
            kind: "send",
            id: &id,
            to: &to,
            body: &body,
        };
        let Ok(text) = serde_json::to_string(&frame) else {
            return SendResult::Closed;
        };
        let started = ctx.now();
        if socket.send(Message::text(text)).await.is_err() {
            return SendResult::Closed;
        }
        ctx.record(|r| r.add(Counter::MessagesSent, 1));
        self.unacked.insert(seq, (started, peer));
        SendResult::Sent
    }

    fn on_frame(&mut self, ctx: &WorkerCtx, me: &Member, text: &str) {
        let Ok(frame) = serde_json::from_str::<InFrame>(text) else {
            ctx.record(|r| r.error(MetricId::MESSAGE_DELIVERY, ErrorClass::Protocol));
            return;
        };
        let parsed = frame.id.as_deref().and_then(parse_message_id);
        let now = ctx.now();
        match (frame.kind.as_ref(), parsed) {
            ("ack", Some((_, seq, intended))) => {
                if let Some((started, peer)) = self.unacked.remove(&seq) {
                    peer.accepted.fetch_add(1, Ordering::Relaxed);
                    ctx.record(|r| {
                        r.ok(MetricId::MESSAGE_ACK, intended, started, now);
                        r.add(Counter::MessagesAcked, 1);
                    });
                }
            }
            ("message", Some((sender, seq, intended))) => match self.received.record(sender, seq) {
                Arrival::New { reordered } => {
                    me.received.fetch_add(1, Ordering::Relaxed);
                    ctx.record(|r| {
                        r.value(MetricId::MESSAGE_DELIVERY, now.saturating_sub(intended));
                        r.add(Counter::MessagesDelivered, 1);
                        if reordered {
                            r.add(Counter::MessagesReordered, 1);
                        }
                    });
                }
                Arrival::Duplicate => ctx.record(|r| r.add(Counter::MessagesDuplicated, 1)),
            },
            ("error", Some((_, seq, _))) => {
                if self.unacked.remove(&seq).is_some() {
                    ctx.record(|r| r.error(MetricId::MESSAGE_ACK, ErrorClass::Protocol));
                }
            }
            _ => ctx.record(|r| r.error(MetricId::MESSAGE_DELIVERY, ErrorClass::Protocol)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids_round_trip() {
        let id = message_id(12, 3, Duration::from_micros(4_567_890));
        assert_eq!(
            parse_message_id(&id),
            Some((12, 3, Duration::from_micros(4_567_890)))
        );
        assert_eq!(parse_message_id("x-1-2"), None);
        assert_eq!(parse_message_id("1-2"), None);
    }
}
