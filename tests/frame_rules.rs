//! Background frame rules that answer with what the frame said and capture from it: each user
//! sends itself a message through the built-in messenger, answers the delivered message with a
//! receipt addressed from the frame (`frame.sender`, `frame.id`), and waits until a rule captured
//! the receipt of the message it sent (templated expected values: the ack's id is the step's
//! `msg.id`, the loop's `until` equals the captured id).

mod common;

use std::process::Command;

use common::{Scenario, Scratch};
use serde_json::Value;

/// 5 users, one every 200 ms.
fn scenario() -> Scenario {
    Scenario::new("receipts", 5).timeout("5s").with(
        r#"
[load]
arrivals = "uniform"
phases = [ { name = "only", duration = "1s", rate = 5 } ]

[[flows.f.steps]]
name = "register"
http = "POST /v1/register"
json = { phone = "{{ user.phone }}" }
expect.status = 202
capture.verification = "$.verification_id"

[[flows.f.steps]]
name = "sms_code"
http = "GET /v1/test/sms/{{ user.phone }}"
query = { wait_ms = "5000" }
capture.code = "$.code"

[[flows.f.steps]]
name = "verify"
http = "POST /v1/verify"
json = { verification_id = "{{ verification }}", code = "{{ code }}" }
expect = { status = 201 }
capture = { user_id = "$.user_id", token = "$.token" }

[[flows.f.steps]]
name = "ws"
ws = "/v1/ws?token={{ token }}"
on_frame = [
  # A receipt (a message whose body starts with "receipt"): counted, its id and sender captured.
  { match = { regex = '"body":"receipt ' }, count = "receipts", capture = { receipt_for = { regex = '"body":"receipt ([^"]+)"' }, receipt_from = "$.from" } },
  # A message: delivered, and answered with a receipt naming its id (a path into the frame) to
  # its sender (a named group of the match regex).
  { match = { "$.type" = "message", regex = '"from":"(?P<sender>[^"]+)"' }, delivered = "$.id", reply = { type = "send", id = "r{{ frame.id }}", to = "{{ frame.sender }}", body = "receipt {{ frame.id }}" } },
]

[[flows.f.steps]]
name = "note"
send = { type = "send", id = "{{ msg.id }}", to = "{{ user_id }}", body = "hello" }
# The ack of this very message: a templated expected value, evaluated for the step.
expect = { json = { "$.type" = "ack", "$.id" = "{{ msg.id }}" } }
capture.sent_id = "$.id"

[[flows.f.steps]]
name = "await_receipt"
loop = { until = { var = "receipt_for", equals = "{{ sent_id }}" }, max = 100, steps = [ { think = { constant = "20ms" } } ] }

[[flows.f.steps]]
name = "check"
http = "GET /healthz"
query = { receipt_for = "{{ receipt_for }}", receipt_from = "{{ receipt_from }}", me = "{{ user_id }}" }
"#,
    )
}

#[test]
fn a_reply_answers_with_the_frames_values_and_a_rule_captures_for_later_steps() {
    let scratch = Scratch::new();
    let file = scratch.scenario("receipts", scenario());
    let out = scratch.out("run");
    let status = Command::new(env!("CARGO_BIN_EXE_inrush"))
        .args([
            "run",
            "--quiet",
            "--accept-overload",
            "--workers",
            "1",
            "--trace",
            "5",
            "--out",
        ])
        .arg(&out)
        .arg(&file)
        .status()
        .expect("inrush runs");
    assert_eq!(status.code(), Some(0));
    let summary: Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("summary.json")).expect("summary.json"),
    )
    .expect("summary parses");
    // Every user's message was acked (the templated `expect`) and its receipt came back: the
    // loop ended on the capture equal to the sent id.
    assert_eq!(summary["metrics"]["note"]["count"], 5);
    assert_eq!(summary["metrics"]["note"]["errors"], 0);
    assert_eq!(summary["metrics"]["await_receipt"]["count"], 5);
    assert_eq!(summary["metrics"]["await_receipt"]["errors"], 0);
    assert_eq!(summary["messages"]["sent"], 5);
    assert_eq!(summary["counts"]["receipts"], 5);

    let text = std::fs::read_to_string(out.join("trace.jsonl")).expect("trace.jsonl");
    let events: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    for user in 0..5u64 {
        let mine = events.iter().filter(|e| e["user"] == user);
        let frames_out: Vec<Value> = mine
            .clone()
            .filter(|e| e["event"] == "frame_out")
            .map(|e| serde_json::from_str(e["body"].as_str().unwrap()).expect("JSON frame"))
            .collect();
        // The message, then the receipt the rule rendered from the delivered frame.
        let [note, receipt] = frames_out.as_slice() else {
            panic!("user {user}: {frames_out:?}")
        };
        let id = note["id"].as_str().unwrap();
        assert_eq!(receipt["id"], format!("r{id}"));
        assert_eq!(receipt["to"], note["to"]);
        assert_eq!(receipt["body"], format!("receipt {id}"));
        // The captures reached a later step: the check request carries them.
        let check = mine
            .clone()
            .find(|e| e["step"] == "check" && e["event"] == "request")
            .expect("the check request");
        let me = note["to"].as_str().unwrap();
        assert!(
            check["path"]
                .as_str()
                .unwrap()
                .ends_with(&format!("?receipt_for={id}&receipt_from={me}&me={me}")),
            "{check}"
        );
    }
}

/// The data segments a TCP socket has received so far (the kernel's `tcpi_data_segs_in`): on
/// loopback each small write of the peer arrives as one.
fn data_segments_in(fd: std::os::fd::RawFd) -> u32 {
    // SAFETY: `tcp_info` is plain data, and getsockopt writes at most `len` bytes into it.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    let got = unsafe {
        libc::getsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&mut info as *mut libc::tcp_info).cast(),
            &mut len,
        )
    };
    assert_eq!(got, 0, "TCP_INFO: {}", std::io::Error::last_os_error());
    info.tcpi_data_segs_in
}

#[test]
fn replies_to_frames_read_together_go_out_in_one_write() {
    use futures_util::{SinkExt, StreamExt};
    use std::sync::{Arc, Mutex};
    use tokio_tungstenite::tungstenite::Message;

    // The server sends 10 frames in one write, as a server flushing a backlog at login does;
    // the user reads them together and its rule answers each. The 10 replies go out in one
    // write: the server's socket receives them in one data segment.
    let segments = Arc::new(Mutex::new(None));
    let replies = Arc::new(Mutex::new(Vec::new()));
    let (s, r) = (segments.clone(), replies.clone());
    let addr = common::serve_each(move |stream| {
        let (segments, replies) = (s.clone(), r.clone());
        async move {
            let fd = std::os::fd::AsRawFd::as_raw_fd(&stream);
            let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
                return;
            };
            for n in 0..10 {
                let frame = format!(r#"{{"type":"m","n":"{n}"}}"#);
                if ws.feed(Message::text(frame)).await.is_err() {
                    return;
                }
            }
            let before = data_segments_in(fd);
            if ws.flush().await.is_err() {
                return;
            }
            while let Some(Ok(m)) = ws.next().await {
                if let Message::Text(t) = m {
                    let mut replies = replies.lock().expect("replies");
                    replies.push(t.to_string());
                    if replies.len() == 10 {
                        *segments.lock().expect("segments") = Some(data_segments_in(fd) - before);
                    }
                }
            }
        }
    });
    let scratch = Scratch::new();
    let scenario = Scenario::new("together", 3)
        .url(&format!("http://{addr}"))
        .timeout("5s")
        .with(
            r#"
[load]
arrivals = "uniform"
phases = [ { name = "only", duration = "1s", rate = 1 } ]

[[flows.f.steps]]
name = "ws"
ws = "/"
on_frame = [ { match = { "$.type" = "m" }, reply = { type = "r", n = "{{ frame.n }}" } } ]

[[flows.f.steps]]
think = { constant = "500ms" }
"#,
        );
    let file = scratch.scenario("together", scenario);
    let outcome = common::run_quiet(file, scratch.out("run"), None);
    let ws = &outcome.summary.metrics["ws"];
    assert_eq!(
        (ws.errors, ws.frames_received, ws.frames_sent),
        (0, 10, 10),
        "{ws:?}"
    );
    let replies = replies.lock().expect("replies").clone();
    let expected: Vec<String> = (0..10)
        .map(|n| format!(r#"{{"type":"r","n":"{n}"}}"#))
        .collect();
    assert_eq!(replies, expected);
    // One write, one segment; one by one, as many segments as writes (or fewer, where the
    // kernel corked some together).
    let segments = *segments.lock().expect("segments");
    assert_eq!(segments, Some(1), "data segments that carried the replies");
}
