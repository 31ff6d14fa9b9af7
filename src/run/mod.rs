//! `inrush run`: start the target if it is built in, start the swarm, collect every interval,
//! and write the run directory. The only place where the pieces meet.

pub mod worker;

use std::io::BufWriter;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use hdrhistogram::serialization::V2DeflateSerializer;
use tokio::sync::{mpsc, watch};

use crate::clients::Endpoint;
use crate::compiled::{BaseUrl, Plan, Target};
use crate::error::Error;
use crate::metrics::collector::Collector;
use crate::metrics::{hlog, MetricId};
use crate::report::progress::{Progress, Status};
use crate::report::summary::{self, Summary, Verdict};
use crate::swarm::{identity::Identities, Registry, RunState, Shared};

#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub scenario: PathBuf,
    /// Overrides the scenario's target.
    pub target: Option<String>,
    /// The run directory; default `reports/<scenario>-<UTC timestamp>/`.
    pub out: Option<PathBuf>,
    pub seed: Option<u64>,
    /// Generator threads; default: one per CPU.
    pub workers: Option<usize>,
    /// Extra thresholds from the command line, e.g. `verify.p99 < 250ms`.
    pub thresholds: Vec<String>,
    /// No progress output and no table (for tests).
    pub quiet: bool,
}

#[derive(Debug)]
pub struct Outcome {
    pub dir: PathBuf,
    pub summary: Summary,
}

/// How long after the schedule's end the run stops starting operations: the swarm's rule, which
/// the dry run follows too.
const STOP_SLACK: Duration = crate::swarm::STOP_SLACK;

/// Lead time between planning the start and the first arrival, so every worker is ready.
const LEAD: Duration = Duration::from_millis(50);

pub fn run(opts: &RunOptions) -> Result<Outcome, Error> {
    let mut plan = crate::compiled::load(&opts.scenario, opts.seed)?;
    if let Some(url) = &opts.target {
        let url = BaseUrl::parse(url).map_err(|e| Error::Usage(format!("--target: {e}")))?;
        plan.target = Target::Url(url);
    }
    let phases = plan.scopes();
    for expr in &opts.thresholds {
        let t = crate::gate::parse(expr, &phases, &plan.catalog)
            .map_err(|e| Error::Usage(format!("--threshold '{expr}': {e}")))?;
        plan.thresholds.push(t);
    }
    let limit_warnings = open_files(&plan);
    if !opts.quiet {
        for w in &limit_warnings {
            eprintln!("warning: {w}");
        }
    }
    let workers = opts
        .workers
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
        .max(1);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("inrush-control")
        .enable_all()
        .build()
        .map_err(|e| Error::Run(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(run_plan(Arc::new(plan), workers, opts, limit_warnings))
}

/// Plans with more expected arrivals than this skip the descriptor estimate at the start of a
/// run (walking them all would delay the start); `inrush plan` still makes it.
const ESTIMATE_MAX_ARRIVALS: f64 = 2_000_000.0;

/// Raises the open-file limit as far as the system allows and compares it with what the plan
/// needs at its peak (the estimate of `inrush plan`); returns the warnings to show and keep.
fn open_files(plan: &Plan) -> Vec<String> {
    use crate::estimate::DEFAULT_LATENCY;
    let mut warnings = Vec::new();
    let Some(raised) = crate::os_limits::raise_open_files() else {
        return warnings;
    };
    if let Some(e) = &raised.failure {
        warnings.push(format!(
            "could not raise the open-file limit from {} to its hard limit {}: {e}",
            raised.before.soft, raised.before.hard
        ));
    }
    // Users the estimate walks: the open schedule, plus a closed phase's users restarting at
    // most once per assumed operation latency (a bound; real flows take longer), plus returns.
    let closed: f64 = plan
        .phases
        .iter()
        .filter_map(|p| {
            let c = p.closed()?;
            Some(c.users as f64 * p.duration.as_secs_f64() / DEFAULT_LATENCY.as_secs_f64())
        })
        .sum();
    let open: f64 = plan.phases.iter().map(crate::compiled::Phase::mass).sum();
    let returning = plan.flows.cohorts.iter().any(|c| c.returns.is_some());
    let expected = (open + closed) * if returning { 10.0 } else { 1.0 };
    if expected > ESTIMATE_MAX_ARRIVALS {
        return warnings;
    }
    let estimate = crate::estimate::estimate(plan, DEFAULT_LATENCY);
    let needed = estimate.resources.descriptors;
    let limit = raised.now.soft;
    if needed > limit {
        warnings.push(format!(
            "this run needs ~{needed} file descriptors at its peak ({} sockets{}, by `inrush plan`'s \
             estimate), but the open-file limit is {limit} (hard limit {}): connections beyond it \
             will fail as `connect` errors (out of file descriptors). Split the load over {} \
             generator processes (`inrush plan` shows the count) or raise ulimit -n",
            estimate.peak.sockets,
            if estimate.resources.descriptors_per_socket > 1 {
                ", twice over with the in-process built-in target"
            } else {
                ""
            },
            raised.now.hard,
            crate::os_limits::processes_for_descriptors(needed, limit),
        ));
    }
    warnings
}

fn run_dir(plan: &Plan, out: &Option<PathBuf>, started: SystemTime) -> Result<PathBuf, Error> {
    let dir = match out {
        Some(dir) => dir.clone(),
        None => {
            let stamp = humantime::format_rfc3339_seconds(started)
                .to_string()
                .replace(['-', ':'], "");
            let base = Path::new("reports").join(format!("{}-{stamp}", plan.name));
            let mut dir = base.clone();
            let mut n = 2;
            while dir.exists() {
                dir = PathBuf::from(format!("{}-{n}", base.display()));
                n += 1;
            }
            dir
        }
    };
    std::fs::create_dir_all(&dir).map_err(|e| Error::io("cannot create run directory", &dir, e))?;
    Ok(dir)
}

async fn resolve(url: &BaseUrl) -> Result<SocketAddr, Error> {
    let mut addrs = tokio::net::lookup_host((url.host.trim_matches(['[', ']']), url.port))
        .await
        .map_err(|e| Error::Run(format!("cannot resolve {url}: {e}")))?;
    let addr = addrs
        .next()
        .ok_or_else(|| Error::Run(format!("{url} resolves to no address")))?;
    // Fail before the run rather than report thousands of connect errors.
    tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| Error::Run(format!("cannot connect to {url} ({addr}): {e}")))?;
    Ok(addr)
}

async fn run_plan(
    plan: Arc<Plan>,
    workers: usize,
    opts: &RunOptions,
    limit_warnings: Vec<String>,
) -> Result<Outcome, Error> {
    let (builtin, endpoint, target_label) = match &plan.target {
        Target::Builtin(knobs) => {
            let listen: SocketAddr = ([127, 0, 0, 1], 0).into();
            let server = crate::target::start(listen, knobs.clone())
                .await
                .map_err(|e| Error::Run(format!("cannot start the built-in target: {e}")))?;
            let endpoint = Endpoint {
                addr: server.addr,
                authority: server.addr.to_string(),
                prefix: String::new(),
                sources: plan.source_addresses.clone(),
            };
            (Some(server), endpoint, "builtin".to_string())
        }
        Target::Url(url) => {
            let addr = resolve(url).await?;
            let endpoint = Endpoint {
                addr,
                authority: url.authority(),
                prefix: url.prefix.clone(),
                sources: plan.source_addresses.clone(),
            };
            (None, endpoint, url.to_string())
        }
    };

    if let Some(why) = unreachable_source(&plan.source_addresses, endpoint.addr) {
        if let Some(server) = builtin {
            server.shutdown().await;
        }
        return Err(Error::Usage(why));
    }
    let started_at = SystemTime::now();
    let dir = run_dir(&plan, &opts.out, started_at)?;
    let (state_tx, state_rx) = watch::channel(RunState::Running);
    // Counted before the clock starts: it walks the whole open timeline.
    let first_closed_index = crate::schedule::first_closed_index(&plan);
    let t0 = Instant::now() + LEAD;
    let shared = Arc::new(Shared {
        plan: plan.clone(),
        endpoint,
        registry: Registry::default(),
        identities: Identities::new(plan.seed, &plan.user.phone_prefix),
        t0,
        state: state_rx,
        first_closed_index,
    });
    let (tx, mut rx) = mpsc::unbounded_channel();
    let threads = worker::start(shared.clone(), workers, tx)
        .map_err(|e| Error::Run(format!("cannot start worker threads: {e}")))?;

    let hlog_path = dir.join(hlog::FILE_NAME);
    let file =
        std::fs::File::create(&hlog_path).map_err(|e| Error::io("cannot create", &hlog_path, e))?;
    let mut out = BufWriter::new(file);
    let mut serializer = V2DeflateSerializer::new();
    let mut log = hlog::begin(&mut out, &mut serializer, started_at + LEAD)
        .map_err(|e| Error::io("cannot write", &hlog_path, e))?;

    let mut collector = Collector::new(plan.clone(), workers);
    let mut progress = Progress::new(plan.duration(), opts.quiet);
    // The schedule's end, plus the slack of tokio's millisecond timers: an arrival due just
    // before the end is woken up to ~2 ms late and must still start, not count as dropped.
    let stop_at = tokio::time::Instant::from_std(t0 + plan.duration() + STOP_SLACK);
    let mut interrupted = false;
    let mut aborted: Option<String> = None;
    let mut write_error = None;
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let mut ctrl_c_armed = true;
    while !collector.all_finished() {
        let state = *state_tx.borrow();
        let next_state_at = match state {
            RunState::Running => Some(stop_at),
            RunState::Stopping => Some(stop_at + plan.drain),
            RunState::Ended | RunState::Aborted => None,
        };
        tokio::select! {
            snapshot = rx.recv() => {
                let Some(snapshot) = snapshot else { break };
                for iv in collector.ingest(snapshot) {
                    if write_error.is_none() {
                        write_error = hlog::write_interval(&mut log, &plan.catalog, &plan.regions, &iv).err();
                    }
                    progress.update(&status(&plan, &collector, &iv));
                    if aborted.is_none() && state == RunState::Running {
                        aborted = check_abort(&plan, &collector, &shared, iv.end, workers);
                        if aborted.is_some() {
                            state_tx.send_replace(RunState::Aborted);
                        }
                    }
                }
            }
            _ = tokio::time::sleep_until(next_state_at.unwrap_or(stop_at)), if next_state_at.is_some() => {
                let next = if state == RunState::Running { RunState::Stopping } else { RunState::Ended };
                state_tx.send_replace(next);
            }
            _ = &mut ctrl_c, if ctrl_c_armed => {
                ctrl_c_armed = false;
                interrupted = true;
                state_tx.send_replace(RunState::Aborted);
            }
        }
    }
    progress.finish();
    drop(log);
    drop(rx);
    for t in threads {
        let _ = t.join();
    }
    if let Some(e) = write_error {
        return Err(Error::io("cannot write", &hlog_path, e));
    }
    std::io::Write::flush(&mut out).map_err(|e| Error::io("cannot write", &hlog_path, e))?;
    drop(out);
    if let Some(server) = builtin {
        server.shutdown().await;
    }

    let mut summary = build_summary(
        &plan,
        &collector,
        &shared,
        started_at,
        target_label,
        workers,
    );
    summary.warnings.extend(limit_warnings);
    summary.thresholds = plan
        .thresholds
        .iter()
        .map(|t| crate::gate::evaluate(t, &summary))
        .collect();
    summary.verdict = if interrupted {
        Verdict::Interrupted
    } else if aborted.is_some() || summary.thresholds.iter().any(|t| !t.passed) {
        Verdict::Failed
    } else {
        Verdict::Passed
    };
    summary.aborted = aborted;
    crate::report::write_all(&dir, &summary, &collector.timeline)?;
    if !opts.quiet {
        print!("{}", crate::report::terminal::render(&summary));
        println!("report: {}", dir.display());
    }
    Ok(Outcome { dir, summary })
}

/// A source address that cannot reach the target (another address family, or loopback towards
/// a remote host) would fail every connection: say so before the run instead.
fn unreachable_source(sources: &[std::net::IpAddr], target: SocketAddr) -> Option<String> {
    let t = target.ip();
    sources.iter().find_map(|s| {
        let family = s.is_ipv4() != t.is_ipv4();
        let loopback = s.is_loopback() && !t.is_loopback();
        (family || loopback).then(|| {
            format!(
                "source address {s} cannot reach the target {target}{}: [run] source_addresses must \
                 be addresses from which the target is reachable",
                if family { " (another address family)" } else { " (a loopback address)" }
            )
        })
    })
}

/// Evaluates the thresholds marked `abort_on_fail` whose grace period is over against the totals
/// so far; returns why the run must stop, if it must.
fn check_abort(
    plan: &Plan,
    c: &Collector,
    shared: &Shared,
    elapsed: Duration,
    workers: usize,
) -> Option<String> {
    let due: Vec<_> = plan
        .thresholds
        .iter()
        .filter(|t| t.abort_on_fail && elapsed >= t.grace)
        .collect();
    if due.is_empty() {
        return None;
    }
    let summary = build_summary(plan, c, shared, SystemTime::now(), String::new(), workers);
    due.iter().find_map(|t| {
        let r = crate::gate::evaluate(t, &summary);
        (!r.passed).then(|| {
            format!(
                "threshold `{}` failed at {:.1}s (observed {}); abort_on_fail stopped the run",
                r.expr,
                elapsed.as_secs_f64(),
                r.observed.map_or("nothing".to_string(), |v| v.to_string())
            )
        })
    })
}

fn status<'a>(
    plan: &'a Plan,
    c: &Collector,
    iv: &crate::metrics::collector::Interval,
) -> Status<'a> {
    let phase = plan
        .phases
        .get(plan.phase_at(iv.start))
        .map_or("", |p| p.name.as_str());
    let phase = if iv.start >= plan.duration() {
        "drain"
    } else {
        phase
    };
    let seconds = iv.end.saturating_sub(iv.start).as_secs_f64().max(1e-3);
    // The first step (what every arriving user feels first) and message delivery.
    let first_step = MetricId(MetricId::FIRST_STEP);
    let p99 = [first_step, MetricId::MESSAGE_DELIVERY]
        .into_iter()
        .filter(|m| m.index() < c.totals.metrics.len() && !c.totals.metric(*m).latency.is_empty())
        .map(|m| {
            (
                plan.catalog.name(m),
                c.totals.metric(m).latency.value_at_quantile(0.99) as f64 / 1000.0,
            )
        })
        .collect();
    Status {
        phase,
        elapsed: iv.end,
        arrivals_per_s: iv
            .recorder
            .counter(crate::metrics::Counter::ArrivalsStarted) as f64
            / seconds,
        active_users: iv.active_users,
        open_connections: iv.open_connections,
        errors: c.totals.metrics.iter().map(|m| m.error_count()).sum(),
        p99,
    }
}

fn build_summary(
    plan: &Plan,
    c: &Collector,
    shared: &Shared,
    started_at: SystemTime,
    target: String,
    workers: usize,
) -> Summary {
    let duration_s = c.timeline.points.last().map_or(0.0, |p| p.end_s);
    let delivery = shared.registry.delivery();
    let phases = plan
        .phases
        .iter()
        .zip(&c.phases)
        .map(|(p, r)| {
            // The last phase also holds the drain that follows it.
            let end_s = if p.end() == plan.duration() {
                duration_s.max(p.end().as_secs_f64())
            } else {
                p.end().as_secs_f64()
            };
            let seconds = end_s - p.start.as_secs_f64();
            (
                p.name.clone(),
                summary::Phase {
                    start_s: p.start.as_secs_f64(),
                    end_s,
                    metrics: summary::metrics_of(r, &plan.catalog, seconds),
                    messages: summary::messages_of(r, None),
                    contacts: summary::contacts_of(r),
                    arrivals: summary::arrivals_of(r),
                },
            )
        })
        .collect();
    let regions = plan
        .regions
        .list
        .iter()
        .zip(&c.regions)
        .map(|(region, r)| {
            let ms = |d: Duration| (d.as_secs_f64() * 1e6).round() / 1000.0;
            (
                region.name.clone(),
                summary::Region {
                    share: region.share,
                    latency_ms: ms(region.latency),
                    jitter_ms: ms(region.jitter),
                    // Distinct users: a returning user's later visits are started arrivals too.
                    users: r
                        .counter(crate::metrics::Counter::ArrivalsStarted)
                        .saturating_sub(r.counter(crate::metrics::Counter::UsersReturned)),
                    metrics: summary::metrics_of(r, &plan.catalog, duration_s),
                    messages: summary::messages_of(r, None),
                    contacts: summary::contacts_of(r),
                    arrivals: summary::arrivals_of(r),
                },
            )
        })
        .collect();
    let (cpu_seconds, peak_rss_mb) = crate::resource_usage::process();
    let mut s = Summary {
        schema: summary::SCHEMA.to_string(),
        scenario: plan.name.clone(),
        description: plan.description.clone(),
        seed: plan.seed,
        target,
        inrush_version: env!("CARGO_PKG_VERSION").to_string(),
        started_at: humantime::format_rfc3339_millis(started_at + LEAD).to_string(),
        duration_s,
        verdict: Verdict::Passed,
        aborted: None,
        metrics: summary::metrics_of(&c.totals, &plan.catalog, duration_s),
        messages: summary::messages_of(&c.totals, Some(delivery)),
        contacts: summary::contacts_of(&c.totals),
        arrivals: summary::arrivals_of(&c.totals),
        counts: summary::counts_of(&c.totals, &plan.catalog),
        retries: summary::Retries::default(),
        phases,
        regions,
        thresholds: Vec::new(),
        generator: summary::Generator {
            workers,
            cpu_seconds: (cpu_seconds * 1000.0).round() / 1000.0,
            peak_rss_mb: (peak_rss_mb * 10.0).round() / 10.0,
            target_in_process: matches!(plan.target, Target::Builtin(_)),
            host: crate::resource_usage::Host::current(),
            worker_cpu_max: summary::WorkerCpu::of(&c.timeline),
        },
        warnings: Vec::new(),
    };
    s.retries = summary::Retries::of(&s.metrics);
    s.warnings = summary::warnings(&s);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_source_address_must_reach_the_target() {
        let ip = |s: &str| s.parse::<std::net::IpAddr>().expect("ip");
        let local: SocketAddr = "127.0.0.1:80".parse().expect("addr");
        let remote: SocketAddr = "10.1.2.3:80".parse().expect("addr");
        assert!(unreachable_source(&[ip("127.0.0.2")], local).is_none());
        assert!(unreachable_source(&[], remote).is_none());
        let why = unreachable_source(&[ip("127.0.0.2")], remote).expect("loopback to remote");
        assert!(
            why.contains("127.0.0.2") && why.contains("loopback"),
            "{why}"
        );
        assert!(unreachable_source(&[ip("::1")], local).is_some());
    }
}
