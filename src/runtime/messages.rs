//! Message tracking: the messages a user sent (and, where the flow declares acks, waits an ack
//! for; their ids are `message_id.rs`'s); what it received (`received.rs`); the background frame
//! rules that see deliveries, acks and rejections among the frames no step waits for; and the
//! deliveries an HTTP response carries (a long-poll sync).
//!
//! Loss is defined by delivery, whatever the protocol: every message sent to a recipient is
//! expected by it (on its registry entry) unless the target refused it; what it never receives
//! is lost or pending at the end (`Registry::delivery`), and what it receives after the
//! message's delivery deadline is late, so lost too.

use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use crate::compiled::flow::template::Value;
use crate::compiled::flow::{Deliveries, FrameRule, IdSource, Matcher, RuleAction};
use crate::compiled::shard::Shard;
use crate::compiled::Plan;
use crate::metrics::{Counter, ErrorClass, MetricId};
use crate::runtime::checks::{self, matches};
use crate::runtime::eval::{Answered, Scope, World};
use crate::runtime::frame_json;
use crate::runtime::message_id::parse_message_id;
use crate::runtime::received::{Arrival, Received};
use crate::runtime::User;
use crate::swarm::registry::{Issued, Member};

/// A message this user sent and whose ack it waits for.
#[derive(Debug)]
pub(super) struct Outgoing {
    pub started: Duration,
    pub intended: Duration,
    pub recipient: Option<Arc<Member>>,
}

/// What a delivered message was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Delivered {
    /// Its id is not one of ours (not `sender-number-time`): a protocol error.
    Unreadable,
    /// Its id reads as one of ours but names a message no user of the run numbered (why): a
    /// protocol error, and nothing is kept of it.
    Forged(&'static str),
    /// This user's own message, echoed back (a room's timeline holds the sender's messages
    /// too): not a delivery.
    Own,
    /// A message of a user of another shard (a room the target fans out to every shard's
    /// users): sent on another clock, never timed here nor counted (docs/distributed.md).
    OtherShard,
    Duplicate,
    /// First receipt; `intended` is when its sender meant to send it.
    New {
        intended: Duration,
        reordered: bool,
    },
}

/// Hashes a message's sequence number for the map of unacked messages: one multiplication
/// (Fibonacci hashing) instead of SipHash, whose protection against chosen keys buys nothing
/// for numbers the user assigned itself, on every tracked message's send and ack.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct SeqHash(u64);

impl std::hash::Hasher for SeqHash {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0 ^ n).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

/// A user's messages: those sent and not yet acked, and those received.
#[derive(Debug, Default)]
pub(super) struct Messages {
    unacked: HashMap<u32, Outgoing, BuildHasherDefault<SeqHash>>,
    /// When the last tracked message went out (the wait for its ack counts from there).
    pub last_sent: Duration,
    pub received: Received,
}

impl Messages {
    pub fn new(received: Received) -> Messages {
        Messages {
            received,
            ..Messages::default()
        }
    }

    /// Message `seq` went out: its ack is awaited.
    pub fn sent(&mut self, seq: u32, out: Outgoing) {
        self.last_sent = out.started;
        self.unacked.insert(seq, out);
    }

    pub fn awaits_acks(&self) -> bool {
        !self.unacked.is_empty()
    }

    /// An ack for `id`: the message it acks, if it is one this user still waits for.
    pub fn acked(&mut self, id: &str) -> Option<Outgoing> {
        let (_, seq, _) = parse_message_id(id)?;
        self.unacked.remove(&seq)
    }

    /// A rejection of `id`: the message it refuses, if this user still waited for it.
    pub fn rejected(&mut self, id: Option<&str>) -> Option<Outgoing> {
        let (_, seq, _) = parse_message_id(id?)?;
        self.unacked.remove(&seq)
    }

    /// A message delivered to user `me` of `shard` at `now`, `issued` the message ids this
    /// shard's users numbered.
    pub fn delivered(
        &mut self,
        me: u64,
        id: &str,
        (shard, issued): (Shard, &Issued),
        now: Duration,
    ) -> Delivered {
        let Some((sender, seq, intended)) = parse_message_id(id) else {
            return Delivered::Unreadable;
        };
        if sender == me {
            return Delivered::Own;
        }
        if !shard.owns(sender) {
            return Delivered::OtherShard;
        }
        if let Some(why) = issued.never(sender, seq) {
            return Delivered::Forged(why);
        }
        if intended > now {
            return Delivered::Forged("its send time is after its delivery");
        }
        match self.received.record(sender, seq) {
            Arrival::Duplicate => Delivered::Duplicate,
            Arrival::New { reordered } => Delivered::New {
                intended,
                reordered,
            },
        }
    }

    /// Forgets every message still awaiting its ack (the socket closed): how many there were.
    pub fn drop_unacked(&mut self) -> usize {
        std::mem::take(&mut self.unacked).len()
    }
}

/// The longest part of a target's id quoted in an error example.
const ID_QUOTED_AT_MOST: usize = 64;

/// A delivered id as an error example quotes it: the target's text, so in backquotes, bounded
/// (an ellipsis says it was cut) and with control characters replaced, as a close reason is.
fn quoted_id(id: &str) -> String {
    let (text, cut) = crate::clients::quote::target_text(id, ID_QUOTED_AT_MOST);
    format!("`{text}{}`", if cut { "…" } else { "" })
}

/// From when on (an intended send time) a message's delivery deadline falls after the run's
/// planned end, the drain's end: an undelivered message sent then is pending, not lost. `None`
/// without a deadline (every message has until the end of the drain).
pub(super) fn unexpired_from(plan: &Plan) -> Option<Duration> {
    let deadline = plan.delivery_deadline?;
    let end = plan.duration() + crate::swarm::STOP_SLACK + plan.drain;
    Some(end.saturating_sub(deadline))
}

/// Every message id a response's body delivers, in the body's order.
pub(super) fn delivered_ids(
    d: &Deliveries,
    text: &str,
    json: Option<&serde_json::Value>,
    scope: &mut Scope,
    w: &World<'_>,
) -> Vec<String> {
    let key = |scope: &mut Scope, e: &_| scope.eval(e, w).to_text();
    let ids_in = |scope: &mut Scope, v: &serde_json::Value| -> Vec<String> {
        match &d.ids {
            IdSource::Json(path) => path
                .select(v, |e| key(scope, e))
                .into_iter()
                .map(|v| Value::from_json(v).to_text())
                .collect(),
            IdSource::Regex(_) => Vec::new(),
        }
    };
    match (&d.each, &d.ids, json) {
        (None, IdSource::Regex(re), _) => re
            .captures_iter(text)
            .filter_map(|c| c.get(1).or_else(|| c.get(0)))
            .map(|m| m.as_str().to_string())
            .collect(),
        (None, IdSource::Json(_), Some(json)) => ids_in(scope, json),
        (Some(each), _, Some(json)) => {
            let mut out = Vec::new();
            for element in each.select(json, |e| key(scope, e)) {
                let wanted = d
                    .filter
                    .iter()
                    .all(|(path, want)| checks::selects(path, want, element, scope, w));
                if wanted {
                    out.extend(ids_in(scope, element));
                }
            }
            out
        }
        // A body that is not JSON delivers nothing a JSON path can find.
        (_, _, None) => Vec::new(),
    }
}

/// The message id a rule reads from a frame: a JSON path's first value, or a regex's first
/// group (its whole match without one). Borrowed from the frame when it is text there (a JSON
/// string, a regex match): reading a tracked frame's id copies nothing.
pub(super) fn extract_id<'t>(
    src: &IdSource,
    text: &'t str,
    json: Option<&'t serde_json::Value>,
    scope: &mut Scope,
    w: &World<'_>,
) -> Option<Cow<'t, str>> {
    match src {
        IdSource::Json(path) => match path.first(json?, |e| scope.eval(e, w).to_text())? {
            serde_json::Value::String(s) => Some(Cow::Borrowed(s.as_str())),
            v => Some(Cow::Owned(Value::from_json(v).to_text())),
        },
        IdSource::Regex(re) => {
            let caps = re.captures(text)?;
            caps.get(1)
                .or_else(|| caps.get(0))
                .map(|m| Cow::Borrowed(m.as_str()))
        }
    }
}

/// What a rule's reply reads of the frame it answers: the named groups of the rule's match
/// regex, and (when the reply reads a path of it, `reads`) the frame's JSON.
fn answered(m: &Matcher, text: &str, json: &Option<serde_json::Value>, reads: bool) -> Answered {
    let groups = m.regex.as_ref().and_then(|re| {
        let caps = re.captures(text)?;
        let named = re.capture_names().flatten();
        Some(
            named
                .filter_map(|n| Some((n.to_string(), caps.name(n)?.as_str().to_string())))
                .collect(),
        )
    });
    Answered {
        json: if reads { json.clone() } else { None },
        groups: groups.unwrap_or_default(),
    }
}

impl User<'_> {
    /// Handles a frame no `expect` is waiting for: the first rule that matches acts on it.
    pub(super) async fn background(&mut self, text: &str) {
        let Some(socket) = &self.socket else { return };
        // Parsing is the costly part of a frame: only when a rule looks into the JSON, and only
        // the members the rules read.
        let json = match &socket.json_keys {
            None => None,
            Some(keys) => frame_json::parse(text, keys.as_deref(), &self.ctx.scratch.frame),
        };
        self.apply_rules(text, &json, false).await;
        frame_json::recycle(json, &self.ctx.scratch.frame);
    }

    /// A frame an awaiting step took (its `expect` matched): the socket's rules still see it
    /// for what tracks messages — an ack, a delivery, a rejection — so correlation and awaited
    /// replies combine (an echo awaited by its `send` step still acks the message it carries).
    /// The rule's other actions (reply, capture, count) are the background's handling of the
    /// frame, which the step took over. `json` is the frame as the step parsed it, if it did.
    pub(super) async fn track_taken(&mut self, text: &str, json: Option<serde_json::Value>) {
        let Some(socket) = &self.socket else { return };
        let tracks = |r: &FrameRule| r.actions.iter().any(RuleAction::tracks);
        if !socket.rules().iter().any(tracks) {
            frame_json::recycle(json, &self.ctx.scratch.frame);
            return;
        }
        let json = match (json, &socket.json_keys) {
            (Some(json), _) => Some(json),
            (None, None) => None,
            (None, Some(keys)) => frame_json::parse(text, keys.as_deref(), &self.ctx.scratch.frame),
        };
        self.apply_rules(text, &json, true).await;
        frame_json::recycle(json, &self.ctx.scratch.frame);
    }

    /// The first rule that matches the frame acts on it (with `tracking_only`, only its ack,
    /// delivery and rejection actions), its actions in order, each reply going out before the
    /// next action.
    async fn apply_rules(
        &mut self,
        text: &str,
        json: &Option<serde_json::Value>,
        tracking_only: bool,
    ) {
        let rule = {
            let Some(socket) = &self.socket else { return };
            let rules: &[FrameRule] = socket.rules();
            let w = self.world();
            rules
                .iter()
                .find(|rule| matches(&rule.matcher, text, json.as_ref(), &mut self.scope, &w))
        };
        let Some(rule) = rule else { return };
        let Some((next, reply)) = self.act(rule, 0, text, json, tracking_only) else {
            return;
        };
        // Boxed: a send's state (its timeout, the link's delay) is large and lives only while a
        // reply goes out; inline, it would size the future of every listening user, replying
        // or not.
        Box::pin(self.replies(rule, next, reply, text, json, tracking_only)).await;
    }

    /// Sends `reply`, then carries out the rule's actions from the `from`-th on, sending each
    /// further reply in its turn.
    async fn replies(
        &mut self,
        rule: &FrameRule,
        mut from: usize,
        mut reply: crate::clients::connection::Frame,
        text: &str,
        json: &Option<serde_json::Value>,
        tracking_only: bool,
    ) {
        loop {
            self.send_reply(reply).await;
            match self.act(rule, from, text, json, tracking_only) {
                Some((next, r)) => (from, reply) = (next, r),
                None => return,
            }
        }
    }

    /// Carries out `rule`'s actions from the `from`-th on, up to its next reply: that reply,
    /// rendered, and where to go on after it is sent.
    fn act(
        &mut self,
        rule: &FrameRule,
        from: usize,
        text: &str,
        json: &Option<serde_json::Value>,
        tracking_only: bool,
    ) -> Option<(usize, crate::clients::connection::Frame)> {
        let w = self.world();
        for (i, action) in rule.actions.iter().enumerate().skip(from) {
            if tracking_only && !action.tracks() {
                continue;
            }
            let mut id = |src: &IdSource| extract_id(src, text, json.as_ref(), &mut self.scope, &w);
            match action {
                RuleAction::Delivered(src) => {
                    if let Some(id) = id(src) {
                        self.record_delivered(&id);
                    }
                }
                RuleAction::Acked(src) => {
                    if let Some(id) = id(src) {
                        self.record_acked(&id);
                    }
                }
                RuleAction::Rejected(src) => {
                    let id = id(src);
                    if let Some(out) = self.messages.rejected(id.as_deref()) {
                        // Refused: its recipient is not to receive it.
                        if let Some(peer) = &out.recipient {
                            self.unexpect(peer, out.intended);
                        }
                        self.ctx.record_error(
                            self.region,
                            MetricId::MESSAGE_ACK,
                            ErrorClass::Protocol,
                            "the target rejected the message",
                        );
                    }
                }
                RuleAction::Count(i) => self.ctx.record_in(self.region, |r| r.count(*i)),
                RuleAction::Capture(captures) => {
                    checks::capture(captures, None, text, json.as_ref(), &mut self.scope, &w);
                }
                RuleAction::Reply { frame, json: reads } => {
                    let w = self.world();
                    self.scope.frame = Some(Box::new(answered(&rule.matcher, text, json, *reads)));
                    let frame = self.scope.render_frame(frame, &w);
                    self.scope.frame = None;
                    self.trace_frame("frame_out", &frame);
                    return Some((i + 1, frame));
                }
            }
        }
        None
    }

    /// A rule's reply on its way out: through the region's network, then fed to the socket, to
    /// be written with the replies to the frames read with this one (`User::flush_replies`).
    async fn send_reply(&mut self, frame: crate::clients::connection::Frame) {
        self.link.one_way().await;
        if let Some(s) = self.socket.as_mut() {
            if s.conn.feed(frame).await.is_ok() {
                s.held = true;
                self.count_frame(true);
            }
        }
    }

    /// A tracked message went out at `started` (meant for `intended`) to the step's peer: it is
    /// counted, its recipient now expects it, and with `awaits_ack` its ack is awaited.
    pub(super) fn record_sent(
        &mut self,
        seq: u32,
        intended: Duration,
        started: Duration,
        awaits_ack: bool,
    ) {
        self.ctx
            .record_in(self.region, |r| r.add(Counter::MessagesSent, 1));
        let recipient = self.scope.step.peer.clone();
        if let Some(peer) = &recipient {
            peer.expected.fetch_add(1, Ordering::Relaxed);
            if unexpired_from(self.ctx.plan()).is_some_and(|from| intended >= from) {
                peer.expected_unexpired.fetch_add(1, Ordering::Relaxed);
            }
        }
        if awaits_ack {
            self.messages.sent(
                seq,
                Outgoing {
                    started,
                    intended,
                    recipient,
                },
            );
        }
    }

    /// A message the target refused: its recipient no longer expects it.
    fn unexpect(&self, peer: &Member, intended: Duration) {
        let dec = |a: &std::sync::atomic::AtomicU64| {
            let _ = a.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
        };
        dec(&peer.expected);
        if unexpired_from(self.ctx.plan()).is_some_and(|from| intended >= from) {
            dec(&peer.expected_unexpired);
        }
    }

    /// Records each message an HTTP response delivered to this user.
    pub(super) fn record_deliveries(
        &mut self,
        d: &Deliveries,
        text: &str,
        json: Option<&serde_json::Value>,
    ) {
        let w = self.world();
        for id in delivered_ids(d, text, json, &mut self.scope, &w) {
            self.record_delivered(&id);
        }
    }

    fn record_delivered(&mut self, id: &str) {
        let ctx = self.ctx;
        let now = ctx.now();
        let ours = (ctx.plan().shard, &ctx.shared.registry.issued);
        let delivered = self.messages.delivered(self.scope.index, id, ours, now);
        let (intended, reordered) = match delivered {
            Delivered::Own | Delivered::OtherShard => return,
            Delivered::Unreadable | Delivered::Forged(_) => {
                let why = match delivered {
                    Delivered::Forged(why) => why,
                    _ => "it does not read as sender-number-time",
                };
                let reason = format!(
                    "delivered id {} is not one of inrush's: {why}",
                    quoted_id(id)
                );
                ctx.record_error(
                    self.region,
                    MetricId::MESSAGE_DELIVERY,
                    ErrorClass::Protocol,
                    &reason,
                );
                return;
            }
            Delivered::Duplicate => {
                ctx.record_in(self.region, |r| r.add(Counter::MessagesDuplicated, 1));
                return;
            }
            Delivered::New {
                intended,
                reordered,
            } => (intended, reordered),
        };
        let plan = ctx.plan();
        if let Some(m) = &self.member {
            m.received.fetch_add(1, Ordering::Relaxed);
            if unexpired_from(plan).is_some_and(|from| intended >= from) {
                m.received_unexpired.fetch_add(1, Ordering::Relaxed);
            }
        }
        let latency = now.saturating_sub(intended);
        // After its deadline a message counts as lost (late), but its latency is still recorded:
        // the slowest deliveries are the ones a reader must see.
        let late = plan.delivery_deadline.is_some_and(|d| latency > d);
        ctx.record_in(self.region, |r| {
            r.value(MetricId::MESSAGE_DELIVERY, latency);
            r.add(
                if late {
                    Counter::MessagesLate
                } else {
                    Counter::MessagesDelivered
                },
                1,
            );
            if reordered {
                r.add(Counter::MessagesReordered, 1);
            }
        });
    }

    /// An ack of one of this user's messages (a frame rule's, or an HTTP response's).
    pub(super) fn record_acked(&mut self, id: &str) {
        let ctx = self.ctx;
        if let Some(out) = self.messages.acked(id) {
            let now = ctx.now();
            ctx.record_in(self.region, |r| {
                r.ok(MetricId::MESSAGE_ACK, out.intended, out.started, now);
                r.add(Counter::MessagesAcked, 1);
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::eval::tests::{scope, TestWorld};
    use crate::runtime::message_id::message_id;

    fn out(started_ms: u64) -> Outgoing {
        Outgoing {
            started: Duration::from_millis(started_ms),
            intended: Duration::from_millis(started_ms - 1),
            recipient: None,
        }
    }

    #[test]
    fn an_ack_removes_the_message_once_and_returns_its_times() {
        let mut m = Messages::default();
        assert!(!m.awaits_acks());
        m.sent(0, out(10));
        m.sent(1, out(20));
        assert_eq!(m.last_sent, Duration::from_millis(20));
        assert!(m.awaits_acks());
        let acked = m.acked(&message_id(3, 1, Duration::ZERO)).expect("awaited");
        assert_eq!(acked.started, Duration::from_millis(20));
        assert_eq!(acked.intended, Duration::from_millis(19));
        assert!(m.acked("3-1-0").is_none(), "a second ack is not counted");
        assert!(m.acked("garbage").is_none());
        assert!(m.acked("3-9-0").is_none(), "never sent");
        assert!(m.awaits_acks());
        assert!(m.acked("3-0-0").is_some());
        assert!(!m.awaits_acks());
    }

    #[test]
    fn a_rejection_counts_only_for_an_awaited_message() {
        let mut m = Messages::default();
        m.sent(5, out(10));
        assert!(m.rejected(None).is_none());
        assert!(m.rejected(Some("nonsense")).is_none());
        assert!(m.rejected(Some("3-6-0")).is_none());
        assert!(m.rejected(Some("3-5-0")).is_some());
        assert!(m.rejected(Some("3-5-0")).is_none(), "already settled");
        assert!(
            m.acked("3-5-0").is_none(),
            "a rejected message is not acked later"
        );
    }

    /// Ids user 9 numbered up to message 2, read a second on.
    fn issued() -> (Issued, Duration) {
        let issued = Issued::default();
        issued.numbered(9, 2);
        (issued, Duration::from_secs(1))
    }

    #[test]
    fn deliveries_are_new_duplicate_reordered_or_unreadable() {
        let mut m = Messages::default();
        let at = Duration::from_millis(3);
        let id = |seq| message_id(9, seq, at);
        let (issued, now) = issued();
        assert_eq!(
            m.delivered(1, &id(1), (Shard::WHOLE, &issued), now),
            Delivered::New {
                intended: at,
                reordered: false
            }
        );
        assert_eq!(
            m.delivered(1, &id(0), (Shard::WHOLE, &issued), now),
            Delivered::New {
                intended: at,
                reordered: true
            }
        );
        assert_eq!(
            m.delivered(1, &id(1), (Shard::WHOLE, &issued), now),
            Delivered::Duplicate
        );
        assert_eq!(
            m.delivered(1, "9-x", (Shard::WHOLE, &issued), now),
            Delivered::Unreadable
        );
        assert_eq!(
            m.delivered(9, &id(2), (Shard::WHOLE, &issued), now),
            Delivered::Own,
            "an echo of one's own"
        );
        // What was received is kept for a later visit: duplicates stay detectable.
        let mut later = Messages::new(std::mem::take(&mut m.received));
        assert_eq!(
            later.delivered(1, &id(0), (Shard::WHOLE, &issued), now),
            Delivered::Duplicate
        );
    }

    #[test]
    fn ids_no_user_numbered_are_forged_and_leave_nothing_behind() {
        let mut m = Messages::default();
        let (issued, now) = issued();
        let at = Duration::from_millis(3);
        // A sender no user of the run is, a number its sender never reached, a send time
        // after the delivery: none is a delivery.
        for id in [
            message_id(999_999, 0, at),
            message_id(9, 3, at),
            message_id(9, 0, now + Duration::from_micros(1)),
        ] {
            assert!(
                matches!(
                    m.delivered(1, &id, (Shard::WHOLE, &issued), now),
                    Delivered::Forged(_)
                ),
                "{id}"
            );
        }
        assert!(m.received.is_empty(), "nothing kept of a forged id");
        assert_eq!(
            m.delivered(1, &message_id(9, 2, at), (Shard::WHOLE, &issued), now),
            Delivered::New {
                intended: at,
                reordered: false
            }
        );
    }

    #[test]
    fn a_message_of_another_shards_user_is_neither_a_delivery_nor_forged() {
        let mut m = Messages::default();
        // Shard 1 of 4 owns users 1, 5, 9, …; user 9 numbered messages up to 2 here.
        let shard = Shard { index: 1, count: 4 };
        let (issued, now) = issued();
        let at = Duration::from_millis(3);
        // User 10 is shard 2's: its numbers are not in this shard's bounds, and its send
        // time is on another machine's clock.
        for id in [message_id(10, 7, at), message_id(10, 0, now * 2)] {
            assert_eq!(
                m.delivered(5, &id, (shard, &issued), now),
                Delivered::OtherShard
            );
        }
        assert!(m.received.is_empty(), "nothing kept of it");
        assert!(matches!(
            m.delivered(5, &message_id(13, 0, at), (shard, &issued), now),
            Delivered::Forged(_)
        ));
        assert!(matches!(
            m.delivered(5, &message_id(9, 1, at), (shard, &issued), now),
            Delivered::New { .. }
        ));
    }

    #[test]
    fn a_targets_id_is_quoted_bounded_and_without_control_characters() {
        assert_eq!(quoted_id("bogus-1"), "`bogus-1`");
        assert_eq!(quoted_id("a\x1b]0;x\x07b\r\n"), "`a ]0;x b  `");
        let long = quoted_id(&"é".repeat(100));
        assert_eq!(long, format!("`{}…`", "é".repeat(32)));
    }

    #[test]
    fn a_close_turns_every_awaited_message_into_one_count() {
        let mut m = Messages::default();
        for seq in 0..3 {
            m.sent(seq, out(10));
        }
        assert!(m.acked("1-1-0").is_some());
        assert_eq!(m.drop_unacked(), 2);
        assert_eq!(m.drop_unacked(), 0);
        assert!(!m.awaits_acks());
    }

    #[test]
    fn ids_come_from_a_json_path_or_a_regex_group() {
        let tw = TestWorld::new();
        let w = tw.world(Duration::ZERO);
        let mut s = scope(1);
        let re = |p: &str| IdSource::Regex(regex::Regex::new(p).expect("valid regex"));
        let text = "ack id=1-2-3 ok";
        assert_eq!(
            extract_id(&re(r"id=(\S+)"), text, None, &mut s, &w).as_deref(),
            Some("1-2-3")
        );
        assert_eq!(
            extract_id(&re(r"\d+-\d+-\d+"), text, None, &mut s, &w).as_deref(),
            Some("1-2-3"),
            "the whole match without a group"
        );
        assert_eq!(extract_id(&re("nope"), text, None, &mut s, &w), None);
    }
}
