//! The compiled form of a flow: what the engine executes. Every template, path and regex is
//! parsed once here; variables are slots in a per-user array, resolved by name at load time.

pub mod builtin;
pub mod compile;
pub mod feeder;
pub mod jsonpath;
pub mod template;
pub mod xmlpath;

use std::time::Duration;

use regex::Regex;

use crate::compiled::flow::jsonpath::JsonPath;
use crate::compiled::flow::template::{Template, Value};
use crate::compiled::flow::xmlpath::XmlPath;
use crate::compiled::retry::{Override, ReconnectPolicy, RetryPolicy};
use crate::compiled::Dist;
use crate::metrics::MetricId;

/// A compiled expression inside `{{ }}`.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Lit(Value),
    /// A captured variable, by slot.
    Var(usize),
    /// The innermost loop's (or `repeat`'s) iteration, from 0.
    Seq,
    UserIndex,
    UserPhone,
    /// A UUID fixed for the user (from the seed and its index).
    UserUuid,
    /// A new correlation id for a message (the same within one step).
    MsgId,
    Uuid,
    RandomInt(Box<Expr>, Box<Expr>),
    RandomString(Box<Expr>),
    TimestampMs,
    Base64(Box<Expr>),
    /// A published variable of a random online user (the same peer within one step).
    SwarmOnline(String),
    /// A published variable of a random online user of a cohort (by index).
    SwarmOnlineIn(usize, String),
    /// A published variable of `n` random registered users, as a list.
    SwarmSample(Box<Expr>, String),
    /// A variable of the users picked by the step's last `swarm.sample`.
    SwarmSampled(String),
    /// `n` phone numbers nobody in the swarm has.
    FakePhones(Box<Expr>),
    /// A named group of the match regex of the rule that answers a frame (`frame.id`).
    FrameGroup(String),
    /// A path of keys (or array indexes) into that frame's JSON (`frame.from.name`).
    FramePath(Vec<String>),
    /// A value taken from the environment (`env.NAME`): a secret, evaluated as its value, kept
    /// apart from literals so that a trace can mask what is derived from it.
    Secret {
        name: String,
        value: Value,
    },
    /// A column of the user's row of a feeder.
    Feed {
        feeder: usize,
        column: usize,
    },
    Concat(Vec<Expr>),
}

pub type Text = Template<Expr>;

/// A JSON body with templated leaves.
#[derive(Debug, Clone, PartialEq)]
pub enum JsonTemplate {
    Const(serde_json::Value),
    Text(Text),
    /// A leaf that is one whole expression keeps the expression's type.
    Expr(Expr),
    Array(Vec<JsonTemplate>),
    Object(Vec<(String, JsonTemplate)>),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    None,
    Json(JsonTemplate),
    Text(Text),
    Form(Vec<(String, Text)>),
}

/// What an expectation compares a found value with: a constant, or a template rendered for the
/// user when the comparison is made (`"{{ awaited_id }}"`) and compared as text.
#[derive(Debug, Clone)]
pub enum Want {
    Const(serde_json::Value),
    Text(Text),
}

#[derive(Debug, Clone)]
pub enum Check {
    Status(Vec<u16>),
    JsonEquals(JsonPath<Expr>, Want),
    JsonExists(JsonPath<Expr>),
    /// The value is among the selected values, or an element of a selected array (a template
    /// compared as text, as in `JsonEquals`).
    JsonContains(JsonPath<Expr>, Want),
    /// The body or frame contains the text (a template rendered for the user).
    Contains(Want),
    Regex(Regex),
    /// The XML path selects a value equal to the given one.
    XmlEquals(XmlPath, Want),
}

#[derive(Debug, Clone)]
pub enum Capture {
    Json(JsonPath<Expr>),
    Regex(Regex, usize),
    Header(String),
    Status,
}

#[derive(Debug, Clone)]
pub struct ContainsAll {
    pub path: JsonPath<Expr>,
    pub values: Text,
    pub values_expr: Option<Expr>,
}

/// What a response or frame must not be (`fail_on`): any condition that holds fails the step
/// at once.
#[derive(Debug, Clone, Default)]
pub struct FailOn {
    pub regex: Option<Regex>,
    pub contains: Option<Want>,
    pub json: Vec<(JsonPath<Expr>, Want)>,
    pub xml: Vec<(XmlPath, Want)>,
}

/// What a response or frame must satisfy.
#[derive(Debug, Clone, Default)]
pub struct Expect {
    pub checks: Vec<Check>,
    /// Each check's index in the catalog's checks (`checks` summary), in the order of
    /// `checks`; a check without one (built by hand in a test) is evaluated but not counted.
    pub ids: Vec<usize>,
    pub contains_all: Option<ContainsAll>,
    /// For frames: how long to wait for a match.
    pub within: Option<Duration>,
}

#[derive(Debug, Clone)]
pub struct Http {
    pub method: http::Method,
    pub target: Text,
    pub query: Vec<(String, Text)>,
    pub headers: Vec<(String, Text)>,
    pub body: Body,
    /// `ack = "response"`: the response acknowledges the message this request sends.
    pub ack: bool,
    /// The messages the response delivers to the user (a long-poll sync).
    pub deliveries: Option<Deliveries>,
    /// `long_poll`: how long the server holds this request when it has nothing new for the
    /// user. Only the dry run reads it (a held poll's duration); the run just waits.
    pub long_poll: Option<Duration>,
}

/// Where a response's body holds the messages it delivers: every id `ids` finds, in each
/// element `each` selects (the whole body without it) that `filter` holds for.
#[derive(Debug, Clone)]
pub struct Deliveries {
    pub each: Option<JsonPath<Expr>>,
    pub filter: Vec<(JsonPath<Expr>, Want)>,
    pub ids: IdSource,
}

impl Deliveries {
    /// Whether finding the ids needs the body parsed as JSON.
    pub fn needs_json(&self) -> bool {
        self.each.is_some() || matches!(self.ids, IdSource::Json(_))
    }
}

#[derive(Debug, Clone)]
pub enum Frame {
    Text(Text),
    Json(JsonTemplate),
    Binary(Text),
}

/// Which frames a background rule or an `expect` applies to.
#[derive(Debug, Clone, Default)]
pub struct Matcher {
    pub json: Vec<(JsonPath<Expr>, Want)>,
    pub xml: Vec<(XmlPath, Want)>,
    pub regex: Option<Regex>,
    /// An awaited frame's other content checks (`contains`, `exists`, `json_contains`): a frame
    /// failing one is not the awaited one either, and goes to the background rules.
    pub content: Vec<Check>,
}

#[derive(Debug, Clone)]
pub enum IdSource {
    Json(JsonPath<Expr>),
    Regex(Regex),
}

#[derive(Debug, Clone)]
pub enum RuleAction {
    Delivered(IdSource),
    Acked(IdSource),
    Rejected(IdSource),
    /// Answer the frame; `json` when the reply reads a JSON path of the frame (`frame.id`).
    Reply {
        frame: Frame,
        json: bool,
    },
    /// Add one to a named count (the catalog's counter index).
    Count(usize),
    /// Capture values of the frame into variables (slot, how).
    Capture(Vec<(usize, Capture)>),
}

#[derive(Debug, Clone)]
pub struct FrameRule {
    pub matcher: Matcher,
    pub actions: Vec<RuleAction>,
}

impl RuleAction {
    /// Whether the action tracks messages (an ack, a delivery, a rejection): such actions apply
    /// also to a frame an awaiting step took.
    pub fn tracks(&self) -> bool {
        matches!(
            self,
            RuleAction::Delivered(_) | RuleAction::Acked(_) | RuleAction::Rejected(_)
        )
    }
}

impl FrameRule {
    /// Whether applying this rule needs the frame parsed as JSON.
    pub fn needs_json(&self) -> bool {
        !self.matcher.json.is_empty()
            || self.actions.iter().any(|a| {
                matches!(
                    a,
                    RuleAction::Delivered(IdSource::Json(_))
                        | RuleAction::Acked(IdSource::Json(_))
                        | RuleAction::Rejected(IdSource::Json(_))
                        | RuleAction::Reply { json: true, .. }
                ) || matches!(a, RuleAction::Capture(c) if c.iter().any(|(_, c)| matches!(c, Capture::Json(_))))
            })
    }
}

#[derive(Debug, Clone)]
pub enum Until {
    Equals(usize, Want),
    NotEquals(usize, Want),
    Exists(usize, bool),
}

#[derive(Debug, Clone)]
pub enum LoopKind {
    Times(u64),
    For(Duration, u64),
    Until(Until, u64),
}

/// How much of a frame's JSON a socket's rules read: `None` when they read none of it, else the
/// top-level keys they read (`Some(None)`: any).
pub type JsonKeys = Option<Option<Vec<String>>>;

#[derive(Debug, Clone)]
pub enum Action {
    Http(Box<Http>),
    WsConnect {
        target: Text,
        headers: Vec<(String, Text)>,
        subprotocols: Vec<String>,
        rules: Vec<FrameRule>,
        /// How much of a frame's JSON the rules read, as the runtime works it out on the first
        /// open and every socket of the step then shares (not a copy per user).
        json_keys: std::sync::OnceLock<JsonKeys>,
    },
    /// Send a frame; with an `expect`, wait for the matching reply.
    Send(Frame),
    /// Wait for a frame that matches the step's `expect`.
    Receive,
    Close,
    Think(Dist),
    StayOnline(Dist),
    Loop {
        kind: LoopKind,
        steps: Vec<Step>,
        /// The user is online for the swarm while the loop runs (`online = true`).
        online: bool,
    },
}

impl Action {
    /// Whether a failed attempt of this action is retried under a retry policy, and counted as
    /// an attempt: requests and connects are; a frame on an open socket is not (an app does not
    /// resend a chat message blindly; a socket found dropped is `reconnect`'s business).
    pub fn retried(&self) -> bool {
        matches!(self, Action::Http(_) | Action::WsConnect { .. })
    }

    /// Whether this action can fail (and so needs a metric to count the failure in): a request,
    /// a connect, a receive, or a send that awaits its reply (`awaits_reply`: the step has an
    /// `expect`).
    pub fn can_fail(&self, awaits_reply: bool) -> bool {
        matches!(
            self,
            Action::Http(_) | Action::WsConnect { .. } | Action::Receive
        ) || matches!(self, Action::Send(_)) && awaits_reply
    }
}

#[derive(Debug, Clone)]
pub struct Step {
    pub metric: Option<MetricId>,
    pub transaction: Option<MetricId>,
    pub action: Action,
    pub think_before: Option<Dist>,
    pub repeat: u64,
    /// Skip the step unless this holds.
    pub when: Option<Until>,
    pub timeout: Duration,
    pub expect: Option<Expect>,
    /// Frame matcher for `send` + `expect` and receive steps.
    pub matcher: Option<Matcher>,
    /// What fails the step at once: a response, or a frame while it waits, that matches.
    pub fail_on: Option<FailOn>,
    pub captures: Vec<(usize, Capture)>,
    /// (name other users see, slot or user.phone)
    pub publish: Vec<(String, Expr)>,
    /// This step's retry policy, or `[run] retry`'s.
    pub retry: Override<RetryPolicy>,
    /// For a `ws` step: how its socket is reopened after a drop, or `[run] reconnect`'s way.
    pub reconnect: Override<ReconnectPolicy>,
    /// The step sends a tracked message: `msg.id` is in its request or frame.
    pub tracked: bool,
    /// An unnamed request outside any transaction is not timed: its failures add to this named
    /// count (`counts.unnamed_errors`).
    pub unnamed_errors: Option<usize>,
}

/// A compiled flow.
#[derive(Debug, Clone)]
pub struct Flow {
    pub name: String,
    pub steps: Vec<Step>,
    /// Number of variable slots a user of this flow needs.
    pub slots: usize,
    /// The variable names of the slots, in slot order (a returning user's variables are carried
    /// into its return flow by name).
    pub vars: Vec<String>,
}

impl Action {
    /// Whether what this action sends (a request, a frame) uses `msg.id`: such a send is a
    /// tracked message.
    pub fn sends_msg_id(&self) -> bool {
        match self {
            Action::Http(h) => {
                text_has_msg_id(&h.target)
                    || h.query.iter().any(|(_, v)| text_has_msg_id(v))
                    || h.headers.iter().any(|(_, v)| text_has_msg_id(v))
                    || match &h.body {
                        Body::None => false,
                        Body::Json(j) => json_has_msg_id(j),
                        Body::Text(t) => text_has_msg_id(t),
                        Body::Form(f) => f.iter().any(|(_, v)| text_has_msg_id(v)),
                    }
            }
            Action::Send(Frame::Text(t) | Frame::Binary(t)) => text_has_msg_id(t),
            Action::Send(Frame::Json(j)) => json_has_msg_id(j),
            _ => false,
        }
    }
}

fn text_has_msg_id(t: &Text) -> bool {
    t.parts.iter().any(|p| match p {
        template::Part::Expr(e) => expr_has_msg_id(e),
        template::Part::Text(_) => false,
    })
}

fn json_has_msg_id(j: &JsonTemplate) -> bool {
    match j {
        JsonTemplate::Const(_) => false,
        JsonTemplate::Text(t) => text_has_msg_id(t),
        JsonTemplate::Expr(e) => expr_has_msg_id(e),
        JsonTemplate::Array(items) => items.iter().any(json_has_msg_id),
        JsonTemplate::Object(fields) => fields.iter().any(|(_, v)| json_has_msg_id(v)),
    }
}

/// Whether a frame's template reads the answered frame's JSON (`frame.<path>`).
pub fn frame_reads_json(f: &Frame) -> bool {
    fn expr(e: &Expr) -> bool {
        match e {
            Expr::FramePath(_) => true,
            Expr::RandomInt(a, b) => expr(a) || expr(b),
            Expr::RandomString(x) | Expr::Base64(x) | Expr::FakePhones(x) => expr(x),
            Expr::SwarmSample(n, _) => expr(n),
            Expr::Concat(parts) => parts.iter().any(expr),
            _ => false,
        }
    }
    fn text(t: &Text) -> bool {
        t.parts.iter().any(|p| match p {
            template::Part::Expr(e) => expr(e),
            template::Part::Text(_) => false,
        })
    }
    fn json(j: &JsonTemplate) -> bool {
        match j {
            JsonTemplate::Const(_) => false,
            JsonTemplate::Text(t) => text(t),
            JsonTemplate::Expr(e) => expr(e),
            JsonTemplate::Array(items) => items.iter().any(json),
            JsonTemplate::Object(fields) => fields.iter().any(|(_, v)| json(v)),
        }
    }
    match f {
        Frame::Text(t) | Frame::Binary(t) => text(t),
        Frame::Json(j) => json(j),
    }
}

/// The name of the first `env.*` secret `e` reads, if any.
pub fn expr_secret(e: &Expr) -> Option<&str> {
    match e {
        Expr::Secret { name, .. } => Some(name),
        Expr::RandomInt(a, b) => expr_secret(a).or_else(|| expr_secret(b)),
        Expr::RandomString(x) | Expr::Base64(x) | Expr::FakePhones(x) => expr_secret(x),
        Expr::SwarmSample(n, _) => expr_secret(n),
        Expr::Concat(parts) => parts.iter().find_map(expr_secret),
        _ => None,
    }
}

fn expr_has_msg_id(e: &Expr) -> bool {
    match e {
        Expr::MsgId => true,
        Expr::RandomInt(a, b) => expr_has_msg_id(a) || expr_has_msg_id(b),
        Expr::RandomString(x) | Expr::Base64(x) | Expr::FakePhones(x) => expr_has_msg_id(x),
        Expr::SwarmSample(n, _) => expr_has_msg_id(n),
        Expr::Concat(parts) => parts.iter().any(expr_has_msg_id),
        _ => false,
    }
}

/// A share of arriving users and the flow they run.
#[derive(Debug, Clone)]
pub struct Cohort {
    pub name: String,
    pub share: f64,
    pub flow: usize,
    /// Whether (and how) users of this cohort come back after leaving.
    pub returns: Option<Returns>,
}

/// Users who finished their flow come back with probability `share` after an `away` time, and
/// run `flow` with their variables kept.
#[derive(Debug, Clone, PartialEq)]
pub struct Returns {
    pub share: f64,
    pub away: crate::compiled::Dist,
    pub flow: usize,
}

#[cfg(test)]
mod tests {
    #[test]
    fn requests_and_connects_are_retried_and_awaited_frames_can_fail() {
        let text = r#"
name = "t"
[target]
builtin = {}
[load]
phases = [ { name = "a", duration = "1s", rate = 1 } ]

[[flows.f.steps]]
name = "get"
http = "GET /x"

[[flows.f.steps]]
name = "ws"
ws = "/ws"

[[flows.f.steps]]
name = "ask"
send = "ping"
expect = { json = { "$.type" = "pong" } }

[[flows.f.steps]]
send = "fire and forget"

[[flows.f.steps]]
think = { constant = "1s" }

[[flows.f.steps]]
close = true
"#;
        let plan = crate::compiled::compile(std::path::Path::new("t.toml"), text, Some(1))
            .expect("valid scenario");
        let rules: Vec<(bool, bool)> = plan.flows.flows[0]
            .steps
            .iter()
            .map(|s| (s.action.retried(), s.action.can_fail(s.expect.is_some())))
            .collect();
        assert_eq!(
            rules,
            [
                (true, true),
                (true, true),
                (false, true),
                (false, false),
                (false, false),
                (false, false),
            ]
        );
    }

    const HEAD: &str = r#"
name = "t"
[target]
builtin = {}
[load]
phases = [ { name = "a", duration = "1s", rate = 1 } ]
"#;

    #[test]
    fn a_send_using_msg_id_anywhere_is_tracked_and_message_keys_compile() {
        let text = format!(
            r#"{HEAD}
[[flows.f.steps]]
name = "by_query"
http = "POST /send"
query = {{ id = "{{{{ msg.id }}}}" }}
ack = "response"

[[flows.f.steps]]
name = "by_json"
http = "POST /send"
json = {{ nested = {{ ids = ["{{{{ 'm-' + msg.id }}}}"] }} }}

[[flows.f.steps]]
name = "sync"
http = "GET /sync"
deliveries = {{ each = "$.events[*]", match = {{ "$.type" = "message" }}, id = "$.id" }}

[[flows.f.steps]]
name = "sync_regex"
http = "GET /sync"
deliveries = "id='([^']+)'"
long_poll = "300ms"

[[flows.f.steps]]
loop = {{ times = 2, online = true, steps = [ {{ name = "poll", http = "GET /poll" }} ] }}

[[flows.f.steps]]
name = "ws"
ws = "/ws"

[[flows.f.steps]]
send = "<m id='{{{{ msg.id }}}}'/>"

[[flows.f.steps]]
send = "<ping/>"
"#
        );
        let plan = crate::compiled::compile(std::path::Path::new("t.toml"), &text, Some(1))
            .expect("valid scenario");
        let steps = &plan.flows.flows[0].steps;
        let tracked: Vec<bool> = steps.iter().map(|s| s.tracked).collect();
        assert_eq!(
            tracked,
            [true, true, false, false, false, false, true, false]
        );
        let super::Action::Http(h) = &steps[0].action else {
            panic!("an http step")
        };
        assert!(h.ack && h.deliveries.is_none());
        let super::Action::Http(h) = &steps[2].action else {
            panic!("an http step")
        };
        let d = h.deliveries.as_ref().expect("deliveries");
        assert!(d.each.is_some() && d.filter.len() == 1 && d.needs_json());
        assert_eq!(h.long_poll, None);
        let super::Action::Http(h) = &steps[3].action else {
            panic!("an http step")
        };
        assert_eq!(h.long_poll, Some(std::time::Duration::from_millis(300)));
        assert!(matches!(
            steps[4].action,
            super::Action::Loop { online: true, .. }
        ));
    }

    #[test]
    fn message_keys_in_the_wrong_place_are_errors_with_their_positions() {
        let text = format!(
            r#"{HEAD}
[[flows.f.steps]]
name = "ws"
ws = "/ws"
ack = "response"

[[flows.f.steps]]
name = "plain"
http = "GET /x"
ack = "response"

[[flows.f.steps]]
name = "odd"
http = "GET /x?id={{{{ msg.id }}}}"
ack = "frame"

[[flows.f.steps]]
name = "w2"
ws = "/ws"
deliveries = "$.id"

[[flows.f.steps]]
name = "sync"
http = "GET /sync"
deliveries = {{ each = "$.events[*]", id = "id=(\\d+)" }}

[[flows.f.steps]]
name = "w3"
ws = "/ws"
long_poll = "30s"

[[flows.f.steps]]
name = "held"
http = "GET /sync"
timeout = "5s"
long_poll = "5s"

[[flows.f.steps]]
name = "quiet"
http = "GET /sync"
long_poll = "0s"
"#
        );
        let errs = crate::compiled::compile(std::path::Path::new("t.toml"), &text, Some(1))
            .expect_err("invalid")
            .0;
        let found: Vec<(usize, &str)> = errs.iter().map(|e| (e.line, e.message.as_str())).collect();
        let expect = [
            (11, "ack applies to `http` steps"),
            (16, "does not use {{ msg.id }}"),
            (21, "acknowledged by its \"response\""),
            (26, "deliveries applies to `http` steps"),
            (31, "a JSON path into each element"),
            (36, "long_poll applies to `http` steps"),
            (42, "not shorter than the step's timeout (5s)"),
            (47, "long_poll must be greater than zero"),
        ];
        assert_eq!(found.len(), expect.len(), "{found:?}");
        for ((line, msg), (want_line, want)) in found.iter().zip(expect) {
            assert!(*line == want_line && msg.contains(want), "{found:?}");
        }
    }
}
