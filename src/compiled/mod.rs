//! The executable form of a scenario: every value parsed, checked and typed once, before any
//! traffic. Everything downstream (schedule, swarm, reports) reads a `Plan`, never the file.

pub mod flow;
pub mod load;
pub mod region;
pub mod retry;

use std::path::{Path, PathBuf};
use std::time::Duration;

use rand::RngExt;
use serde::Deserialize;
use toml::Spanned;

use crate::duration::parse_duration;
use crate::error::{Error, ScenarioErrors};
use crate::gate::{self, Threshold};
use crate::metrics::Catalog;
use crate::scenario::{self, DistSpec, Problems, ScenarioFile};
use crate::target::Knobs;

pub use load::{Closed, Curve, Load, Phase, Ramp, Shape};

#[derive(Debug, Clone)]
pub struct Plan {
    pub name: String,
    pub description: String,
    pub source: PathBuf,
    pub seed: u64,
    pub target: Target,
    pub arrivals: Arrivals,
    pub phases: Vec<Phase>,
    pub max_users: Option<u64>,
    /// Cap on timed operations in flight across the run.
    pub max_inflight: Option<u64>,
    pub user: UserPlan,
    pub timeout: Duration,
    pub drain: Duration,
    /// `[run] retry`: how every HTTP request and socket connect is retried (none by default).
    pub retry: Option<crate::compiled::retry::RetryPolicy>,
    /// `[run] reconnect`: how a dropped socket is reopened (not at all by default).
    pub reconnect: Option<crate::compiled::retry::ReconnectPolicy>,
    /// Local addresses users' connections are bound to (user i uses `i mod n`); empty: the
    /// system picks, as usual.
    pub source_addresses: Vec<std::net::IpAddr>,
    pub thresholds: Vec<Threshold>,
    /// Every metric of the run: the built-in ones and one per step.
    pub catalog: Catalog,
    /// The flows users run: the scenario's own, or the built-in signup-and-chat flow configured
    /// by `[user]`.
    pub flows: std::sync::Arc<crate::compiled::flow::compile::FlowSet>,
    /// Where users are and the network conditions they see (empty: none declared).
    pub regions: crate::compiled::region::Regions,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// Start the built-in messenger in-process with these knobs.
    Builtin(Knobs),
    /// An already running service.
    Url(BaseUrl),
}

/// `http://host:port/prefix` — where the API lives. Plain HTTP and WebSocket (`ws://`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseUrl {
    pub host: String,
    pub port: u16,
    /// Path prefix without a trailing slash, e.g. `` or `/api`.
    pub prefix: String,
}

impl BaseUrl {
    pub fn parse(text: &str) -> Result<BaseUrl, String> {
        let rest = if let Some(rest) = text.strip_prefix("http://") {
            rest
        } else if text.starts_with("https://") {
            return Err(
                "https:// targets are not supported yet (no TLS in the client); use http:// or a TLS-terminating proxy"
                    .into(),
            );
        } else {
            return Err(format!("`{text}` is not an http:// URL"));
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        if authority.is_empty() {
            return Err(format!("`{text}` has no host"));
        }
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => {
                let port = p
                    .parse::<u16>()
                    .map_err(|_| format!("`{p}` is not a port number"))?;
                (h.to_string(), port)
            }
            _ => (authority.to_string(), 80),
        };
        if host.is_empty() {
            return Err(format!("`{text}` has no host"));
        }
        Ok(BaseUrl {
            host,
            port,
            prefix: path.trim_end_matches('/').to_string(),
        })
    }

    /// The authority for Host headers: `host:port`.
    pub fn authority(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

impl std::fmt::Display for BaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "http://{}:{}{}", self.host, self.port, self.prefix)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrivals {
    /// Exponential inter-arrival times: independent users, as in a real surge.
    Poisson,
    /// Evenly spaced arrivals: a deterministic rate.
    Uniform,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Dist {
    Constant(Duration),
    Uniform(Duration, Duration),
    Exponential(Duration),
    /// Mean and standard deviation; draws below zero are zero.
    Normal(Duration, Duration),
}

impl Dist {
    pub fn sample<R: rand::Rng + ?Sized>(&self, rng: &mut R) -> Duration {
        match *self {
            Dist::Constant(d) => d,
            Dist::Uniform(lo, hi) if hi > lo => {
                Duration::from_secs_f64(rng.random_range(lo.as_secs_f64()..hi.as_secs_f64()))
            }
            Dist::Uniform(lo, _) => lo,
            Dist::Exponential(mean) => {
                // Inverse transform; 1 - u lies in (0, 1] so the logarithm is finite.
                let u: f64 = rng.random();
                Duration::from_secs_f64(-mean.as_secs_f64() * (1.0 - u).ln())
            }
            Dist::Normal(mean, sd) => {
                // Box–Muller; 1 - u1 lies in (0, 1] so the logarithm is finite.
                let (u1, u2): (f64, f64) = (rng.random(), rng.random());
                let z = (-2.0 * (1.0 - u1).ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
                let v = mean.as_secs_f64() + sd.as_secs_f64() * z;
                Duration::from_secs_f64(v.clamp(0.0, 1e9))
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct UserPlan {
    pub contacts_known: usize,
    pub contacts_unknown: usize,
    pub messages: u32,
    pub think: Dist,
    pub stay_online: Dist,
    pub phone_prefix: String,
    /// Probability that a user who left comes back (logs in, reconnects, chats again).
    pub returning: f64,
    /// Time offline before a returning user comes back.
    pub away: Dist,
}

impl Plan {
    /// Total length of the load profile (without the drain).
    pub fn duration(&self) -> Duration {
        self.phases.last().map_or(Duration::ZERO, Phase::end)
    }

    /// The names a threshold may be scoped to (`name:subject`): every phase, then every region.
    pub fn scopes(&self) -> Vec<String> {
        let phases = self.phases.iter().map(|p| p.name.clone());
        phases
            .chain(self.regions.names().map(String::from))
            .collect()
    }

    /// The phase that contains `t` (the last phase for any later time).
    pub fn phase_at(&self, t: Duration) -> usize {
        self.phases
            .iter()
            .position(|p| t < p.end())
            .unwrap_or(self.phases.len().saturating_sub(1))
    }
}

/// A short human description of a valid plan, printed by `inrush validate`.
pub fn describe(plan: &Plan) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let target = match &plan.target {
        Target::Builtin(_) => "built-in messenger (started in-process)".to_string(),
        Target::Url(u) => u.to_string(),
    };
    let _ = writeln!(out, "{}: valid", plan.source.display());
    let _ = writeln!(
        out,
        "scenario {} · seed {} · target {target}",
        plan.name, plan.seed
    );
    let mut total = 0.0;
    for p in &plan.phases {
        total += p.mass();
        let (rate, volume) = p.describe();
        let _ = writeln!(
            out,
            "  phase {:<12} {:>7.1}s  {rate:<24} {volume}",
            p.name,
            p.duration.as_secs_f64()
        );
    }
    let _ = writeln!(
        out,
        "  total {:.1}s + drain {:.1}s · ~{total:.0} users ({:?} arrivals){}",
        plan.duration().as_secs_f64(),
        plan.drain.as_secs_f64(),
        plan.arrivals,
        if plan.phases.iter().any(|p| p.closed().is_some()) {
            " plus the closed phases' looping users"
        } else {
            ""
        }
    );
    let caps: Vec<String> = [
        ("max_users", plan.max_users),
        ("max_inflight", plan.max_inflight),
    ]
    .iter()
    .filter_map(|(n, c)| c.map(|c| format!("{n} {c}")))
    .collect();
    if !caps.is_empty() {
        let _ = writeln!(
            out,
            "  caps: {} (arrivals beyond them are dropped and counted)",
            caps.join(", ")
        );
    }
    for r in &plan.regions.list {
        let _ = writeln!(
            out,
            "  region {:<11} {:>6.1}%  +{:?} ± {:?} one way  ~{:.0} users",
            r.name,
            r.share * 100.0,
            r.latency,
            r.jitter,
            total * r.share
        );
    }
    let set = &plan.flows;
    {
        let total: f64 = set.cohorts.iter().map(|c| c.share).sum();
        for c in &set.cohorts {
            let flow = &set.flows[c.flow];
            let _ = writeln!(
                out,
                "  cohort {} ({:.0}%) runs flow {} ({} steps)",
                c.name,
                100.0 * c.share / total,
                flow.name,
                flow.steps.len()
            );
            if let Some(r) = &c.returns {
                let _ = writeln!(
                    out,
                    "    {:.0}% of those who leave come back later and run flow {}",
                    100.0 * r.share,
                    set.flows.get(r.flow).map_or("?", |f| f.name.as_str())
                );
            }
        }
    }
    if let Some(r) = &plan.retry {
        let _ = writeln!(out, "  retry: {}", r.describe());
    }
    if let Some(r) = &plan.reconnect {
        let _ = writeln!(out, "  reconnect: {}", r.describe());
    }
    if !plan.source_addresses.is_empty() {
        let list: Vec<String> = plan
            .source_addresses
            .iter()
            .map(|a| a.to_string())
            .collect();
        let _ = writeln!(out, "  source addresses: {}", list.join(", "));
    }
    let metrics: Vec<&str> = plan.catalog.reported().map(|(_, n)| n).collect();
    let _ = writeln!(out, "  metrics: {}", metrics.join(", "));
    out
}

/// Reads, parses and compiles a scenario file.
pub fn load(path: &Path, seed_override: Option<u64>) -> Result<Plan, Error> {
    let text =
        std::fs::read_to_string(path).map_err(|e| Error::io("cannot read scenario", path, e))?;
    compile(path, &text, seed_override).map_err(Error::from)
}

/// Parses and checks a scenario; returns every problem found, each with its position.
pub fn compile(
    path: &Path,
    text: &str,
    seed_override: Option<u64>,
) -> Result<Plan, ScenarioErrors> {
    let file: ScenarioFile = scenario::parse(path, text)?;
    let mut problems = Problems::new(path, text);

    let name = file.name.get_ref().trim().to_string();
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
    {
        problems.add(
            file.name.span(),
            "name must be non-empty and use only letters, digits, `-`, `_` and `.` (it names the run directory)",
        );
    }

    let seed = match (&seed_override, &file.seed) {
        (Some(seed), _) => *seed,
        (None, Some(seed)) if *seed.get_ref() >= 0 => *seed.get_ref() as u64,
        (None, Some(seed)) => {
            problems.add(seed.span(), "seed must be a non-negative integer");
            0
        }
        // No seed anywhere: draw one, and the summary records it so the run can be repeated.
        (None, None) => rand::rng().random_range(0..1u64 << 53),
    };

    let target = compile_target(&file.target, &mut problems);
    let arrivals = match file
        .load
        .arrivals
        .as_ref()
        .map(|a| (a.get_ref().as_str(), a.span()))
    {
        None | Some(("poisson", _)) => Arrivals::Poisson,
        Some(("uniform", _)) => Arrivals::Uniform,
        Some((other, span)) => {
            problems.add(
                span,
                format!("arrivals `{other}` is unknown: expected \"poisson\" or \"uniform\""),
            );
            Arrivals::Poisson
        }
    };
    let phases = match (&file.load.phases, &file.load.curve) {
        (Some(phases), None) => load::compile_phases(phases, &mut problems),
        (None, Some(curve)) => load::curve::compile(path, curve, &mut problems),
        _ => {
            problems.add(
                0..0,
                "[load] needs exactly one of `phases = [...]` or `curve = { file = ... }`",
            );
            Vec::new()
        }
    };
    let cap = |cap: &Option<Spanned<i64>>, what: &str, problems: &mut Problems| match cap {
        Some(c) if *c.get_ref() < 1 => {
            problems.add(c.span(), format!("{what} must be at least 1"));
            None
        }
        Some(c) => Some(*c.get_ref() as u64),
        None => None,
    };
    let max_users = cap(&file.load.max_users, "max_users", &mut problems);
    let max_inflight = cap(&file.load.max_inflight, "max_inflight", &mut problems);
    if let (Some(limit), Some(specs)) = (max_users, &file.load.phases) {
        // A closed phase keeps its users by construction; a cap below them could never hold.
        for (spec, p) in specs.get_ref().iter().zip(&phases) {
            if p.closed().is_some_and(|c| c.users > limit) {
                if let Some(u) = &spec.get_ref().users {
                    problems.add(
                        u.span(),
                        format!("a closed phase's users must not exceed max_users ({limit})"),
                    );
                }
            }
        }
    }
    let timeout = positive_duration(&file.run.timeout, "timeout", &mut problems);
    let drain = duration(&file.run.drain, &mut problems);
    let retry = file
        .run
        .retry
        .as_ref()
        .map(|r| crate::compiled::retry::compile_retry(r.get_ref(), r.span(), &mut problems));
    let reconnect =
        file.run.reconnect.as_ref().map(|r| {
            crate::compiled::retry::compile_reconnect(r.get_ref(), r.span(), &mut problems)
        });
    let source_addresses = compile_sources(&file.run.source_addresses, &mut problems);
    let user = compile_user(&file.user, &mut problems);
    let flows = if file.flows.is_empty() {
        builtin_flows(&user, timeout, &file.user.messages, &mut problems)
    } else {
        let feeders = load_feeders(path, &file.feeders, &mut problems);
        crate::compiled::flow::compile::compile(
            &file.flows,
            &file.cohorts,
            feeders,
            timeout,
            &mut problems,
        )
    };
    let flows = std::sync::Arc::new(flows);
    let catalog = flows.catalog.clone();
    let phase_names: Vec<String> = phases.iter().map(|p| p.name.clone()).collect();
    let regions = crate::compiled::region::compile(&file.regions, &phase_names, &mut problems);
    let scopes: Vec<String> = phase_names
        .iter()
        .cloned()
        .chain(regions.names().map(String::from))
        .collect();
    let thresholds = file
        .thresholds
        .iter()
        .filter_map(|(subject, spec)| {
            compile_threshold(subject, spec, &scopes, &catalog, &mut problems)
        })
        .collect();

    problems.into_result()?;
    Ok(Plan {
        name,
        description: file.description.trim().to_string(),
        source: path.to_path_buf(),
        seed,
        target,
        arrivals,
        phases,
        max_users,
        max_inflight,
        user,
        timeout,
        drain,
        retry,
        reconnect,
        source_addresses,
        thresholds,
        catalog,
        flows,
        regions,
    })
}

/// Most source addresses a scenario may list (after expanding ranges).
const MAX_SOURCES: usize = 1024;

/// `[run] source_addresses`: each entry an address or an IPv4 range, each one an address of
/// this machine (checked by binding it, port 0 — nothing is sent), so a typo fails before any
/// traffic instead of as thousands of connect errors.
fn compile_sources(
    spec: &Option<Spanned<Vec<Spanned<String>>>>,
    problems: &mut Problems,
) -> Vec<std::net::IpAddr> {
    let Some(list) = spec else {
        return Vec::new();
    };
    let mut out: Vec<std::net::IpAddr> = Vec::new();
    for entry in list.get_ref() {
        let text = entry.get_ref();
        match crate::os_limits::parse_addresses(text, MAX_SOURCES) {
            Ok(ips) => {
                for ip in ips {
                    if let Err(e) = crate::os_limits::is_local(ip) {
                        problems.add(entry.span(), e);
                        break;
                    }
                    if !out.contains(&ip) {
                        out.push(ip);
                    }
                }
            }
            Err(e) => problems.add(entry.span(), e),
        }
    }
    if out.len() > MAX_SOURCES {
        problems.add(
            list.span(),
            format!("at most {MAX_SOURCES} source addresses"),
        );
    }
    if list.get_ref().is_empty() {
        problems.add(
            list.span(),
            "source_addresses is empty: leave it out to let the system choose",
        );
    }
    out
}

/// Reads every feeder's CSV file, relative to the scenario file.
fn load_feeders(
    scenario: &Path,
    specs: &indexmap::IndexMap<String, Spanned<scenario::FeederSpec>>,
    problems: &mut Problems,
) -> Vec<crate::compiled::flow::feeder::Feeder> {
    let dir = scenario.parent().unwrap_or(Path::new("."));
    specs
        .iter()
        .filter_map(|(name, spec)| {
            let random = match spec.get_ref().pick.as_deref() {
                None | Some("sequential") => false,
                Some("random") => true,
                Some(other) => {
                    problems.add(
                        spec.span(),
                        format!("pick `{other}` is unknown: expected \"sequential\" or \"random\""),
                    );
                    return None;
                }
            };
            let file = dir.join(&spec.get_ref().file);
            crate::compiled::flow::feeder::Feeder::load(name, &file, random)
                .map_err(|e| problems.add(spec.span(), e))
                .ok()
        })
        .collect()
}

/// The built-in flow: its scenario-language text with `[user]`'s numbers, compiled like any flow.
fn builtin_flows(
    user: &UserPlan,
    timeout: Duration,
    at: &Spanned<i64>,
    problems: &mut Problems,
) -> crate::compiled::flow::compile::FlowSet {
    #[derive(serde::Deserialize)]
    struct Flows {
        flows: indexmap::IndexMap<String, Spanned<crate::scenario::flow::FlowSpec>>,
        #[serde(default)]
        cohorts: Vec<Spanned<crate::scenario::flow::CohortSpec>>,
    }
    let text = crate::compiled::flow::builtin::flow_text(user);
    let file = Path::new("<built-in flow>");
    let mut inner = Problems::new(file, &text);
    let set = match toml::from_str::<Flows>(&text) {
        Ok(f) => crate::compiled::flow::compile::compile(
            &f.flows,
            &f.cohorts,
            Vec::new(),
            timeout,
            &mut inner,
        ),
        Err(e) => {
            inner.add(e.span().unwrap_or(0..0), e.message().to_string());
            let none = indexmap::IndexMap::new();
            crate::compiled::flow::compile::compile(&none, &[], Vec::new(), timeout, &mut inner)
        }
    };
    // The text is generated from checked numbers; a problem here is a bug, reported at [user].
    if let Err(e) = inner.into_result() {
        problems.add(
            at.span(),
            format!("the built-in flow does not compile: {e}"),
        );
    }
    set
}

/// `"subject" = "op value"` (or `{ check = "op value", ... }`) becomes one threshold; an error
/// points into the value string where the expression went wrong.
fn compile_threshold(
    subject: &str,
    spec: &Spanned<scenario::ThresholdSpec>,
    phases: &[String],
    catalog: &Catalog,
    problems: &mut Problems,
) -> Option<Threshold> {
    let (check, abort_on_fail, grace) = match spec.get_ref() {
        scenario::ThresholdSpec::Check(c) => (c.as_str(), false, None),
        scenario::ThresholdSpec::Full(o) => (o.check.as_str(), o.abort_on_fail, o.grace.as_deref()),
    };
    let expr = format!("{subject} {check}");
    let mut t = match gate::parse(&expr, phases, catalog) {
        Ok(t) => t,
        Err(e) => {
            problems.add(spec.span(), format!("threshold `{expr}`: {}", e.message));
            return None;
        }
    };
    t.abort_on_fail = abort_on_fail;
    if let Some(g) = grace {
        match parse_duration(g) {
            Ok(d) => t.grace = d,
            Err(e) => problems.add(spec.span(), format!("threshold grace: {e}")),
        }
    }
    Some(t)
}

fn compile_target(section: &Spanned<scenario::TargetSection>, problems: &mut Problems) -> Target {
    let t = section.get_ref();
    match (&t.builtin, &t.url) {
        (Some(knobs), None) => {
            match Knobs::deserialize(toml::Value::Table(knobs.get_ref().clone())) {
                Ok(k) => {
                    if let Err(e) = k.validate() {
                        problems.add(knobs.span(), format!("builtin target: {e}"));
                    }
                    Target::Builtin(k)
                }
                Err(e) => {
                    problems.add(
                        knobs.span(),
                        format!("builtin target: {}", e.message().trim()),
                    );
                    Target::Builtin(Knobs::default())
                }
            }
        }
        (None, Some(url)) => match BaseUrl::parse(url.get_ref()) {
            Ok(u) => Target::Url(u),
            Err(e) => {
                problems.add(url.span(), e);
                Target::Builtin(Knobs::default())
            }
        },
        _ => {
            problems.add(
                section.span(),
                "target needs exactly one of `builtin = { ... }` or `url = \"http://...\"`",
            );
            Target::Builtin(Knobs::default())
        }
    }
}

fn compile_user(u: &scenario::UserSection, problems: &mut Problems) -> UserPlan {
    let count = |v: &Spanned<i64>, max: i64, what: &str, problems: &mut Problems| {
        let n = *v.get_ref();
        if !(0..=max).contains(&n) {
            problems.add(v.span(), format!("{what} must be between 0 and {max}"));
            0
        } else {
            n
        }
    };
    let contacts_known = count(&u.contacts_known, 1000, "contacts_known", problems) as usize;
    let contacts_unknown = count(&u.contacts_unknown, 1000, "contacts_unknown", problems) as usize;
    if contacts_known + contacts_unknown > 1000 {
        problems.add(
            u.contacts_unknown.span(),
            "contacts_known + contacts_unknown must be at most 1000 (one upload)",
        );
    }
    let messages = count(&u.messages, 1_000_000, "messages", problems) as u32;
    let prefix = u.phone_prefix.get_ref();
    let digits = prefix.len().saturating_sub(1);
    if !prefix.starts_with('+')
        || !prefix[1..].chars().all(|c| c.is_ascii_digit())
        || !(1..=5).contains(&digits)
    {
        problems.add(
            u.phone_prefix.span(),
            "phone_prefix must be `+` followed by 1 to 5 digits, e.g. \"+1555\"",
        );
    }
    UserPlan {
        contacts_known,
        contacts_unknown,
        messages,
        think: dist(&u.think, problems),
        stay_online: dist(&u.stay_online, problems),
        phone_prefix: prefix.clone(),
        returning: {
            let r = *u.returning.get_ref();
            if !(r.is_finite() && (0.0..=1.0).contains(&r)) {
                problems.add(
                    u.returning.span(),
                    "returning is a probability between 0 and 1",
                );
            }
            r.clamp(0.0, 1.0)
        },
        away: dist(&u.away, problems),
    }
}

/// A duration that must be positive; a parse error is reported once, not twice.
pub(crate) fn positive_duration(
    text: &Spanned<String>,
    what: &str,
    problems: &mut Problems,
) -> Duration {
    match parse_duration(text.get_ref()) {
        Ok(d) if d.is_zero() => {
            problems.add(text.span(), format!("{what} must be greater than zero"));
            d
        }
        Ok(d) => d,
        Err(e) => {
            problems.add(text.span(), e);
            Duration::ZERO
        }
    }
}

fn duration(text: &Spanned<String>, problems: &mut Problems) -> Duration {
    parse_duration(text.get_ref()).unwrap_or_else(|e| {
        problems.add(text.span(), e);
        Duration::ZERO
    })
}

pub(crate) fn dist(spec: &Spanned<DistSpec>, problems: &mut Problems) -> Dist {
    let d = |t: &str, problems: &mut Problems| {
        parse_duration(t).unwrap_or_else(|e| {
            problems.add(spec.span(), e);
            Duration::ZERO
        })
    };
    match spec.get_ref() {
        DistSpec::Constant(t) => Dist::Constant(d(t, problems)),
        DistSpec::Exponential(t) => Dist::Exponential(d(t, problems)),
        DistSpec::Normal([mean, sd]) => Dist::Normal(d(mean, problems), d(sd, problems)),
        DistSpec::Uniform([lo, hi]) => {
            let (lo, hi) = (d(lo, problems), d(hi, problems));
            if hi < lo {
                problems.add(
                    spec.span(),
                    "uniform range must be [low, high] with low <= high",
                );
            }
            Dist::Uniform(lo, hi)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The ramp of an open phase (a test failure otherwise).
    fn ramp(p: &Phase) -> Ramp {
        match &p.load {
            Load::Ramp(r) => *r,
            other => panic!("phase {} is not a ramp: {other:?}", p.name),
        }
    }

    fn compile_str(text: &str) -> Result<Plan, ScenarioErrors> {
        compile(Path::new("s.toml"), text, None)
    }

    const MINIMAL: &str = r#"
name = "t"
seed = 7
[target]
url = "http://127.0.0.1:9/api/"
[load]
phases = [ { name = "a", duration = "2s", rate = 10 }, { name = "b", duration = "1s", ramp_to = 20 } ]
"#;

    #[test]
    fn compiles_a_minimal_scenario() {
        let plan = compile_str(MINIMAL).expect("valid");
        assert_eq!(plan.seed, 7);
        assert_eq!(
            plan.target,
            Target::Url(BaseUrl {
                host: "127.0.0.1".into(),
                port: 9,
                prefix: "/api".into()
            })
        );
        assert_eq!(ramp(&plan.phases[1]).from, 10.0);
        assert_eq!(ramp(&plan.phases[1]).to, 20.0);
        assert_eq!(plan.phases[1].start, Duration::from_secs(2));
        assert_eq!(plan.duration(), Duration::from_secs(3));
        assert_eq!(plan.phase_at(Duration::from_millis(2500)), 1);
        assert_eq!(plan.phase_at(Duration::from_secs(99)), 1);
    }

    #[test]
    fn reports_every_problem_with_its_position() {
        let text = "name = \"t\"\n[target]\nurl = \"ftp://x\"\n[load]\narrivals = \"bursty\"\nphases = [ { name = \"a\", duration = \"2 weeks\", rate = -1 } ]\n";
        let errs = compile_str(text).expect_err("invalid").0;
        let at: Vec<(usize, usize)> = errs.iter().map(|e| (e.line, e.column)).collect();
        assert!(at.contains(&(3, 7)), "url position in {errs:?}");
        assert!(at.contains(&(5, 12)), "arrivals position in {errs:?}");
        assert!(errs
            .iter()
            .any(|e| e.line == 6 && e.message.contains("unit")));
        assert!(errs
            .iter()
            .any(|e| e.line == 6 && e.message.contains("rate")));
        assert_eq!(errs.len(), 4, "{errs:?}");
    }

    #[test]
    fn syntax_and_unknown_fields_have_positions() {
        let errs = compile_str("name = \"t\"\nbogus = 1\n")
            .expect_err("invalid")
            .0;
        assert_eq!((errs[0].line, errs[0].column), (2, 1), "{errs:?}");
        assert!(errs[0].message.contains("bogus"), "{errs:?}");
        let errs = compile_str("name = \n").expect_err("invalid").0;
        assert_eq!(errs[0].line, 1, "{errs:?}");
    }

    #[test]
    fn exponential_phases_need_positive_rates() {
        let ok = "name = \"t\"\n[target]\nbuiltin = {}\n[load]\nphases = [ { name = \"a\", duration = \"1s\", rate = 5 }, { name = \"b\", duration = \"9s\", grow_to = 500 } ]\n";
        let plan = compile_str(ok).expect("valid");
        assert_eq!(ramp(&plan.phases[1]).shape, Shape::Exponential);
        assert_eq!(
            (ramp(&plan.phases[1]).from, ramp(&plan.phases[1]).to),
            (5.0, 500.0)
        );
        let bad = ok.replace("rate = 5", "rate = 0");
        let errs = compile_str(&bad).expect_err("from zero").0;
        assert!(errs[0].message.contains("grow_to"), "{errs:?}");
        let both = ok.replace("grow_to = 500", "grow_to = 500, ramp_to = 9");
        assert!(compile_str(&both).is_err());
    }

    #[test]
    fn a_recorded_day_is_compressed_and_scaled() {
        // One hour at 1 000 signups/s, then a second hour ramping to 3 000/s: 3.6 M + 7.2 M
        // recorded users. Played 60× faster at 1/1000 of the users: 2 minutes, 10 800 arrivals.
        let dir = tempfile::tempdir().expect("tmp");
        std::fs::write(
            dir.path().join("day.csv"),
            "time,rate\n3600,1000\n7200,1000\n10800,3000\n",
        )
        .expect("csv");
        let scenario = dir.path().join("s.toml");
        let text = "name = \"t\"\n[target]\nbuiltin = {}\n[load]\ncurve = { file = \"day.csv\", time_scale = 60, rate_scale = 0.001, name = \"day\" }\n";
        let plan = compile(&scenario, text, Some(1)).expect("valid");
        assert_eq!(plan.phases.len(), 1);
        assert_eq!(plan.phases[0].name, "day");
        assert_eq!(plan.duration(), Duration::from_secs(120));
        let expected = plan.phases[0].mass();
        assert!((expected - 10_800.0).abs() < 1e-6, "{expected}");
        let uniform = Plan {
            arrivals: Arrivals::Uniform,
            ..plan
        };
        let n = crate::schedule::arrivals(&uniform).count() as f64;
        assert!((n - 10_800.0).abs() / 10_800.0 < 0.01, "{n}");

        std::fs::write(dir.path().join("day.csv"), "time,rate\n0,1\n10,2\n5,3\n").expect("csv");
        let errs = compile(&scenario, text, Some(1)).expect_err("decreasing").0;
        assert!(
            errs[0].message.contains("day.csv:4: times must increase"),
            "{errs:?}"
        );
        let both = text.replace("[load]\n", "[load]\nphases = []\n");
        assert!(compile(&scenario, &both, Some(1)).is_err());
    }

    #[test]
    fn closed_phases_and_caps_compile() {
        let text = "name = \"t\"\n[target]\nbuiltin = {}\n[load]\nmax_inflight = 8\nphases = [ { name = \"a\", duration = \"2s\", rate = 5 }, { name = \"soak\", duration = \"10s\", users = 200 }, { name = \"b\", duration = \"1s\", ramp_to = 9 } ]\n";
        let plan = compile_str(text).expect("valid");
        assert_eq!(plan.max_inflight, Some(8));
        let soak = &plan.phases[1];
        assert_eq!(
            soak.closed(),
            Some(Closed {
                users: 200,
                ramp: Duration::from_secs(1)
            })
        );
        // A closed phase has no rates at all: it is no ramp.
        assert!(!matches!(soak.load, Load::Ramp(_)));
        // An open phase after a closed one ramps from zero.
        assert_eq!(ramp(&plan.phases[2]).from, 0.0);
        assert!(describe(&plan).contains("closed: 200 users"));
        let ramped = text.replace("users = 200", "users = 200, ramp = \"20s\"");
        let errs = compile_str(&ramped).expect_err("ramp too long").0;
        assert!(errs[0].message.contains("ramp"), "{errs:?}");
        let stray = text.replace("rate = 5 }", "rate = 5, ramp = \"1s\" }");
        let errs = compile_str(&stray).expect_err("ramp without users").0;
        assert!(errs[0].message.contains("needs `users"), "{errs:?}");
        let capped = text.replace("max_inflight = 8", "max_users = 100");
        let errs = compile_str(&capped).expect_err("users above max_users").0;
        assert!(errs[0].message.contains("max_users"), "{errs:?}");
    }

    #[test]
    fn returning_users_add_a_login_flow_that_keeps_the_token() {
        let base = "name = \"t\"\n[target]\nbuiltin = {}\n[load]\nphases = [ { name = \"a\", duration = \"2s\", rate = 5 } ]\n";
        let plain = compile_str(base).expect("valid");
        assert!(plain.catalog.id("login").is_none());
        assert!(plain.flows.cohorts[0].returns.is_none());
        let returning =
            format!("{base}[user]\nreturning = 0.4\naway = {{ exponential = \"30s\" }}\n");
        let plan = compile_str(&returning).expect("valid");
        assert!(plan.catalog.id("login").is_some());
        let returns = plan.flows.cohorts[0].returns.clone().expect("returns");
        assert_eq!(returns.share, 0.4);
        assert_eq!(returns.away, Dist::Exponential(Duration::from_secs(30)));
        let back = &plan.flows.flows[returns.flow];
        assert_eq!(back.name, "returning");
        // The return flow sees the signup's captures (the token it logs in with).
        assert!(back.vars.iter().any(|v| v == "token"), "{:?}", back.vars);
    }

    #[test]
    fn cohort_returns_are_checked() {
        let text = r#"
name = "t"
[target]
builtin = {}
[load]
phases = [ { name = "a", duration = "2s", rate = 5 } ]
[flows.signup]
steps = [ { name = "verify", http = "POST /v1/verify", capture = { token = "$.token" } } ]
[flows.login]
steps = [ { name = "login", http = "POST /v1/login", headers = { authorization = "Bearer {{ token }}" } } ]
[[cohorts]]
name = "new"
share = 1
flow = "signup"
returns = { share = 0.5, after = { constant = "10s" }, flow = "login" }
"#;
        let plan = compile_str(text).expect("the login flow may use the signup's token");
        let r = plan.flows.cohorts[0].returns.clone().expect("returns");
        assert_eq!((r.share, r.flow), (0.5, 1));
        let bad = text
            .replace("share = 0.5", "share = 2")
            .replace("flow = \"login\" }", "flow = \"nope\" }");
        let errs = compile_str(&bad).expect_err("invalid").0;
        assert!(
            errs.iter().any(|e| e.message.contains("between 0 and 1")),
            "{errs:?}"
        );
        assert!(
            errs.iter()
                .any(|e| e.message.contains("unknown flow `nope`")),
            "{errs:?}"
        );
    }

    #[test]
    fn base_url_forms() {
        assert_eq!(BaseUrl::parse("http://localhost").map(|u| u.port), Ok(80));
        assert!(BaseUrl::parse("https://x").is_err());
        assert!(BaseUrl::parse("http://:80").is_err());
        assert!(BaseUrl::parse("http://h:99999").is_err());
    }

    #[test]
    fn distributions_sample_within_their_support() {
        use rand::SeedableRng;
        let mut rng = rand::rngs::SmallRng::seed_from_u64(1);
        let u = Dist::Uniform(Duration::from_secs(1), Duration::from_secs(2));
        let e = Dist::Exponential(Duration::from_millis(100));
        let g = Dist::Normal(Duration::from_millis(500), Duration::from_millis(50));
        let n = 20_000;
        let (mut sum, mut gsum, mut gsq) = (0.0, 0.0, 0.0);
        for _ in 0..n {
            let s = u.sample(&mut rng);
            assert!(s >= Duration::from_secs(1) && s < Duration::from_secs(2));
            sum += e.sample(&mut rng).as_secs_f64();
            let x = g.sample(&mut rng).as_secs_f64();
            gsum += x;
            gsq += x * x;
        }
        // Mean of n exponentials: standard error = mean / sqrt(n) ≈ 0.7 ms; allow 5 of them.
        let mean = sum / n as f64;
        assert!((mean - 0.1).abs() < 0.0035, "mean {mean}");
        // Normal(500 ms, 50 ms): mean within 5 standard errors (0.35 ms each), sd within 5 %.
        let mean = gsum / n as f64;
        let sd = (gsq / n as f64 - mean * mean).sqrt();
        assert!((mean - 0.5).abs() < 0.002, "mean {mean}");
        assert!((sd - 0.05).abs() < 0.0025, "sd {sd}");
    }
}
