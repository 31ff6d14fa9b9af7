//! Helpers shared by the integration tests: scenarios that show only what a test is about,
//! temporary scenario files and quiet runs.
#![allow(dead_code)]

pub mod html;
pub mod tls;

use std::fmt;
use std::path::PathBuf;

use inrush::run::{run, Outcome, RunOptions};

/// Runs a test server's `serve` on a current-thread runtime of its own thread, for the rest of
/// the test binary's life, and returns what `serve` hands back through its sender once it
/// listens (its address, its counters).
pub fn on_own_thread<T, F, Fut>(serve: F) -> T
where
    T: Send + 'static,
    F: FnOnce(std::sync::mpsc::Sender<T>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()>,
{
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(serve(tx));
    });
    rx.recv().expect("the test server starts")
}

/// A loopback TCP server on an OS-assigned port, on a thread of its own ([`on_own_thread`]):
/// every accepted connection is handed to `connection` as a task of its own. Returns the address.
pub fn serve_each<F, Fut>(connection: F) -> std::net::SocketAddr
where
    F: Fn(tokio::net::TcpStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + 'static,
{
    on_own_thread(move |tx| async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        tx.send(listener.local_addr().expect("address"))
            .expect("send address");
        let local = tokio::task::LocalSet::new();
        local
            .run_until(async move {
                while let Ok((stream, _)) = listener.accept().await {
                    tokio::task::spawn_local(connection(stream));
                }
            })
            .await;
    })
}

/// Reads a request head from a test server's connection; `None` when the client closes first
/// (the run's reachability probe connects and closes) or sends over 16 KiB.
pub async fn request_head(stream: &mut tokio::net::TcpStream) -> Option<String> {
    use tokio::io::AsyncReadExt;
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read_u8().await {
            Ok(b) if head.len() < 16 * 1024 => head.push(b),
            _ => return None,
        }
    }
    Some(String::from_utf8_lossy(&head).into_owned())
}

/// How many times `on_schedule` runs an attempt at most.
pub const SCHEDULE_ATTEMPTS: usize = 3;

/// A stall of the generator this long (its schedule lag or its loop lag, as the run measured
/// them) means the machine held it back: more than a loaded 2-core machine's scheduling
/// (a few milliseconds), and enough to push a user of a test's short schedule past its end.
pub const HELD_BACK_MS: f64 = 50.0;

/// Why the machine held the run's generator back, from the run's own figures: arrivals dropped
/// behind schedule, or a schedule lag or loop lag of [`HELD_BACK_MS`] or more.
pub fn held_back(s: &inrush::report::summary::Summary) -> Option<String> {
    let a = &s.arrivals;
    let schedule = a.schedule_lag_ms.as_ref().map_or(0.0, |l| l.max);
    let looped = s.generator.loop_lag_ms.as_ref().map_or(0.0, |l| l.max);
    (a.dropped_by.behind_schedule > 0 || schedule >= HELD_BACK_MS || looped >= HELD_BACK_MS).then(
        || {
            format!(
                "{} of {} arrivals dropped behind schedule, schedule lag up to {schedule} ms, \
                 loop lag up to {looped} ms",
                a.dropped_by.behind_schedule, a.planned
            )
        },
    )
}

/// Runs `attempt` (which starts whatever servers it counts on, and runs its scenario) until the
/// machine did not hold the generator back ([`held_back`]), at most [`SCHEDULE_ATTEMPTS`] times,
/// and returns the last attempt.
///
/// For tests whose point is not timing but which count on every planned user starting and
/// finishing its flow within a schedule of a few hundred milliseconds. When the machine stops
/// the worker thread long enough, inrush rightly drops arrivals behind schedule, or cuts off
/// users the stall pushed past the schedule's end, and says so; such a run proves nothing about
/// what the test checks. A CI machine can do that: one run saw a test binary take 8.7 s instead
/// of 1 s, and `SIGSTOP`s of 350 ms reproduce it. So such a run is said on stderr and repeated
/// from scratch, with fresh servers so that no count carries over; the first attempt that was
/// not held back is returned, or the last one whatever it shows, for the test to judge.
pub fn on_schedule<T>(attempt: impl FnMut() -> (Outcome, T)) -> (Outcome, T) {
    until_not_held_back(attempt, |(outcome, _)| held_back(&outcome.summary))
}

/// As [`on_schedule`], also repeated when `also` finds something else the machine held back
/// (a [`ProbedTarget`] the attempt returns).
pub fn on_schedule_and<T>(
    attempt: impl FnMut() -> (Outcome, T),
    also: impl Fn(&T) -> Option<String>,
) -> (Outcome, T) {
    until_not_held_back(attempt, |(outcome, t)| {
        held_back(&outcome.summary).or_else(|| also(t))
    })
}

/// The built-in target, started by the test rather than by the run, on a current-thread
/// runtime of its own thread, next to a probe on that same thread: a tick every 5 ms that
/// records how late it ran. Everything the target does (its stalls' ends, its responses) waits
/// for that one thread, so the probe's lateness bounds how long the machine held the target
/// back, which the run's figures (the generator's) cannot show. It stops when dropped.
pub struct ProbedTarget {
    pub addr: std::net::SocketAddr,
    late_us: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl ProbedTarget {
    pub fn start(knobs: inrush::target::Knobs) -> Self {
        use std::sync::atomic::Ordering::Relaxed;
        let late_us = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let probe = late_us.clone();
        let addr = on_own_thread(move |tx| async move {
            let loopback = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
            let server = inrush::target::start(loopback, knobs)
                .await
                .expect("the built-in target starts");
            tx.send(server.addr).expect("send address");
            // The test holds the other reference; once it drops it, the thread ends.
            while std::sync::Arc::strong_count(&probe) > 1 {
                let due = tokio::time::Instant::now() + std::time::Duration::from_millis(5);
                tokio::time::sleep_until(due).await;
                let late = u64::try_from(due.elapsed().as_micros()).unwrap_or(u64::MAX);
                probe.fetch_max(late, Relaxed);
            }
            drop(server);
        });
        ProbedTarget { addr, late_us }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Why the machine held the target back: its probe ran [`HELD_BACK_MS`] or more late.
    pub fn held_back(&self) -> Option<String> {
        let late_ms = self.late_us.load(std::sync::atomic::Ordering::Relaxed) as f64 / 1000.0;
        (late_ms >= HELD_BACK_MS)
            .then(|| format!("the target's thread ran up to {late_ms} ms late"))
    }
}

/// As [`on_schedule`], for an attempt of several runs side by side (all of them at once, so a
/// stall of the machine holds them all back): repeated while any of them was held back.
pub fn all_on_schedule<T>(attempt: impl FnMut() -> (Vec<Outcome>, T)) -> (Vec<Outcome>, T) {
    until_not_held_back(attempt, |(outcomes, _)| {
        outcomes.iter().find_map(|o| held_back(&o.summary))
    })
}

fn until_not_held_back<T>(mut attempt: impl FnMut() -> T, why: impl Fn(&T) -> Option<String>) -> T {
    for n in 1.. {
        let result = attempt();
        match why(&result) {
            Some(why) if n < SCHEDULE_ATTEMPTS => {
                eprintln!(
                    "attempt {n} of {SCHEDULE_ATTEMPTS}: the machine held the run back \
                     ({why}); running it again"
                );
            }
            _ => return result,
        }
    }
    unreachable!("the loop returns at its last attempt")
}

/// `run_quiet` of `scenario` (the built-in target, or servers that count nothing) in a fresh
/// scratch directory, repeated as [`on_schedule`] says; its run is in `scratch.out("run")`.
pub fn run_quiet_on_schedule(scenario: &Scenario) -> (Outcome, Scratch) {
    on_schedule(|| {
        let scratch = Scratch::new();
        let file = scratch.scenario("scenario", scenario);
        (run_quiet(file, scratch.out("run"), None), scratch)
    })
}

pub struct Scratch {
    pub dir: tempfile::TempDir,
}

impl Scratch {
    pub fn new() -> Self {
        Scratch {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    /// Writes `text` (a `Scenario` or literal TOML) to `<name>.toml` in the scratch directory.
    pub fn scenario(&self, name: &str, text: impl fmt::Display) -> PathBuf {
        let path = self.dir.path().join(format!("{name}.toml"));
        std::fs::write(&path, text.to_string()).expect("write scenario");
        path
    }

    pub fn out(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// Runs a scenario quietly into `out`, with one worker thread (tests run side by side), and checks
/// that every arrival of the run is accounted for (`assert_arrivals_accounted`). The overload is
/// accepted (`--accept-overload`): these tests judge the target's figures on a shared 2-core
/// machine whose load can hold a worker back for milliseconds at any time, so the verdict
/// follows their thresholds; `run_judged` leaves the generator's own verdict in.
pub fn run_quiet(scenario: PathBuf, out: PathBuf, target: Option<String>) -> Outcome {
    run_checked(scenario, out, target, true)
}

/// As `run_quiet`, with the generator's verdict: `inconclusive` when it could not keep up.
pub fn run_judged(scenario: PathBuf, out: PathBuf) -> Outcome {
    run_checked(scenario, out, None, false)
}

/// As `run_quiet` (overload accepted), on `workers` worker threads.
pub fn run_on(workers: usize, scenario: PathBuf, out: PathBuf) -> Outcome {
    run_checked_on(workers, scenario, out, None, true)
}

fn run_checked(
    scenario: PathBuf,
    out: PathBuf,
    target: Option<String>,
    accept_overload: bool,
) -> Outcome {
    run_checked_on(1, scenario, out, target, accept_overload)
}

fn run_checked_on(
    workers: usize,
    scenario: PathBuf,
    out: PathBuf,
    target: Option<String>,
    accept_overload: bool,
) -> Outcome {
    let outcome = run(&RunOptions {
        scenario,
        target,
        out: Some(out.clone()),
        inputs: Default::default(),
        workers: Some(workers),
        thresholds: Vec::new(),
        accept_overload,
        quiet: true,
        silent: false,
        memory_budget: None,
        force: false,
        trace: None,
        live: Default::default(),
        interrupt: None,
        start_at: None,
    })
    .expect("run completes");
    assert_arrivals_accounted(&outcome.summary, &out);
    outcome
}

/// A scenario file for a test that gives only what it is about — its `[load]`, `[user]`,
/// flows, thresholds, the target's knobs — as TOML in the scenario language (README,
/// docs/scenario-language.md), and leaves the rest to these defaults:
///
/// - `name` and `seed` are always given: the seed fixes the arrival timeline and every user's
///   identity and draws, so what a test counts repeats run after run.
/// - `[target] builtin = {}`: the built-in messenger, in-process on an OS-assigned loopback
///   port, so a run needs no setup and no network. `builtin(knobs)` sets its knobs, `url(url)`
///   points at a server the test started itself.
/// - `[run] drain = "0s"`: the run ends with its schedule. A test that counts messages still
///   in flight at the end (deliveries, losses) sets a drain, and so says that it does.
/// - `[run] timeout`: the program's own (10 s) unless `timeout(..)` sets one: a timeout only
///   matters where an operation is slow or a message unacknowledged, and a test that relies on
///   one states it. More `[run]` keys (retry, reconnect, source addresses) go through `run(..)`.
///
/// The load is always the test's own (`[load]` in `with(..)`): rates, durations and
/// `arrivals = "uniform"` are what make the counts a test asserts exact.
///
/// `with(..)` appends whole tables verbatim (`[load]`, `[user]`, `[[flows.f.steps]]`,
/// `[[cohorts]]`, `[[regions]]`, `[feeders.x]`, `[thresholds]`), in the order given; `[run]`
/// comes before them, so they must not open it again. `Display` gives the file's text.
pub struct Scenario {
    name: String,
    description: Option<String>,
    seed: u64,
    target: String,
    timeout: Option<String>,
    drain: String,
    run: Vec<String>,
    tables: Vec<String>,
}

impl Scenario {
    pub fn new(name: &str, seed: u64) -> Self {
        Scenario {
            name: name.to_string(),
            description: None,
            seed,
            target: "builtin = {}".to_string(),
            timeout: None,
            drain: "0s".to_string(),
            run: Vec::new(),
            tables: Vec::new(),
        }
    }

    /// The top-level `description` (plain text; quoted here).
    pub fn description(mut self, text: &str) -> Self {
        self.description = Some(text.to_string());
        self
    }

    /// The built-in messenger with knobs, as the inside of its inline table:
    /// `builtin(r#"latency = "20ms""#)`.
    pub fn builtin(mut self, knobs: impl AsRef<str>) -> Self {
        self.target = format!("builtin = {{ {} }}", knobs.as_ref());
        self
    }

    /// A target at `url` instead of the built-in messenger.
    pub fn url(mut self, url: &str) -> Self {
        self.target = format!("url = {}", quoted(url));
        self
    }

    pub fn timeout(mut self, duration: &str) -> Self {
        self.timeout = Some(duration.to_string());
        self
    }

    pub fn drain(mut self, duration: &str) -> Self {
        self.drain = duration.to_string();
        self
    }

    /// More `[run]` keys, verbatim: `run(r#"retry = { attempts = 3 }"#)`.
    pub fn run(mut self, keys: impl AsRef<str>) -> Self {
        self.run.push(keys.as_ref().to_string());
        self
    }

    /// Whole tables, verbatim, after `[run]` and after the tables given before (so a call may
    /// also carry on the table the previous one opened).
    pub fn with(mut self, tables: impl AsRef<str>) -> Self {
        self.tables.push(tables.as_ref().to_string());
        self
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        writeln!(f, "name = {}", quoted(&self.name))?;
        if let Some(d) = &self.description {
            writeln!(f, "description = {}", quoted(d))?;
        }
        writeln!(f, "seed = {}", self.seed)?;
        writeln!(f, "[target]\n{}", self.target)?;
        writeln!(f, "[run]")?;
        if let Some(t) = &self.timeout {
            writeln!(f, "timeout = {}", quoted(t))?;
        }
        writeln!(f, "drain = {}", quoted(&self.drain))?;
        for keys in &self.run {
            writeln!(f, "{}", keys.trim())?;
        }
        for tables in &self.tables {
            writeln!(f, "{}", tables.trim_end())?;
        }
        Ok(())
    }
}

/// A shipped scenario, `scenarios/<name>.toml`, in short for a test: every phase's `duration`
/// (and a closed phase's `ramp`) scaled by `factor`, so rates and the load's shape stay as
/// shipped and only its length shrinks; the drain cut to at most `drain`. Everything else —
/// target knobs, users, flows, caps, thresholds — is the shipped file's.
pub fn shortened(name: &str, factor: f64, drain: &str) -> String {
    use inrush::duration::parse_duration;
    let path = format!("scenarios/{name}.toml");
    let text = std::fs::read_to_string(&path).expect("shipped scenario");
    let mut doc: toml::Table = text.parse().expect("shipped scenario is TOML");
    let scaled = |v: &toml::Value| {
        let d = parse_duration(v.as_str().expect("a duration")).expect("a valid duration");
        toml::Value::String(format!("{}ms", (d.mul_f64(factor).as_millis()).max(1)))
    };
    let phases = doc
        .get_mut("load")
        .and_then(|l| l.get_mut("phases"))
        .and_then(toml::Value::as_array_mut)
        .expect("[load] phases");
    for phase in phases.iter_mut().filter_map(toml::Value::as_table_mut) {
        for key in ["duration", "ramp"] {
            if let Some(v) = phase.get(key) {
                let short = scaled(v);
                phase.insert(key.to_string(), short);
            }
        }
    }
    let run = doc
        .entry("run")
        .or_insert_with(|| toml::Value::Table(toml::Table::new()))
        .as_table_mut()
        .expect("[run] is a table");
    let limit = parse_duration(drain).expect("a valid drain");
    let shipped = run
        .get("drain")
        .and_then(toml::Value::as_str)
        .and_then(|d| parse_duration(d).ok());
    if shipped.is_none_or(|d| d > limit) {
        run.insert("drain".into(), toml::Value::String(drain.to_string()));
    }
    toml::to_string(&doc).expect("TOML again")
}

/// `text` as a TOML string.
fn quoted(text: &str) -> String {
    toml::Value::String(text.to_string()).to_string()
}

/// The accounting identities every run keeps, whatever its load: each planned arrival ended in
/// exactly one of started or dropped-by-reason (in total, per phase, per region); each started
/// user's flow ended in exactly one of completed, failed or cut off (in total and per region: a
/// phase counts the users that ended in it), the cut-off ones by step; and the phases and the
/// timeline's intervals add up to the totals, frames per socket step included.
pub fn assert_arrivals_accounted(s: &inrush::report::summary::Summary, dir: &std::path::Path) {
    assert_outcomes_accounted(s, dir);
    use inrush::report::summary::Arrivals;
    fn identity(scope: &str, a: &Arrivals) {
        let by = a.dropped_by;
        assert_eq!(
            a.dropped,
            by.max_users + by.max_inflight + by.behind_schedule,
            "{scope}: dropped is the sum of its reasons: {a:?}"
        );
        assert_eq!(
            a.planned,
            a.started + a.dropped,
            "{scope}: planned = started + dropped: {a:?}"
        );
    }
    identity("total", &s.arrivals);
    for (name, p) in &s.phases {
        identity(name, &p.arrivals);
    }
    for (name, r) in &s.regions {
        identity(name, &r.arrivals);
    }
    let sum = |f: fn(&Arrivals) -> u64| s.phases.values().map(|p| f(&p.arrivals)).sum::<u64>();
    assert_eq!(sum(|a| a.planned), s.arrivals.planned, "phases add up");
    assert_eq!(sum(|a| a.started), s.arrivals.started, "phases add up");
    assert_eq!(sum(|a| a.dropped), s.arrivals.dropped, "phases add up");
    let text = std::fs::read_to_string(dir.join("timeline.json")).expect("timeline.json");
    let timeline: inrush::metrics::timeline::Timeline =
        serde_json::from_str(&text).expect("timeline schema");
    let points = &timeline.points;
    let total =
        |f: fn(&inrush::metrics::timeline::IntervalPoint) -> u64| points.iter().map(f).sum::<u64>();
    assert_eq!(
        total(|p| p.planned_arrivals),
        s.arrivals.planned,
        "intervals add up"
    );
    assert_eq!(
        total(|p| p.started_arrivals),
        s.arrivals.started,
        "intervals add up"
    );
    assert_eq!(
        total(|p| p.dropped_arrivals),
        s.arrivals.dropped,
        "intervals add up"
    );
    for p in points {
        assert_eq!(
            p.planned_arrivals,
            p.started_arrivals + p.dropped_arrivals,
            "interval at {} s",
            p.start_s
        );
    }
    // Counted again by when they were due (for the charts): the same arrivals.
    assert_eq!(total(|p| p.planned_due), s.arrivals.planned, "by due time");
    assert_eq!(total(|p| p.dropped_due), s.arrivals.dropped, "by due time");
}

/// Started users by outcome and frames per socket step: the identities and the sums.
fn assert_outcomes_accounted(s: &inrush::report::summary::Summary, dir: &std::path::Path) {
    use inrush::report::summary::Arrivals;
    fn by_step(scope: &str, a: &Arrivals) {
        assert_eq!(
            a.cut_off_in.values().sum::<u64>(),
            a.cut_off,
            "{scope}: cut_off is the sum of cut_off_in: {a:?}"
        );
    }
    fn outcomes(scope: &str, a: &Arrivals) {
        assert_eq!(
            a.started,
            a.completed + a.failed + a.cut_off,
            "{scope}: started = completed + failed + cut_off: {a:?}"
        );
        by_step(scope, a);
    }
    outcomes("total", &s.arrivals);
    for (name, r) in &s.regions {
        outcomes(name, &r.arrivals);
    }
    for (name, p) in &s.phases {
        by_step(name, &p.arrivals);
    }
    let sum = |f: fn(&Arrivals) -> u64| s.phases.values().map(|p| f(&p.arrivals)).sum::<u64>();
    assert_eq!(sum(|a| a.completed), s.arrivals.completed, "phases add up");
    assert_eq!(sum(|a| a.failed), s.arrivals.failed, "phases add up");
    assert_eq!(sum(|a| a.cut_off), s.arrivals.cut_off, "phases add up");
    for (name, m) in &s.metrics {
        let phases = |f: fn(&inrush::report::summary::MetricSummary) -> u64| {
            s.phases
                .values()
                .map(|p| p.metrics.get(name).map_or(0, f))
                .sum::<u64>()
        };
        assert_eq!(
            phases(|m| m.frames_sent),
            m.frames_sent,
            "{name}: phases add up"
        );
        assert_eq!(
            phases(|m| m.frames_received),
            m.frames_received,
            "{name}: phases add up"
        );
    }
    let text = std::fs::read_to_string(dir.join("timeline.json")).expect("timeline.json");
    let timeline: inrush::metrics::timeline::Timeline =
        serde_json::from_str(&text).expect("timeline schema");
    let points = &timeline.points;
    let total = |f: &dyn Fn(&inrush::metrics::timeline::IntervalPoint) -> u64| {
        points.iter().map(f).sum::<u64>()
    };
    assert_eq!(
        total(&|p| p.users_completed),
        s.arrivals.completed,
        "intervals add up"
    );
    assert_eq!(
        total(&|p| p.users_failed),
        s.arrivals.failed,
        "intervals add up"
    );
    assert_eq!(
        total(&|p| p.users_cut_off),
        s.arrivals.cut_off,
        "intervals add up"
    );
    for (name, m) in &s.metrics {
        let sent = total(&|p| p.metrics.get(name).map_or(0, |i| i.frames_sent));
        let received = total(&|p| p.metrics.get(name).map_or(0, |i| i.frames_received));
        assert_eq!(
            (sent, received),
            (m.frames_sent, m.frames_received),
            "{name}: intervals add up"
        );
    }
}
