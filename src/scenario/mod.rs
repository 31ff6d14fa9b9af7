//! Scenario files as users write them (TOML), and validation that reports every problem with its
//! file, line and column before any traffic is sent. `compiled/` turns a valid scenario into the
//! executable form.

pub mod flow;
mod hints;
pub mod retry;

use std::ops::Range;
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use crate::error::{line_column, ScenarioErrors, ScenarioIssue};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioFile {
    pub name: Spanned<String>,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub seed: Option<Spanned<i64>>,
    pub target: Spanned<TargetSection>,
    pub load: LoadSection,
    #[serde(default)]
    pub user: UserSection,
    #[serde(default)]
    pub run: RunSection,
    /// Pass/fail gates: `"verify.p99" = "< 800ms"`, or with options
    /// `"messages.lost" = { check = "== 0", abort_on_fail = true, grace = "10s" }`.
    #[serde(default)]
    pub thresholds: indexmap::IndexMap<String, Spanned<ThresholdSpec>>,
    /// User flows written in the scenario language (docs/scenario-language.md).
    #[serde(default)]
    pub flows: indexmap::IndexMap<String, Spanned<crate::scenario::flow::FlowSpec>>,
    /// Which share of arriving users runs which flow.
    #[serde(default)]
    pub cohorts: Vec<Spanned<crate::scenario::flow::CohortSpec>>,
    /// CSV files whose rows users take (`{{ feed.<name>.<column> }}`).
    #[serde(default)]
    pub feeders: indexmap::IndexMap<String, Spanned<FeederSpec>>,
    /// Where users are: named shares of the users with client-side network conditions.
    #[serde(default)]
    pub regions: Vec<Spanned<RegionSpec>>,
    /// What `inrush find-capacity` searches with: its SLOs and bounds (docs/capacity.md).
    #[serde(default)]
    pub capacity: Option<CapacitySection>,
}

/// `[capacity]`: `thresholds = { "verify.p99" = "< 1s" }`, `from = 40`, `max = 320`,
/// `precision = "10%"`, `step_duration = "20s"`, `warmup = "10s"`, `metric = "surge"`; each
/// optional.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapacitySection {
    #[serde(default)]
    pub thresholds: indexmap::IndexMap<String, Spanned<ThresholdSpec>>,
    pub from: Option<Spanned<f64>>,
    pub max: Option<Spanned<f64>>,
    /// `"10%"` or `0.1`.
    pub precision: Option<Spanned<NumberOrText>>,
    pub step_duration: Option<Spanned<String>>,
    pub warmup: Option<Spanned<String>>,
    /// `"arrivals"` (default) or the name of a phase to scale.
    pub metric: Option<Spanned<String>>,
}

/// A value written either as a number or as text (`0.1` or `"10%"`).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum NumberOrText {
    Number(f64),
    Text(String),
}

/// `{ name = "americas", share = 0.3, latency = "90ms", jitter = "20ms" }`: a share of the users
/// whose every connect, send and receive is delayed as if they were that far away.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegionSpec {
    pub name: Spanned<String>,
    pub share: Spanned<f64>,
    /// Added one-way delay (default none).
    #[serde(default)]
    pub latency: Option<Spanned<String>>,
    /// Spread of each one-way draw: uniform within latency ± jitter (default none).
    #[serde(default)]
    pub jitter: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeederSpec {
    /// The CSV file (with a header row), relative to the scenario file.
    pub file: String,
    /// `sequential` (default: users take rows in arrival order, wrapping) or `random`.
    #[serde(default)]
    pub pick: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum ThresholdSpec {
    Check(String),
    Full(ThresholdOptions),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThresholdOptions {
    pub check: String,
    #[serde(default)]
    pub abort_on_fail: bool,
    /// How long into the run an `abort_on_fail` threshold is not yet enforced.
    #[serde(default)]
    pub grace: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetSection {
    /// The built-in reference messenger, started in-process, with its rehearsal knobs.
    pub builtin: Option<Spanned<toml::Table>>,
    /// A base URL such as `http://127.0.0.1:8080` or `https://staging.example.com/api`.
    pub url: Option<Spanned<String>>,
    /// For an `https://` target: a PEM file of the CA certificates to trust instead of the
    /// system's (relative to the scenario file).
    pub ca: Option<Spanned<String>>,
    /// A client certificate (PEM) for mutual TLS, with its `key`.
    pub cert: Option<Spanned<String>>,
    /// The client certificate's private key (PEM).
    pub key: Option<Spanned<String>>,
    /// Accept any server certificate (reported as unverified).
    pub insecure: Option<Spanned<bool>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoadSection {
    #[serde(default)]
    pub arrivals: Option<Spanned<String>>,
    #[serde(default)]
    pub phases: Option<Spanned<Vec<Spanned<PhaseSpec>>>>,
    /// A recorded rate curve replayed instead of phases.
    #[serde(default)]
    pub curve: Option<Spanned<CurveSpec>>,
    /// Cap on concurrently active users; arrivals beyond it are dropped and counted.
    #[serde(default)]
    pub max_users: Option<Spanned<i64>>,
    /// Cap on timed operations in flight (requests, connects, awaited sends); an arrival that
    /// comes while it is reached is dropped and counted.
    #[serde(default)]
    pub max_inflight: Option<Spanned<i64>>,
}

/// `curve = { file = "signups.csv", time_scale = 60, rate_scale = 0.0001 }`: a CSV of `time,rate`
/// (seconds, users per second) replayed `time_scale` times faster with `rate_scale` of the users.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CurveSpec {
    pub file: String,
    #[serde(default)]
    pub time_scale: Option<f64>,
    #[serde(default)]
    pub rate_scale: Option<f64>,
    /// The phase name in reports (default `curve`).
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhaseSpec {
    pub name: Spanned<String>,
    pub duration: Spanned<String>,
    /// Arrival rate of new users per second (at the start of the phase when `ramp_to` is set).
    pub rate: Option<Spanned<f64>>,
    /// Ramp linearly to this rate by the end of the phase (from `rate`, or the previous phase's
    /// final rate).
    pub ramp_to: Option<Spanned<f64>>,
    /// Grow exponentially to this rate by the end of the phase (from `rate`, or the previous
    /// phase's final rate): the same factor every second, as word of an outage spreads.
    pub grow_to: Option<Spanned<f64>>,
    /// A closed phase: keep exactly this many users active, a new one starting as soon as one
    /// finishes its flow (instead of an arrival rate).
    pub users: Option<Spanned<i64>>,
    /// For a closed phase: spread the first starts evenly over this long (default 1 s).
    pub ramp: Option<Spanned<String>>,
}

/// What every simulated user does: sign up, discover contacts, open a socket, chat, leave.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UserSection {
    /// Already registered phones put in the contact upload (they must all be found).
    pub contacts_known: Spanned<i64>,
    /// Unknown phones added to the contact upload (they must not be found).
    pub contacts_unknown: Spanned<i64>,
    /// Chat messages each user sends once online.
    pub messages: Spanned<i64>,
    /// Pause before each message.
    pub think: Spanned<DistSpec>,
    /// How long a user stays connected after its last message.
    pub stay_online: Spanned<DistSpec>,
    /// Country code and prefix of generated phone numbers, e.g. `+1555`.
    pub phone_prefix: Spanned<String>,
    /// Probability that a user who left comes back later (and logs in instead of signing up).
    pub returning: Spanned<f64>,
    /// How long a returning user stays offline before coming back.
    pub away: Spanned<DistSpec>,
}

impl Default for UserSection {
    fn default() -> Self {
        let span = 0..0;
        UserSection {
            contacts_known: Spanned::new(span.clone(), 10),
            contacts_unknown: Spanned::new(span.clone(), 5),
            messages: Spanned::new(span.clone(), 5),
            think: Spanned::new(span.clone(), DistSpec::Exponential("1s".into())),
            stay_online: Spanned::new(span.clone(), DistSpec::Constant("10s".into())),
            phone_prefix: Spanned::new(span.clone(), "+1555".into()),
            returning: Spanned::new(span.clone(), 0.0),
            away: Spanned::new(span, DistSpec::Exponential("30s".into())),
        }
    }
}

/// A distribution of durations: `{ constant = "1s" }`, `{ uniform = ["1s", "3s"] }`,
/// `{ exponential = "2s" }` (mean), `{ normal = ["2s", "500ms"] }` (mean, standard deviation;
/// negative draws become zero).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum DistSpec {
    Constant(String),
    Uniform([String; 2]),
    Exponential(String),
    Normal([String; 2]),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RunSection {
    /// Timeout of every single operation.
    pub timeout: Spanned<String>,
    /// After the last phase: how long users stay connected so in-flight messages can arrive.
    pub drain: Spanned<String>,
    /// Retries of every HTTP request and WebSocket connect (default: none), e.g.
    /// `{ attempts = 3, on = [429, 503, "connect"], backoff = "200ms", max_backoff = "10s" }`.
    pub retry: Option<Spanned<crate::scenario::retry::RetrySpec>>,
    /// Reopening a socket the server or the network dropped (default: none), e.g.
    /// `{ attempts = 5, backoff = "500ms", max_backoff = "10s" }`.
    pub reconnect: Option<Spanned<crate::scenario::retry::ReconnectSpec>>,
    /// Local addresses to spread users' connections over, e.g. `["127.0.0.2", "127.0.0.3"]` or
    /// `["127.0.0.2-127.0.0.9"]`: one address's ephemeral ports bound its connections to one
    /// target address.
    pub source_addresses: Option<Spanned<Vec<Spanned<String>>>>,
    /// How long after its intended send a message may take to arrive (default: until the end of
    /// the drain); one later is lost, one whose deadline is after the run's end is pending.
    pub delivery_deadline: Option<Spanned<String>>,
    /// How late an arrival may still start (default: until the schedule's end); one that could
    /// not start by then is dropped as `behind_schedule`.
    pub max_start_lag: Option<Spanned<String>>,
    /// The generator's own limits, beyond which its measurement is inconclusive, e.g.
    /// `{ schedule_lag_p99 = "5ms", loop_lag_p99 = "5ms", behind_schedule = "0%" }`.
    pub overload: Option<Spanned<OverloadSpec>>,
    /// How users' HTTP requests get connections: `"per_user"` (default: each user opens and
    /// keeps its own) or `{ pool = N }` (all users share at most N kept-alive connections).
    pub connections: Option<Spanned<ConnectionsSpec>>,
}

/// `[run] connections`: `"per_user"` or `{ pool = N }`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum ConnectionsSpec {
    Named(String),
    Pool(PoolSpec),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolSpec {
    pub pool: i64,
}

/// `[run] overload`: each key optional, its default documented in the README.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OverloadSpec {
    pub schedule_lag_p99: Option<Spanned<String>>,
    pub loop_lag_p99: Option<Spanned<String>>,
    pub behind_schedule: Option<Spanned<String>>,
}

impl Default for RunSection {
    fn default() -> Self {
        RunSection {
            timeout: Spanned::new(0..0, "10s".into()),
            drain: Spanned::new(0..0, "3s".into()),
            retry: None,
            reconnect: None,
            source_addresses: None,
            delivery_deadline: None,
            max_start_lag: None,
            overload: None,
            connections: None,
        }
    }
}

/// Collects problems with their positions in one file.
pub struct Problems<'a> {
    file: &'a Path,
    text: &'a str,
    issues: Vec<ScenarioIssue>,
}

impl<'a> Problems<'a> {
    pub fn new(file: &'a Path, text: &'a str) -> Self {
        Problems {
            file,
            text,
            issues: Vec::new(),
        }
    }

    pub fn add(&mut self, span: Range<usize>, message: impl Into<String>) {
        let (line, column) = line_column(self.text, span.start);
        self.issues.push(ScenarioIssue {
            file: self.file.to_path_buf(),
            line,
            column,
            message: message.into(),
        });
    }

    /// Where `needle` starts inside `span` of the file (the span's start if it is not there),
    /// to point into a value that TOML gave no position of its own.
    pub fn locate(&self, span: &Range<usize>, needle: &str) -> usize {
        self.text
            .get(span.clone())
            .and_then(|t| t.find(needle))
            .map_or(span.start, |i| span.start + i)
    }

    pub fn into_result(self) -> Result<(), ScenarioErrors> {
        if self.issues.is_empty() {
            Ok(())
        } else {
            Err(ScenarioErrors(self.issues))
        }
    }
}

/// Parses the TOML syntax and shape; semantic checks happen when compiling the plan.
pub fn parse(file: &Path, text: &str) -> Result<ScenarioFile, ScenarioErrors> {
    toml::from_str::<ScenarioFile>(text).map_err(|e| {
        let mut problems = Problems::new(file, text);
        let message = e.message().trim().replace('\n', " ");
        let span = e.span().unwrap_or(0..0);
        let message = hints::explain(&message, text, span.start);
        problems.add(span, message);
        ScenarioErrors(problems.issues)
    })
}
