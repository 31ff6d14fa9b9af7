//! Retries and reconnects against small servers on 127.0.0.1 that misbehave on purpose: a rate
//! limiter answering 429 + `Retry-After`, an overloaded service answering 503 without one, a
//! port nobody listens on, and a socket the server drops. The servers note when each attempt
//! arrives, so the waits a user made are checked where the target sees them.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::ws::{Message, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use common::{on_schedule, run_quiet, Scenario, Scratch};

/// What the test server saw, by request key (`ra/0`, `busy/3`, `ws/1`, …).
#[derive(Default)]
struct Seen {
    arrivals: Mutex<HashMap<String, Vec<Instant>>>,
    /// For sockets: when the server dropped the first one of each user.
    dropped: Mutex<HashMap<String, Instant>>,
}

impl Seen {
    /// Notes an arrival; returns how many came before it for this key.
    fn arrive(&self, key: String) -> usize {
        let mut a = self.arrivals.lock().unwrap_or_else(|p| p.into_inner());
        let list = a.entry(key).or_default();
        list.push(Instant::now());
        list.len() - 1
    }

    fn arrivals(&self) -> HashMap<String, Vec<Instant>> {
        self.arrivals
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// 429 with `Retry-After: 1` for the first `n` requests of each user, then 201.
async fn rate_limited(
    State(seen): State<Arc<Seen>>,
    Path((n, user)): Path<(usize, String)>,
) -> Response {
    if seen.arrive(format!("ra/{user}")) < n {
        (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, "1")],
            "slow down",
        )
            .into_response()
    } else {
        (StatusCode::CREATED, "{}").into_response()
    }
}

/// 503 without `Retry-After` for the first `n` requests of each user, then 201.
async fn busy(State(seen): State<Arc<Seen>>, Path((n, user)): Path<(usize, String)>) -> Response {
    if seen.arrive(format!("busy/{user}")) < n {
        (StatusCode::SERVICE_UNAVAILABLE, "busy").into_response()
    } else {
        (StatusCode::CREATED, "{}").into_response()
    }
}

/// Answers the first `n` requests of each user only after 2 s, later ones at once.
async fn slow(State(seen): State<Arc<Seen>>, Path((n, user)): Path<(usize, String)>) -> Response {
    if seen.arrive(format!("slow/{user}")) < n {
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    (StatusCode::OK, "{}").into_response()
}

/// Ticks `{"conn": k}` every 50 ms on the k-th socket of a user; drops the first after 300 ms.
async fn socket(
    State(seen): State<Arc<Seen>>,
    Path(user): Path<String>,
    ws: WebSocketUpgrade,
) -> Response {
    let key = format!("ws/{user}");
    let conn = seen.arrive(key.clone()) + 1;
    ws.on_upgrade(move |mut socket| async move {
        let started = Instant::now();
        loop {
            tokio::time::sleep(Duration::from_millis(50)).await;
            if conn == 1 && started.elapsed() >= Duration::from_millis(300) {
                seen.dropped
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(key, Instant::now());
                // Dropped without a close frame, as a crashed server or a lost network does.
                return;
            }
            let frame = format!(r#"{{"type":"tick","conn":{conn}}}"#);
            if socket.send(Message::Text(frame.into())).await.is_err() {
                return;
            }
        }
    })
}

/// Refuses the first WebSocket handshake of each user with 503 + `Retry-After: 1`, then accepts.
async fn socket_busy(
    State(seen): State<Arc<Seen>>,
    Path(user): Path<String>,
    ws: WebSocketUpgrade,
) -> Response {
    if seen.arrive(format!("wsbusy/{user}")) == 0 {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, "1")],
        )
            .into_response();
    }
    ws.on_upgrade(|_socket| async {})
}

/// Starts the test server on 127.0.0.1:0 in its own thread; it lives as long as the test binary.
fn start_server() -> (String, Arc<Seen>) {
    let seen = Arc::new(Seen::default());
    let app = Router::new()
        .route("/ra/{n}/{user}", post(rate_limited))
        .route("/busy/{n}/{user}", post(busy))
        .route("/slow/{n}/{user}", get(slow))
        .route("/ws/{user}", get(socket))
        .route("/wsbusy/{user}", get(socket_busy))
        .with_state(seen.clone());
    let addr = common::on_own_thread(move |tx| async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        tx.send(listener.local_addr().expect("addr"))
            .expect("send addr");
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}"), seen)
}

/// `users` arrive evenly over one second, then a quiet period for their retries.
fn scenario(name: &str, url: &str, users: u32, quiet: &str) -> Scenario {
    Scenario::new(name, 3).url(url).timeout("5s").with(format!(
        r#"
[load]
arrivals = "uniform"
phases = [ {{ name = "arrive", duration = "1s", rate = {users} }}, {{ name = "quiet", duration = "{quiet}", rate = 0 }} ]
"#
    ))
}

fn gaps(instants: &[Instant]) -> Vec<Duration> {
    instants.windows(2).map(|w| w[1] - w[0]).collect()
}

#[test]
fn retry_after_is_honoured_and_the_step_time_includes_it() {
    let (url, seen) = start_server();
    let scratch = Scratch::new();
    let text = scenario("retry-after", &url, 3, "3s")
        // The backoff is far shorter than Retry-After: the waits below prove the header won.
        .run(r#"retry = { attempts = 4, on = [429], backoff = "10ms" }"#)
        .with(
            r#"
[[flows.f.steps]]
name = "signup"
http = "POST /ra/2/{{ user.index }}"
expect.status = 201

[thresholds]
"signup.retries" = "== 6"
"retries.rate" = "< 70%"
"signup.errors" = "== 0"
"#,
        );
    let outcome = run_quiet(scratch.scenario("ra", text), scratch.out("ra"), None);
    let s = &outcome.summary;
    let m = &s.metrics["signup"];
    assert_eq!((m.count, m.errors), (3, 0), "{m:?}");
    assert_eq!(m.retries, 6, "two retries per user: {m:?}");
    assert_eq!(m.retries_by_reason.get("429"), Some(&6));
    assert_eq!(s.retries.total, 6);
    // Thresholds see them: 6 retried attempts of 9 in all.
    assert!(s.thresholds.iter().all(|t| t.passed), "{:?}", s.thresholds);
    let rate = s
        .thresholds
        .iter()
        .find(|t| t.expr.starts_with("retries.rate"));
    let observed = rate
        .and_then(|t| t.observed)
        .expect("retries.rate observed");
    assert!((observed - 6.0 / 9.0).abs() < 1e-4, "{observed}");
    let json = std::fs::read_to_string(outcome.dir.join("summary.json")).expect("summary.json");
    let json: serde_json::Value = serde_json::from_str(&json).expect("json");
    assert_eq!(json["metrics"]["signup"]["retries"], 6);
    assert_eq!(json["metrics"]["signup"]["retries_by_reason"]["429"], 6);
    assert_eq!(json["retries"]["total"], 6);
    // Per interval too, for the throughput chart's retries panel.
    let timeline = std::fs::read_to_string(outcome.dir.join("timeline.json")).expect("timeline");
    let timeline: serde_json::Value = serde_json::from_str(&timeline).expect("json");
    let per_interval: u64 = timeline["points"]
        .as_array()
        .expect("points")
        .iter()
        .filter_map(|p| p["metrics"]["signup"]["retries"].as_u64())
        .sum();
    assert_eq!(per_interval, 6);
    let svg = std::fs::read_to_string(outcome.dir.join("throughput.svg")).expect("svg");
    assert!(
        svg.contains("retries + reconnects/s"),
        "signup's retries line"
    );
    assert!(
        svg.contains("6 retries and reconnects"),
        "signup's panel title"
    );
    let html = std::fs::read_to_string(outcome.dir.join("index.html")).expect("html");
    assert!(html.contains(r#"data-retries-of="signup""#));
    // Latency from the intended start: two waits of one second each at least.
    let latency = m.latency_ms.expect("latency");
    assert!(latency.min >= 2000.0, "{latency:?}");
    assert!(latency.max < 2000.0 + 2.0 * 500.0, "{latency:?}");
    // The service time is the final attempt alone.
    let service = m.service_time_ms.expect("service");
    assert!(service.max < 500.0, "{service:?}");

    let arrivals = seen.arrivals();
    assert_eq!(arrivals.len(), 3, "{arrivals:?}");
    for (user, times) in &arrivals {
        assert_eq!(times.len(), 3, "{user}: two refusals then the success");
        for gap in gaps(times) {
            assert!(
                gap >= Duration::from_secs(1),
                "{user}: {gap:?} < Retry-After"
            );
            // Bounded: the wait is the header's, not the header's plus something else.
            assert!(gap < Duration::from_millis(1500), "{user}: {gap:?}");
        }
    }
}

#[test]
fn backoff_doubles_without_jitter_and_stays_under_its_ceiling_with_full_jitter() {
    let (url, seen) = start_server();
    let scratch = Scratch::new();
    let steps = |prefix: &str| {
        format!(
            r#"
[[flows.f.steps]]
name = "call"
http = "POST /busy/3/{prefix}{{{{ user.index }}}}"
expect.status = 201
"#
        )
    };
    let base = Duration::from_millis(100);
    let fixed = scenario("fixed", &url, 2, "1500ms")
        .run(r#"retry = { attempts = 4, on = [503], backoff = "100ms", jitter = "none" }"#)
        .with(steps("fixed-"));
    let outcome = run_quiet(scratch.scenario("fixed", fixed), scratch.out("fixed"), None);
    let m = &outcome.summary.metrics["call"];
    assert_eq!((m.count, m.errors, m.retries), (2, 0, 6), "{m:?}");
    assert!(
        m.latency_ms.expect("latency").min >= 700.0,
        "100 + 200 + 400 ms of waits"
    );

    let full = scenario("full", &url, 8, "1500ms")
        .run(r#"retry = { attempts = 4, on = [503], backoff = "100ms", jitter = "full" }"#)
        .with(steps("full-"));
    let outcome = run_quiet(scratch.scenario("full", full), scratch.out("full"), None);
    let m = &outcome.summary.metrics["call"];
    assert_eq!((m.count, m.errors, m.retries), (8, 0, 24), "{m:?}");

    let arrivals = seen.arrivals();
    // A request's round trip on loopback, with room for a busy machine.
    let slack = Duration::from_millis(150);
    let mut jittered = Vec::new();
    for (key, times) in &arrivals {
        assert_eq!(times.len(), 4, "{key}");
        for (k, gap) in gaps(times).into_iter().enumerate() {
            let ceiling = base * 2u32.pow(k as u32);
            if key.starts_with("busy/fixed-") {
                assert!(
                    gap >= ceiling && gap < ceiling + slack,
                    "{key} #{k}: {gap:?}"
                );
            } else {
                assert!(
                    gap < ceiling + slack,
                    "{key} #{k}: {gap:?} above {ceiling:?}"
                );
                jittered.push(gap.as_secs_f64() / ceiling.as_secs_f64());
            }
        }
    }
    assert_eq!(jittered.len(), 24);
    // Full jitter draws uniformly below the ceiling: the waits spread out (all 24 in the top
    // fifth by chance has probability 0.2^24).
    assert!(jittered.iter().any(|r| *r < 0.8), "{jittered:?}");
}

#[test]
fn exhausted_attempts_are_one_error_and_other_statuses_are_not_retried() {
    let (url, seen) = start_server();
    let scratch = Scratch::new();
    let text = scenario("exhausted", &url, 3, "1s")
        .run(r#"retry = { attempts = 3, on = [503], backoff = "20ms" }"#)
        .with(
            r#"
[[flows.f.steps]]
name = "call"
http = "POST /busy/100/{{ user.index }}"
expect.status = 201

[[flows.f.steps]]
name = "limited"
http = "POST /ra/100/{{ user.index }}"
expect.status = 201
"#,
        );
    let outcome = run_quiet(scratch.scenario("ex", text), scratch.out("ex"), None);
    let m = &outcome.summary.metrics["call"];
    assert_eq!((m.count, m.errors, m.retries), (3, 3, 6), "{m:?}");
    assert_eq!(m.errors_by_class.get("http_status"), Some(&3));
    for (key, times) in seen.arrivals() {
        assert!(
            key.starts_with("busy/"),
            "the flow ended at the failed step: {key}"
        );
        assert_eq!(times.len(), 3, "{key}: three attempts in all");
    }

    // Retrying a 429 is not asked for here: one attempt, one error.
    let (url, seen) = start_server();
    let text = scenario("not-retried", &url, 2, "500ms")
        .run(r#"retry = { attempts = 3, on = [503] }"#)
        .with(
            r#"
[[flows.f.steps]]
name = "limited"
http = "POST /ra/100/{{ user.index }}"
expect.status = 201
"#,
        );
    let outcome = run_quiet(scratch.scenario("nr", text), scratch.out("nr"), None);
    let m = &outcome.summary.metrics["limited"];
    assert_eq!((m.count, m.errors, m.retries), (2, 2, 0), "{m:?}");
    assert!(seen.arrivals().values().all(|t| t.len() == 1));
}

#[test]
fn a_refused_connection_is_retried_as_connect_then_counted_once() {
    // The run checks once that something listens; then the port closes and stays closed.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let closer = std::thread::spawn(move || {
        let _ = listener.accept();
        drop(listener);
    });
    let scratch = Scratch::new();
    let text = scenario("refused", &format!("http://{addr}"), 3, "1s")
        .run(r#"retry = { attempts = 3, on = ["connect"], backoff = "50ms", jitter = "none" }"#)
        .with(
            r#"
[[flows.f.steps]]
name = "call"
http = "GET /anything"
"#,
        );
    let outcome = run_quiet(scratch.scenario("cr", text), scratch.out("cr"), None);
    let _ = closer.join();
    let m = &outcome.summary.metrics["call"];
    assert_eq!((m.count, m.errors), (3, 3), "{m:?}");
    assert_eq!(m.errors_by_class.get("connect"), Some(&3), "{m:?}");
    assert_eq!(m.retries_by_reason.get("connect"), Some(&6), "{m:?}");
    assert_eq!(outcome.summary.retries.by_reason.get("connect"), Some(&6));
}

const WS_STEPS: &str = r#"
[[flows.f.steps]]
name = "ws_connect"
ws = "/ws/{{ user.index }}"
on_frame = [
  { match = { "$.conn" = 2 }, count = "after_reconnect" },
  { match = { "$.type" = "ack" }, acked = "$.id" },
]
RECONNECT

# A tracked message the server never acknowledges: the drop leaves it unacked.
[[flows.f.steps]]
send = { type = "send", id = "{{ msg.id }}", body = "hi" }

[[flows.f.steps]]
stay_online = { constant = "1200ms" }
"#;

#[test]
fn a_dropped_socket_is_reopened_after_its_backoff_and_keeps_receiving() {
    let scratch = Scratch::new();
    let steps = WS_STEPS.replace(
        "RECONNECT",
        r#"reconnect = { attempts = 3, backoff = "200ms", jitter = "none" }"#,
    );
    // The reconnect's wait is timed below: again with a fresh server when the machine held
    // the generator back.
    let mut attempt = 0;
    let (outcome, seen) = on_schedule(|| {
        attempt += 1;
        let (url, seen) = start_server();
        let text = scenario("reconnect", &url, 3, "2s").with(&steps);
        let name = format!("rc-{attempt}");
        let file = scratch.scenario(&name, text);
        (run_quiet(file, scratch.out(&name), None), seen)
    });
    let s = &outcome.summary;
    let m = &s.metrics["ws_connect"];
    // Three first connects and three reconnects, each a sample; the drops are not errors.
    assert_eq!((m.count, m.errors, m.reconnects), (6, 0, 3), "{m:?}");
    assert_eq!(s.retries.reconnects, 3);
    // ~900 ms on the second socket at one tick per 50 ms: well above 5 per user.
    let after = s.counts.get("after_reconnect").copied().unwrap_or(0);
    assert!(after >= 15, "frames after reconnecting: {after}");
    // The message unacked at the drop is still an ack error: a reconnect does not hide it.
    assert_eq!(s.messages.sent, 3);
    let ack = &s.metrics["message_ack"];
    assert_eq!(ack.errors_by_class.get("ws_closed"), Some(&3), "{ack:?}");

    let dropped = seen
        .dropped
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    let arrivals = seen.arrivals();
    assert_eq!(arrivals.len(), 3);
    for (key, times) in &arrivals {
        assert_eq!(times.len(), 2, "{key}: one drop, one reconnect");
        let wait = times[1] - dropped[key];
        assert!(
            wait >= Duration::from_millis(200) && wait < Duration::from_millis(500),
            "{key}: reconnected {wait:?} after the drop"
        );
    }

    // Without reconnect the drop ends the user's flow, as one error of the socket's step.
    let (url, seen) = start_server();
    let steps = WS_STEPS.replace("RECONNECT", "");
    let text = scenario("no-reconnect", &url, 3, "2s").with(&steps);
    let outcome = run_quiet(scratch.scenario("nr", text), scratch.out("nr"), None);
    let m = &outcome.summary.metrics["ws_connect"];
    assert_eq!((m.count, m.errors, m.reconnects), (6, 3, 0), "{m:?}");
    assert_eq!(m.errors_by_class.get("ws_closed"), Some(&3));
    assert!(seen.arrivals().values().all(|t| t.len() == 1));
}

#[test]
fn the_built_in_flow_retries_throttled_verifications() {
    // 30 users in one second against a verify capacity of 10/s: some get 429 + Retry-After: 1
    // and must get through on a later attempt instead of failing.
    let scratch = Scratch::new();
    let text = Scenario::new("builtin-retry", 5)
        .builtin("verify_capacity = 10.0")
        .drain("1s")
        .run("retry = { attempts = 4, on = [429] }")
        .with(
            r#"
[load]
arrivals = "uniform"
phases = [ { name = "arrive", duration = "1s", rate = 30 }, { name = "quiet", duration = "3s", rate = 0 } ]
[user]
contacts_known = 0
contacts_unknown = 0
messages = 2
think = { constant = "300ms" }
stay_online = { constant = "2s" }            # so that peers are online to message
[thresholds]
"retries.rate" = "< 100%"
"#,
        );
    let outcome = run_quiet(scratch.scenario("b", text), scratch.out("b"), None);
    let s = &outcome.summary;
    let m = &s.metrics["verify"];
    assert_eq!((m.count, m.errors), (30, 0), "{m:?}");
    assert!(m.retries > 0, "{m:?}");
    assert_eq!(m.retries_by_reason.get("429"), Some(&m.retries));
    // A retried verification waited a whole second.
    assert!(m.latency_ms.expect("latency").max >= 1000.0);
    // Attempts: one per request or connect sent, retried ones included; messages are not
    // attempts, so they cannot dilute retries.rate.
    assert_eq!(m.attempts, m.count + m.retries, "{m:?}");
    for step in ["register", "sms_code", "ws_connect"] {
        let q = &s.metrics[step];
        assert_eq!((q.attempts, q.retries), (q.count, 0), "{step}: {q:?}");
    }
    let ack = &s.metrics["message_ack"];
    assert!(ack.count > 0, "messages were sent: {ack:?}");
    assert_eq!(ack.attempts, 0);
    let attempts: u64 = s.metrics.values().map(|q| q.attempts).sum();
    let expected = m.retries as f64 / attempts as f64;
    let observed = s.thresholds[0].observed.expect("retries.rate observed");
    // Observed values are rounded to 6 decimals.
    assert!(
        (observed - expected).abs() < 1e-6,
        "{observed} vs {expected}"
    );
}

#[test]
fn retry_settings_are_checked_before_any_traffic_and_steps_override_the_run() {
    use inrush::compiled::retry::{Jitter, Override, RetryReason};
    let head = r#"
name = "check"
seed = 1
[target]
url = "http://127.0.0.1:9"
[load]
phases = [ { name = "p", duration = "1s", rate = 1 } ]
"#;
    let good = format!(
        "{head}{}",
        r#"[run]
retry = { attempts = 5, on = [429, "timeout"], backoff = "1s", max_backoff = "4s", jitter = "none" }
reconnect = { attempts = 2 }

[[flows.f.steps]]
name = "a"
http = "GET /a"

[[flows.f.steps]]
name = "b"
http = "GET /b"
retry = false

[[flows.f.steps]]
name = "c"
ws = "/ws"
retry = { attempts = 2 }
reconnect = false
"#
    );
    let plan = inrush::compiled::compile(std::path::Path::new("check.toml"), &good, None)
        .expect("valid scenario");
    let run = plan.retry.as_ref().expect("[run] retry");
    assert_eq!(run.attempts, 5);
    assert_eq!(run.on, [RetryReason::Status(429), RetryReason::Timeout]);
    assert_eq!(run.backoff.jitter, Jitter::None);
    assert_eq!(run.backoff.ceiling(5), Duration::from_secs(4));
    assert_eq!(plan.reconnect.as_ref().map(|r| r.attempts), Some(2));
    let steps = &plan.flows.flows[0].steps;
    assert_eq!(steps[0].retry, Override::Inherit);
    assert_eq!(steps[1].retry, Override::Off);
    assert!(steps[1].retry.resolve(plan.retry.as_ref()).is_none());
    match &steps[2].retry {
        // A step's own table starts from the defaults, not from [run]'s.
        Override::On(p) => assert_eq!(
            (p.attempts, p.backoff.base, p.on.len()),
            (2, Duration::from_millis(200), 3)
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(steps[2].reconnect, Override::Off);

    let bad = format!(
        "{head}{}",
        r#"[run]
retry = { attempts = 0, on = [429, "sometimes"], backoff = "soon", jitter = "half" }

[[flows.f.steps]]
name = "a"
http = "GET /a"
reconnect = { attempts = 2 }

[[flows.f.steps]]
name = "b"
send = "hi"
retry = { attemps = 2 }
"#
    );
    let errors = inrush::compiled::compile(std::path::Path::new("bad.toml"), &bad, None)
        .expect_err("invalid")
        .0;
    let text: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
    let has = |needle: &str| text.iter().any(|t| t.contains(needle));
    // A misspelt key is a parse error, reported alone (with the keys that exist).
    assert!(has("attemps"), "{text:#?}");
    assert!(has("bad.toml:"), "{text:#?}");

    let bad = bad.replace("retry = { attemps = 2 }", "retry = { attempts = 2 }");
    let errors = inrush::compiled::compile(std::path::Path::new("bad.toml"), &bad, None)
        .expect_err("invalid")
        .0;
    let line_of = |needle: &str| {
        bad[..bad.find(needle).expect("needle")]
            .matches('\n')
            .count()
            + 1
    };
    let at = |message: &str| {
        errors
            .iter()
            .find(|e| e.message.contains(message))
            .map(|e| e.line)
            .unwrap_or_else(|| panic!("no `{message}` in {errors:#?}"))
    };
    assert_eq!(
        at("attempts must be between 1 and 1000"),
        line_of("retry = { attempts = 0")
    );
    assert_eq!(
        at("`\"sometimes\"` is unknown"),
        line_of("retry = { attempts = 0")
    );
    assert_eq!(
        at("jitter `half` is unknown"),
        line_of("retry = { attempts = 0")
    );
    assert_eq!(at("backoff:"), line_of("retry = { attempts = 0"));
    assert_eq!(
        at("reconnect applies to `ws` steps only"),
        line_of("reconnect = {")
    );
    assert_eq!(
        at("retry applies to `http` and `ws` steps only"),
        line_of("retry = { attempts = 2 }")
    );
    assert!(errors.iter().all(|e| e.column > 0));
}

#[test]
fn the_built_in_target_drops_sockets_and_the_built_in_flow_reconnects() {
    // Sockets live 300 ms on average; users stay online 1.5 s, so each reconnects several times.
    let scratch = Scratch::new();
    let text = Scenario::new("builtin-reconnect", 6)
        .builtin(r#"drop_sockets = "300ms""#)
        .run(r#"reconnect = { attempts = 5, backoff = "50ms", max_backoff = "200ms" }"#)
        .with(
            r#"
[load]
arrivals = "uniform"
phases = [ { name = "arrive", duration = "1s", rate = 5 }, { name = "quiet", duration = "2s", rate = 0 } ]
[user]
contacts_known = 0
contacts_unknown = 0
messages = 0
stay_online = { constant = "1500ms" }
"#,
        );
    let outcome = run_quiet(scratch.scenario("b", text), scratch.out("b"), None);
    let m = &outcome.summary.metrics["ws_connect"];
    assert_eq!(m.errors, 0, "{m:?}");
    // 5 users × ~1.5 s / 0.3 s: about 25 drops; far fewer would mean drops ended flows.
    assert!(m.reconnects >= 10, "{m:?}");
    assert_eq!(
        m.count,
        5 + m.reconnects,
        "each reconnect is a sample: {m:?}"
    );
}

#[test]
fn a_refused_websocket_handshake_is_retried_after_its_retry_after() {
    let (url, seen) = start_server();
    let scratch = Scratch::new();
    let text = scenario("ws-busy", &url, 2, "2s")
        .run(r#"retry = { attempts = 2, on = [503], backoff = "10ms" }"#)
        .with(
            r#"
[[flows.f.steps]]
name = "ws_connect"
ws = "/wsbusy/{{ user.index }}"

[[flows.f.steps]]
close = true
"#,
        );
    let outcome = run_quiet(scratch.scenario("wb", text), scratch.out("wb"), None);
    let m = &outcome.summary.metrics["ws_connect"];
    assert_eq!((m.count, m.errors, m.retries), (2, 0, 2), "{m:?}");
    assert_eq!(m.retries_by_reason.get("503"), Some(&2));
    assert!(m.latency_ms.expect("latency").min >= 1000.0);
    for (key, times) in seen.arrivals() {
        assert_eq!(times.len(), 2, "{key}");
        assert!(times[1] - times[0] >= Duration::from_secs(1), "{key}");
    }
}

#[test]
fn a_timed_out_attempt_is_retried_when_timeouts_are_named() {
    let (url, seen) = start_server();
    let scratch = Scratch::new();
    let text = scenario("slow", &url, 2, "1500ms")
        .run(r#"retry = { attempts = 3, on = ["timeout"], backoff = "50ms", jitter = "none" }"#)
        .with(
            r#"
[[flows.f.steps]]
name = "call"
http = "GET /slow/1/{{ user.index }}"
timeout = "300ms"
"#,
        );
    let outcome = run_quiet(scratch.scenario("sl", text), scratch.out("sl"), None);
    let m = &outcome.summary.metrics["call"];
    assert_eq!((m.count, m.errors, m.retries), (2, 0, 2), "{m:?}");
    assert_eq!(m.retries_by_reason.get("timeout"), Some(&2));
    // The first attempt's 300 ms timeout and the 50 ms backoff are in the latency.
    assert!(m.latency_ms.expect("latency").min >= 350.0, "{m:?}");
    // The client starts its second attempt at least 350 ms after its first; the server sees
    // the two arrive one delivery delay later each, and the first (a cold worker's first
    // connection) can take a little longer to arrive: 349.6 ms was seen under load. 5 ms of
    // slack for that: a gap without the 50 ms backoff (~300 ms) still fails.
    for (key, times) in seen.arrivals() {
        assert_eq!(times.len(), 2, "{key}");
        let gap = times[1] - times[0];
        assert!(gap >= Duration::from_millis(345), "{key}: {gap:?}");
    }
}
