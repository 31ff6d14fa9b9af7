//! Command-line types (clap derive), and their conversion into the library's options.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::duration::parse_duration;

#[derive(Debug, Parser)]
#[command(
    name = "inrush",
    version,
    about = "Rehearse a signup surge: a swarm of simulated users signs up and chats against a \
             messaging service while every operation is measured into latency histograms.",
    after_help = "Exit codes: 0 passed, 1 a threshold failed (or every operation or every user's flow failed), 2 nothing \
                  was run because of the input (command line, scenario file, run directory, a load \
                  beyond the memory budget), 3 a run started and was stopped: Ctrl-C, SIGTERM or \
                  SIGHUP, or the target unreachable at the start (the report is still written and \
                  says why), 4 inconclusive: the generator could not keep up (schedule lag, loop lag \
                  or arrivals dropped behind schedule over the [run] overload limits; the report is \
                  written; --accept-overload gates on the thresholds instead).\n\n\
                  Start here: inrush init && inrush run quickstart.toml"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a scenario and write its report directory.
    Run(RunArgs),
    /// Check a scenario file and print its plan; sends nothing.
    Validate {
        /// The scenario file (TOML).
        file: PathBuf,
        #[command(flatten)]
        inputs: ScenarioInputs,
    },
    /// Estimate what a scenario needs (arrivals, users, connections, descriptors, ports, CPU)
    /// and whether one generator on this machine suffices; sends nothing.
    Plan(PlanArgs),
    /// Search for the largest constant arrival rate at which every threshold of the scenario
    /// holds: steps of warm-up + measured window, doubling then bisecting, each fail confirmed
    /// by a repeat. Exit 0 answer found, 1 even the lowest rate fails, 4 could not conclude
    /// (the generator was the limit), 2 usage, 3 interrupted.
    FindCapacity(CapacityArgs),
    /// Run the built-in reference messenger standalone.
    Serve(ServeArgs),
    /// Write a starter scenario, quickstart.toml (a surge against the built-in messenger,
    /// commented), into DIR: what an installed inrush starts from.
    Init {
        /// Where to write it (created if missing).
        #[arg(default_value = ".")]
        dir: PathBuf,
        /// Replace a quickstart.toml that is already there.
        #[arg(long)]
        force: bool,
    },
    /// Print a shell completion script, e.g. `inrush completions bash > /etc/bash_completion.d/inrush`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff), e.g. `inrush man > /usr/local/share/man/man1/inrush.1`.
    Man,
    /// Rebuild every artifact of a finished run from its saved data (hlog, summary, timeline)
    /// and re-evaluate its thresholds, plus any given here; the exit code follows the verdict.
    Report {
        /// The run directory, e.g. reports/quickstart-20261125T180203Z.
        dir: PathBuf,
        /// An extra threshold to evaluate, e.g. 'verify.p99 < 250ms' (repeatable). Without
        /// --save the run directory is left as it is: the extra thresholds only set the verdict
        /// and the exit code.
        #[arg(long = "threshold", value_name = "EXPR")]
        thresholds: Vec<String>,
        /// Keep the extra thresholds: rewrite the run's artifacts (summary.json, junit.xml, …)
        /// with them.
        #[arg(long, requires = "thresholds")]
        save: bool,
    },
    /// Compare two run directories; exit 1 if NEW regressed beyond the tolerances and beyond
    /// noise (the change must hold across the runs' intervals), 2 if the runs are not comparable.
    Compare {
        /// The baseline run directory.
        base: PathBuf,
        /// The run to judge against it.
        new: PathBuf,
        /// Allowed regressions: latency stats (p50, p90, p95, p99, p99.9, p99.99, max, mean) as a relative
        /// increase, errors in percentage points, rate as a relative decrease, lost messages,
        /// floor = smallest latency change that counts.
        #[arg(
            long,
            value_name = "LIST",
            default_value = "p99=10%,errors=0",
            long_help = "Allowed regressions, e.g. p99=10%,p50=20%,errors=0,rate=5%,lost=0,floor=1ms. \
                         Latency stats (p50, p90, p95, p99, p99.9, p99.99 or p(95)..., max, mean): largest relative increase. \
                         errors: largest increase of the error rate in percentage points. rate: \
                         largest relative decrease of throughput. lost: largest increase in lost \
                         messages. floor: a latency change smaller than this never counts (1ms)."
        )]
        max_regression: String,
        /// Write compare.html, compare.json, compare.md and the overlay chart here instead of
        /// reports/compare-<BASE>-vs-<NEW>/.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
    /// Merge the run directories of N shards of one scenario (`run --shard i/N`) into one run:
    /// histograms merged losslessly, counts summed, thresholds gated on the merged data; the
    /// exit code is the merged verdict's, as for `run`. Refuses (exit 2) shards of different
    /// scenarios, seeds or shard counts, a duplicated or a missing shard.
    Merge(MergeArgs),
}

#[derive(Debug, Args)]
pub struct MergeArgs {
    /// The shards' run directories, in any order.
    #[arg(required = true, value_name = "DIR")]
    pub dirs: Vec<PathBuf>,
    /// Write the merged run here instead of reports/<scenario>-merged-<UTC stamp>/. It must not
    /// exist or be empty, unless --force.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Write into an --out directory that already holds files.
    #[arg(long, requires = "out")]
    pub force: bool,
    /// Warn when the shards' starts lie further apart than this, e.g. 100ms.
    #[arg(long, value_name = "D", value_parser = duration, default_value = "100ms")]
    pub max_skew: Duration,
    /// No summary table; warnings stay in the summary.
    #[arg(long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("served").args(["metrics", "dashboard"]).multiple(true)))]
pub struct RunArgs {
    /// The scenario file (TOML), e.g. scenarios/quickstart.toml.
    pub file: PathBuf,
    /// Send traffic to this base URL instead of the scenario's target, e.g. http://127.0.0.1:8080
    /// or https://staging.example.com (the scenario's [target] ca, cert, key, insecure apply).
    #[arg(long, value_name = "URL", env = "INRUSH_TARGET")]
    pub target: Option<String>,
    /// Write the run directory here instead of reports/<scenario>-<UTC timestamp>/. It must not
    /// exist or be empty, unless --force.
    #[arg(long, value_name = "DIR", env = "INRUSH_OUT")]
    pub out: Option<PathBuf>,
    /// Write into an --out directory that already holds files (files of the same names are
    /// replaced, others left).
    #[arg(long, requires = "out", env = "INRUSH_FORCE")]
    pub force: bool,
    /// Seed for arrivals and identities (overrides the scenario's seed).
    #[arg(long, value_name = "N", env = "INRUSH_SEED")]
    pub seed: Option<u64>,
    #[command(flatten)]
    pub inputs: ScenarioInputs,
    /// A pass/fail gate, e.g. 'verify.p99 < 250ms' or 'surge:errors.rate < 1%' (repeatable; adds
    /// to the scenario's [thresholds]). A failed threshold makes the exit code 1.
    #[arg(long = "threshold", value_name = "EXPR")]
    pub thresholds: Vec<String>,
    /// Generator threads (default: one per CPU), 1 to 1024.
    #[arg(long, value_name = "N", value_parser = workers, env = "INRUSH_WORKERS")]
    pub workers: Option<usize>,
    /// When the generator could not keep up ([run] overload exceeded), warn and exit by the
    /// thresholds instead of exit 4 (inconclusive).
    #[arg(long, env = "INRUSH_ACCEPT_OVERLOAD")]
    pub accept_overload: bool,
    /// No live progress and no summary table; a run that does not pass still says why.
    #[arg(long, env = "INRUSH_QUIET")]
    pub quiet: bool,
    /// Generator memory this run may plan for, e.g. 8GiB (default: half of the memory
    /// available at the start). Without max_users, active users are capped at this budget
    /// over 64 KiB each (arrivals beyond are dropped and counted); a closed phase or a
    /// max_users that cannot fit is refused (exit 2)
    #[arg(
        long,
        value_name = "SIZE",
        value_parser = crate::compiled::sizing::parse_bytes,
        env = "INRUSH_MEMORY_BUDGET"
    )]
    pub memory_budget: Option<u64>,
    /// Write every request (headers, body), response, frame in and out, and step start and end
    /// of N users (the first N arrivals) to trace.jsonl in the run directory: to debug a scenario
    /// against a new server. Bodies are cut at 2 KiB; env.* values are masked
    #[arg(long, value_name = "N", env = "INRUSH_TRACE")]
    pub trace: Option<u64>,
    /// Write the run as JSON lines while it goes on (one line per interval and per metric;
    /// schema in docs/live.md) to FILE, or to stdout with '-' (the summary table is then left out)
    #[arg(long, value_name = "FILE|-", env = "INRUSH_STREAM")]
    pub stream: Option<PathBuf>,
    /// Serve Prometheus metrics at http://ADDR/metrics during the run, e.g. 127.0.0.1:9091
    /// (port 0: the OS picks one; the address is printed)
    #[arg(long, value_name = "ADDR", env = "INRUSH_METRICS")]
    pub metrics: Option<String>,
    /// Serve a live web page at http://ADDR/ during the run, e.g. 127.0.0.1:9090 (port 0: the OS
    /// picks one; the address is printed). Read-only; keep it on loopback unless told otherwise
    #[arg(long, value_name = "ADDR", env = "INRUSH_DASHBOARD")]
    pub dashboard: Option<String>,
    /// Keep --metrics and --dashboard serving for D after the run ends (their final values and
    /// verdict), e.g. 30s, so a scraper gets the last interval and a browser the verdict; Ctrl-C
    /// ends the wait
    #[arg(long, visible_alias = "dashboard-hold", value_name = "D", value_parser = duration, requires = "served", env = "INRUSH_HOLD")]
    pub hold: Option<Duration>,
    /// Start the schedule at this wall-clock time, RFC 3339 in UTC (e.g. 2026-12-01T06:00:00Z):
    /// the run gets ready, then waits for it, so shards started apart begin together. A time
    /// already past starts the run at once; over 100 ms late it warns, and summary.json's
    /// start.offset_ms says how late
    #[arg(long, value_name = "TIME", value_parser = crate::run::start::parse, env = "INRUSH_START_AT")]
    pub start_at: Option<std::time::SystemTime>,
}

/// What the command line changes in a scenario as it is read: `-e` values for its `env.*`
/// templates and scales of its load profile (flag, then `INRUSH_*` variable, then the file).
#[derive(Debug, Args)]
pub struct ScenarioInputs {
    /// A value for the scenario's env.KEY templates, e.g. -e API_TOKEN=abc (repeatable); it wins
    /// over the process environment's KEY. Masked like any env.* value.
    // Checked after parsing, not by clap: its error would echo the value, which may be a secret.
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Every phase lasts F times as long at the same rates (curve points and closed-phase ramps
    /// move with it), e.g. 0.125 for an eighth of the time.
    #[arg(
        long,
        value_name = "F",
        value_parser = crate::compiled::inputs::parse_factor,
        conflicts_with = "duration",
        env = "INRUSH_TIME_SCALE"
    )]
    pub time_scale: Option<f64>,
    /// The load phases last D in all, e.g. 30s: --time-scale with the factor that fits.
    #[arg(long, value_name = "D", value_parser = duration, env = "INRUSH_DURATION")]
    pub duration: Option<Duration>,
    /// Every rate, closed phase's users, max_users and max_inflight multiplied by F.
    #[arg(
        long,
        value_name = "F",
        value_parser = crate::compiled::inputs::parse_factor,
        env = "INRUSH_RATE_SCALE"
    )]
    pub rate_scale: Option<f64>,
    /// Run shard I of N (numbered from 0, e.g. 0/4 … 3/4): open arrival k of the one-process
    /// schedule goes to shard k mod N, closed users and max_users/max_inflight are split, user
    /// indexes stay global. `inrush merge` joins the shards' run directories (docs/distributed.md)
    #[arg(
        long,
        value_name = "I/N",
        value_parser = crate::compiled::shard::Shard::parse,
        env = "INRUSH_SHARD"
    )]
    pub shard: Option<crate::compiled::shard::Shard>,
}

impl ScenarioInputs {
    /// The library's form, with the command's seed; a malformed `-e` is a usage error.
    pub fn with_seed(
        &self,
        seed: Option<u64>,
    ) -> Result<crate::compiled::inputs::Inputs, crate::Error> {
        use crate::compiled::inputs::{Env, Inputs, TimeScale};
        Ok(Inputs {
            seed,
            env: Env::from_pairs(self.env.iter().map(String::as_str))
                .map_err(crate::Error::Usage)?,
            time: match (self.time_scale, self.duration) {
                (Some(f), _) => Some(TimeScale::Factor(f)),
                (None, Some(d)) => Some(TimeScale::Total(d)),
                (None, None) => None,
            },
            rate_scale: self.rate_scale,
            shard: self.shard.unwrap_or_default(),
            target: None,
        })
    }
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The scenario file (TOML).
    pub file: PathBuf,
    /// Seed for arrivals and identities (overrides the scenario's seed), as for `run`.
    #[arg(long, value_name = "N", env = "INRUSH_SEED")]
    pub seed: Option<u64>,
    #[command(flatten)]
    pub inputs: ScenarioInputs,
    /// Plan for this base URL instead of the scenario's target, as `run --target` would send to
    /// it (whether the target is this machine's loopback decides how closed connections hold
    /// source ports).
    #[arg(long, value_name = "URL", env = "INRUSH_TARGET")]
    pub target: Option<String>,
    /// Write plan.json and plan.png/.svg here instead of reports/<scenario>-plan-<stamp>/.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// The latency assumed for every request, WebSocket upgrade and awaited reply.
    #[arg(long, value_parser = duration, value_name = "DURATION", default_value = "10ms")]
    pub latency: Duration,
    /// Plan for a run with this many worker threads (as `run --workers`; default: one per CPU):
    /// the caps and closed phases' users are split across them.
    #[arg(long, value_name = "N", value_parser = workers, env = "INRUSH_WORKERS")]
    pub workers: Option<usize>,
    /// Also write Kubernetes manifests (an Indexed Job of N shards, its merge Job, the results
    /// volume, the scenario's ConfigMap) into <plan dir>/kubernetes/: N from the verdict, each
    /// pod's CPU and memory from one shard's plan (docs/distributed.md)
    #[arg(long)]
    pub kubernetes: bool,
    /// With --kubernetes: this many shards instead of the verdict's.
    #[arg(long, value_name = "N", requires = "kubernetes", value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub shards: Option<u64>,
    /// With --kubernetes: the image the pods run (built from the Dockerfile).
    #[arg(
        long,
        value_name = "IMAGE",
        requires = "kubernetes",
        default_value = "inrush:0.1.0"
    )]
    pub image: String,
}

#[derive(Debug, Args)]
pub struct CapacityArgs {
    /// The scenario file (TOML): its flows, users, target and thresholds; its load profile is
    /// replaced by each step's constant rate.
    pub file: PathBuf,
    /// The first rate tried, users/s (default: [capacity] from, or a quarter of the scenario's
    /// peak rate, or 10).
    #[arg(long, value_name = "R", value_parser = rate)]
    pub from: Option<f64>,
    /// The highest rate tried, users/s (default: [capacity] max, or 16 × --from).
    #[arg(long, value_name = "R", value_parser = rate)]
    pub max: Option<f64>,
    /// What a step's rate sets: `arrivals` (a constant open rate: warm-up, then the measured
    /// window) or the name of an open phase, scaled so that it peaks at the rate — the phases
    /// before it are the warm-up, the phase is the measured window, its shape and timing kept
    /// (default: [capacity] metric, or arrivals).
    #[arg(long, value_name = "arrivals|PHASE")]
    pub metric: Option<String>,
    /// The measured window of each step (default: [capacity] step_duration, or 20s).
    #[arg(long, value_parser = duration, value_name = "D")]
    pub step_duration: Option<Duration>,
    /// The warm-up before each measured window, discarded (default: [capacity] warmup, or 10s).
    #[arg(long, value_parser = duration, value_name = "D")]
    pub warmup: Option<Duration>,
    /// Stop when the first failing rate is within this of the last passing one, e.g. 10% or
    /// 0.1 (default: [capacity] precision, or 10%).
    #[arg(long, value_name = "P", value_parser = crate::compiled::capacity::parse_precision)]
    pub precision: Option<f64>,
    /// Send traffic to this base URL instead of the scenario's target.
    #[arg(long, value_name = "URL", env = "INRUSH_TARGET")]
    pub target: Option<String>,
    /// Write the capacity directory here instead of reports/capacity-<scenario>-<UTC stamp>/.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Generator threads per step (default: one per CPU), 1 to 1024.
    #[arg(long, value_name = "N", value_parser = workers, env = "INRUSH_WORKERS")]
    pub workers: Option<usize>,
    /// Seed for arrivals and identities (overrides the scenario's seed).
    #[arg(long, value_name = "N", env = "INRUSH_SEED")]
    pub seed: Option<u64>,
    /// A threshold that gates each step, as for `run` (repeatable). When given, ONLY these
    /// gate the search: they replace the scenario's [capacity] thresholds and [thresholds]
    /// (listed as not applied).
    #[arg(long = "threshold", value_name = "EXPR")]
    pub thresholds: Vec<String>,
    /// Judge a step whose generator fell behind by its thresholds (a warning on the step)
    /// instead of calling it inconclusive.
    #[arg(long, env = "INRUSH_ACCEPT_OVERLOAD")]
    pub accept_overload: bool,
    /// No progress lines and no answer on the terminal.
    #[arg(long)]
    pub quiet: bool,
    /// Send nothing: say how many steps and minutes the search can take and whether one
    /// generator process reaches --max.
    #[arg(long)]
    pub dry_run: bool,
    /// A value for the scenario's env.KEY templates (repeatable).
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
}

fn rate(s: &str) -> Result<f64, String> {
    match s.trim_end_matches("/s").parse::<f64>() {
        Ok(r) if r.is_finite() && r > 0.0 => Ok(r),
        _ => Err(format!(
            "`{s}` is not a rate: expected users per second above 0, e.g. 20"
        )),
    }
}

/// `--workers N`: 1 to [`crate::run::MAX_WORKERS`] threads.
fn workers(s: &str) -> Result<usize, String> {
    let max = crate::run::MAX_WORKERS;
    match s.parse::<usize>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(format!(
            "`{s}` is not a number of threads: expected 1 to {max} (one per core is the design)"
        )),
    }
}

fn duration(s: &str) -> Result<Duration, String> {
    parse_duration(s)
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on; loopback unless you say otherwise.
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
    pub listen: SocketAddr,
    /// Added latency on every HTTP request, e.g. 20ms.
    #[arg(long, value_parser = duration, value_name = "DURATION")]
    pub latency: Option<Duration>,
    /// SMS gateway delay per message, e.g. 300ms.
    #[arg(long, value_parser = duration, value_name = "DURATION")]
    pub sms_delay: Option<Duration>,
    /// SMS gateway throughput, messages per second.
    #[arg(long, value_name = "PER_S")]
    pub sms_rate: Option<f64>,
    /// Verifications per second before answering 429 with Retry-After.
    #[arg(long, value_name = "PER_S")]
    pub verify_capacity: Option<f64>,
    /// Fraction of HTTP requests answered with 500, 0 to 1.
    #[arg(long, value_name = "FRACTION")]
    pub failure_rate: Option<f64>,
    /// Stall every this long, e.g. 10s (with --stall-for).
    #[arg(long, value_parser = duration, value_name = "DURATION", requires = "stall_for")]
    pub stall_every: Option<Duration>,
    /// Length of each stall, e.g. 1s.
    #[arg(long, value_parser = duration, value_name = "DURATION", requires = "stall_every")]
    pub stall_for: Option<Duration>,
    /// Fraction of found contacts that discovery leaves out, 0 to 1.
    #[arg(long, value_name = "FRACTION")]
    pub contacts_drop: Option<f64>,
    /// Drop each WebSocket after a random lifetime with this mean, e.g. 30s.
    #[arg(long, value_parser = duration, value_name = "DURATION")]
    pub drop_sockets: Option<Duration>,
    /// Serve HTTPS and WSS with this certificate chain (PEM; with --tls-key).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Require clients to present a certificate issued by a CA of this PEM file (mutual TLS).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_client_ca: Option<PathBuf>,
}

impl ServeArgs {
    /// The TLS to serve with, when --tls-cert and --tls-key are given.
    pub fn tls(&self) -> Option<crate::ServeTls> {
        Some(crate::ServeTls {
            cert: self.tls_cert.clone()?,
            key: self.tls_key.clone()?,
            client_ca: self.tls_client_ca.clone(),
        })
    }

    /// The built-in messenger's knobs: the defaults, with what the command line sets.
    pub fn knobs(&self) -> crate::target::Knobs {
        let mut knobs = crate::target::Knobs::default();
        if let Some(v) = self.latency {
            knobs.latency = v;
        }
        if let Some(v) = self.sms_delay {
            knobs.sms_delay = v;
        }
        knobs.sms_rate = self.sms_rate;
        knobs.verify_capacity = self.verify_capacity;
        if let Some(v) = self.failure_rate {
            knobs.failure_rate = v;
        }
        knobs.stall_every = self.stall_every;
        if let Some(v) = self.stall_for {
            knobs.stall_for = v;
        }
        if let Some(v) = self.contacts_drop {
            knobs.contacts_drop = v;
        }
        knobs.drop_sockets = self.drop_sockets;
        knobs
    }
}
