//! `inrush run`: start the target if it is built in, start the swarm, collect every interval,
//! and write the run directory. The only place where the pieces meet.

mod directory;
mod limits;
mod live;
mod signals;
pub mod start;
mod summary;
mod thresholds;
mod worker;

pub use directory::{default_dir, fresh};
pub use signals::Interrupt;
pub use worker::MAX_WORKERS;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::{mpsc, watch};

use crate::clients::tls::Tls;
use crate::clients::Endpoint;
use crate::compiled::{BaseUrl, Plan, Target};
use crate::error::Error;
use crate::metrics::collector::{Collector, PhaseWindow, RunLayout};
use crate::report::live::hlog::HlogFile;
use crate::report::live::progress::Progress;
use crate::report::live::{IntervalSink, IntervalView};
use crate::report::summary::Summary;
use crate::swarm::trace::Tracer;
use crate::swarm::{identity::Identities, Registry, RunState, Shared};
use summary::build_summary;

#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub scenario: PathBuf,
    /// Overrides the scenario's target.
    pub target: Option<String>,
    /// The run directory; default `reports/<scenario>-<UTC timestamp>/`.
    pub out: Option<PathBuf>,
    /// What the command line adds to the scenario: a seed, `-e` values, scales.
    pub inputs: crate::compiled::inputs::Inputs,
    /// Generator threads; default: one per CPU.
    pub workers: Option<usize>,
    /// Extra thresholds from the command line, e.g. `verify.p99 < 250ms`.
    pub thresholds: Vec<String>,
    /// A generator that could not keep up is a warning, not an inconclusive verdict.
    pub accept_overload: bool,
    /// No progress output and no table: only a verdict that is not a pass, and why.
    pub quiet: bool,
    /// Not even that: a run inside a command that says what matters itself (find-capacity's
    /// steps, each judged on the search's own line).
    pub silent: bool,
    /// Generator memory the run may plan for, bytes (`--memory-budget`); default: half of the
    /// memory available at the start (see `compiled::sizing`).
    pub memory_budget: Option<u64>,
    /// Write into `out` even when it exists and is not empty.
    pub force: bool,
    /// `--trace N`: write every request, response and frame of N sampled users to
    /// `trace.jsonl` (see `swarm::trace`).
    pub trace: Option<u64>,
    /// Live outputs besides the progress display.
    pub live: LiveOptions,
    /// The stop signals, when the caller watches them across several runs (`find-capacity`);
    /// `None`: the run watches them itself.
    pub interrupt: Option<Interrupt>,
    /// `--start-at`: the schedule's time zero at this wall-clock time (waited for; a time
    /// already past starts the run at once, late, and says so). See `run::start`.
    pub start_at: Option<SystemTime>,
}

/// `--stream`, `--metrics`, `--dashboard`, `--hold`: the run seen while it goes on (docs/live.md).
#[derive(Debug, Clone, Default)]
pub struct LiveOptions {
    /// JSON lines to this file, or stdout for `-`.
    pub stream: Option<PathBuf>,
    /// A Prometheus scrape endpoint on this address.
    pub metrics: Option<String>,
    /// A live web page on this address.
    pub dashboard: Option<String>,
    /// How long the endpoint and the dashboard stay up after the run.
    pub hold: Option<Duration>,
}

#[derive(Debug)]
pub struct Outcome {
    pub dir: PathBuf,
    pub summary: Summary,
    /// The schedule's time zero (`started_at`) on this process's monotonic clock: every
    /// intended start is an offset from it. `None` when nothing was sent.
    pub t0: Option<Instant>,
}

/// Time between handing the workers the schedule (they are already running and waiting) and its
/// start: what waking a parked thread takes, with room for a busy machine.
const LEAD: Duration = Duration::from_millis(2);

pub fn run(opts: &RunOptions) -> Result<Outcome, Error> {
    let plan = crate::compiled::load_with(&opts.scenario, &opts.inputs)?;
    run_plan(plan, opts)
}

/// [`run`] for a plan already compiled (and perhaps reshaped, as `find-capacity` does per
/// step); `opts.scenario` and `opts.inputs` are not read again.
pub fn run_plan(mut plan: Plan, opts: &RunOptions) -> Result<Outcome, Error> {
    if let (Some(out), false) = (&opts.out, opts.force) {
        directory::fresh(out)?;
    }
    if let Some(at) = opts.start_at {
        start::check(at)?;
    }
    let workers = worker::count(opts.workers)?;
    if let Some(url) = &opts.target {
        plan.retarget(url)?;
    }
    let phases = plan.scopes();
    for expr in &opts.thresholds {
        let t = crate::compiled::threshold::parse(expr, &phases, &plan.catalog)
            .map_err(|e| Error::Usage(format!("--threshold '{expr}': {e}")))?;
        plan.thresholds.push(t);
    }
    let budget = opts
        .memory_budget
        .or_else(crate::compiled::sizing::default_budget);
    let memory_cap = match budget {
        Some(b) => crate::compiled::sizing::fit(&mut plan, b)?.default_cap,
        None => None,
    };
    let limit_warnings = limits::check(&plan);
    if !opts.quiet {
        for w in &limit_warnings {
            crate::report::console::eprintln(&format!("warning: {w}"));
        }
        // Said before any traffic; the summary says it again (`tls.verified`, its warnings).
        if plan.target.speaks_tls() && plan.tls.insecure {
            crate::report::console::eprintln(&format!(
                "warning: {}",
                crate::report::summary::UNVERIFIED_TLS
            ));
        }
    }
    // Each worker holds a share of a connection pool: a pool of N runs on at most N workers.
    let workers = plan.connections.workers(workers);
    // Before the run's runtime is built: see `Interrupt::install`.
    let interrupt = match &opts.interrupt {
        Some(i) => i.clone(),
        None => Interrupt::install()?,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("inrush-control")
        .enable_all()
        .build()
        .map_err(|e| Error::Run(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(run_swarm(
        Arc::new(plan),
        workers,
        opts,
        interrupt,
        limit_warnings,
        memory_cap,
    ))
}

/// The target's address, once something answers a connect there; else why not.
async fn resolve(url: &BaseUrl) -> Result<SocketAddr, String> {
    let mut addrs = tokio::net::lookup_host((url.host.trim_matches(['[', ']']), url.port))
        .await
        .map_err(|e| format!("cannot resolve {url}: {e}"))?;
    let addr = addrs
        .next()
        .ok_or_else(|| format!("{url} resolves to no address"))?;
    // Stop before the run rather than report thousands of connect errors.
    tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("cannot connect to {url} ({addr}): {e}"))?;
    Ok(addr)
}

/// Why the target could not be started or reached.
enum NoTarget {
    /// Nothing answers at the target's address: the run stops before it starts, with a report.
    Unreachable(String),
    Failed(Error),
}

/// The target the run drives: the built-in one (started here, stopped at the end) or a URL.
struct TargetHandle {
    builtin: Option<crate::target::RunningTarget>,
    endpoint: Endpoint,
    /// How the summary names it.
    label: String,
}

impl TargetHandle {
    async fn start(plan: &Plan) -> Result<Self, NoTarget> {
        let sources = plan.source_addresses.clone();
        let handle = match &plan.target {
            Target::Builtin(knobs) => {
                let listen: SocketAddr = ([127, 0, 0, 1], 0).into();
                let server = crate::target::start(listen, knobs.clone())
                    .await
                    .map_err(|e| {
                        NoTarget::Failed(Error::Run(format!(
                            "cannot start the built-in target: {e}"
                        )))
                    })?;
                let endpoint = Endpoint {
                    sources,
                    ..Endpoint::plain(server.addr)
                };
                TargetHandle {
                    builtin: Some(server),
                    endpoint,
                    label: "builtin".to_string(),
                }
            }
            Target::Url(url) => {
                let tls = match url.tls {
                    true => Some(Arc::new(Tls::new(&plan.tls, &url.host).map_err(|e| {
                        NoTarget::Failed(Error::Usage(format!("[target] TLS: {e}")))
                    })?)),
                    false => None,
                };
                let addr = resolve(url).await.map_err(NoTarget::Unreachable)?;
                let endpoint =
                    Endpoint::new(addr, url.authority(), url.prefix.clone(), sources, tls);
                TargetHandle {
                    builtin: None,
                    endpoint,
                    label: url.to_string(),
                }
            }
        };
        if let Some(why) = unreachable_source(&plan.source_addresses, handle.endpoint.addr) {
            handle.stop().await;
            return Err(NoTarget::Failed(Error::Usage(why)));
        }
        Ok(handle)
    }

    async fn stop(self) {
        if let Some(server) = self.builtin {
            server.shutdown().await;
        }
    }
}

/// What the run loop reads besides the data: the run's state to move on, the workers'
/// snapshots, the stop signals.
struct Control {
    state: watch::Sender<RunState>,
    snapshots: mpsc::UnboundedReceiver<crate::metrics::collector::Snapshot>,
    interrupt: Interrupt,
}

/// How the run loop ended.
#[derive(Debug, Default)]
struct Ending {
    /// Ctrl-C, SIGTERM or SIGHUP.
    interrupted: bool,
    /// Why the run stopped early: an `abort_on_fail` threshold, a signal.
    aborted: Option<String>,
}

/// Starts the target and the swarm, feeds every interval to the live sinks until every worker
/// is done, then writes the run directory.
async fn run_swarm(
    plan: Arc<Plan>,
    workers: usize,
    opts: &RunOptions,
    interrupt: Interrupt,
    limit_warnings: Vec<String>,
    memory_cap: Option<u64>,
) -> Result<Outcome, Error> {
    let mut live = live::Live::open(&opts.live, &plan, opts.quiet).await?;
    let target = match TargetHandle::start(&plan).await {
        Ok(target) => target,
        Err(NoTarget::Unreachable(why)) => {
            return unreachable(&plan, workers, opts, limit_warnings, why);
        }
        Err(NoTarget::Failed(e)) => return Err(e),
    };
    let dir = directory::run_dir(&plan, &opts.out, SystemTime::now())?;
    let (state_tx, state_rx) = watch::channel(RunState::Running);
    // Counted before the clock starts: it walks the whole open timeline.
    let first_closed_index = crate::schedule::first_closed_index(&plan);
    let trace = match opts.trace.filter(|&n| n > 0) {
        Some(n) => {
            let path = dir.join(crate::report::files::TRACE);
            // A shard's users are every N-th index: its first n lie within the first n·N.
            let users = n.saturating_mul(plan.shard.count);
            let t = Tracer::create(&path, users, first_closed_index, &plan.flows.secrets)
                .map_err(|e| Error::io("cannot create the trace", &path, e))?;
            Some(t)
        }
        None => None,
    };
    let (tx, rx) = mpsc::unbounded_channel();
    let ready = worker::start(workers, tx)
        .map_err(|e| Error::Run(format!("cannot start worker threads: {e}")))?;
    // The schedule starts once every worker runs (at --start-at, when given): the clock of the
    // run, its wall-clock time too (`started_at` is LEAD before time zero, as without a wait).
    let zero = tokio::select! {
        z = start::zero(opts.start_at, LEAD) => z,
        // Ctrl-C while waiting for --start-at: start now, and the run loop stops it at once
        // (verdict interrupted, the report written) instead of waiting out the start time.
        () = interrupt.beyond(0) => start::zero(None, LEAD).await,
    };
    if let (Some(w), false) = (&zero.warning, opts.quiet) {
        crate::report::console::eprintln(&format!("warning: {w}"));
    }
    let t0 = zero.t0;
    let started_at = zero.wall - LEAD;
    let shared = Arc::new(Shared {
        plan: plan.clone(),
        endpoint: target.endpoint.clone(),
        registry: Registry::default(),
        identities: Identities::new(plan.seed, &plan.user.phone_prefix),
        t0,
        state: state_rx,
        first_closed_index,
        secrets: crate::swarm::secrets::Secrets::new(&plan.flows.secrets),
        trace,
    });
    let threads = ready.go(&shared);

    let mut hlog = HlogFile::create(&dir)?;
    let mut collector = Collector::new(layout(&plan), workers);
    // A hidden file beside the run's own, removed once the report has read it back.
    collector.spool_to(crate::metrics::timeline::Spool::create(
        &dir.join(".timeline.spool.jsonl"),
    )?);
    // What a live output (--stream, --metrics, --dashboard) could not do: said in the
    // summary's warnings. A reader that went away must not cost the run its report.
    let mut output_failures = Vec::new();
    let ending = {
        let mut sinks = live_sinks(&plan, &mut hlog, started_at + LEAD, opts.quiet)?;
        let own = sinks.len();
        let regions: Vec<String> = plan.regions.names().map(String::from).collect();
        sinks.extend(live.sinks(&regions));
        let ending = collect(
            &plan,
            &shared,
            workers,
            &mut collector,
            &mut sinks,
            Control {
                state: state_tx,
                snapshots: rx,
                interrupt: interrupt.clone(),
            },
        )
        .await;
        for t in threads {
            let _ = t.join();
        }
        // Every sink is finished; the first error of the run's own files (the hlog) is the
        // run's, a live output's is a warning.
        let mut finished = Ok(());
        for (i, sink) in sinks.iter_mut().enumerate() {
            match sink.finish() {
                Err(e) if i >= own => output_failures.push(e.to_string()),
                r => finished = finished.and(r),
            }
        }
        finished?;
        if let Some(t) = &shared.trace {
            let path = dir.join(crate::report::files::TRACE);
            t.finish()
                .map_err(|e| Error::io("cannot write the trace", &path, e))?;
        }
        ending
    };
    hlog.close()?;
    let target_label = target.label.clone();
    target.stop().await;

    let mut summary = build_summary(
        &plan,
        &collector,
        &shared.registry,
        started_at,
        target_label,
        workers,
    );
    summary.warnings.extend(limit_warnings);
    summary.warnings.extend(output_failures);
    summary.warnings.extend(zero.warning);
    summary.start = Some(zero.start);
    let unnamed = crate::compiled::flow::compile::UNNAMED_ERRORS;
    if let Some(&n) = summary.counts.get(unnamed).filter(|&&n| n > 0) {
        summary.warnings.push(format!(
            "{n} unnamed requests failed (untimed steps: counted in counts.{unnamed}, not in any \
             metric); give them a name, or run with --trace N to see why"
        ));
    }
    if let Some(cap) = memory_cap.filter(|_| summary.arrivals.dropped_by.max_users > 0) {
        summary.warnings.push(format!(
            "{} arrivals were dropped because {cap} users were active: the scenario sets no \
             max_users, so the run kept to what its memory budget holds ({} KiB per user; \
             --memory-budget raises it). The generator could not serve this load alone",
            summary.arrivals.dropped_by.max_users,
            crate::compiled::sizing::BYTES_PER_USER / 1024,
        ));
    }
    summary
        .warnings
        .extend(summary::unaccounted(&summary.arrivals));
    summary.measurement.overload_accepted = opts.accept_overload;
    set_verdict(&mut summary, &plan, ending);
    let timeline = collector.take_timeline()?;
    crate::report::write_all(&dir, &summary, &timeline)?;
    if !opts.silent {
        show(&summary, &dir, opts.quiet || live.stream_on_stdout);
    }
    live.after(&summary, &dir, &interrupt).await;
    Ok(Outcome {
        dir,
        summary,
        t0: Some(t0),
    })
}

/// The target could not be reached at the start: nothing was sent, yet a CI job that meant to
/// run gets what any stopped run gives it — a run directory whose summary, junit.xml and page
/// say why (verdict `interrupted`, exit code 3) — instead of a bare error.
fn unreachable(
    plan: &Plan,
    workers: usize,
    opts: &RunOptions,
    limit_warnings: Vec<String>,
    why: String,
) -> Result<Outcome, Error> {
    let started_at = SystemTime::now();
    let dir = directory::run_dir(plan, &opts.out, started_at)?;
    // An hlog with its header and no interval: the run directory stays readable by `report`.
    let mut hlog = HlogFile::create(&dir)?;
    let regions = plan.regions.names().map(String::from).collect();
    hlog.sink(started_at + LEAD, regions)?.finish()?;
    hlog.close()?;
    let collector = Collector::new(layout(plan), workers);
    let label = match &plan.target {
        Target::Url(url) => url.to_string(),
        Target::Builtin(_) => "builtin".to_string(),
    };
    let mut summary = build_summary(
        plan,
        &collector,
        &Registry::default(),
        started_at,
        label,
        workers,
    );
    summary.warnings.extend(limit_warnings);
    let ending = Ending {
        interrupted: true,
        aborted: Some(format!(
            "the target could not be reached at the start: {why}; nothing was sent"
        )),
    };
    set_verdict(&mut summary, plan, ending);
    crate::report::write_all(&dir, &summary, &collector.timeline)?;
    crate::report::console::eprintln(&format!("error: {why}; nothing was sent"));
    if !opts.silent {
        show(&summary, &dir, opts.quiet);
    }
    Ok(Outcome {
        dir,
        summary,
        t0: None,
    })
}

/// Evaluates the plan's thresholds against the finished run and sets the verdict.
fn set_verdict(summary: &mut Summary, plan: &Plan, ending: Ending) {
    summary.aborted = ending.aborted;
    crate::gate::judge(summary, &plan.thresholds, ending.interrupted);
}

/// Every live consumer of the run's intervals, in the order they see each one. A new live
/// output (a Prometheus endpoint, a dashboard) is one more line here.
fn live_sinks<'a>(
    plan: &Plan,
    hlog: &'a mut HlogFile,
    started_at: SystemTime,
    quiet: bool,
) -> Result<Vec<Box<dyn IntervalSink + 'a>>, Error> {
    let regions = plan.regions.names().map(String::from).collect();
    Ok(vec![
        Box::new(hlog.sink(started_at, regions)?),
        Box::new(Progress::new(plan.duration(), quiet)),
    ])
}

/// What the collector needs of the plan, as plain data.
fn layout(plan: &Plan) -> RunLayout {
    RunLayout {
        catalog: plan.catalog.clone(),
        phases: plan
            .phases
            .iter()
            .map(|p| PhaseWindow {
                name: p.name.clone(),
                start: p.start,
                end: p.end(),
            })
            .collect(),
        regions: plan.regions.list.len(),
    }
}

/// The run loop: merges the workers' snapshots into intervals and hands each to the sinks,
/// moves the run through its states (running, stopping, ended) on time, aborts it when an
/// `abort_on_fail` threshold fails, and stops it on Ctrl-C, SIGTERM or SIGHUP. Returns when every worker is done.
async fn collect(
    plan: &Plan,
    shared: &Shared,
    workers: usize,
    collector: &mut Collector,
    sinks: &mut [Box<dyn IntervalSink + '_>],
    control: Control,
) -> Ending {
    let Control {
        state: state_tx,
        snapshots: mut rx,
        interrupt,
    } = control;
    // The schedule's end, plus the slack of tokio's millisecond timers: an arrival due just
    // before the end is woken up to ~2 ms late and must still start, not count as dropped.
    let stop_at =
        tokio::time::Instant::from_std(shared.t0 + plan.duration() + crate::swarm::STOP_SLACK);
    let mut ending = Ending::default();
    let so_far = !plan.thresholds.is_empty() && sinks.iter().any(|s| s.wants_thresholds());
    // A signal before the loop (while the run started) counts too.
    let stop_signal = interrupt.beyond(0);
    tokio::pin!(stop_signal);
    let mut signal_armed = true;
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
                    let thresholds = if so_far {
                        thresholds::so_far(plan, collector, workers)
                    } else {
                        Vec::new()
                    };
                    let view = IntervalView {
                        thresholds: &thresholds,
                        interval: &iv,
                        totals: &collector.totals,
                        catalog: &plan.catalog,
                        phase: phase_name(plan, iv.start),
                        latency: &Default::default(),
                    };
                    for sink in sinks.iter_mut() {
                        sink.interval(&view);
                    }
                    if ending.aborted.is_none() && state == RunState::Running {
                        ending.aborted = thresholds::check_abort(plan, collector, iv.end, workers);
                        if ending.aborted.is_some() {
                            state_tx.send_replace(RunState::Aborted);
                        }
                    }
                }
            }
            _ = tokio::time::sleep_until(next_state_at.unwrap_or(stop_at)), if next_state_at.is_some() => {
                let next = if state == RunState::Running { RunState::Stopping } else { RunState::Ended };
                state_tx.send_replace(next);
            }
            _ = &mut stop_signal, if signal_armed => {
                signal_armed = false;
                ending.interrupted = true;
                // A threshold's abort that came first stays the reason.
                if ending.aborted.is_none() {
                    let at = shared.t0.elapsed().as_secs_f64();
                    ending.aborted = Some(format!(
                        "stopped by {} at {at:.1}s",
                        interrupt.last().unwrap_or("a stop signal")
                    ));
                }
                state_tx.send_replace(RunState::Aborted);
            }
        }
    }
    ending
}

/// The phase an interval starting at `start` lies in, or "drain" after the schedule.
fn phase_name(plan: &Plan, start: Duration) -> &str {
    if start >= plan.duration() {
        return "drain";
    }
    plan.phases
        .get(plan.phase_at(start))
        .map_or("", |p| p.name.as_str())
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

/// The end of a run on the terminal: the summary table, or with `--quiet` only a verdict that is
/// not a pass and why, on stderr (a CI log must say why a job failed).
fn show(summary: &Summary, dir: &std::path::Path, quiet: bool) {
    if !quiet {
        crate::report::console::print(&crate::report::terminal::render(summary));
        crate::report::console::println(&format!("report: {}", dir.display()));
    } else if summary.verdict != crate::report::summary::Verdict::Passed {
        crate::report::console::eprint(&crate::report::terminal::verdict(summary));
        crate::report::console::eprintln(&format!("report: {}", dir.display()));
    }
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
