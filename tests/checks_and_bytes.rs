//! Checks (k6's `checks`) and bytes sent and received, against a small loopback server that
//! counts every byte it reads and writes: the run's byte counts equal the server's, its checks
//! equal what a scenario whose expectations fail by construction makes, thresholds on checks
//! set the exit code, and a failed check fails its step's transaction.

mod common;

use std::pin::Pin;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use common::{Scenario, Scratch};
use futures_util::{SinkExt, StreamExt};
use inrush::report::summary::Summary;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::WebSocketStream;

/// What the server read and wrote, by kind of connection: [HTTP read, HTTP written, WebSocket
/// read, WebSocket written] (a socket's upgrade request and response are the WebSocket's).
type Tally = Arc<[AtomicU64; 4]>;

/// A connection's bytes, counted into the tally as they pass (`at`: 0 for HTTP, 2 for WS).
struct Counted {
    inner: TcpStream,
    tally: Tally,
    at: usize,
}

impl AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let p = Pin::new(&mut self.inner).poll_read(cx, buf);
        let n = (buf.filled().len() - before) as u64;
        self.tally[self.at].fetch_add(n, Ordering::SeqCst);
        p
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let p = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = &p {
            self.tally[self.at + 1].fetch_add(*n as u64, Ordering::SeqCst);
        }
        p
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Reads up to the end of a request head (the client sends nothing more before the answer,
/// except an HTTP body, which `rest` keeps). None at the end of the stream.
async fn read_head(s: &mut TcpStream, pending: &mut Vec<u8>) -> Option<(String, Vec<u8>, u64)> {
    let mut read = 0u64;
    loop {
        if let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&pending[..end + 4]).to_string();
            let rest = pending.split_off(end + 4);
            pending.clear();
            return Some((head, rest, read));
        }
        let mut buf = [0u8; 4096];
        let n = s.read(&mut buf).await.ok()?;
        if n == 0 {
            return None;
        }
        read += n as u64;
        pending.extend_from_slice(&buf[..n]);
    }
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// One connection: keep-alive HTTP (`POST /echo/<n>` answers `{"index": n, "even": …}`) or,
/// on an upgrade, a WebSocket that echoes every data frame.
async fn serve(mut s: TcpStream, tally: Tally) {
    let mut pending = Vec::new();
    loop {
        let Some((head, mut body, read)) = read_head(&mut s, &mut pending).await else {
            return;
        };
        if let Some(key) = header(&head, "sec-websocket-key") {
            tally[2].fetch_add(read, Ordering::SeqCst);
            let accept =
                tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
            let mut s = Counted {
                inner: s,
                tally,
                at: 2,
            };
            let answer = format!(
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
            );
            if s.write_all(answer.as_bytes()).await.is_err() {
                return;
            }
            let mut ws = WebSocketStream::from_raw_socket(s, Role::Server, None).await;
            while let Some(Ok(m)) = ws.next().await {
                if (m.is_text() || m.is_binary()) && ws.send(m).await.is_err() {
                    return;
                }
            }
            return;
        }
        tally[0].fetch_add(read, Ordering::SeqCst);
        let length: usize = header(&head, "content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        while body.len() < length {
            let mut buf = [0u8; 4096];
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    tally[0].fetch_add(n as u64, Ordering::SeqCst);
                    body.extend_from_slice(&buf[..n]);
                }
            }
        }
        // Anything past the body would be a pipelined request: hyper does not pipeline.
        pending = body.split_off(length);
        let path = head.split_whitespace().nth(1).unwrap_or("");
        let n: u64 = path
            .rsplit('/')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        let json = format!(r#"{{"index": {n}, "even": {}}}"#, n % 2 == 0);
        let answer = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{json}",
            json.len()
        );
        if s.write_all(answer.as_bytes()).await.is_err() {
            return;
        }
        tally[1].fetch_add(answer.len() as u64, Ordering::SeqCst);
    }
}

/// Starts the counting server on an OS-assigned loopback port, on a thread of its own.
fn counting_server() -> (String, Tally) {
    let tally: Tally = Arc::new(Default::default());
    let t = tally.clone();
    let addr = common::serve_each(move |s| serve(s, t.clone()));
    (format!("http://{addr}"), tally)
}

/// 20 users (uniform, 20/s for 1 s: user indexes 0…19), each: a socket with three echoed
/// frames, then one request whose `$.even` check fails for the 10 odd indexes. Two seconds
/// without arrivals follow: an arrival may start until the schedule's end, so a stall of the
/// machine (a run of the suite beside other work dropped arrivals behind the 1 s schedule)
/// delays users rather than drops them.
fn scenario(url: &str) -> Scenario {
    Scenario::new("checks", 15)
        .url(url)
        .drain("3s")
        .timeout("5s")
        .with(
            r#"
[load]
arrivals = "uniform"
phases = [
  { name = "p", duration = "1s", rate = 20 },
  { name = "tail", duration = "2s", rate = 0 },
]

[[flows.f.steps]]
name = "chat"
ws = "/ws"

[[flows.f.steps]]
name = "talk"
repeat = 3
send = { type = "hello", n = "{{ seq }}" }
expect = { json = { "$.type" = "hello" } }

[[flows.f.steps]]
close = true

[[flows.f.steps]]
name = "echo"
transaction = "visit"
http = "POST /echo/{{ user.index }}"
json = { padding = "{{ random_string(40) }}" }
expect = { status = 200, json = { "$.even" = true }, exists = ["$.index"] }
"#,
        )
}

fn inrush() -> Command {
    Command::new(env!("CARGO_BIN_EXE_inrush"))
}

/// Waits (bounded) until the server has read and written what the run counted: the last bytes
/// of a socket's close may reach it after the run returned.
fn settled(tally: &Tally, want: [u64; 4]) -> [u64; 4] {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let seen = [0, 1, 2, 3].map(|i| tally[i].load(Ordering::SeqCst));
        if seen == want || Instant::now() > deadline {
            return seen;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn bytes_equal_the_servers_and_checks_count_what_failed_by_construction() {
    let (url, tally) = counting_server();
    let scratch = Scratch::new();
    let path = scratch.scenario("checks", scenario(&url));
    let out = scratch.out("run");
    // A CLI run with a threshold on checks that 110 passed of 120 meet: exit 0.
    let status = inrush()
        .arg("run")
        .arg(&path)
        .arg("--out")
        .arg(&out)
        .args(["--workers", "1", "--quiet", "--accept-overload"])
        .args(["--threshold", "checks.rate > 90%"])
        .status()
        .expect("runs");
    let text = std::fs::read_to_string(out.join("summary.json")).expect("summary.json");
    let s: Summary = serde_json::from_str(&text).expect("summary schema");
    // Every arrival started (20 over 1 s: their deadline is the schedule's end, seconds away
    // for a generator that starts one every 50 ms) and every flow ran to its end or its
    // failed check within the 3 s drain.
    assert_eq!(s.arrivals.started, 20, "{text}");
    assert_eq!((s.arrivals.completed, s.arrivals.failed), (10, 10));
    assert_eq!(
        status.code(),
        Some(0),
        "checks.rate > 90% passes at 110 of 120"
    );

    // Checks: 60 echoed frames, then each request's three conditions; `$.even` fails for
    // the odd half.
    let c = &s.checks;
    let by_name: Vec<(&str, u64, u64)> = c
        .by_check
        .iter()
        .map(|c| (c.name.as_str(), c.passed, c.failed))
        .collect();
    assert_eq!(
        by_name,
        [
            (r#"talk $.type == "hello""#, 60, 0),
            ("echo status == 200", 20, 0),
            ("echo $.even == true", 10, 10),
            ("echo $.index exists", 20, 0),
        ]
    );
    assert_eq!((c.passed, c.failed), (110, 10));
    assert_eq!(c.rate, Some(0.916667));
    let t = &s.thresholds[0];
    assert_eq!((t.observed, t.passed), (Some(0.916667), true));
    assert_eq!(t.observed_text(), "91.6667 %");
    // A failed check fails its step (check_failed) and the step's transaction with it.
    let echo = &s.metrics["echo"];
    assert_eq!((echo.count, echo.errors), (20, 10));
    assert_eq!(echo.errors_by_class.get("check_failed"), Some(&10));
    let visit = &s.metrics["visit"];
    assert_eq!((visit.count, visit.errors), (20, 10));

    // Bytes: each metric's equal what the server read and wrote on its connections.
    let chat = &s.metrics["chat"];
    let want = [
        echo.bytes_sent,
        echo.bytes_received,
        chat.bytes_sent,
        chat.bytes_received,
    ];
    assert_eq!(
        settled(&tally, want),
        want,
        "server [http in, out, ws in, out]"
    );
    assert!(want.iter().all(|b| *b > 0), "{want:?}");
    assert_eq!(s.bytes_sent, echo.bytes_sent + chat.bytes_sent);
    assert_eq!(s.bytes_received, echo.bytes_received + chat.bytes_received);
    // The frames' bytes are the socket's, not the send steps'; a transaction moves none.
    assert_eq!(s.metrics["talk"].bytes_sent, 0);
    assert_eq!(visit.bytes_sent + visit.bytes_received, 0);

    // The reports say it: the terminal's line, summary.md's breakdown of the failed check.
    let md = std::fs::read_to_string(out.join("summary.md")).expect("summary.md");
    assert!(
        md.contains("**Checks:** 91.6 % (110 passed, 10 failed)"),
        "{md}"
    );
    assert!(
        md.contains("| `echo $.even == true` | 10 | 10 | 50.0 % |"),
        "{md}"
    );
    assert!(
        !md.contains("| `echo status == 200`"),
        "only failed checks are broken down"
    );
    assert!(md.contains("**Data** (sent / received)"), "{md}");
    let html = std::fs::read_to_string(out.join("index.html")).expect("index.html");
    assert!(html.contains(r#"<section id="checks">"#));
    assert!(html.contains("<code>echo $.even == true</code>"));
    let table = inrush::report::terminal::render(&s);
    assert!(
        table.contains("\nchecks 91.6 % (110 passed, 10 failed)\n"),
        "{table}"
    );
    assert!(table.contains("\ndata: "), "{table}");

    // Re-gated without running again (the run's own threshold, rate > 90 %, still in): each
    // threshold on checks sets the exit code.
    // Thresholds on bytes too, in sizes.
    for (threshold, code) in [
        ("checks.rate > 99%".to_string(), 1),
        ("checks.failed == 0".to_string(), 1),
        ("checks.passed == 110".to_string(), 0),
        ("checks.failed <= 10".to_string(), 0),
        (format!("bytes.sent == {}", s.bytes_sent), 0),
        ("echo.bytes_received < 10B".to_string(), 1),
        ("chat.bytes_sent < 1MB".to_string(), 0),
    ] {
        let status = inrush()
            .arg("report")
            .arg(&out)
            .args(["--threshold", &threshold])
            .output()
            .expect("report runs");
        assert_eq!(status.status.code(), Some(code), "{threshold}");
    }
}
