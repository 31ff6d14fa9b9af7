//! What the RFCs ask of an HTTP and WebSocket client, checked on the wire against a small
//! loopback server of the test's own that records what it reads (each found missing by pointing
//! inrush at real services):
//!
//! - one `Host` header (RFC 9112 §3.2: more than one is a 400, as nginx answers): a flow's own
//!   replaces the target's, on requests and on the WebSocket upgrade alike;
//! - a subprotocol the server chose that the client never offered fails the socket (RFC 6455
//!   §4.1), also when it offered none;
//! - a 101 without `Upgrade: websocket` or `Connection: upgrade` fails the socket (RFC 6455
//!   §4.1), and a valid 101 with many headers (40 more) is taken, as the HTTP client takes 100;
//! - a server's close frame is answered (RFC 6455 §5.5.1), and its code and reason reach the
//!   user's error.

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use common::{request_head as head, run_quiet, Scenario, Scratch};
use inrush::report::summary::Summary;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What the server saw.
#[derive(Debug, Default)]
struct Seen {
    /// Every request head, as read.
    heads: Mutex<Vec<String>>,
    /// The codes of the close frames clients sent back after the server's own.
    close_answers: Mutex<Vec<u16>>,
}

fn server() -> (SocketAddr, Arc<Seen>) {
    let seen = Arc::new(Seen::default());
    let counts = seen.clone();
    let addr = common::serve_each(move |stream| serve(stream, counts.clone()));
    (addr, seen)
}

/// A header's value in a head (the first one of that name).
fn header<'h>(head: &'h str, name: &str) -> Option<&'h str> {
    head.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// Requests answered `ok`; WebSocket upgrades answered as their path says: `/ws/agree` picks
/// the first subprotocol offered, `/ws/other` names `other.v9` whatever was offered,
/// `/ws/close` closes with 4000 "bye" at once and reads the client's answer, `/ws/bare` leaves
/// out `Upgrade` and `Connection`, `/ws/h2c` upgrades to `h2c`, `/ws/many` adds 40 headers;
/// every socket is then held until the client closes it.
async fn serve(mut stream: TcpStream, seen: Arc<Seen>) {
    while let Some(head) = head(&mut stream).await {
        seen.heads.lock().expect("heads").push(head.clone());
        let Some(key) = header(&head, "sec-websocket-key") else {
            let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
            if stream.write_all(ok).await.is_err() {
                return;
            }
            continue;
        };
        let path = head.split_whitespace().nth(1).unwrap_or("").to_string();
        let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
        let protocol = match path.as_str() {
            "/ws/agree" => header(&head, "sec-websocket-protocol")
                .and_then(|offered| offered.split(',').next())
                .map(|p| format!("Sec-WebSocket-Protocol: {}\r\n", p.trim())),
            "/ws/other" => Some("Sec-WebSocket-Protocol: other.v9\r\n".to_string()),
            _ => None,
        };
        let upgrade = match path.as_str() {
            "/ws/bare" => "",
            "/ws/h2c" => "Upgrade: h2c\r\nConnection: Upgrade\r\n",
            _ => "Upgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n",
        };
        let extra: String = match path.as_str() {
            "/ws/many" => (0..40).map(|i| format!("X-Extra-{i}: v\r\n")).collect(),
            _ => String::new(),
        };
        let answer = format!(
            "HTTP/1.1 101 Switching Protocols\r\n{upgrade}\
             Sec-WebSocket-Accept: {accept}\r\n{}{extra}\r\n",
            protocol.unwrap_or_default()
        );
        if stream.write_all(answer.as_bytes()).await.is_err() {
            return;
        }
        if path == "/ws/close" {
            // Close 4000 "bye", unmasked as a server's frames are.
            let mut frame = vec![0x88, 5];
            frame.extend_from_slice(&4000u16.to_be_bytes());
            frame.extend_from_slice(b"bye");
            if stream.write_all(&frame).await.is_err() {
                return;
            }
            if let Some(code) = close_answer(&mut stream).await {
                seen.close_answers.lock().expect("answers").push(code);
            }
        }
        // Held until the client goes.
        let mut rest = [0u8; 256];
        while matches!(stream.read(&mut rest).await, Ok(n) if n > 0) {}
        return;
    }
}

/// Reads the client's frames (masked, as a client's are) up to its close frame: its code.
async fn close_answer(stream: &mut TcpStream) -> Option<u16> {
    loop {
        let mut start = [0u8; 2];
        stream.read_exact(&mut start).await.ok()?;
        let len = match start[1] & 0x7f {
            126 => usize::from(stream.read_u16().await.ok()?),
            127 => usize::try_from(stream.read_u64().await.ok()?).ok()?,
            n => usize::from(n),
        };
        let mut mask = [0u8; 4];
        stream.read_exact(&mut mask).await.ok()?;
        let mut payload = vec![0u8; len.min(1 << 16)];
        stream.read_exact(&mut payload).await.ok()?;
        if start[0] & 0x0f == 0x8 {
            let code: Vec<u8> = payload
                .iter()
                .zip(mask.iter().cycle())
                .map(|(b, m)| b ^ m)
                .collect();
            return Some(u16::from_be_bytes([*code.first()?, *code.get(1)?]));
        }
    }
}

/// Three users, one every 1/3 s, each running `steps`; a second for the last to finish.
fn run(name: &str, addr: SocketAddr, steps: &str) -> Summary {
    let scratch = Scratch::new();
    let scenario = Scenario::new(name, 11)
        .url(&format!("http://{addr}"))
        .timeout("3s")
        .with(format!(
            r#"[load]
arrivals = "uniform"
phases = [ {{ name = "only", duration = "1s", rate = 3 }},
           {{ name = "finish", duration = "1s", rate = 0 }} ]
{steps}"#
        ));
    let out = scratch.out(name);
    run_quiet(scratch.scenario(name, scenario), out, None).summary
}

#[test]
fn a_host_header_of_the_flow_replaces_the_targets_on_requests_and_upgrades() {
    let (addr, seen) = server();
    let s = run(
        "host",
        addr,
        r#"
[[flows.f.steps]]
name = "get"
http = "GET /plain"
headers = { Host = "api.example.com" }
[[flows.f.steps]]
name = "ws"
ws = "/ws/hold"
headers = { host = "api.example.com" }
[[flows.f.steps]]
close = true
"#,
    );
    for name in ["get", "ws"] {
        let m = &s.metrics[name];
        assert_eq!(
            (m.count, m.errors),
            (3, 0),
            "{name}: {:?}",
            m.error_examples
        );
    }
    let heads = seen.heads.lock().expect("heads");
    assert_eq!(heads.len(), 6, "{heads:?}");
    for head in heads.iter() {
        let hosts: Vec<&str> = head
            .lines()
            .filter(|l| l.to_ascii_lowercase().starts_with("host:"))
            .collect();
        assert_eq!(hosts.len(), 1, "one Host header: {head}");
        assert_eq!(header(head, "host"), Some("api.example.com"), "{head}");
    }
}

#[test]
fn two_host_headers_fail_a_ws_step_before_its_upgrade_goes_out() {
    let (addr, seen) = server();
    let s = run(
        "hosts",
        addr,
        r#"
[[flows.f.steps]]
name = "ws"
ws = "/ws/hold"
headers = { host = "a.example.com", Host = "b.example.com" }
"#,
    );
    let m = &s.metrics["ws"];
    assert_eq!((m.count, m.errors), (3, 3), "{:?}", m.error_examples);
    assert_eq!(m.errors_by_class.get("protocol"), Some(&3));
    let heads = seen.heads.lock().expect("heads");
    assert!(heads.is_empty(), "nothing went out: {heads:?}");
}

#[test]
fn a_subprotocol_the_client_did_not_offer_fails_the_socket_as_a_protocol_error() {
    let (addr, _) = server();
    // The server agrees to what was offered: the socket is up; then it names another.
    let s = run(
        "offered",
        addr,
        r#"
[[flows.f.steps]]
name = "agreed"
ws = "/ws/agree"
subprotocols = ["chat.v2", "chat.v1"]
[[flows.f.steps]]
close = true
[[flows.f.steps]]
name = "unoffered"
ws = "/ws/other"
subprotocols = ["chat.v2"]
"#,
    );
    let agreed = &s.metrics["agreed"];
    assert_eq!((agreed.count, agreed.errors), (3, 0), "{agreed:?}");
    let m = &s.metrics["unoffered"];
    assert_eq!(m.errors_by_class.get("protocol"), Some(&3), "{m:?}");
    assert_eq!(
        m.error_examples["protocol"],
        "websocket handshake: the server chose subprotocol \"other.v9\", which was not offered \
         (chat.v2)"
    );
    // Offering none, a socket whose server names one fails too.
    let s = run(
        "none",
        addr,
        r#"
[[flows.f.steps]]
name = "unoffered"
ws = "/ws/other"
"#,
    );
    let m = &s.metrics["unoffered"];
    assert_eq!(m.errors_by_class.get("protocol"), Some(&3), "{m:?}");
    assert_eq!(
        m.error_examples["protocol"],
        "websocket handshake: the server chose subprotocol \"other.v9\", but none was offered"
    );
}

#[test]
fn a_101_must_say_it_upgrades_to_websocket_and_may_carry_many_headers() {
    let (addr, _) = server();
    let s = run(
        "upgrade",
        addr,
        r#"
[[flows.f.steps]]
name = "many"
ws = "/ws/many"
[[flows.f.steps]]
close = true
[[flows.f.steps]]
name = "bare"
ws = "/ws/bare"
"#,
    );
    let many = &s.metrics["many"];
    assert_eq!((many.count, many.errors), (3, 0), "{many:?}");
    let bare = &s.metrics["bare"];
    assert_eq!(bare.errors_by_class.get("connect"), Some(&3), "{bare:?}");
    assert_eq!(
        bare.error_examples["connect"],
        "websocket handshake: the 101 has no `Upgrade: websocket`"
    );
    // The user's flow ends at its first failed step: `h2c` is run by its own flow.
    let s = run(
        "h2c",
        addr,
        r#"
[[flows.f.steps]]
name = "h2c"
ws = "/ws/h2c"
"#,
    );
    let h2c = &s.metrics["h2c"];
    assert_eq!(h2c.errors_by_class.get("connect"), Some(&3), "{h2c:?}");
    assert_eq!(
        h2c.error_examples["connect"],
        "websocket handshake: the 101 upgrades to \"h2c\", not websocket"
    );
}

#[test]
fn a_servers_close_is_answered_and_its_code_and_reason_reach_the_users_error() {
    let (addr, seen) = server();
    let s = run(
        "closed",
        addr,
        r#"
[[flows.f.steps]]
name = "ws"
ws = "/ws/close"
[[flows.f.steps]]
name = "welcome"
expect = { regex = "never sent", within = "2s" }
"#,
    );
    let examples: Vec<&String> = s
        .metrics
        .values()
        .filter_map(|m| m.error_examples.get("ws_closed"))
        .collect();
    assert!(!examples.is_empty(), "{:?}", s.metrics);
    for example in examples {
        assert!(
            example.contains("the peer closed the socket: 4000 bye"),
            "{example}"
        );
    }
    // Each user answered the close (with the server's code, as RFC 6455 §5.5.1 suggests)
    // while it still held the socket: the server read it before the TCP connection ended.
    assert_eq!(*seen.close_answers.lock().expect("answers"), vec![4000; 3]);
}
