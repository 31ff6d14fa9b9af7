//! Hostile targets, served here on 127.0.0.1 by a small server whose behaviour the request's
//! path picks:
//!
//! - `/flood`: a WebSocket that floods pings and never reads. Every ping owes a pong; once the
//!   kernel's buffers are full the pongs would queue in the generator without end (2 GiB for 15
//!   users, and a run that never ended, before the outgoing queue was bounded). Now each socket
//!   is given up with a `protocol` error once its queue is over the bound, and the run ends on
//!   time with its report.
//! - `/big`, `/rsv`: a WebSocket whose first frame is over the 1 MiB limit, or invalid (reserved
//!   bits set): a `protocol` error that says so, not "the socket closed".
//! - `/garbage`: an answer that is not HTTP: a `protocol` error, never retried as a `connect`.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{run_quiet, Scenario, Scratch};
use inrush::report::summary::Summary;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// The largest payload a ping may carry: each one read owes a 131-byte pong.
const PING: [u8; 127] = {
    let mut frame = [b'p'; 127];
    frame[0] = 0x89; // FIN + ping
    frame[1] = 125; // unmasked, as a server's frames are
    frame
};

/// Reads a request head, then misbehaves as its path says.
async fn serve(mut stream: TcpStream) {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read_u8().await {
            Ok(b) if head.len() < 16 * 1024 => head.push(b),
            // The run's reachability probe connects and closes; anything else is not for us.
            _ => return,
        }
    }
    let head = String::from_utf8_lossy(&head);
    if head.starts_with("GET /garbage") {
        let _ = stream.write_all(b"HELLO THERE\r\n\r\n").await;
        return;
    }
    let Some(key) = head.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.eq_ignore_ascii_case("sec-websocket-key")
            .then(|| value.trim().to_string())
    }) else {
        return;
    };
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
    let answer = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {accept}\r\n\r\n"
    );
    if stream.write_all(answer.as_bytes()).await.is_err() {
        return;
    }
    if head.starts_with("GET /big") {
        // A binary frame announcing 2 MiB (64-bit length), then its first bytes.
        let mut frame = vec![0x82, 127];
        frame.extend_from_slice(&(2u64 << 20).to_be_bytes());
        frame.extend_from_slice(&[0; 1024]);
        let _ = stream.write_all(&frame).await;
    } else if head.starts_with("GET /rsv") {
        // A text frame with all three reserved bits set, no extension having been agreed.
        let _ = stream.write_all(&[0xf1, 2, b'h', b'i']).await;
    } else {
        // Writes pings until the client goes away, reading nothing more.
        let burst: Vec<u8> = PING
            .iter()
            .copied()
            .cycle()
            .take(PING.len() * 512)
            .collect();
        while stream.write_all(&burst).await.is_ok() {}
        return;
    }
    // Held open (unread) until the client gives up on it.
    let mut rest = Vec::new();
    let _ = stream.read_to_end(&mut rest).await;
}

/// The hostile server on a loopback port. Its sockets' receive buffers are small (4 KiB), so
/// a flooded client's kernel buffers fill after a few dozen KiB of pongs and what the test
/// sees is inrush's own queue, soon.
fn start_hostile() -> std::net::SocketAddr {
    common::on_own_thread(|tx| async move {
        let socket = TcpSocket::new_v4().expect("socket");
        socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
        socket
            .bind(([127, 0, 0, 1], 0).into())
            .expect("bind loopback");
        let listener = socket.listen(64).expect("listen");
        let _ = tx.send(listener.local_addr().expect("address"));
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(serve(stream));
        }
    })
}

/// The child's peak resident memory (ru_maxrss, KiB) and exit code, once it exits; None if it
/// is still running after `limit` (then it is killed).
fn wait_with_peak(child: std::process::Child, limit: Duration) -> Option<(i64, Option<i32>)> {
    let pid = child.id() as libc::pid_t;
    let start = Instant::now();
    loop {
        let mut status = 0;
        // SAFETY: a zeroed rusage filled in by wait4 for our own child.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: waiting on our own child's pid with valid out-pointers.
        let done = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        if done == pid {
            let code = libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
            return Some((usage.ru_maxrss, code));
        }
        if start.elapsed() > limit {
            // SAFETY: killing and reaping our own child.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, &mut status, 0);
            }
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_target_that_floods_pings_and_never_reads_is_refused_in_bounded_memory_and_time() {
    let addr = start_hostile();
    let scratch = Scratch::new();
    // 15 users in 2 s, each opening a socket to the flooder and meaning to stay 5 s; the 3 s
    // drain keeps the last ones listening (and counting) until their queue is over the bound.
    let scenario = Scenario::new("flood", 12)
        .url(&format!("http://{addr}"))
        .timeout("2s")
        .drain("3s")
        .with(
            r#"
[load]
arrivals = "uniform"
phases = [ { name = "only", duration = "2s", rate = 7.5 } ]

[[flows.f.steps]]
name = "ws"
ws = "/flood"

[[flows.f.steps]]
stay_online = { constant = "5s" }
"#,
        );
    let path = scratch.scenario("flood", scenario);
    let out = scratch.out("run");
    let child = Command::new(env!("CARGO_BIN_EXE_inrush"))
        .args([
            "run",
            "--quiet",
            "--accept-overload",
            "--workers",
            "1",
            "--out",
        ])
        .arg(&out)
        .arg(&path)
        .spawn()
        .expect("inrush starts");
    // The schedule (2 s) and the drain (3 s), then each user still there closes within
    // CLOSE_WITHIN (1 s) and reads within min(timeout, 1 s): 7 s at most; the rest is slack
    // for a shared 2-core machine (with the unbounded queue the run never ended at all).
    let started = Instant::now();
    let (peak_kib, code) =
        wait_with_peak(child, Duration::from_secs(60)).expect("the run ends, it does not hang");
    eprintln!(
        "the run ended after {:.1} s, peak RSS {} MiB",
        started.elapsed().as_secs_f64(),
        peak_kib / 1024
    );
    // No thresholds (and a loaded machine's lag accepted), but every user's flow failed (each
    // socket opened, then was given up): the run fails, exit 1.
    assert_eq!(code, Some(1), "every user's flow failed");
    // 15 sockets of at most ~1 MiB out, 1 MiB of a frame in, and the process itself
    // (~20 MiB): well under 200 MiB, where the unbounded queue took 0.4-2.1 GiB.
    assert!(peak_kib < 200 * 1024, "peak RSS {} MiB", peak_kib / 1024);
    let summary: Summary = serde_json::from_str(
        &std::fs::read_to_string(out.join("summary.json")).expect("summary written"),
    )
    .expect("summary schema");
    let ws = &summary.metrics["ws"];
    assert_eq!(summary.arrivals.started, 15);
    // Every socket is given up as the target's protocol error, with the reason.
    assert_eq!(ws.errors_by_class.get("protocol"), Some(&15), "{ws:?}");
    let example = &ws.error_examples["protocol"];
    assert!(
        example.contains("the peer does not read") && example.contains("inrush closed the socket"),
        "{example}"
    );
}

#[test]
fn frames_over_the_limit_or_invalid_and_answers_that_are_not_http_are_protocol_errors() {
    let addr = start_hostile();
    let scratch = Scratch::new();
    // 30 users dealt over three cohorts, one per misbehaviour; `connect` failures are retried.
    let scenario = Scenario::new("hostile", 4)
        .url(&format!("http://{addr}"))
        .timeout("3s")
        .run(r#"retry = { attempts = 3, on = ["connect"], backoff = "10ms" }"#)
        .with(
            r#"
[load]
arrivals = "uniform"
phases = [ { name = "only", duration = "1s", rate = 30 } ]

[[cohorts]]
name = "big"
flow = "big"
share = 0.34
[[cohorts]]
name = "rsv"
flow = "rsv"
share = 0.33
[[cohorts]]
name = "garbage"
flow = "garbage"
share = 0.33

[[flows.big.steps]]
name = "big_ws"
ws = "/big"
[[flows.big.steps]]
name = "big_frame"
expect = { regex = "." }

[[flows.rsv.steps]]
name = "rsv_ws"
ws = "/rsv"
[[flows.rsv.steps]]
name = "rsv_frame"
expect = { regex = "." }

[[flows.garbage.steps]]
name = "garbage"
http = "GET /garbage"
"#,
        );
    let outcome = run_quiet(
        scratch.scenario("hostile", scenario),
        scratch.out("run"),
        None,
    );
    let m = &outcome.summary.metrics;
    let only_protocol = |name: &str, says: &str| {
        let metric = &m[name];
        assert!(metric.errors >= 1, "{name}: {metric:?}");
        assert_eq!(
            metric.errors_by_class.get("protocol"),
            Some(&metric.errors),
            "{name}: {metric:?}"
        );
        let example = &metric.error_examples["protocol"];
        assert!(example.contains(says), "{name}: {example}");
        metric.retries
    };
    only_protocol(
        "big_frame",
        "frame of 2097152 bytes over the 1048576 limit; inrush closed the socket",
    );
    only_protocol(
        "rsv_frame",
        "invalid frame: Reserved bits are non-zero; inrush closed the socket",
    );
    let retries = only_protocol("garbage", "malformed response");
    assert_eq!(
        retries, 0,
        "a malformed response is not retried as a connect"
    );
}
