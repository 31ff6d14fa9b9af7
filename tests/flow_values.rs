//! Every value generator, capture and loop kind of the scenario language against a small echo
//! server on 127.0.0.1: the server returns what it received, and the flow's own checks (regexes
//! on the echo) fail the run if a generator produced the wrong shape. A failed check is an error,
//! so "no errors" below means every check held.

mod common;

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::ws::{Message, WebSocketUpgrade};
use axum::http::{HeaderMap, Method, Uri};
use axum::response::IntoResponse;
use axum::routing::{any, get};
use common::{run_quiet, Scenario, Scratch};

async fn echo(method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> impl IntoResponse {
    let headers: BTreeMap<String, String> = headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    let json = serde_json::json!({
        "method": method.as_str(),
        "path": uri.path(),
        "query": uri.query().unwrap_or(""),
        "headers": headers,
        "body": String::from_utf8_lossy(&body),
    });
    ([("x-session", "abc123")], axum::Json(json))
}

async fn ws_echo(ws: WebSocketUpgrade) -> impl IntoResponse {
    ws.on_upgrade(|mut socket| async move {
        let _ = socket
            .send(Message::Text("{\"type\":\"hello\"}".into()))
            .await;
        while let Some(Ok(msg)) = socket.recv().await {
            let echo = match msg {
                Message::Text(t) => Message::Text(t),
                Message::Binary(b) => Message::Binary(b),
                _ => continue,
            };
            if socket.send(echo).await.is_err() {
                break;
            }
        }
    })
}

/// Ten users in one second, then time to finish their flow; the run's `--target` is the echo
/// server.
fn values() -> Scenario {
    Scenario::new("values", 8)
        .url("http://127.0.0.1:1")
        .timeout("3s")
        .with(FLOW)
}

const FLOW: &str = r#"
[load]
arrivals = "uniform"
phases = [ { name = "arrive", duration = "1s", rate = 10 }, { name = "finish", duration = "1500ms", rate = 0 } ]

[feeders.accounts]
file = "accounts.csv"            # next to the scenario; users take rows in arrival order

[[flows.v.steps]]
name = "login"
http = "POST /echo/login"
json = { login = "{{ feed.accounts.login }}", pin = "{{ feed.accounts.pin }}" }
expect.regex = 'login\\":\\"user-[0-9]+\\",\\"pin\\":\\"[0-9]{4}\\"'

[[flows.v.steps]]
name = "form"
http = "POST /echo/{{ 'a b/c' }}"
query = { tag = "{{ 'x&y' }}" }
form = { name = "{{ random_string(8) }}", n = "{{ random_int(5, 9) }}" }
headers = { x-trace = "{{ uuid() }}" }
expect = { status = 200, json = { "$.method" = "POST", "$.path" = "/echo/a%20b%2Fc", "$.query" = "tag=x%26y" }, regex = '"x-trace":"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"' }
capture = { session = { header = "x-session" }, sent = "$.body", code = { status = true }, ctype = "$.headers.content-type" }

[[flows.v.steps]]
name = "reuse"
http = "PUT /echo/{{ session }}"
json = { got = "{{ sent }}", code = "{{ code }}", ts = "{{ timestamp_ms() }}", who = "{{ user.index }}", b64 = "{{ base64('hi' + nul) }}", ctype = "{{ ctype }}" }
expect = { status = 200, json = { "$.path" = "/echo/abc123" }, regex = 'got\\":\\"name=[a-z0-9]{8}&n=[5-9]\\",\\"code\\":200,\\"ts\\":1[0-9]{12},\\"who\\":[0-9]+,\\"b64\\":\\"aGkA\\",\\"ctype\\":\\"application/x-www-form-urlencoded' }

[[flows.v.steps]]
name = "ticks"
loop = { times = 3, steps = [ { name = "tick", http = "GET /echo/tick/{{ seq }}", expect.contains = "tick" } ] }

[[flows.v.steps]]
name = "for_a_while"
loop = { for = "350ms", steps = [ { think = { constant = "100ms" } }, { name = "beat", http = "GET /echo/beat" } ] }

[[flows.v.steps]]
name = "open"
ws = "/ws"

[[flows.v.steps]]
name = "hello"
expect = { json = { "$.type" = "hello" }, within = "2s" }

[[flows.v.steps]]
name = "roundtrip"
send = { kind = "ping", n = "{{ seq }}", tags = ["a", "{{ 'b' }}"] }
expect = { json = { "$.kind" = "ping", "$.tags[1]" = "b" }, json_contains = { "$.tags" = "a" }, within = "2s" }
capture.echoed = "$.n"

[[flows.v.steps]]
name = "binary_roundtrip"
send = "bin-{{ user.index }}"
binary = true
expect = { regex = "^bin-[0-9]+$", within = "2s" }

[[flows.v.steps]]
name = "skipped"
when = { var = "session", equals = "nope" }
http = "GET /echo/never"

[[flows.v.steps]]
name = "taken"
when = { var = "session", equals = "abc123" }
http = "GET /echo/taken"

[[flows.v.steps]]
close = true
"#;

#[test]
fn every_generator_capture_and_loop_produces_what_the_flow_checks() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = axum::Router::new()
        .route("/ws", get(ws_echo))
        .route("/echo", any(echo))
        .route("/echo/{*rest}", any(echo));
    runtime.spawn(async move {
        let _ = axum::serve(listener, app).await;
    });

    let scratch = Scratch::new();
    std::fs::write(
        scratch.dir.path().join("accounts.csv"),
        "login,pin\nuser-1,1111\nuser-2,2222\nuser-3,3333\n",
    )
    .expect("feeder file");
    let outcome = run_quiet(
        scratch.scenario("values", values()),
        scratch.out("run"),
        Some(format!("http://{addr}")),
    );
    let s = &outcome.summary;
    let users = s.arrivals.started;
    assert_eq!(users, 10);
    for (name, m) in &s.metrics {
        assert_eq!(m.errors, 0, "{name}: {:?}", m.error_examples);
    }
    let count = |name: &str| s.metrics[name].count;
    for name in [
        "login",
        "form",
        "reuse",
        "ticks",
        "for_a_while",
        "open",
        "hello",
        "roundtrip",
    ] {
        assert_eq!(count(name), users, "{name}");
    }
    assert_eq!(count("tick"), 3 * users);
    assert_eq!(
        count("skipped"),
        0,
        "a `when` that does not hold skips its step"
    );
    // 350 ms of (100 ms think + a request): 3 or 4 beats each, never fewer than 3.
    let beats = count("beat");
    assert!((3 * users..=4 * users).contains(&beats), "{beats}");
}

#[test]
fn a_feeder_column_that_does_not_exist_is_a_load_error() {
    let scratch = Scratch::new();
    std::fs::write(
        scratch.dir.path().join("accounts.csv"),
        "login,pin\nann,1\n",
    )
    .expect("csv");
    let text = values()
        .to_string()
        .replace("feed.accounts.pin", "feed.accounts.pim");
    let path = scratch.scenario("bad", &text);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_inrush"))
        .arg("validate")
        .arg(&path)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no column `pim`") && stderr.contains("login, pin"),
        "{stderr}"
    );
}
