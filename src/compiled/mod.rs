//! The executable form of a scenario: every value parsed, checked and typed once, before any
//! traffic. Everything downstream (schedule, swarm, reports) reads a `Plan`, never the file.

pub mod capacity;
pub mod connections;
mod describe;
pub mod dist;
pub mod flow;
pub mod inputs;
pub mod load;
pub mod overload;
pub mod region;
pub mod retry;
pub mod shard;
pub mod sizing;
mod source_addresses;
pub mod target;
pub mod threshold;
pub mod user;

use std::path::{Path, PathBuf};
use std::time::Duration;

use rand::RngExt;
use toml::Spanned;

use crate::duration::parse_duration;
use crate::error::{Error, ScenarioErrors};
use crate::metrics::Catalog;
use crate::scenario::{self, Problems, ScenarioFile};
use inputs::{Inputs, TimeScale};
use threshold::{compile_threshold, Threshold};

pub use describe::describe;
pub(crate) use dist::dist;
pub use dist::Dist;
pub use load::{Arrivals, Closed, Curve, Load, Phase, Ramp, Shape};
pub use target::{BaseUrl, Target};
pub use user::UserPlan;

#[derive(Debug, Clone)]
pub struct Plan {
    pub name: String,
    pub description: String,
    pub source: PathBuf,
    pub seed: u64,
    pub target: Target,
    /// `[target]`'s TLS settings, used when the target is `https://`.
    pub tls: crate::clients::tls::TlsOptions,
    pub arrivals: Arrivals,
    pub phases: Vec<Phase>,
    pub max_users: Option<u64>,
    /// Cap on timed operations in flight across the run.
    pub max_inflight: Option<u64>,
    pub user: UserPlan,
    pub timeout: Duration,
    pub drain: Duration,
    /// `[run] delivery_deadline`: a message not delivered this long after its intended send is
    /// lost (`None`: it has until the end of the drain).
    pub delivery_deadline: Option<Duration>,
    /// `[run] max_start_lag`: an arrival not started this long after its intended time is
    /// dropped (`behind_schedule`); without it, only the schedule's end is a deadline.
    pub max_start_lag: Option<Duration>,
    /// `[run] overload`: beyond these the generator's measurement is inconclusive.
    pub overload: overload::OverloadLimits,
    /// `[run] retry`: how every HTTP request and socket connect is retried (none by default).
    pub retry: Option<crate::compiled::retry::RetryPolicy>,
    /// `[run] reconnect`: how a dropped socket is reopened (not at all by default).
    pub reconnect: Option<crate::compiled::retry::ReconnectPolicy>,
    /// Local addresses users' connections are bound to (user i uses `i mod n`); empty: the
    /// system picks, as usual.
    pub source_addresses: Vec<std::net::IpAddr>,
    /// `[run] connections`: each user's own HTTP connection, or a shared pool.
    pub connections: connections::Connections,
    pub thresholds: Vec<Threshold>,
    /// Every metric of the run: the built-in ones and one per step.
    pub catalog: Catalog,
    /// The flows users run: the scenario's own, or the built-in signup-and-chat flow configured
    /// by `[user]`.
    pub flows: std::sync::Arc<crate::compiled::flow::compile::FlowSet>,
    /// Where users are and the network conditions they see (empty: none declared).
    pub regions: crate::compiled::region::Regions,
    /// `[capacity]`: what `find-capacity` searches with (empty when the file has none).
    pub capacity: capacity::CapacitySettings,
    /// What the command line changed in the file's load profile, in words (`--time-scale`,
    /// `--duration`, `--rate-scale`); empty when it ran as written.
    pub overrides: Vec<String>,
    /// Which of N processes running this scenario this one is (`--shard i/N`; whole: 0/1). The
    /// phases stay the whole scenario's: the schedule and the workers take the shard's share.
    pub shard: shard::Shard,
    /// The scenario's identity (`shard::fingerprint` of the file and the overrides), so that
    /// `inrush merge` can tell shards of one run from shards of different ones.
    pub fingerprint: String,
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

    /// The plan with every phase's rates (or closed users) and both caps multiplied by
    /// `factor` (> 0): the same profile for `factor` times the users.
    pub fn scaled(&self, factor: f64) -> Plan {
        let cap = |c: u64| ((c as f64 * factor).round() as u64).max(1);
        Plan {
            phases: self.phases.iter().map(|p| p.scaled(factor)).collect(),
            max_users: self.max_users.map(cap),
            max_inflight: self.max_inflight.map(cap),
            ..self.clone()
        }
    }

    /// The plan as shard `shard` runs it: the caps split floor/ceil (the shards' caps sum to
    /// the scenario's); arrivals, closed slots and identities are dealt by the schedule.
    pub fn for_shard(&self, shard: shard::Shard) -> Plan {
        Plan {
            max_users: self.max_users.map(|c| shard.share(c)),
            max_inflight: self.max_inflight.map(|c| shard.share(c)),
            shard,
            ..self.clone()
        }
    }

    /// The plan with every phase lasting `factor` (> 0) times as long, at the same rates: the
    /// same profile, faster or slower (curve points and closed-phase ramps move with it).
    pub fn stretched(&self, factor: f64) -> Plan {
        Plan {
            phases: self.phases.iter().map(|p| p.stretched(factor)).collect(),
            ..self.clone()
        }
    }
}

/// Reads, parses and compiles a scenario file.
pub fn load(path: &Path, seed_override: Option<u64>) -> Result<Plan, Error> {
    load_with(path, &Inputs::seed(seed_override))
}

/// Reads, parses and compiles a scenario file with what the command line adds to it.
pub fn load_with(path: &Path, inputs: &Inputs) -> Result<Plan, Error> {
    let text = read_scenario(path)?;
    let plan = compile_with(path, &text, inputs)?;
    let mut plan = rescale(plan, inputs).map_err(Error::Usage)?;
    if let Some(url) = &inputs.target {
        plan.retarget(url)?;
    }
    plan.fingerprint = shard::fingerprint(&text, &plan.overrides, &shard::file_inputs(&plan));
    Ok(plan.for_shard(inputs.shard))
}

impl Plan {
    /// Sends the plan's traffic to `url` (`--target`) instead of the scenario's target; the
    /// scenario's `[target]` TLS settings (ca, cert, insecure) apply to the new URL.
    pub fn retarget(&mut self, url: &str) -> Result<(), Error> {
        let url = BaseUrl::parse(url).map_err(|e| Error::Usage(format!("--target: {e}")))?;
        self.target = Target::Url(url);
        if self.target.speaks_tls() {
            self.catalog = self.catalog.clone().with_tls();
        }
        Ok(())
    }
}

/// The plan stretched in time and scaled in users as `inputs` ask, each scale noted in
/// `plan.overrides` (the summary and `validate` say what ran).
fn rescale(mut plan: Plan, inputs: &Inputs) -> Result<Plan, String> {
    if let Some(time) = inputs.time {
        let length = plan.duration().as_secs_f64();
        let factor = match time {
            TimeScale::Factor(f) => f,
            TimeScale::Total(d) if length > 0.0 => d.as_secs_f64() / length,
            TimeScale::Total(_) => 1.0,
        };
        if !(factor.is_finite() && factor > 0.0) {
            return Err("--duration must be longer than 0s".into());
        }
        let stretched = length * factor;
        if stretched > load::MAX_PROFILE_S {
            return Err(format!(
                "the time scale {factor} makes the phases last {stretched:.0} s, over the limit of {:.0} s",
                load::MAX_PROFILE_S
            ));
        }
        plan = plan.stretched(factor);
        plan.overrides.push(format!(
            "time scale {} ({:.1}s of load instead of {length:.1}s)",
            crate::decimals::round(factor, 4),
            plan.duration().as_secs_f64()
        ));
    }
    if let Some(factor) = inputs.rate_scale {
        plan = plan.scaled(factor);
        // The limits a file's rates and closed users have hold for the scaled ones too.
        if let Some(why) = plan.phases.iter().find_map(Phase::over_limit) {
            return Err(format!("--rate-scale {}: {why}", load::amount(factor)));
        }
        plan.overrides.push(format!(
            "rate scale {} (every rate and user count)",
            crate::decimals::round(factor, 4)
        ));
    }
    Ok(plan)
}

/// A scenario file's text. Whatever keeps it from being read — missing, a directory,
/// unreadable, not UTF-8 (then with the position of the first bad byte) — is the input's
/// fault, so nothing runs and the exit code is 2.
fn read_scenario(path: &Path) -> Result<String, Error> {
    if path.is_dir() {
        return Err(Error::Usage(format!(
            "{}: is a directory, not a scenario file",
            path.display()
        )));
    }
    let bytes = crate::input_file::read(path)
        .map_err(|e| Error::Usage(format!("cannot read scenario {}: {e}", path.display())))?;
    String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let bad = e.as_bytes().get(at).copied().unwrap_or_default();
        let valid = String::from_utf8_lossy(&e.as_bytes()[..at]);
        let (line, column) = crate::error::line_column(&valid, at);
        Error::Scenario(crate::error::ScenarioErrors(vec![
            crate::error::ScenarioIssue {
                file: path.to_path_buf(),
                line,
                column,
                message: format!("the file is not UTF-8 text (byte 0x{bad:02x}); save it as UTF-8"),
            },
        ]))
    })
}

/// Parses and checks a scenario; returns every problem found, each with its position.
pub fn compile(
    path: &Path,
    text: &str,
    seed_override: Option<u64>,
) -> Result<Plan, ScenarioErrors> {
    compile_with(path, text, &Inputs::seed(seed_override))
}

/// [`compile`] with `-e` values for `env.*` (the scales are applied by [`load_with`]).
pub fn compile_with(path: &Path, text: &str, inputs: &Inputs) -> Result<Plan, ScenarioErrors> {
    let file: ScenarioFile = scenario::parse(path, text)?;
    let mut problems = Problems::new(path, text);

    let name = compile_name(&file.name, &mut problems);
    let seed = compile_seed(inputs.seed, &file.seed, &mut problems);
    let target = target::compile(&file.target, &mut problems);
    let tls = target::compile_tls(path, file.target.get_ref(), &mut problems);
    let load::Section {
        arrivals,
        phases,
        max_users,
        max_inflight,
    } = load::compile(path, &file.load, &mut problems);
    let timeout = positive_duration(&file.run.timeout, "timeout", &mut problems);
    let drain = duration(&file.run.drain, &mut problems);
    let delivery_deadline = file
        .run
        .delivery_deadline
        .as_ref()
        .map(|d| positive_duration(d, "delivery_deadline", &mut problems));
    let max_start_lag = file
        .run
        .max_start_lag
        .as_ref()
        .map(|d| positive_duration(d, "max_start_lag", &mut problems));
    let overload = overload::compile(&file.run.overload, &mut problems);
    let retry = file
        .run
        .retry
        .as_ref()
        .map(|r| crate::compiled::retry::compile_retry(r.get_ref(), r.span(), &mut problems));
    let reconnect =
        file.run.reconnect.as_ref().map(|r| {
            crate::compiled::retry::compile_reconnect(r.get_ref(), r.span(), &mut problems)
        });
    let source_addresses = source_addresses::compile(&file.run.source_addresses, &mut problems);
    let connections = connections::compile(&file.run.connections, &mut problems);
    let user = user::compile(&file.user, &mut problems);
    let flows = if file.flows.is_empty() {
        user::builtin_flows(&user, timeout, &file.user.messages, &mut problems)
    } else {
        let feeders = flow::feeder::load_all(path, &file.feeders, &mut problems);
        crate::compiled::flow::compile::compile(
            &file.flows,
            &file.cohorts,
            feeders,
            timeout,
            &inputs.env,
            &mut problems,
        )
    };
    let flows = std::sync::Arc::new(flows);
    let catalog = if target.speaks_tls() {
        flows.catalog.clone().with_tls()
    } else {
        flows.catalog.clone()
    };
    let catalog = match connections {
        connections::Connections::Pool(_) => catalog.with_pool(),
        connections::Connections::PerUser => catalog,
    };
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

    let capacity = file
        .capacity
        .as_ref()
        .map(|c| capacity::compile(c, &phase_names, &scopes, &catalog, &mut problems))
        .unwrap_or_default();
    problems.into_result()?;
    let mut plan = Plan {
        name,
        description: file.description.trim().to_string(),
        source: path.to_path_buf(),
        seed,
        target,
        tls,
        arrivals,
        phases,
        max_users,
        max_inflight,
        user,
        timeout,
        drain,
        delivery_deadline,
        max_start_lag,
        overload,
        retry,
        reconnect,
        source_addresses,
        connections,
        thresholds,
        catalog,
        flows,
        regions,
        capacity,
        overrides: Vec::new(),
        shard: shard::Shard::WHOLE,
        fingerprint: String::new(),
    };
    plan.fingerprint = shard::fingerprint(text, &[], &shard::file_inputs(&plan));
    Ok(plan)
}

/// The scenario's name: it names the run directory.
fn compile_name(name: &Spanned<String>, problems: &mut Problems) -> String {
    let name_text = name.get_ref().trim().to_string();
    if name_text.is_empty()
        || !name_text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
    {
        problems.add(
            name.span(),
            "name must be non-empty and use only letters, digits, `-`, `_` and `.` (it names the run directory)",
        );
    }
    name_text
}

/// The seed: `--seed`, else the file's, else a fresh one (the summary records it).
fn compile_seed(
    seed_override: Option<u64>,
    seed: &Option<Spanned<i64>>,
    problems: &mut Problems,
) -> u64 {
    match (&seed_override, seed) {
        (Some(seed), _) => *seed,
        (None, Some(seed)) if *seed.get_ref() >= 0 => *seed.get_ref() as u64,
        (None, Some(seed)) => {
            problems.add(seed.span(), "seed must be a non-negative integer");
            0
        }
        // No seed anywhere: draw one, and the summary records it so the run can be repeated.
        (None, None) => rand::rng().random_range(0..1u64 << 53),
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

#[cfg(test)]
mod tests {
    use super::*;

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
                prefix: "/api".into(),
                tls: false,
            })
        );
        let ramp = plan.phases[1].ramp().expect("phase 1 is a ramp");
        assert_eq!((ramp.from, ramp.to), (10.0, 20.0));
        assert_eq!(plan.phases[1].start, Duration::from_secs(2));
        assert_eq!(plan.duration(), Duration::from_secs(3));
        assert_eq!(plan.phase_at(Duration::from_millis(2500)), 1);
        assert_eq!(plan.phase_at(Duration::from_secs(99)), 1);
    }

    #[test]
    fn a_stretched_plan_keeps_its_rates_and_moves_every_time_in_it() {
        let text = MINIMAL.replace(
            "{ name = \"b\", duration = \"1s\", ramp_to = 20 } ]",
            "{ name = \"b\", duration = \"1s\", ramp_to = 20 }, { name = \"c\", duration = \"4s\", users = 8, ramp = \"2s\" } ]",
        );
        let plan = compile_str(&text).expect("valid");
        let half = plan.stretched(0.5);
        assert_eq!(half.duration(), Duration::from_secs(7) / 2);
        assert_eq!(half.phases[1].start, Duration::from_secs(1));
        // The ramp goes from 10/s to 20/s as before, over half the time: half the arrivals.
        let ramp = half.phases[1].ramp().expect("a ramp");
        assert_eq!((ramp.from, ramp.to), (10.0, 20.0));
        assert!((half.phases[1].mass() - plan.phases[1].mass() / 2.0).abs() < 1e-9);
        // A closed phase keeps its users and ramps them up in half the time.
        let closed = half.phases[2].closed().expect("closed");
        assert_eq!((closed.users, closed.ramp), (8, Duration::from_secs(1)));
        // Scaled in rate: twice the users in the same time.
        let double = plan.scaled(2.0);
        assert_eq!(double.duration(), plan.duration());
        assert_eq!(double.phases[2].closed().map(|c| c.users), Some(16));
    }

    #[test]
    fn a_rate_scale_is_held_to_the_limits_of_the_files_rates_and_users() {
        let scale = |f: f64| Inputs {
            rate_scale: Some(f),
            ..Inputs::default()
        };
        let plan = compile_str(MINIMAL).expect("valid");
        let plan_at = |f: f64| rescale(plan.clone(), &scale(f));
        // 20/s × 500 000 is the limit itself; any more is refused, as a rate in the file is.
        let at = plan_at(500_000.0).expect("at the limit");
        assert_eq!(at.phases[1].ramp().map(|r| r.to), Some(1e7));
        let err = plan_at(500_001.0).expect_err("just over the rate limit");
        assert!(
            err.contains("phase `b` would reach 10000020 users per second"),
            "{err}"
        );
        let err = plan_at(1e300).expect_err("far over the rate limit");
        assert!(
            err.starts_with("--rate-scale 1e300: phase `a` would reach 1e301"),
            "{err}"
        );
        // A closed phase's users are held to theirs: 1000 × 20 000 = 2e7 > 1e7.
        let closed = MINIMAL.replace(
            "{ name = \"b\", duration = \"1s\", ramp_to = 20 }",
            "{ name = \"c\", duration = \"1s\", users = 1000 }",
        );
        let plan = compile_str(&closed).expect("valid");
        let err = rescale(plan, &scale(20_000.0)).expect_err("over the users limit");
        assert!(
            err.contains("phase `c` would keep 20000000 users active"),
            "{err}"
        );
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
    fn a_flow_whose_every_step_is_wrong_is_not_also_said_to_have_no_steps() {
        let base = "name = \"t\"\n[target]\nbuiltin = {}\n[load]\nphases = [ { name = \"a\", duration = \"2s\", rate = 5 } ]\n";
        let bad = format!(
            "{base}[[flows.f.steps]]\nhttp = \"GET /a/{{{{ tokn }}}}\"\n[[flows.f.steps]]\nhttp = \"GET /b/{{{{ tokn }}}}\"\n"
        );
        let errs = compile_str(&bad).expect_err("invalid").0;
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert!(errs.iter().all(|e| e.message.contains("tokn")), "{errs:?}");
        let empty = format!("{base}[flows.f]\nsteps = []\n");
        let errs = compile_str(&empty).expect_err("invalid").0;
        assert!(errs[0].message.contains("has no steps"), "{errs:?}");
    }

    #[test]
    fn a_wait_for_frames_longer_than_the_timeout_lengthens_a_default_one_and_contradicts_a_steps_own(
    ) {
        let base = "name = \"t\"\n[target]\nbuiltin = {}\n[load]\nphases = [ { name = \"a\", duration = \"2s\", rate = 5 } ]\n[run]\ntimeout = \"1s\"\n";
        let wait = "name = \"w\"\nsend = \"hi\"\nexpect = { json = { \"$.type\" = \"welcome\" }, within = \"3s\" }\n";
        let plan = compile_str(&format!("{base}[[flows.f.steps]]\n{wait}")).expect("valid");
        let step = &plan.flows.flows[0].steps[0];
        // The wait's 3 s after the send's usual 1 s.
        assert_eq!(step.timeout, Duration::from_secs(4));
        let own = format!("{base}[[flows.f.steps]]\n{wait}timeout = \"2s\"\n");
        let errs = compile_str(&own).expect_err("a contradiction").0;
        assert!(
            errs.iter()
                .any(|e| e.message.contains("longer than this step's timeout") && e.line == 11),
            "{errs:?}"
        );
        let http = format!(
            "{base}[[flows.f.steps]]\nname = \"h\"\nhttp = \"GET /\"\nexpect = {{ status = 200, within = \"3s\" }}\n"
        );
        let errs = compile_str(&http).expect_err("within on a request").0;
        assert!(
            errs.iter()
                .any(|e| e.message.contains("a request's wait is its `timeout`")),
            "{errs:?}"
        );
    }

    #[test]
    fn a_steps_captures_are_checked_when_its_action_is_wrong_too() {
        let base = "name = \"t\"\n[target]\nbuiltin = {}\n[load]\nphases = [ { name = \"a\", duration = \"2s\", rate = 5 } ]\n";
        let text = format!(
            "{base}[[flows.f.steps]]\nname = \"s\"\nhttp = \"GET /{{{{ nope }}}}\"\ncapture = {{ x = \"$..[\" }}\n"
        );
        let errs = compile_str(&text).expect_err("invalid").0;
        assert_eq!(errs.len(), 2, "the action's and the capture's: {errs:?}");
    }

    #[test]
    fn counts_out_of_range_are_errors_at_their_place_not_clamped() {
        let base = "name = \"t\"\n[target]\nbuiltin = {}\n[load]\nphases = [ { name = \"a\", duration = \"2s\", rate = 5 } ]\n";
        for (step, said) in [
            (
                "repeat = -1\nthink = { constant = \"1s\" }",
                "repeat must be 0 or more, not -1",
            ),
            (
                "loop = { times = -1, steps = [ { think = { constant = \"1s\" } } ] }",
                "times must be 0 or more, not -1",
            ),
            (
                "loop = { for = \"1s\", max = 0, steps = [ { think = { constant = \"1s\" } } ] }",
                "max must be 1 or more, not 0",
            ),
        ] {
            let text = format!("{base}[[flows.f.steps]]\n{step}\n");
            let errs = compile_str(&text).expect_err("out of range").0;
            assert!(
                errs.iter().any(|e| e.message.contains(said) && e.line == 7),
                "{errs:?}"
            );
        }
        // Random values whose literal arguments are out of range: said at load.
        for (call, said) in [
            ("random_int(10, 1)", "the lower end is above the upper"),
            ("random_string(99999999999999)", "a length from 0 to 4096"),
        ] {
            let text = format!("{base}[[flows.f.steps]]\nhttp = \"GET /{{{{ {call} }}}}\"\n");
            let errs = compile_str(&text).expect_err("out of range").0;
            assert!(errs.iter().any(|e| e.message.contains(said)), "{errs:?}");
        }
        let zero =
            format!("{base}[[flows.f.steps]]\nrepeat = 0\nthink = {{ constant = \"1s\" }}\n");
        assert!(compile_str(&zero).is_ok(), "repeat = 0 skips the step");
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
}
