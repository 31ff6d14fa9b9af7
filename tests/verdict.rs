//! The verdict of a run whose target served nobody, against small servers on 127.0.0.1:
//!
//! - every answer a `503` with `Retry-After: 5`: each user's first attempt is to be retried
//!   after 5 s, the run ends first, so no operation ever has an outcome and every user is cut
//!   off waiting. The target answered nothing right: the run fails, and `errors.rate` (a rate of
//!   no operation) has nothing to observe and fails too.
//! - a WebSocket the server closes 1.5 s after its upgrade, after the schedule (1 s) has cut
//!   every user off: each loss, during the drain, is the socket step's error, and so its user
//!   failed (it was counted cut off in its think, beside the error, and the run passed).
//! - a WebSocket that delivers ids inrush never issued: one from a user that does not exist,
//!   one that is not an id at all. Neither is a delivery; each is a `message_delivery`
//!   protocol error with its example.

mod common;

use common::{request_head, run_quiet, Scenario, Scratch};
use inrush::report::summary::Verdict;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Answers every request on the connection `503` with `Retry-After: 5`.
async fn unavailable(mut stream: TcpStream) {
    while request_head(&mut stream).await.is_some() {
        let answer =
            "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 5\r\nContent-Length: 0\r\n\r\n";
        if stream.write_all(answer.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// Answers a WebSocket upgrade; false when the request was none.
async fn upgrade(stream: &mut TcpStream) -> bool {
    let Some(head) = request_head(stream).await else {
        return false;
    };
    let Some(key) = head.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.eq_ignore_ascii_case("sec-websocket-key")
            .then(|| value.trim().to_string())
    }) else {
        return false;
    };
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
    let answer = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {accept}\r\n\r\n"
    );
    stream.write_all(answer.as_bytes()).await.is_ok()
}

/// Upgrades to a WebSocket, then closes it (a close frame without a code) 1.5 s later.
async fn closes_later(mut stream: TcpStream) {
    if !upgrade(&mut stream).await {
        return;
    }
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let _ = stream.write_all(&[0x88, 0]).await;
    let mut rest = Vec::new();
    let _ = stream.read_to_end(&mut rest).await;
}

#[test]
fn a_target_that_only_asks_to_retry_later_fails_the_run() {
    let addr = common::serve_each(unavailable);
    let scratch = Scratch::new();
    // 5 users in 1 s; each first attempt is to be retried after 5 s (within the 10 s timeout),
    // past the drain's end (1 s + 1 s): every user is cut off waiting to retry.
    let scenario = Scenario::new("unavailable", 1)
        .url(&format!("http://{addr}"))
        .timeout("10s")
        .drain("1s")
        .run("retry = { attempts = 3, on = [503] }")
        .with(
            r#"
[load]
arrivals = "uniform"
phases = [ { name = "only", duration = "1s", rate = 5 } ]

[thresholds]
"errors.rate" = "< 1%"

[[flows.f.steps]]
name = "req"
http = "GET /"
"#,
        );
    let outcome = run_quiet(
        scratch.scenario("unavailable", scenario),
        scratch.out("run"),
        None,
    );
    let s = &outcome.summary;
    let a = &s.arrivals;
    assert_eq!((a.started, a.cut_off), (5, 5), "{a:?}");
    let req = &s.metrics["req"];
    assert_eq!((req.count, req.attempts), (0, 5), "{req:?}");
    assert_eq!(s.verdict, Verdict::Failed);
    assert_eq!(
        s.failed_outright(),
        Some("nothing succeeded: every request sent was answered with a failure to retry")
    );
    // A rate of nothing is not 0 %: nothing observed, and the threshold fails.
    let t = &s.thresholds[0];
    assert_eq!((t.observed, t.passed), (None, false), "{t:?}");
}

#[test]
fn users_whose_sockets_break_during_the_drain_failed() {
    let addr = common::serve_each(closes_later);
    let scratch = Scratch::new();
    // 5 users in 1 s, each thinking 10 s before it sends: the schedule's end cuts them off in
    // their think, and they stay online through the drain (4 s), during which the server
    // closes every socket.
    let scenario = Scenario::new("closes", 1)
        .url(&format!("http://{addr}"))
        .timeout("2s")
        .drain("4s")
        .with(
            r#"
[load]
arrivals = "uniform"
phases = [ { name = "only", duration = "1s", rate = 5 } ]

[[flows.f.steps]]
name = "ws"
ws = "/"

[[flows.f.steps]]
name = "msg"
think = { constant = "10s" }
send = { type = "send", body = "hi" }
"#,
        );
    let outcome = run_quiet(
        scratch.scenario("closes", scenario),
        scratch.out("run"),
        None,
    );
    let s = &outcome.summary;
    let ws = &s.metrics["ws"];
    // Every socket opened, and every one was lost: one error each, counted once.
    assert_eq!((ws.count, ws.errors), (10, 5), "{ws:?}");
    assert_eq!(ws.errors_by_class.get("ws_closed"), Some(&5), "{ws:?}");
    // An error counted is a failed user's: none completed, none merely cut off.
    let a = &s.arrivals;
    assert_eq!(
        (a.started, a.completed, a.failed, a.cut_off),
        (5, 0, 5, 0),
        "{a:?}"
    );
    assert_eq!(s.verdict, Verdict::Failed);
    assert_eq!(s.failed_outright(), Some("every user's flow failed"));
}

/// Upgrades to a WebSocket, delivers two messages inrush never sent, then stays open.
async fn delivers_forged(mut stream: TcpStream) {
    if !upgrade(&mut stream).await {
        return;
    }
    for id in ["999999-2-0", "bogus-\\u001b[2J"] {
        let text = format!(r#"{{"type":"message","id":"{id}"}}"#);
        let mut frame = vec![0x81, text.len() as u8];
        frame.extend_from_slice(text.as_bytes());
        if stream.write_all(&frame).await.is_err() {
            return;
        }
    }
    let mut rest = Vec::new();
    let _ = stream.read_to_end(&mut rest).await;
}

#[test]
fn ids_inrush_never_issued_are_protocol_errors_with_an_example() {
    let addr = common::serve_each(delivers_forged);
    let scratch = Scratch::new();
    let scenario = Scenario::new("forged", 1)
        .url(&format!("http://{addr}"))
        .with(
            r#"
[load]
arrivals = "uniform"
phases = [ { name = "only", duration = "1s", rate = 3 } ]

[[flows.f.steps]]
name = "ws"
ws = "/"
on_frame = [ { match = { "$.type" = "message" }, delivered = "$.id" } ]

[[flows.f.steps]]
stay_online = { constant = "500ms" }
"#,
        );
    let outcome = run_quiet(
        scratch.scenario("forged", scenario),
        scratch.out("run"),
        None,
    );
    let s = &outcome.summary;
    assert_eq!(s.arrivals.started, 3);
    assert_eq!((s.messages.delivered, s.messages.duplicated), (0, 0));
    let d = &s.metrics["message_delivery"];
    assert_eq!(d.errors_by_class.get("protocol"), Some(&6), "{d:?}");
    assert!(d.latency_ms.is_none(), "no delivery latency: {d:?}");
    // The first example is kept: the forged sender's, saying why.
    let example = &d.error_examples["protocol"];
    assert_eq!(
        example,
        "delivered id `999999-2-0` is not one of inrush's: no user of the run by that index \
         sent a message"
    );
}
