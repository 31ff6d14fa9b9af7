//! Flows as users write them in a scenario file: `[flows.<name>]` with ordered `steps`, and
//! `[[cohorts]]` that say which share of arriving users runs which flow. Positions are kept so
//! that the flow compiler (`compiled::flow::compile`) can say where a step is wrong.

use indexmap::IndexMap;
use serde::Deserialize;
use toml::Spanned;

use crate::scenario::DistSpec;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlowSpec {
    pub steps: Spanned<Vec<Spanned<StepSpec>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CohortSpec {
    pub name: Spanned<String>,
    /// Weight of this cohort among arriving users (shares are normalised).
    pub share: Spanned<f64>,
    pub flow: Spanned<String>,
    /// Users of this cohort who finish their flow may come back later and run another flow
    /// (e.g. a login) with the variables they captured kept.
    #[serde(default)]
    pub returns: Option<Spanned<ReturnsSpec>>,
}

/// `returns = { share = 0.4, after = { exponential = "30s" }, flow = "login" }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReturnsSpec {
    /// Probability that a user who left comes back (0..=1).
    pub share: Spanned<f64>,
    /// Time offline before coming back.
    pub after: Spanned<DistSpec>,
    /// The flow a returning user runs.
    pub flow: Spanned<String>,
}

/// One step. Exactly one of `http`, `ws`, `send`, `expect` (alone: receive), `close`, `think`
/// (alone: pause), `stay_online`, `loop` says what it does; the rest qualify it.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepSpec {
    /// The metric this step records into; steps without a name are not timed.
    pub name: Option<Spanned<String>>,
    /// `"POST /v1/register"`: method and path (or absolute URL), templated.
    pub http: Option<Spanned<String>>,
    /// Open the user's WebSocket: a path below the target (`ws://`, or `wss://` below an
    /// `https://` target), templated.
    pub ws: Option<Spanned<String>>,
    /// Send a text frame: a string (any text, e.g. XML) or a table (sent as JSON).
    pub send: Option<Spanned<toml::Value>>,
    /// Close the user's WebSocket.
    pub close: Option<Spanned<bool>>,
    /// Pause: alone it is a step, on another step it is the pause before it.
    pub think: Option<Spanned<DistSpec>>,
    /// Stay connected this long, answering background frames.
    pub stay_online: Option<Spanned<DistSpec>>,
    /// A block of steps run several times.
    #[serde(rename = "loop")]
    pub loop_: Option<Spanned<LoopSpec>>,
    /// Run this step N times (`seq` counts 0, 1, …).
    pub repeat: Option<Spanned<i64>>,
    /// Run this step only when a condition on a variable holds, e.g.
    /// `when = { var = "role", equals = "admin" }`; otherwise skip it.
    pub when: Option<Spanned<ConditionSpec>>,
    /// Send the `send` text as a binary frame.
    pub binary: Option<Spanned<bool>>,

    // HTTP details
    pub headers: Option<Spanned<IndexMap<String, String>>>,
    pub query: Option<Spanned<IndexMap<String, String>>>,
    /// A JSON body whose string values may be templates; `"{{ expr }}"` alone keeps the
    /// expression's type (a list stays an array, a number a number).
    pub json: Option<Spanned<toml::Value>>,
    /// A raw text body, templated.
    pub body: Option<Spanned<String>>,
    /// A form body (`application/x-www-form-urlencoded`), values templated.
    pub form: Option<Spanned<IndexMap<String, String>>>,
    /// WebSocket subprotocols to offer.
    pub subprotocols: Option<Spanned<Vec<String>>>,
    pub timeout: Option<Spanned<String>>,

    /// What the answer must be: for HTTP a check of the response, for `send` or alone the frame
    /// to wait for (other frames are skipped and go to the background rules).
    pub expect: Option<Spanned<ExpectSpec>>,
    /// What the answer must not be: a response, or a frame while the step waits, that matches
    /// fails the step at once with the matching text as its error.
    pub fail_on: Option<Spanned<FailOnSpec>>,
    /// Values taken from the answer into the user's variables.
    pub capture: Option<Spanned<IndexMap<String, Spanned<CaptureSpec>>>>,
    /// Variables other users may pick from the swarm once this step succeeded.
    pub publish: Option<Spanned<Vec<Spanned<String>>>>,
    /// For an `http` step that sends a message (`msg.id` in it): `ack = "response"` makes its
    /// response the message's acknowledgement (`message_ack`, `messages.acked`).
    pub ack: Option<Spanned<String>>,
    /// For an `http` step: the messages its response delivers to this user (a long-poll sync),
    /// each read for its id: `"$.events[*].id"`, a regex, or `{ each, id, match }`.
    pub deliveries: Option<Spanned<DeliveriesSpec>>,
    /// For an `http` step: a long-poll the server holds up to this long when it has nothing new
    /// for the user (`"30s"`). `inrush plan` takes it as the request's duration (see
    /// docs/scenario-language.md); the run checks it is shorter than the step's timeout.
    pub long_poll: Option<Spanned<String>>,
    /// Background rules while the socket opened by this `ws` step is open.
    pub on_frame: Option<Spanned<Vec<Spanned<FrameRuleSpec>>>>,
    /// Time this step together with the neighbouring steps of the same transaction name.
    pub transaction: Option<Spanned<String>>,
    /// Retries of this `http` or `ws` step: a table like `[run] retry`'s, or `false`.
    pub retry: Option<Spanned<crate::scenario::retry::RetrySetting>>,
    /// Reopening this `ws` step's socket after a drop: a table like `[run] reconnect`'s, or `false`.
    pub reconnect: Option<Spanned<crate::scenario::retry::ReconnectSetting>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoopSpec {
    pub steps: Spanned<Vec<Spanned<StepSpec>>>,
    /// Run the block this many times.
    pub times: Option<Spanned<i64>>,
    /// Run the block until this long has passed.
    #[serde(rename = "for")]
    pub for_: Option<Spanned<String>>,
    /// Run the block until this condition holds after an iteration (e.g. a captured value).
    pub until: Option<Spanned<ConditionSpec>>,
    /// Upper bound on iterations for `until` and `for` loops.
    pub max: Option<Spanned<i64>>,
    /// The user is online for the swarm registry while the loop runs (a polling client has no
    /// socket), and the loop goes on polling through the run's drain.
    pub online: Option<Spanned<bool>>,
}

/// Where a response's body holds the messages it delivers.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum DeliveriesSpec {
    /// A JSON path selecting every id (`"$.events[*].msg_id"`), or a regex whose every match
    /// (its first group) is one.
    Ids(String),
    /// `{ each = "$.events[*]", id = "$.content.msg_id", match = { "$.type" = "message" } }`:
    /// every element the `each` path selects that `match` holds for is a message; `id` (a path
    /// into the element) gives its id.
    Each(EachDeliverySpec),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EachDeliverySpec {
    pub each: String,
    pub id: String,
    #[serde(rename = "match", default)]
    pub match_: IndexMap<String, toml::Value>,
}

/// `{ var = "status", equals = "delivered" }`, or `exists`, or `not_equals`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConditionSpec {
    pub var: String,
    pub equals: Option<toml::Value>,
    pub not_equals: Option<toml::Value>,
    pub exists: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectSpec {
    /// Accepted HTTP statuses (default 2xx).
    pub status: Option<StatusSpec>,
    /// JSON values that must equal the given ones: `{ "$.type" = "ack" }`.
    pub json: Option<IndexMap<String, toml::Value>>,
    /// JSON paths that must select something.
    pub exists: Option<Vec<String>>,
    /// JSON values that must be among what a path selects (or in the array it selects):
    /// `{ "$.found[*].phone" = "+15550001" }`.
    pub json_contains: Option<IndexMap<String, toml::Value>>,
    /// Text the body or frame must contain.
    pub contains: Option<String>,
    /// A regular expression the body or frame must match.
    pub regex: Option<String>,
    /// XML values that must equal the given ones: `{ "/iq/@type" = "result" }`.
    pub xml: Option<IndexMap<String, toml::Value>>,
    /// For frames: how long to wait for a matching one (default: the step's timeout).
    pub within: Option<String>,
    /// Every value must be among those the path selects; the ones that are not are counted as
    /// missing (not an error): `{ path = "$.found[*].phone", values = "{{ swarm.sampled.phone }}" }`.
    pub contains_all: Option<ContainsAllSpec>,
}

/// A negative expectation: any of its conditions that holds fails the step.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailOnSpec {
    pub regex: Option<String>,
    pub contains: Option<String>,
    /// JSON values: `{ "$.type" = "error" }`.
    pub json: Option<IndexMap<String, toml::Value>>,
    /// XML values: `{ "/iq/@type" = "error" }`.
    pub xml: Option<IndexMap<String, toml::Value>>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum StatusSpec {
    One(u16),
    Many(Vec<u16>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContainsAllSpec {
    pub path: String,
    pub values: String,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum CaptureSpec {
    /// `"$.path"`: a JSON path.
    Path(String),
    Detailed(CaptureDetail),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaptureDetail {
    pub json: Option<String>,
    pub regex: Option<String>,
    /// The regex group to take (default 1, or 0 when the regex has no group).
    pub group: Option<usize>,
    pub header: Option<String>,
    /// Capture the HTTP status code.
    pub status: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FrameRuleSpec {
    #[serde(rename = "match")]
    pub match_: MatchSpec,
    /// The frame is a delivered chat message; this path (or regex) gives its correlation id.
    pub delivered: Option<String>,
    /// The frame acknowledges one of the user's messages; this path (or regex) gives its id.
    pub acked: Option<String>,
    /// The frame rejects one of the user's messages (a `message_ack` error of class protocol).
    pub rejected: Option<String>,
    /// Answer the frame with this text (templated; tables are sent as JSON).
    pub reply: Option<toml::Value>,
    /// Count matching frames under this name (reported under `counts`).
    pub count: Option<String>,
    /// Capture values of the frame into the user's variables (as a step's `capture`), before
    /// the rule's other actions: its `reply` and later steps can use them.
    pub capture: Option<IndexMap<String, Spanned<CaptureSpec>>>,
}

/// Which frames a rule applies to: JSON predicates `{ "$.type" = "message" }` and/or a regex.
#[derive(Debug, Deserialize)]
pub struct MatchSpec {
    #[serde(default)]
    pub regex: Option<String>,
    /// XML values: `{ "/iq/@type" = "get" }`.
    #[serde(default)]
    pub xml: Option<IndexMap<String, toml::Value>>,
    #[serde(flatten)]
    pub json: IndexMap<String, toml::Value>,
}
