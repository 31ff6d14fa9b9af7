//! Ground truth for inrush's latencies: a target written here logs every request — the user's
//! index it carries, when it arrived, when the target finished it — and answers after a known
//! service time (a 2 ms sleep). From the index and the scenario's uniform schedule it knows
//! when each request was meant to start, so it knows the latency every user should have seen:
//! its own completion minus the intended start. inrush's percentiles (summary.json, measured
//! from the intended start) must agree with that truth.
//!
//! The anchor is the run's time zero itself: `Outcome::t0`, the instant every intended start
//! is an offset from, on the same monotonic clock the target reads (the target runs in this
//! process). summary.json's `started_at` is the same instant in UTC but only to the
//! millisecond, too coarse for a 0.5 ms budget; anchoring on the first request's arrival would
//! put that user's schedule lag and connect time into every truth.

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::routing::get;

use common::{on_schedule, run_quiet, Scenario, Scratch};

/// Arrivals per second and seconds of load: a rate one worker holds with room to spare even on
/// a loaded 2-core machine (each user makes one request).
const RATE: u64 = 150;
const SECONDS: u64 = 3;
/// The target's service time: a sleep of at least this long.
const SERVICE: Duration = Duration::from_millis(2);

/// One request as the target saw it.
#[derive(Debug, Clone, Copy)]
struct Hit {
    index: u64,
    arrived: Instant,
    done: Instant,
}

type Log = Arc<Mutex<Vec<Hit>>>;

async fn work(State(log): State<Log>, Path(index): Path<u64>) -> &'static str {
    let arrived = Instant::now();
    tokio::time::sleep(SERVICE).await;
    let done = Instant::now();
    if let Ok(mut log) = log.lock() {
        log.push(Hit {
            index,
            arrived,
            done,
        });
    }
    "ok"
}

/// How long a ready thread waited for a CPU on this machine while the run lasted: a thread that
/// sleeps 1 ms over and over and records by how much it overslept, at most. The target's own
/// threads, writing a response, wait as long when the machine is as busy.
struct StallProbe {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<Duration>,
}

impl StallProbe {
    fn start() -> StallProbe {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut worst = Duration::ZERO;
            while !flag.load(Ordering::Relaxed) {
                let t = Instant::now();
                std::thread::sleep(Duration::from_millis(1));
                worst = worst.max(t.elapsed().saturating_sub(Duration::from_millis(1)));
            }
            worst
        });
        StallProbe { stop, thread }
    }

    fn worst(self) -> Duration {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("the probe thread ends")
    }
}

/// The value at quantile `q` of sorted `values` as HdrHistogram reads it: the smallest value
/// with at least ⌈q·n⌉ values at or below it (rank counted from 1), and the one a rank below.
fn quantile(sorted: &[f64], q: f64) -> (f64, f64) {
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    (sorted[rank - 1], sorted[rank.saturating_sub(2)])
}

/// The target that logs what it saw: its runtime (kept for as long as it serves), its address
/// and its log.
fn logging_target() -> (tokio::runtime::Runtime, std::net::SocketAddr, Log) {
    let server = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let log: Log = Arc::default();
    let app = axum::Router::new()
        .route("/work/{index}", get(work))
        .with_state(log.clone());
    let listener = server
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind loopback");
    let addr = listener.local_addr().expect("address");
    server.spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (server, addr, log)
}

#[test]
fn latency_percentiles_agree_with_what_the_target_logged() {
    // Every planned user counts: again, with a fresh target and log, when the machine held the
    // generator back (a stop at the schedule's end drops the arrivals due during it).
    let (outcome, (_server, log, stall)) = on_schedule(|| {
        let (server, addr, log) = logging_target();
        let scratch = Scratch::new();
        let scenario = Scenario::new("ground-truth", 11)
            .url(&format!("http://{addr}"))
            .drain("1s")
            .with(format!(
                r#"
[load]
arrivals = "uniform"
phases = [ {{ name = "steady", duration = "{SECONDS}s", rate = {RATE} }} ]
[[flows.f.steps]]
name = "work"
http = "GET /work/{{{{ user.index }}}}"
"#
            ));
        let probe = StallProbe::start();
        let outcome = run_quiet(
            scratch.scenario("truth", scenario),
            scratch.out("run"),
            None,
        );
        (outcome, (server, log, probe.worst()))
    });
    let s = &outcome.summary;
    let t0 = outcome.t0.expect("the run sent requests");
    let hits = log.lock().expect("the log").clone();

    // Counts, whatever the machine's load: every planned user started, made its one request,
    // which the target saw once, and completed.
    let n = RATE * SECONDS;
    assert_eq!(
        (s.arrivals.planned, s.arrivals.started, s.arrivals.completed),
        (n, n, n),
        "{:?}",
        s.arrivals
    );
    let work = &s.metrics["work"];
    assert_eq!((work.count, work.errors), (n, 0), "{work:?}");
    assert_eq!(hits.len() as u64, n, "the target saw every request once");
    let indexes: BTreeSet<u64> = hits.iter().map(|h| h.index).collect();
    assert_eq!(indexes, (0..n).collect(), "each user's index once");

    // The uniform schedule: user i is meant to start at (i + ½)/r after time zero (evenly
    // spaced, the first half a step in). No request reaches the target before its intended
    // start (no timer fires early): this checks the schedule, the anchor and the clock.
    let intended = |i: u64| t0 + Duration::from_secs_f64((i as f64 + 0.5) / RATE as f64);
    for h in &hits {
        assert!(
            h.arrived >= intended(h.index),
            "user {} arrived {:?} before its intended start",
            h.index,
            intended(h.index) - h.arrived
        );
    }
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let mut truth: Vec<f64> = hits
        .iter()
        .map(|h| ms(h.done - intended(h.index)))
        .collect();
    truth.sort_by(f64::total_cmp);

    let latency = work.latency_ms.expect("latencies");
    let loop_lag = s.generator.loop_lag_ms.map_or(0.0, |l| l.max);
    // Each inrush sample is the truth plus what happened after the target finished: its
    // response written out, across loopback, read and parsed by the generator (≈0.1 ms on an
    // idle machine; 0.2 ms allowed), plus any wait for a CPU on either side on the way — the
    // generator's as its loop-lag probe measured it (max), the target's as this test's probe
    // measured it (max). So, sample by sample, truth ≤ inrush ≤ truth + that slack, and the
    // same holds between their percentiles, within HdrHistogram's 0.1 % and the budget of the
    // issue: 1 % or 0.5 ms, whichever is larger.
    let slack = 0.2 + loop_lag + ms(stall);
    // A loaded machine may hold the generator back beyond its own limits: its percentiles then
    // describe a late generator, and comparing them says nothing about inrush's accuracy (the
    // figures are still printed, and the counts above were checked).
    let conclusive = s.measurement.compromised_by.is_empty();
    if !conclusive {
        println!(
            "note: the percentile comparison is skipped, the run was inconclusive ({})",
            s.measurement.compromised_by.join("; ")
        );
    }
    for (name, q, got) in [
        ("p50", 0.5, latency.p50),
        ("p90", 0.9, latency.p90),
        ("p99", 0.99, latency.p99),
    ] {
        let (truth_q, rank_below) = quantile(&truth, q);
        let bound = (0.01 * truth_q).max(0.5) + slack;
        println!(
            "{name}: inrush {got:.3} ms, target {truth_q:.3} ms, difference {:+.3} ms (allowed \
             0 to {bound:.3}: loop lag max {loop_lag:.3}, machine stall {:.3})",
            got - truth_q,
            ms(stall)
        );
        if !conclusive {
            continue;
        }
        // Never below the truth (a rank of slack for how a quantile's rank is rounded, 2 µs for
        // microsecond recording): a latency shorter than the target's own would be measured from
        // a later start than the intended one.
        assert!(
            got >= rank_below - 0.002,
            "{name}: inrush {got} ms below the target's {truth_q} ms"
        );
        assert!(
            got <= truth_q + bound,
            "{name}: inrush {got} ms over the target's {truth_q} ms by more than {bound:.3} ms"
        );
    }
}

/// What the echo target counted: frames it received and frames it echoed back.
#[derive(Default)]
struct Echoed {
    received: std::sync::atomic::AtomicU64,
    echoed: std::sync::atomic::AtomicU64,
}

async fn echo(
    State(counts): State<Arc<Echoed>>,
    ws: axum::extract::ws::WebSocketUpgrade,
) -> axum::response::Response {
    use axum::extract::ws::Message;
    ws.on_upgrade(move |mut socket| async move {
        while let Some(Ok(m)) = socket.recv().await {
            if let Message::Text(_) | Message::Binary(_) = m {
                counts.received.fetch_add(1, Ordering::Relaxed);
                // Read on if the echo cannot go out: every frame that arrives is counted.
                if socket.send(m).await.is_ok() {
                    counts.echoed.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    })
}

/// The issue's fire-and-forget run in small: users open a socket and send plain frames (no
/// name, no message id: nothing tracks them) to an echo server, and the run ends, with no drain,
/// while the later users are mid-flow. The frames inrush counts on the socket step are the
/// frames the server received and echoed, and the users it cut off are counted, by step.
/// An echo target on 127.0.0.1 (its own runtime, one thread) and what it counts.
fn echo_target() -> (tokio::runtime::Runtime, std::net::SocketAddr, Arc<Echoed>) {
    let server = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let counts: Arc<Echoed> = Arc::default();
    let app = axum::Router::new()
        .route("/echo", get(echo))
        .with_state(counts.clone());
    let listener = server
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind loopback");
    let addr = listener.local_addr().expect("address");
    server.spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (server, addr, counts)
}

/// A fire-and-forget flow: a socket, then `sends` plain frames `think` apart (no name, no
/// message id: nothing tracks them).
fn fire_and_forget(
    addr: std::net::SocketAddr,
    seconds: u64,
    rate: u64,
    sends: u64,
    think: &str,
) -> Scenario {
    Scenario::new("fire-and-forget", 12)
        .url(&format!("http://{addr}"))
        .with(format!(
            r#"
[load]
arrivals = "uniform"
phases = [ {{ name = "steady", duration = "{seconds}s", rate = {rate} }} ]
[[flows.f.steps]]
name = "chat"
ws = "/echo"
[[flows.f.steps]]
repeat = {sends}
think = {{ constant = "{think}" }}
send = {{ type = "hello" }}
"#
        ))
}

#[test]
fn frames_and_users_cut_off_agree_with_an_echo_server() {
    // 100 users/s for 2 s; each sends 20 frames 50 ms apart, a flow of ~1 s: the users of the
    // last second cannot finish it before the run ends (no drain). Again with a fresh server
    // when the machine held the generator back.
    let (outcome, (_server, counts)) = on_schedule(|| {
        let (server, addr, counts) = echo_target();
        let scratch = Scratch::new();
        let scenario = fire_and_forget(addr, 2, 100, 20, "50ms");
        let file = scratch.scenario("ff", scenario);
        (run_quiet(file, scratch.out("run"), None), (server, counts))
    });
    let s = outcome.summary;
    let received = counts.received.load(Ordering::Relaxed);
    let echoed = counts.echoed.load(Ordering::Relaxed);
    let chat = &s.metrics["chat"];
    let a = &s.arrivals;
    println!(
        "server: {received} frames received, {echoed} echoed; inrush: {} sent, {} received; \
         users {} started = {} completed + {} failed + {} cut off {:?}",
        chat.frames_sent,
        chat.frames_received,
        a.started,
        a.completed,
        a.failed,
        a.cut_off,
        a.cut_off_in
    );
    assert_eq!(a.started, 200, "{a:?}");
    // Every frame written out reached the server before the user's close did (one TCP stream).
    assert_eq!(
        chat.frames_sent, received,
        "frames sent = frames the server received"
    );
    // What came back was read up to the server's close (bounded by a second: at most all).
    assert!(chat.frames_received <= echoed, "{chat:?}");
    assert!(chat.frames_received > 0, "{chat:?}");
    // The users of the last second were cut off, in the send step (its pause or its frame),
    // and only they sent fewer than their 20 frames.
    assert!(a.cut_off >= 50, "{a:?}");
    assert_eq!(a.failed, 0, "{a:?}");
    assert_eq!(
        a.cut_off_in.get("f step 2 (send)"),
        Some(&a.cut_off),
        "{a:?}"
    );
    assert!(chat.frames_sent < 20 * a.started);
    assert!(chat.frames_sent >= 20 * a.completed);
}

/// The issue's own case, at full size (a measurement, not run by `cargo test`): 1 600 users/s
/// for 10 s, each sending 100 frames 10 ms apart, no drain, through the CLI.
/// `cargo test --release --test ground_truth -- --ignored --nocapture`
#[test]
#[ignore]
fn the_issues_fire_and_forget_run_at_full_size() {
    let (_server, addr, counts) = echo_target();
    let scratch = Scratch::new();
    let path = scratch.scenario("ff", fire_and_forget(addr, 10, 1600, 100, "10ms"));
    let out = scratch.out("run");
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_inrush"))
        .args(["run", "--accept-overload", "--out"])
        .arg(&out)
        .arg(&path)
        .status()
        .expect("inrush runs");
    assert!(status.code().is_some_and(|c| c <= 1), "{status:?}");
    let text = std::fs::read_to_string(out.join("summary.json")).expect("summary.json");
    let s: inrush::report::summary::Summary = serde_json::from_str(&text).expect("a summary");
    let received = counts.received.load(Ordering::Relaxed);
    let chat = &s.metrics["chat"];
    println!(
        "echo server: {received} frames received, {} echoed",
        counts.echoed.load(Ordering::Relaxed)
    );
    assert_eq!(
        chat.frames_sent, received,
        "frames sent = frames the server received"
    );
}
