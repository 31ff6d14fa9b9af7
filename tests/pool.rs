//! `[run] connections = { pool = N }` end to end, against a small counting HTTP/1.1 server of
//! the test's own on 127.0.0.1 (an OS-assigned port) that counts the TCP connections it accepts
//! and the requests it answers, and can hold each answer (a service time) or close the
//! connection after it: the pool's bound (at most N connections over every worker, while
//! `per_user` opens one per user), its waits inside the latency from the intended start (a
//! queue of k requests on one connection: the k-th finishes no earlier than k service times
//! after its start), a wait beyond the step's timeout as a timeout error, connections the
//! server closes replaced without losing a request, and TLS over the pool.

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::tls::{ca, leaf, serve_tls_with};
use common::{serve_each, Scenario, Scratch};
use inrush::report::summary::Summary;
use inrush::target::{Knobs, TlsServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What the counting server saw.
#[derive(Debug, Default)]
struct Seen {
    /// Connections that carried a request (the run's reachability probe before its start
    /// connects and sends nothing: it is not counted).
    accepted: AtomicU64,
    answered: AtomicU64,
    /// Connections the server closed after an answer (`close_each`).
    closed: AtomicU64,
    /// Connections that carried a request and that the client closed with a FIN (the server
    /// read the end of the stream), and those it reset.
    ended_by_client: AtomicU64,
    reset_by_client: AtomicU64,
}

impl Seen {
    fn get(&self) -> (u64, u64, u64) {
        (
            self.accepted.load(Ordering::SeqCst),
            self.answered.load(Ordering::SeqCst),
            self.closed.load(Ordering::SeqCst),
        )
    }
}

/// Serves `200 ok` to every request (inrush's are GETs without a body: a request is its head),
/// each after `hold`, closing the connection after each answer when `close_each` (saying so
/// in a `Connection: close` header, as a server that does not keep connections alive does).
fn counting_server(hold: Duration, close_each: bool) -> (SocketAddr, Arc<Seen>) {
    let seen = Arc::new(Seen::default());
    let counts = seen.clone();
    let addr = serve_each(move |stream| answer_all(stream, hold, close_each, counts.clone()));
    (addr, seen)
}

async fn answer_all(
    mut stream: tokio::net::TcpStream,
    hold: Duration,
    close_each: bool,
    seen: Arc<Seen>,
) {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    let mut first = true;
    loop {
        // One request head at a time: the client sends the next only after this answer.
        while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut chunk).await {
                Ok(0) => {
                    if !first {
                        seen.ended_by_client.fetch_add(1, Ordering::SeqCst);
                    }
                    return;
                }
                Err(_) => {
                    if !first {
                        seen.reset_by_client.fetch_add(1, Ordering::SeqCst);
                    }
                    return;
                }
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        buf.clear();
        if std::mem::take(&mut first) {
            seen.accepted.fetch_add(1, Ordering::SeqCst);
        }
        tokio::time::sleep(hold).await;
        let answer: &[u8] = if close_each {
            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok"
        } else {
            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"
        };
        if stream.write_all(answer).await.is_err() {
            return;
        }
        seen.answered.fetch_add(1, Ordering::SeqCst);
        if close_each {
            let _ = stream.shutdown().await;
            seen.closed.fetch_add(1, Ordering::SeqCst);
            return;
        }
    }
}

/// `users` users arriving evenly over `over`, each sending `each` GETs in a row; then 2 s
/// without arrivals for them to finish (the run starts no operation after its schedule).
fn gets(
    name: &str,
    addr: SocketAddr,
    connections: &str,
    users: u32,
    over: &str,
    each: u32,
) -> Scenario {
    let rate = f64::from(users)
        / inrush::duration::parse_duration(over)
            .expect("duration")
            .as_secs_f64();
    Scenario::new(name, 3)
        .url(&format!("http://{addr}"))
        .timeout("5s")
        .run(format!("connections = {connections}"))
        .with(format!(
            r#"[load]
arrivals = "uniform"
phases = [ {{ name = "only", duration = "{over}", rate = {rate} }},
           {{ name = "finish", duration = "2s", rate = 0 }} ]
[[flows.f.steps]]
loop = {{ times = {each}, steps = [ {{ name = "get", http = "GET /x" }} ] }}
"#
        ))
}

/// Runs quietly on `workers` worker threads (the pool is split over them), overload accepted
/// (a loaded machine must not change the verdict these tests do not judge), arrivals checked.
fn run_on(workers: usize, scenario: PathBuf, out: PathBuf) -> Summary {
    common::run_on(workers, scenario, out).summary
}

#[test]
fn a_pool_of_four_holds_at_most_four_connections_where_per_user_opens_one_per_user() {
    let scratch = Scratch::new();
    // 60 users over 0.6 s, 3 requests each, answered after 20 ms: ~300 requests in flight per
    // second × 20 ms ≈ 6 wanted at once, more than the pool's 4, so users queue for them.
    let (addr, seen) = counting_server(Duration::from_millis(20), false);
    let s = run_on(
        2,
        scratch.scenario("pool", gets("pool", addr, "{ pool = 4 }", 60, "600ms", 3)),
        scratch.out("pool"),
    );
    let get = &s.metrics["get"];
    assert_eq!(
        (get.count, get.errors),
        (180, 0),
        "{:?}",
        get.error_examples
    );
    let (accepted, answered, closed) = seen.get();
    assert_eq!(answered, 180);
    assert_eq!(closed, 0);
    // Two workers hold 2 + 2: at most 4 in all, whatever the timing.
    assert!(accepted <= 4, "{accepted} connections accepted");
    // inrush's own count of the connections its pool opened is the server's.
    assert_eq!(
        s.counts.get("http_pool_opened"),
        Some(&accepted),
        "{:?}",
        s.counts
    );
    assert_eq!(s.counts.get("http_pool_replaced"), Some(&0));
    assert!(s.peak_connections.http <= 4, "{:?}", s.peak_connections);
    // Every request's and response's bytes are counted, as without a pool.
    assert!(
        get.bytes_sent > 0 && get.bytes_received >= 180 * 40,
        "{get:?}"
    );

    let (addr, seen) = counting_server(Duration::from_millis(20), false);
    let s = run_on(
        2,
        scratch.scenario("own", gets("own", addr, "\"per_user\"", 60, "600ms", 3)),
        scratch.out("own"),
    );
    let get = &s.metrics["get"];
    assert_eq!(
        (get.count, get.errors),
        (180, 0),
        "{:?}",
        get.error_examples
    );
    let (accepted, answered, _) = seen.get();
    assert_eq!(
        (accepted, answered),
        (60, 180),
        "one kept-alive connection per user"
    );
    assert_eq!(
        s.counts.get("http_pool_opened"),
        None,
        "no pool, no pool counts"
    );
}

#[test]
fn every_connection_a_user_opens_is_closed_with_a_fin_by_the_end_of_the_run() {
    let scratch = Scratch::new();
    // 200 users over 0.4 s, one GET each on its own connection: each socket is let go (closed)
    // as its user ends; none may be left open, nor reset instead of closed.
    let (addr, seen) = counting_server(Duration::ZERO, false);
    let s = run_on(
        2,
        scratch.scenario(
            "closed",
            gets("closed", addr, "\"per_user\"", 200, "400ms", 1),
        ),
        scratch.out("closed"),
    );
    let get = &s.metrics["get"];
    assert_eq!(
        (get.count, get.errors),
        (200, 0),
        "{:?}",
        get.error_examples
    );
    // The run has returned: every socket is closed by now. The server notices each end on its
    // own thread: give it a bounded while (far more than its work takes).
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while seen.ended_by_client.load(Ordering::SeqCst) < 200 && std::time::Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(10));
    }
    let (accepted, answered, _) = seen.get();
    assert_eq!((accepted, answered), (200, 200));
    assert_eq!(
        (
            seen.ended_by_client.load(Ordering::SeqCst),
            seen.reset_by_client.load(Ordering::SeqCst)
        ),
        (200, 0),
        "each connection the client opened ends with its FIN"
    );
}

#[test]
fn a_request_waiting_for_a_pooled_connection_counts_the_wait_in_its_latency() {
    let scratch = Scratch::new();
    // One connection, each answer held S = 100 ms, k = 5 users arriving within 8 ms: the
    // requests are answered one after another, so the j-th answered finishes no earlier than
    // j·S after the first start, and at most 8 ms (the arrivals' spread) after its own
    // intended start began. Latency from the intended start must show that queue.
    let hold = Duration::from_millis(100);
    let (k, spread_ms) = (5u32, 8.0);
    let (addr, seen) = counting_server(hold, false);
    let s = run_on(
        1,
        scratch.scenario("queue", gets("queue", addr, "{ pool = 1 }", k, "10ms", 1)),
        scratch.out("queue"),
    );
    let get = &s.metrics["get"];
    assert_eq!(
        (get.count, get.errors),
        (u64::from(k), 0),
        "{:?}",
        get.error_examples
    );
    assert_eq!(seen.get().0, 1, "one connection, reused");
    let s_ms = hold.as_secs_f64() * 1000.0;
    let lat = get.latency_ms.expect("latency");
    // The last answered: k·S after the first start, at most `spread` after its own.
    assert!(lat.max >= f64::from(k) * s_ms - spread_ms, "{lat:?}");
    // Summed over j = 1..k: Σ j·S − k·spread, so the mean is at least (k+1)/2·S − spread.
    assert!(
        lat.mean >= f64::from(k + 1) / 2.0 * s_ms - spread_ms,
        "{lat:?}"
    );
}

#[test]
fn a_pool_wait_longer_than_the_steps_timeout_is_a_timeout_error() {
    // One connection, answers held 250 ms, 4 users at once, timeout 600 ms: the third answer
    // cannot come before 750 ms, so at least the third and fourth time out (waiting for the
    // connection or on it); the first answer, at 250 ms, is well within the timeout (unless the
    // machine stalls the generator: then with a fresh server again).
    let (outcome, seen) = common::on_schedule(|| {
        let scratch = Scratch::new();
        let (addr, seen) = counting_server(Duration::from_millis(250), false);
        let text = gets("timeouts", addr, "{ pool = 1 }", 4, "10ms", 1).timeout("600ms");
        let file = scratch.scenario("timeouts", text);
        (common::run_on(1, file, scratch.out("timeouts")), seen)
    });
    let s = outcome.summary;
    let get = &s.metrics["get"];
    let timeouts = get.errors_by_class.get("timeout").copied().unwrap_or(0);
    assert_eq!(get.count, 4);
    assert!(timeouts >= 2 && get.errors == timeouts, "{get:?}");
    assert!(get.count - get.errors >= 1, "{get:?}");
    // A request cut off on the connection closes it; nothing else ever opened one.
    assert!(seen.get().0 <= 2, "{:?}", seen.get());
}

#[test]
fn connections_the_server_closes_are_replaced_and_no_request_is_lost() {
    let scratch = Scratch::new();
    let (addr, seen) = counting_server(Duration::from_millis(2), true);
    let s = run_on(
        1,
        scratch.scenario(
            "closing",
            gets("closing", addr, "{ pool = 2 }", 20, "400ms", 3),
        ),
        scratch.out("closing"),
    );
    let get = &s.metrics["get"];
    assert_eq!((get.count, get.errors), (60, 0), "{:?}", get.error_examples);
    let (accepted, answered, closed) = seen.get();
    assert_eq!((answered, closed), (60, 60));
    // Each connection carried one answer: every later one was a replacement, and inrush counts
    // them as the server does (all but the last idle ones, which no request found closed).
    assert_eq!(accepted, 60);
    assert_eq!(
        s.counts.get("http_pool_opened"),
        Some(&60),
        "{:?}",
        s.counts
    );
    let replaced = s.counts.get("http_pool_replaced").copied().unwrap_or(0);
    assert!((58..=60).contains(&replaced), "{:?}", s.counts);
    assert!(s.peak_connections.http <= 2, "{:?}", s.peak_connections);
}

#[test]
fn tls_works_over_the_pool_and_each_pooled_connection_shakes_hands_once() {
    let scratch = Scratch::new();
    let ca = ca("inrush pool test CA");
    std::fs::write(scratch.dir.path().join("ca.pem"), &ca.pem).expect("write CA");
    let (cert, key, _, _) = leaf(&ca, &["127.0.0.1", "localhost"]);
    let server = TlsServer::new(vec![cert], key, None).expect("server config");
    let (addr, counts) = serve_tls_with(server, Knobs::default());
    let text = format!(
        r#"name = "tls-pool"
seed = 5
[target]
url = "https://localhost:{port}"
ca = "ca.pem"
[run]
timeout = "5s"
drain = "0s"
connections = {{ pool = 2 }}
[load]
arrivals = "uniform"
phases = [ {{ name = "only", duration = "1s", rate = 30 }} ]
[[flows.f.steps]]
loop = {{ times = 2, steps = [ {{ name = "health", http = "GET /healthz" }} ] }}
"#,
        port = addr.port()
    );
    let s = run_on(1, scratch.scenario("tls", text), scratch.out("tls"));
    let health = &s.metrics["health"];
    assert_eq!(
        (health.count, health.errors),
        (60, 0),
        "{:?}",
        health.error_examples
    );
    let tls = s.tls.as_ref().expect("the summary describes the run's TLS");
    let server_total = counts.full() + counts.resumed();
    // Every handshake is recorded, and only the pool's connections shook hands: at most 2
    // (not one per user, as without a pool).
    assert_eq!(tls.handshakes, server_total, "server: {counts:?}");
    assert!((1..=2).contains(&server_total), "{counts:?}");
    assert_eq!(s.metrics["tls_handshake"].count, server_total);
    assert!(health.bytes_received > 0);
}
