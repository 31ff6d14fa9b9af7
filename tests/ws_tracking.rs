//! Tracked messages over a WebSocket, against a small echo server written here on 127.0.0.1
//! that counts what it read and echoed (issue 16):
//!
//! - correlation and awaited replies combine: a frame an awaiting `send` step takes (its
//!   `expect` matched, or its `fail_on`) still goes through the socket's ack and delivery rules,
//!   so a message whose echo is awaited is acked by that echo — counted once, never an ack error;
//! - a burst (a `send` repeated without a pause) is fed and written together, and still every
//!   frame is counted, sent and acked.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use common::{on_own_thread, on_schedule, run_quiet, Scenario, Scratch};
use futures_util::{SinkExt, StreamExt};
use inrush::run::Outcome;
use tokio::net::TcpListener;

#[derive(Default)]
struct Echoed {
    received: AtomicU64,
    sent: AtomicU64,
}

/// A loopback WebSocket server that sends every data frame back as it came.
fn echo_server() -> (std::net::SocketAddr, Arc<Echoed>) {
    on_own_thread(|tx| async move {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let counts = Arc::new(Echoed::default());
        tx.send((listener.local_addr().expect("address"), counts.clone()))
            .expect("the test waits");
        while let Ok((stream, _)) = listener.accept().await {
            let counts = counts.clone();
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
                    return;
                };
                while let Some(Ok(m)) = ws.next().await {
                    if m.is_text() || m.is_binary() {
                        counts.received.fetch_add(1, Ordering::Relaxed);
                        if ws.send(m).await.is_err() {
                            return;
                        }
                        counts.sent.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
    })
}

/// Runs the scenario `of(url)` against a fresh echo server, again with a fresh one when the
/// machine held the generator back (`on_schedule`); returns the run and the server's counts.
fn run_echoed(of: fn(&str) -> Scenario) -> (Outcome, Arc<Echoed>) {
    on_schedule(|| {
        let (addr, server) = echo_server();
        let scratch = Scratch::new();
        let file = scratch.scenario("ws", of(&format!("http://{addr}")));
        (run_quiet(file, scratch.out("run"), None), server)
    })
}

/// 4 users, one every 100 ms, against the echo server at `url`, each running `flow` (its tables).
fn four_users(name: &str, url: &str, flow: &str) -> Scenario {
    Scenario::new(name, 3)
        .url(url)
        .timeout("5s")
        .drain("2s")
        .with(
            r#"
[load]
arrivals = "uniform"
phases = [ { name = "only", duration = "400ms", rate = 10 } ]
"#,
        )
        .with(flow)
}

/// Each user sends 3 messages without waiting, then 5 each awaiting its echo (matched by its
/// id), on one socket whose rule acks an echo by id and counts it.
fn scenario(url: &str) -> Scenario {
    four_users(
        "awaited-acks",
        url,
        r#"
[[flows.f.steps]]
name = "ws"
ws = "/echo"
on_frame = [ { match = { "$.type" = "m" }, acked = "$.id", count = "echoes_in_background" } ]

[[flows.f.steps]]
name = "fire"
repeat = 3
send = { type = "m", id = "{{ msg.id }}" }

[[flows.f.steps]]
name = "awaited"
repeat = 5
send = { type = "m", id = "{{ msg.id }}" }
expect = { json = { "$.id" = "{{ msg.id }}" } }
"#,
    )
}

#[test]
fn an_awaited_echo_still_acks_its_message() {
    let (outcome, server) = run_echoed(scenario);
    let s = &outcome.summary;
    let users = s.arrivals.started;
    assert_eq!(users, 4, "{:?}", s.arrivals);
    assert_eq!(s.arrivals.completed, users, "{:?}", s.arrivals);
    let m = &s.messages;
    // Every message sent reached the server and came back; each echo acked its message once,
    // whether a step awaited it or the background rule took it.
    assert_eq!(m.sent, users * 8, "{m:?}");
    assert_eq!(server.received.load(Ordering::Relaxed), m.sent);
    assert_eq!(server.sent.load(Ordering::Relaxed), m.sent);
    assert_eq!(m.acked, m.sent, "{m:?}");
    let ack = &s.metrics["message_ack"];
    assert_eq!((ack.count, ack.errors), (m.sent, 0), "{ack:?}");
    let awaited = &s.metrics["awaited"];
    assert_eq!((awaited.count, awaited.errors), (users * 5, 0));
    // The step took the awaited echoes: only the fire-and-forget ones went through the rule's
    // other actions (its count).
    assert_eq!(
        s.counts["echoes_in_background"],
        users * 3,
        "{:?}",
        s.counts
    );
    let errors: u64 = s.metrics.values().map(|m| m.errors).sum();
    assert_eq!(errors, 0, "{:?}", s.metrics);
    let ws = &s.metrics["ws"];
    assert_eq!((ws.frames_sent, ws.frames_received), (m.sent, m.sent));
}

/// Each user sends one message the echo server answers with a frame its rules call a
/// rejection, and which the step's `fail_on` takes.
fn refused(url: &str) -> Scenario {
    four_users(
        "awaited-refusal",
        url,
        r#"
[[flows.f.steps]]
name = "ws"
ws = "/echo"
on_frame = [
  { match = { "$.type" = "error" }, rejected = "$.id" },
  { match = { "$.type" = "m" }, acked = "$.id" },
]

[[flows.f.steps]]
name = "refused"
send = { type = "error", id = "{{ msg.id }}" }
expect = { json = { "$.type" = "m" } }
fail_on = { json = { "$.type" = "error" } }
"#,
    )
}

#[test]
fn a_frame_a_step_fails_on_still_rejects_its_message() {
    let (outcome, server) = run_echoed(refused);
    let s = &outcome.summary;
    let users = s.arrivals.started;
    assert_eq!((users, s.arrivals.failed), (4, 4), "{:?}", s.arrivals);
    assert_eq!(s.messages.sent, users);
    assert_eq!(server.received.load(Ordering::Relaxed), users);
    // Each step failed on the echo, and that echo is its message's rejection: a protocol error
    // of `message_ack` (not a timeout once the socket closed), never an ack.
    let step = &s.metrics["refused"];
    assert_eq!(
        step.errors_by_class.get("check_failed"),
        Some(&users),
        "{step:?}"
    );
    let ack = &s.metrics["message_ack"];
    assert_eq!(ack.errors_by_class.get("protocol"), Some(&users), "{ack:?}");
    assert_eq!(
        (ack.count - ack.errors, s.messages.acked),
        (0, 0),
        "{ack:?}"
    );
}

/// Each user sends a burst of 20 tracked messages (no pause, no reply awaited), then one more
/// alone, all acked by their echoes.
fn burst(url: &str) -> Scenario {
    four_users(
        "burst",
        url,
        r#"
[[flows.f.steps]]
name = "ws"
ws = "/echo"
on_frame = [ { match = { "$.type" = "m" }, acked = "$.id" } ]

[[flows.f.steps]]
name = "burst"
repeat = 20
send = { type = "m", id = "{{ msg.id }}", n = "{{ seq }}" }

[[flows.f.steps]]
name = "alone"
send = { type = "m", id = "{{ msg.id }}" }
"#,
    )
}

#[test]
fn a_burst_of_sends_is_all_sent_counted_and_acked() {
    let (outcome, server) = run_echoed(burst);
    let s = &outcome.summary;
    let users = s.arrivals.started;
    assert_eq!((users, s.arrivals.completed), (4, 4), "{:?}", s.arrivals);
    let m = &s.messages;
    assert_eq!(m.sent, users * 21, "{m:?}");
    assert_eq!(server.received.load(Ordering::Relaxed), m.sent);
    assert_eq!(
        (m.acked, s.metrics["message_ack"].errors),
        (m.sent, 0),
        "{m:?}"
    );
    let burst = &s.metrics["burst"];
    assert_eq!((burst.count, burst.errors), (users * 20, 0));
    let ws = &s.metrics["ws"];
    assert_eq!((ws.frames_sent, ws.frames_received), (m.sent, m.sent));
}
