//! inrush's own HTTP/1.1 client end to end, against a small loopback server of the test's own
//! that does what real servers do to kept-alive connections: it closes a connection left idle
//! (a keep-alive timeout), answers in chunks (with extensions and trailers, written in pieces),
//! and says `Connection: close` and closes. Every request must succeed, each on a connection
//! the server still holds, and inrush's counts must be the server's.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{on_schedule, run_on, serve_each, Scenario, Scratch};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How long the server keeps an idle connection: well below the users' 400 ms pause, so the
/// connection a user comes back to is always closed, however late a loaded machine runs it.
const IDLE: Duration = Duration::from_millis(50);

/// What the server saw.
#[derive(Debug, Default)]
struct Seen {
    /// Connections that carried a request (the run's reachability probe sends none).
    accepted: AtomicU64,
    answered: AtomicU64,
    /// Connections the server closed: idle ones, and those it answered with `Connection: close`.
    closed_idle: AtomicU64,
    closed_after: AtomicU64,
    /// Request bytes read, response bytes written.
    read: AtomicU64,
    written: AtomicU64,
}

fn get(n: &AtomicU64) -> u64 {
    n.load(Ordering::SeqCst)
}

fn add(n: &AtomicU64, by: u64) {
    n.fetch_add(by, Ordering::SeqCst);
}

fn server() -> (SocketAddr, Arc<Seen>) {
    let seen = Arc::new(Seen::default());
    let counts = seen.clone();
    let addr = serve_each(move |stream| serve(stream, counts.clone()));
    (addr, seen)
}

/// One connection: request heads (inrush's GETs carry no body) answered by their path.
async fn serve(mut stream: tokio::net::TcpStream, seen: Arc<Seen>) {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    let mut first = true;
    loop {
        while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
            // The first request may take its time; a later one must come within IDLE.
            let read = stream.read(&mut chunk);
            let n = if first {
                read.await
            } else {
                match tokio::time::timeout(IDLE, read).await {
                    Ok(r) => r,
                    Err(_) if buf.is_empty() => {
                        add(&seen.closed_idle, 1);
                        return;
                    }
                    Err(_) => continue,
                }
            };
            match n {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        if std::mem::take(&mut first) {
            add(&seen.accepted, 1);
        }
        add(&seen.read, buf.len() as u64);
        let path = String::from_utf8_lossy(&buf)
            .split_whitespace()
            .nth(1)
            .unwrap_or("")
            .to_string();
        buf.clear();
        let parts: &[&[u8]] = match path.as_str() {
            "/chunked" => &[
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4;a=b\r\nchu",
                b"n\r\n3\r\nked\r\n0\r\nX-Trailer: t\r\n\r\n",
            ],
            "/close" => {
                &[b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nclose"]
            }
            _ => &[b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nplain"],
        };
        for (i, part) in parts.iter().enumerate() {
            if i > 0 {
                // The rest comes in a later read of the client's.
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            if stream.write_all(part).await.is_err() {
                return;
            }
            add(&seen.written, part.len() as u64);
        }
        add(&seen.answered, 1);
        if path == "/close" {
            let _ = stream.shutdown().await;
            add(&seen.closed_after, 1);
            return;
        }
    }
}

/// 10 users over 1 s, each: a chunked answer and a plain one on its first connection, a pause
/// the server closes that connection in, a plain answer on a second one, a `Connection: close`
/// answer that ends it, a plain answer on a third.
fn scenario(addr: SocketAddr, connections: &str) -> Scenario {
    Scenario::new("http-client", 7)
        .url(&format!("http://{addr}"))
        .timeout("5s")
        .run(format!("connections = {connections}"))
        .with(
            r#"[load]
arrivals = "uniform"
phases = [ { name = "only", duration = "1s", rate = 10 },
           { name = "finish", duration = "2s", rate = 0 } ]
[[flows.f.steps]]
name = "chunked"
http = "GET /chunked"
expect = { regex = "^chunked$" }
[[flows.f.steps]]
name = "plain"
http = "GET /plain"
expect = { regex = "^plain$" }
[[flows.f.steps]]
name = "after_idle"
think = { constant = "400ms" }
http = "GET /plain"
[[flows.f.steps]]
name = "close"
http = "GET /close"
expect = { regex = "^close$" }
[[flows.f.steps]]
name = "after_close"
http = "GET /plain"
"#,
        )
}

const STEPS: [&str; 5] = ["chunked", "plain", "after_idle", "close", "after_close"];

/// Runs the scenario with `connections` against a fresh server, on one worker, again with a
/// fresh server when the machine held the generator back (`on_schedule`: a stall moves requests
/// past the server's idle timeout).
fn run_with(name: &str, connections: &str) -> (inrush::report::summary::Summary, Arc<Seen>) {
    let (outcome, seen) = on_schedule(|| {
        let scratch = Scratch::new();
        let (addr, seen) = server();
        let out = scratch.out(name);
        (
            run_on(1, scratch.scenario(name, scenario(addr, connections)), out),
            seen,
        )
    });
    (outcome.summary, seen)
}

/// Asserts that each of the ten users' requests succeeded at every step; returns the bytes
/// inrush counted sent and received over all of them.
fn every_request_succeeded(s: &inrush::report::summary::Summary) -> (u64, u64) {
    let (mut sent, mut received) = (0, 0);
    for name in STEPS {
        let m = &s.metrics[name];
        assert_eq!(
            (m.count, m.errors),
            (10, 0),
            "{name}: {:?}",
            m.error_examples
        );
        sent += m.bytes_sent;
        received += m.bytes_received;
    }
    (sent, received)
}

#[test]
fn every_request_succeeds_on_a_connection_the_server_still_holds() {
    let (s, seen) = run_with("own", "\"per_user\"");
    let (sent, received) = every_request_succeeded(&s);
    // Three connections per user: the first until the server closed it idle, the second until
    // its `Connection: close`, the third until the user left. None more (a connection found
    // closed is replaced once), none fewer (none was used after the server closed it).
    assert_eq!(get(&seen.accepted), 30, "{seen:?}");
    assert_eq!(get(&seen.answered), 50, "{seen:?}");
    assert_eq!(get(&seen.closed_after), 10, "{seen:?}");
    assert!(get(&seen.closed_idle) >= 10, "{seen:?}");
    // The bytes inrush counted are the ones the server read and wrote.
    assert_eq!((sent, received), (get(&seen.read), get(&seen.written)));
    // Each user held one connection at a time, and let its last one go when it left.
    let c = s.peak_connections;
    assert!(c.http >= 1 && c.http <= 10, "{c:?}");
}

#[test]
fn a_pool_replaces_what_the_server_closes_and_counts_it_as_the_server_does() {
    let (s, seen) = run_with("pool", "{ pool = 2 }");
    every_request_succeeded(&s);
    assert_eq!(get(&seen.answered), 50, "{seen:?}");
    assert_eq!(get(&seen.closed_after), 10, "{seen:?}");
    let opened = s.counts.get("http_pool_opened").copied();
    assert_eq!(opened, Some(get(&seen.accepted)), "{:?} {seen:?}", s.counts);
    // Every connection the server closed was replaced, but for those still idle in the pool
    // when the run ended (two at most), which no request found closed.
    let closed = get(&seen.closed_idle) + get(&seen.closed_after);
    let replaced = s.counts.get("http_pool_replaced").copied().unwrap_or(0);
    assert!(
        replaced <= closed && replaced + 2 >= closed,
        "replaced {replaced}, {seen:?}"
    );
    assert!(s.peak_connections.http <= 2, "{:?}", s.peak_connections);
}

/// How long the crossing server waits before it closes a connection under a request it will not
/// answer (a server's close is rarely at the very instant the request arrives).
const CROSSED_AFTER: Duration = Duration::from_millis(100);

/// What the crossing server saw.
#[derive(Debug, Default)]
struct Crossed {
    connections: AtomicU64,
    answered: AtomicU64,
    unanswered_get: AtomicU64,
    unanswered_post: AtomicU64,
}

/// A server whose keep-alive timeout runs out just as each connection's second request comes:
/// it answers a connection's first request, reads the second (head and body) and closes the
/// connection [`CROSSED_AFTER`] later without a byte of answer — a request that crossed the
/// server's idle close, as a client whose connection looked open when it sent sees it.
fn crossing_server() -> (SocketAddr, Arc<Crossed>) {
    let seen = Arc::new(Crossed::default());
    let counts = seen.clone();
    let addr = serve_each(move |stream| crossing(stream, counts.clone()));
    (addr, seen)
}

async fn crossing(mut stream: tokio::net::TcpStream, seen: Arc<Crossed>) {
    let mut served = 0;
    loop {
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            match stream.read_u8().await {
                Ok(b) => head.push(b),
                // The run's reachability probe, or the client letting the connection go.
                Err(_) => return,
            }
        }
        let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
        let length = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse::<usize>().ok())
            .unwrap_or(0);
        let mut body = vec![0; length];
        if stream.read_exact(&mut body).await.is_err() {
            return;
        }
        if served == 0 {
            add(&seen.connections, 1);
        }
        served += 1;
        if served == 1 {
            let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
            if stream.write_all(ok).await.is_err() {
                return;
            }
            add(&seen.answered, 1);
            continue;
        }
        match head.starts_with("post") {
            true => add(&seen.unanswered_post, 1),
            false => add(&seen.unanswered_get, 1),
        }
        tokio::time::sleep(CROSSED_AFTER).await;
        return;
    }
}

/// Five users, each: a GET on a new connection; a GET on that connection, which the server
/// closes under it, sent again on a new one; `last` on that one, closed under it too.
fn crossing_scenario(addr: SocketAddr, connections: &str, last: &str) -> Scenario {
    Scenario::new("crossed", 9)
        .url(&format!("http://{addr}"))
        .timeout("5s")
        .run(format!("connections = {connections}"))
        .with(format!(
            r#"[load]
arrivals = "uniform"
phases = [ {{ name = "only", duration = "2s", rate = 2.5 }},
           {{ name = "finish", duration = "2s", rate = 0 }} ]
[[flows.f.steps]]
name = "first"
http = "GET /a"
[[flows.f.steps]]
name = "again"
http = "GET /a"
[[flows.f.steps]]
name = "last"
{last}
"#
        ))
}

/// Runs [`crossing_scenario`] against a fresh crossing server, on one worker (again as
/// `on_schedule` says).
fn run_crossed(connections: &str, last: &str) -> (inrush::report::summary::Summary, Arc<Crossed>) {
    let (outcome, seen) = on_schedule(|| {
        let scratch = Scratch::new();
        let (addr, seen) = crossing_server();
        let scenario = crossing_scenario(addr, connections, last);
        let out = scratch.out("crossed");
        (run_on(1, scratch.scenario("crossed", scenario), out), seen)
    });
    (outcome.summary, seen)
}

/// Asserts that each of the five users' requests succeeded at each of `steps`.
fn all_answered(s: &inrush::report::summary::Summary, steps: &[&str]) {
    for name in steps {
        let m = &s.metrics[*name];
        let errors = &m.error_examples;
        assert_eq!((m.count, m.errors), (5, 0), "{name}: {errors:?}");
    }
}

#[test]
fn a_request_the_server_closed_its_kept_alive_connection_under_is_sent_again_if_it_may() {
    let (s, seen) = run_crossed("\"per_user\"", "http = \"POST /b\"\nbody = \"x\"");
    all_answered(&s, &["first", "again"]);
    // The GET went out twice, was answered once: its latency holds the server's wait before it
    // closed the first connection, the new connection and the answer.
    let again = s.metrics["again"].latency_ms.expect("latency");
    assert!(again.min >= CROSSED_AFTER.as_millis() as f64, "{again:?}");
    // A POST may not reach the server twice: it fails, sent once.
    let last = &s.metrics["last"];
    assert_eq!(last.errors_by_class.get("connect"), Some(&5), "{last:?}");
    assert_eq!(
        last.error_examples["connect"],
        "request failed: the connection closed before the response was complete"
    );
    assert_eq!(get(&seen.unanswered_get), 5, "{seen:?}");
    assert_eq!(get(&seen.unanswered_post), 5, "{seen:?}");
    assert_eq!(get(&seen.answered), 10, "{seen:?}");
    assert_eq!(get(&seen.connections), 10, "{seen:?}");
}

#[test]
fn a_pool_sends_again_what_the_server_closed_its_connection_under_and_counts_the_replacement() {
    let (s, seen) = run_crossed("{ pool = 1 }", "http = \"DELETE /b\"");
    all_answered(&s, &["first", "again", "last"]);
    // Every request was answered once; each one the server closed a connection under was sent
    // again, and that connection counted as replaced.
    assert_eq!(get(&seen.answered), 15, "{seen:?}");
    let unanswered = get(&seen.unanswered_get);
    assert!(unanswered > 0, "{seen:?}");
    assert_eq!(
        s.counts.get("http_pool_replaced"),
        Some(&unanswered),
        "{:?}",
        s.counts
    );
    assert_eq!(
        s.counts.get("http_pool_opened"),
        Some(&get(&seen.connections)),
        "{:?}",
        s.counts
    );
}
