//! Deliveries over an HTTP long-poll sync: a small server written here (login, `POST /send`,
//! `GET /sync?since=` returning batches of events, as Matrix's /sync does) is driven by the shipped
//! `scenarios/http-sync-chat.toml`. The server's knobs drop, duplicate or hold back a known set of
//! messages (by their sequence number), and it counts what it accepted, dropped and duplicated and
//! measures each delivery itself: inrush must report exactly those as lost, duplicated, late or
//! pending, with delivery latencies no shorter than the server's own and no ack errors (the flow
//! declares no ack).

mod common;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::Json;
use serde_json::{json, Value};

use common::{run_quiet, Scratch};

/// Which messages the server mistreats, by the sequence number in their id (`sender-seq-time`).
#[derive(Clone, Copy, Default)]
struct Knobs {
    drop_seq: Option<u64>,
    duplicate_seq: Option<u64>,
    /// Messages with this number become visible to their recipient only after a while.
    hold: Option<(u64, Duration)>,
}

/// What the server saw, to compare with inrush's report.
#[derive(Default, Debug)]
struct Stats {
    accepted: u64,
    dropped: u64,
    duplicated: u64,
    held: u64,
    /// Messages delivered (first sync response carrying them), and the shortest and longest
    /// time from the server's receipt of a message to the sync response that carried it.
    delivered: u64,
    min_latency: Option<Duration>,
    max_latency: Option<Duration>,
}

#[derive(Default)]
struct World {
    timelines: HashMap<String, Vec<Value>>,
    /// When the server received each message, until a sync response first carries it.
    received_at: HashMap<String, Instant>,
    delivered: HashSet<String>,
    stats: Stats,
}

#[derive(Clone)]
struct Server {
    world: Arc<Mutex<World>>,
    appended: Arc<tokio::sync::Notify>,
    knobs: Knobs,
}

impl Server {
    fn world(&self) -> std::sync::MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn append(&self, user: &str, event: Value) {
        self.world()
            .timelines
            .entry(user.to_string())
            .or_default()
            .push(event);
        self.appended.notify_waiters();
    }
}

fn user_of(headers: &HeaderMap) -> Option<String> {
    let auth = headers.get("authorization")?.to_str().ok()?;
    auth.strip_prefix("Bearer t-").map(str::to_string)
}

fn seq_of(id: &str) -> Option<u64> {
    id.split('-').nth(1)?.parse().ok()
}

async fn login(State(s): State<Server>, Json(body): Json<Value>) -> (StatusCode, Json<Value>) {
    let Some(user) = body["user"].as_str() else {
        return (StatusCode::BAD_REQUEST, Json(json!({"error": "user"})));
    };
    s.world().timelines.entry(user.to_string()).or_default();
    (
        StatusCode::OK,
        Json(json!({"user_id": user, "token": format!("t-{user}")})),
    )
}

async fn send(State(s): State<Server>, headers: HeaderMap, Json(body): Json<Value>) -> StatusCode {
    let (Some(from), Some(to), Some(id)) =
        (user_of(&headers), body["to"].as_str(), body["id"].as_str())
    else {
        return StatusCode::BAD_REQUEST;
    };
    if to.is_empty() || !s.world().timelines.contains_key(to) {
        return StatusCode::NOT_FOUND;
    }
    let seq = seq_of(id);
    let message = json!({"type": "message", "id": id, "from": from, "body": body["body"]});
    {
        let mut w = s.world();
        w.stats.accepted += 1;
        w.received_at.insert(id.to_string(), Instant::now());
    }
    // As in a room: the sender's own timeline shows its message too (inrush ignores its echo),
    // and the recipient's shows a non-message event first (the deliveries rule's `match` skips it).
    s.append(&from, message.clone());
    s.append(to, json!({"type": "typing", "from": from}));
    if seq.is_some() && seq == s.knobs.drop_seq {
        s.world().stats.dropped += 1;
        return StatusCode::OK;
    }
    if let (Some((held, wait)), Some(seq)) = (s.knobs.hold, seq) {
        if held == seq {
            s.world().stats.held += 1;
            let (s, to) = (s.clone(), to.to_string());
            tokio::spawn(async move {
                tokio::time::sleep(wait).await;
                s.append(&to, message);
            });
            return StatusCode::OK;
        }
    }
    s.append(to, message.clone());
    if seq.is_some() && seq == s.knobs.duplicate_seq {
        s.world().stats.duplicated += 1;
        s.append(to, message);
    }
    StatusCode::OK
}

async fn sync(
    State(s): State<Server>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> (StatusCode, Json<Value>) {
    let Some(user) = user_of(&headers) else {
        return (StatusCode::UNAUTHORIZED, Json(json!({})));
    };
    let since: usize = q.get("since").and_then(|v| v.parse().ok()).unwrap_or(0);
    let hold = q
        .get("timeout_ms")
        .and_then(|v| v.parse().ok())
        .map_or(Duration::ZERO, Duration::from_millis);
    let deadline = tokio::time::Instant::now() + hold;
    loop {
        // Registered before looking, so an append between the look and the wait still wakes us.
        let appended = s.appended.notified();
        tokio::pin!(appended);
        appended.as_mut().enable();
        {
            let mut w = s.world();
            let events: Vec<Value> = w
                .timelines
                .get(&user)
                .map(|t| t.get(since..).unwrap_or_default().to_vec())
                .unwrap_or_default();
            if !events.is_empty() || tokio::time::Instant::now() >= deadline {
                let next = since + events.len();
                let now = Instant::now();
                for e in events.iter().filter(|e| e["from"] != json!(user)) {
                    let Some(id) = e["id"].as_str() else { continue };
                    if !w.delivered.insert(id.to_string()) {
                        continue;
                    }
                    let Some(at) = w.received_at.get(id).copied() else {
                        continue;
                    };
                    let took = now - at;
                    let st = &mut w.stats;
                    st.delivered += 1;
                    st.min_latency = Some(st.min_latency.map_or(took, |m| m.min(took)));
                    st.max_latency = Some(st.max_latency.map_or(took, |m| m.max(took)));
                }
                return (
                    StatusCode::OK,
                    Json(json!({"events": events, "next_batch": next})),
                );
            }
        }
        let _ = tokio::time::timeout_at(deadline, appended).await;
    }
}

/// Starts the server on 127.0.0.1 (an OS-assigned port) on a runtime of its own.
fn start(knobs: Knobs) -> (tokio::runtime::Runtime, SocketAddr, Server) {
    start_on(knobs, None)
}

/// [`start`], over TLS when `tls` is given (the built-in target's TLS acceptor).
fn start_on(
    knobs: Knobs,
    tls: Option<inrush::target::TlsServer>,
) -> (tokio::runtime::Runtime, SocketAddr, Server) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let server = Server {
        world: Arc::default(),
        appended: Arc::default(),
        knobs,
    };
    let app = axum::Router::new()
        .route("/login", post(login))
        .route("/send", post(send))
        .route("/sync", get(sync))
        .with_state(server.clone());
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind loopback");
    let addr = listener.local_addr().expect("address");
    common::tls::serve(&rt, listener, app, tls);
    (rt, addr, server)
}

/// The shipped scenario with `[run]` keys added (e.g. a delivery deadline, a longer drain).
fn scenario(scratch: &Scratch, run_keys: &str) -> std::path::PathBuf {
    let text = std::fs::read_to_string("scenarios/http-sync-chat.toml").expect("shipped scenario");
    // A key given here replaces the shipped one.
    let given: Vec<&str> = run_keys
        .lines()
        .filter_map(|l| l.split(" =").next())
        .collect();
    let kept: Vec<&str> = text
        .lines()
        .filter(|l| !given.iter().any(|k| l.starts_with(&format!("{k} ="))))
        .collect();
    let text = kept
        .join("\n")
        .replace("[run]\n", &format!("[run]\n{run_keys}\n"));
    scratch.scenario("sync", text)
}

fn run(knobs: Knobs, run_keys: &str) -> (inrush::report::summary::Summary, Stats) {
    run_edited(knobs, run_keys, |text| text)
}

/// `run` with the scenario's text edited further.
fn run_edited(
    knobs: Knobs,
    run_keys: &str,
    edit: impl Fn(String) -> String,
) -> (inrush::report::summary::Summary, Stats) {
    let (rt, addr, server) = start(knobs);
    let scratch = Scratch::new();
    let path = scenario(&scratch, run_keys);
    let text = std::fs::read_to_string(&path).expect("scenario");
    std::fs::write(&path, edit(text)).expect("scenario");
    let outcome = run_quiet(path, scratch.out("run"), Some(format!("http://{addr}")));
    drop(rt);
    let stats = std::mem::take(&mut server.world().stats);
    (outcome.summary, stats)
}

#[test]
fn a_long_poll_sync_reports_exactly_the_messages_the_server_dropped_or_duplicated() {
    let (s, stats) = run(
        Knobs {
            drop_seq: Some(1),
            duplicate_seq: Some(2),
            hold: None,
        },
        "",
    );
    let m = &s.messages;
    // The knobs fired, so the counts below can fail.
    assert!(
        stats.accepted >= 40 && stats.dropped > 0 && stats.duplicated > 0,
        "{stats:?}"
    );
    assert_eq!(m.sent, stats.accepted, "sent is what the server accepted");
    assert_eq!(m.lost, Some(stats.dropped), "{m:?} {stats:?}");
    assert_eq!(m.duplicated, stats.duplicated);
    assert_eq!(m.delivered, stats.accepted - stats.dropped);
    assert_eq!(
        m.delivered, stats.delivered,
        "the server's own count of deliveries"
    );
    assert_eq!(
        (m.pending, m.late),
        (Some(0), 0),
        "everyone polled to the end"
    );
    // No ack declared: none counted, none an error.
    assert_eq!(m.acked, 0);
    let ack = &s.metrics["message_ack"];
    assert_eq!((ack.count, ack.errors), (0, 0));
    for step in ["login", "send", "sync"] {
        assert_eq!(s.metrics[step].errors, 0, "{step}: {:?}", s.metrics[step]);
    }
    assert_eq!(
        s.metrics["message_delivery"].errors, 0,
        "echoes and typing events are no messages"
    );
    // Each delivery is measured from the intended send, before the server got the message, to
    // after the client read the batch the server built: never shorter than the server's own
    // figure, and longer only by the client's side of it (generous on a loaded 2-core machine).
    let lat = m.delivery_latency_ms.expect("deliveries measured");
    let server_min = stats.min_latency.expect("server measured").as_secs_f64() * 1000.0;
    let server_max = stats.max_latency.expect("server measured").as_secs_f64() * 1000.0;
    // (Histograms keep three significant digits: 0.2 % of rounding.)
    assert!(
        lat.min >= server_min * 0.998,
        "{} < server's {server_min}",
        lat.min
    );
    assert!(
        lat.max >= server_max * 0.998,
        "{} < server's {server_max}",
        lat.max
    );
    assert!(
        lat.max <= server_max + 1000.0,
        "{} vs server's {server_max}",
        lat.max
    );
}

#[test]
fn the_same_sync_over_https_counts_the_same_losses_and_duplicates() {
    // The server's certificate, for 127.0.0.1, from a throwaway CA the scenario trusts.
    let authority = common::tls::ca("inrush sync test CA");
    let (cert, key, _, _) = common::tls::leaf(&authority, &["127.0.0.1"]);
    let tls = inrush::target::TlsServer::new(vec![cert], key, None).expect("server config");
    let (rt, addr, server) = start_on(
        Knobs {
            drop_seq: Some(1),
            duplicate_seq: Some(2),
            hold: None,
        },
        Some(tls),
    );
    let scratch = Scratch::new();
    std::fs::write(scratch.dir.path().join("ca.pem"), &authority.pem).expect("write CA");
    let path = scenario(&scratch, "");
    let text = std::fs::read_to_string(&path).expect("scenario");
    std::fs::write(
        &path,
        text.replace("[target]\n", "[target]\nca = \"ca.pem\"\n"),
    )
    .expect("scenario");
    let outcome = run_quiet(path, scratch.out("run"), Some(format!("https://{addr}")));
    drop(rt);
    let stats = std::mem::take(&mut server.world().stats);
    let (s, m) = (&outcome.summary, &outcome.summary.messages);
    assert!(
        stats.accepted >= 40 && stats.dropped > 0 && stats.duplicated > 0,
        "{stats:?}"
    );
    assert_eq!(m.sent, stats.accepted);
    assert_eq!(m.lost, Some(stats.dropped), "{m:?} {stats:?}");
    assert_eq!(m.duplicated, stats.duplicated);
    assert_eq!(m.delivered, stats.delivered);
    for step in ["login", "send", "sync"] {
        assert_eq!(s.metrics[step].errors, 0, "{step}: {:?}", s.metrics[step]);
    }
    // Every connection was TLS, verified against the scenario's CA.
    let tls = s.tls.as_ref().expect("a TLS run says so");
    assert!(tls.verified && tls.handshakes > 0, "{tls:?}");
}

#[test]
fn a_delivery_after_its_deadline_is_late_and_lost_and_one_still_in_time_is_pending() {
    // Messages numbered 0 are held back 2 s; the deadline is 1 s (other deliveries take well
    // under 300 ms); the drain is long enough for the held ones to arrive.
    let (s, stats) = run(
        Knobs {
            hold: Some((0, Duration::from_millis(2000))),
            ..Knobs::default()
        },
        "delivery_deadline = \"1s\"\ndrain = \"3s\"",
    );
    let m = &s.messages;
    assert!(stats.held > 0, "{stats:?}");
    assert_eq!(m.late, stats.held, "{m:?} {stats:?}");
    assert_eq!(m.lost, Some(stats.held), "late messages are lost");
    assert_eq!(m.delivered, stats.accepted - stats.held);
    let lat = m.delivery_latency_ms.expect("measured");
    assert!(
        lat.max >= 2000.0,
        "late deliveries keep their latency: {}",
        lat.max
    );

    // With a deadline beyond the run's end, a message never delivered is pending, not lost.
    let (s, stats) = run(
        Knobs {
            drop_seq: Some(1),
            ..Knobs::default()
        },
        "delivery_deadline = \"1h\"",
    );
    let m = &s.messages;
    assert!(stats.dropped > 0, "{stats:?}");
    assert_eq!((m.pending, m.lost), (Some(stats.dropped), Some(0)), "{m:?}");
}

#[test]
fn a_user_who_stopped_polling_before_the_end_has_its_undelivered_messages_pending() {
    // Each user polls for 700 ms only (all of them stop within the 1.5 s drain) and then leaves:
    // offline, nobody picks it any more, and what the server still holds for it (the dropped
    // messages among them) is pending, not lost.
    let (s, stats) = run_edited(
        Knobs {
            drop_seq: Some(1),
            ..Knobs::default()
        },
        "",
        |text| text.replace(r#"for = "60s""#, r#"for = "700ms""#),
    );
    let m = &s.messages;
    assert!(stats.dropped > 0, "{stats:?}");
    assert_eq!(m.lost, Some(0), "{m:?} {stats:?}");
    assert_eq!(m.delivered, stats.delivered);
    let pending = m.pending.expect("counted");
    assert_eq!(m.sent, m.delivered + pending, "{m:?}");
    assert!(pending >= stats.dropped, "{m:?} {stats:?}");
}

#[test]
fn the_plan_predicts_the_requests_and_messages_of_the_sync_run() {
    // The shipped scenario as it is: 20 users, each sending and polling (150 ms apart) until the
    // schedule's end at 2 s, then polling on through the 1.5 s drain, where their polls are held
    // the server's 300 ms (`long_poll`): the plan must model both to count what the run sends.
    let scratch = Scratch::new();
    let path = scenario(&scratch, "");
    let (rt, addr, _server) = start(Knobs::default());
    let outcome = run_quiet(
        path.clone(),
        scratch.out("run"),
        Some(format!("http://{addr}")),
    );
    drop(rt);
    let s = &outcome.summary;
    let skipped = s.messages.skipped;
    let sent = s.messages.sent + skipped;
    let requests: u64 = ["login", "send", "sync"]
        .iter()
        .map(|m| s.metrics[*m].count)
        .sum::<u64>()
        + skipped;
    // The plan on the latency the run met: a send is never held, so its mean (from its intended
    // start, schedule lag included) is what each request of the loop took.
    let latency = s.metrics["send"].latency_ms.expect("sends timed").mean;
    let (plan, _) = inrush::plan_for_workers(
        &path,
        None,
        Some(&scratch.out("plan")),
        Duration::from_secs_f64(latency / 1000.0),
        Some(1),
    )
    .expect("plan");
    eprintln!(
        "plan at {latency:.2} ms vs run: requests {} vs {requests} (login {}, send {}, sync {}), \
         messages {} vs {sent} ({skipped} skipped)",
        plan.totals.requests,
        s.metrics["login"].count,
        s.metrics["send"].count,
        s.metrics["sync"].count,
        plan.totals.messages,
    );
    // With the loop's period the same on both sides, each user's count of iterations before the
    // schedule's end can still differ by one (where its last one falls), and so can its count of
    // held polls in the drain: at most one message per user, and three requests (a send and a
    // poll before the end, a poll in the drain). The run measured 344 requests and 124 messages
    // against the plan's 345 and 123 at 1 ms (docs/scenario-language.md, "How inrush plan counts
    // a long-poll").
    let users = s.arrivals.started;
    assert_eq!(users, 20, "the shipped load");
    let diff = |a: u64, b: u64| a.abs_diff(b);
    assert!(
        diff(plan.totals.messages, sent) <= users,
        "messages: plan {} vs run {sent}",
        plan.totals.messages
    );
    assert!(
        diff(plan.totals.requests, requests) <= 3 * users,
        "requests: plan {} vs run {requests}",
        plan.totals.requests
    );
}
