//! One user end to end against a small server on 127.0.0.1: what the step loop and the socket's
//! life record (under which metric, with which class), on a worker of its own. The harness
//! (`run_one`, `metric`, `errors`) also serves the tests in `steps.rs` and `socket.rs`.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::Path as UrlPath;
use axum::http::StatusCode;
use axum::routing::{get, post};

use crate::clients::Endpoint;
use crate::compiled::Plan;
use crate::metrics::{Counter, ErrorClass, MetricId, Recorder};
use crate::runtime::{run_user, Ended, Session};
use crate::swarm::{RunState, Shared, WorkerCtx};

mod checks;

/// `GET /status/{code}` answers that status; `GET /flaky` answers 503 twice, then 200;
/// `GET /xml` answers an XMPP-like error stanza with status 200; `POST /echo` answers the
/// request's body; `/ws/ack` acks every frame
/// that has an `id`; `/ws/echo` sends every frame back; `/ws/silent` acks nothing and closes
/// the socket after the first frame; `/ws/deaf` acks nothing and keeps the socket open.
async fn server() -> SocketAddr {
    let refusals = Arc::new(std::sync::atomic::AtomicU32::new(2));
    let app = axum::Router::new()
        .route(
            "/flaky",
            get(move || async move {
                let left = refusals.load(std::sync::atomic::Ordering::Relaxed);
                if left > 0 {
                    refusals.store(left - 1, std::sync::atomic::Ordering::Relaxed);
                    StatusCode::SERVICE_UNAVAILABLE
                } else {
                    StatusCode::OK
                }
            }),
        )
        .route(
            "/status/{code}",
            get(|UrlPath(code): UrlPath<u16>| async move {
                let status = StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST);
                (status, r#"{"ok":true}"#)
            }),
        )
        .route(
            "/xml",
            get(|| async {
                "<iq type='error' id='p1'><error code='503'><text>busy</text></error></iq>"
            }),
        )
        .route("/echo", post(|body: String| async move { body }))
        .route(
            "/ws/{mode}",
            get(
                |UrlPath(mode): UrlPath<String>, ws: WebSocketUpgrade| async move {
                    ws.on_upgrade(move |socket| peer(socket, mode))
                },
            ),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("local address");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    addr
}

async fn peer(mut socket: WebSocket, mode: String) {
    while let Some(Ok(Message::Text(text))) = socket.recv().await {
        if mode == "silent" {
            let _ = socket.send(Message::Close(None)).await;
            return;
        }
        if mode == "deaf" {
            continue;
        }
        if mode == "chatty" {
            // Something unrelated first, then the ack: as a server's presence updates are.
            let presence = Message::Text(r#"{"type":"presence","who":"x"}"#.into());
            if socket.send(presence).await.is_err() {
                return;
            }
        }
        if mode == "echo" {
            if socket.send(Message::Text(text)).await.is_err() {
                return;
            }
            continue;
        }
        let Ok(json) = serde_json::from_str::<serde_json::Value>(text.as_str()) else {
            continue;
        };
        let ack = serde_json::json!({"type": "ack", "id": json["id"]}).to_string();
        if socket.send(Message::Text(ack.into())).await.is_err() {
            return;
        }
    }
}

fn plan(addr: SocketAddr, steps: &str) -> Plan {
    let text = format!(
        r#"
name = "runtime"
seed = 5
[target]
url = "http://{addr}"
[load]
arrivals = "uniform"
phases = [ {{ name = "only", duration = "1s", rate = 1 }} ]
[run]
timeout = "2s"
drain = "0s"
{steps}
"#
    );
    crate::compiled::compile(Path::new("runtime.toml"), &text, None)
        .unwrap_or_else(|e| panic!("scenario compiles: {e:?}"))
}

/// Runs user 0 of the plan's first flow to its end on a worker of its own.
pub(super) fn run_one(steps: &str) -> (Plan, Ended, Recorder) {
    run_until(steps, None)
}

/// As `run_one`, with the run stopping `stop` after the user's start (with no drain: stopping,
/// then ended at once), as the schedule's end stops a run.
pub(super) fn run_until(steps: &str, stop: Option<Duration>) -> (Plan, Ended, Recorder) {
    run_draining(steps, stop.map(|s| (s, Duration::ZERO)))
}

/// As `run_one`, with the schedule ending at `stop` after the user's start and the drain
/// lasting `drain` after it.
fn run_draining(steps: &str, stop: Option<(Duration, Duration)>) -> (Plan, Ended, Recorder) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    // A worker's HTTP connections run as local tasks, as on a worker thread.
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async {
        let addr = server().await;
        let plan = Arc::new(plan(addr, steps));
        let (state_tx, state) = tokio::sync::watch::channel(RunState::Running);
        if let Some((stop, drain)) = stop {
            tokio::task::spawn_local(async move {
                tokio::time::sleep(stop).await;
                state_tx.send_replace(RunState::Stopping);
                tokio::time::sleep(drain).await;
                state_tx.send_replace(RunState::Ended);
                // Kept until the user is done: a dropped sender also ends the run.
                std::future::pending::<()>().await;
            });
        } else {
            tokio::task::spawn_local(async move {
                std::future::pending::<()>().await;
                drop(state_tx);
            });
        }
        let shared = Shared::for_test(plan.clone(), Endpoint::plain(addr), state);
        let mut ctx = WorkerCtx::new(shared);
        // tokio's timer instead of the worker's precise clock, which needs a task to drive it.
        ctx.clock = None;
        let flow = &plan.flows.flows[0];
        assert!(ctx.admit(None, Duration::ZERO, false), "admitted on time");
        // The worker's task that follows the run's state for its users, as `run::worker` runs it.
        let user = run_user(&ctx, flow, 0, None, 0, Duration::ZERO, Session::default());
        let follow = async {
            ctx.run_state.follow(ctx.shared.state.clone()).await;
            std::future::pending().await
        };
        let ended = tokio::select! {
            ended = user => ended,
            never = follow => never,
        };
        let (rec, _) = ctx.take_recorders();
        ((*plan).clone(), ended, rec)
    })
}

pub(super) fn metric(plan: &Plan, name: &str) -> MetricId {
    plan.catalog
        .id(name)
        .unwrap_or_else(|| panic!("a metric named {name}"))
}

pub(super) fn errors(rec: &Recorder, m: MetricId, class: ErrorClass) -> u64 {
    rec.metric(m).errors[class as usize]
}

#[test]
fn a_failed_status_ends_the_flow_as_that_steps_error() {
    let (plan, ended, rec) = run_one(
        r#"
[[flows.f.steps]]
name = "fine"
http = "GET /status/200"

[[flows.f.steps]]
think = { constant = "50ms" }

[[flows.f.steps]]
name = "refused"
http = "GET /status/503"

[[flows.f.steps]]
name = "never"
http = "GET /status/200"
"#,
    );
    assert!(!ended.completed);
    assert_eq!(ended.session.visits(), 1);
    assert_eq!(rec.counter(Counter::ArrivalsStarted), 1);
    let fine = rec.metric(metric(&plan, "fine"));
    assert_eq!((fine.count(), fine.error_count()), (1, 0));
    let refused = metric(&plan, "refused");
    assert_eq!(rec.metric(refused).count(), 1);
    assert_eq!(errors(&rec, refused, ErrorClass::HttpStatus), 1);
    assert_eq!(
        rec.metric(refused).attempts,
        1,
        "no retry policy: one attempt"
    );
    let never = rec.metric(metric(&plan, "never"));
    assert_eq!(never.count(), 0, "nothing runs after a failed step");
    // The think time's pause counted its lag: the arrival's and the pause's samples.
    assert_eq!(rec.metric(MetricId::SCHEDULE_LAG).latency.len(), 2);
}

#[test]
fn an_until_loop_that_never_holds_fails_as_a_check() {
    let (plan, ended, rec) = run_one(
        r#"
[[flows.f.steps]]
name = "wait"
loop = { until = { var = "status", equals = 201 }, max = 3, steps = [
  { name = "poll", http = "GET /status/200", capture = { status = { status = true } } },
] }
"#,
    );
    assert!(!ended.completed);
    assert_eq!(
        rec.metric(metric(&plan, "poll")).count(),
        3,
        "max iterations"
    );
    let wait = metric(&plan, "wait");
    assert_eq!(errors(&rec, wait, ErrorClass::CheckFailed), 1);
    assert_eq!(rec.metric(wait).count(), 1);
}

#[test]
fn seq_in_a_loops_step_is_the_loops_iteration() {
    // Statuses 200, 201, 202: the loop ends at its third iteration. Were `seq` the step's own
    // (single) repetition, every poll would ask for 200 and the loop would fail after 5.
    let (plan, ended, rec) = run_one(
        r#"
[[flows.f.steps]]
name = "wait"
loop = { until = { var = "status", equals = 202 }, max = 5, steps = [
  { name = "poll", http = "GET /status/20{{ seq }}", capture = { status = { status = true } } },
] }
"#,
    );
    assert!(ended.completed);
    assert_eq!(rec.metric(metric(&plan, "poll")).count(), 3);
    assert_eq!(rec.metric(metric(&plan, "wait")).error_count(), 0);
}

const SOCKET: &str = r#"
[[flows.f.steps]]
name = "ws"
ws = "/ws/MODE"
on_frame = [ { match = { "$.type" = "ack" }, acked = "$.id" } ]

[[flows.f.steps]]
repeat = REPEAT
send = { type = "send", id = "{{ msg.id }}" }

[[flows.f.steps]]
stay_online = { constant = "300ms" }
"#;

#[test]
fn acks_are_matched_to_their_messages() {
    let (plan, ended, rec) = run_one(&SOCKET.replace("MODE", "ack").replace("REPEAT", "3"));
    assert!(ended.completed);
    assert_eq!(rec.counter(Counter::MessagesSent), 3);
    assert_eq!(rec.counter(Counter::MessagesAcked), 3);
    let ack = rec.metric(MetricId::MESSAGE_ACK);
    assert_eq!((ack.count(), ack.error_count()), (3, 0));
    let ws = rec.metric(metric(&plan, "ws"));
    assert_eq!((ws.count(), ws.error_count()), (1, 0));
}

#[test]
fn a_socket_the_peer_closes_is_its_steps_error_and_unacked_messages_are_ack_errors() {
    // One message: the peer closes on it, and the user, staying online, finds the socket gone.
    let (plan, ended, rec) = run_one(&SOCKET.replace("MODE", "silent").replace("REPEAT", "1"));
    assert!(!ended.completed);
    assert_eq!(rec.counter(Counter::MessagesAcked), 0);
    assert_eq!(rec.counter(Counter::MessagesSent), 1);
    // The message sent and never acked is an ack error, closed by the peer.
    let ack = rec.metric(MetricId::MESSAGE_ACK);
    assert_eq!(
        (
            ack.count(),
            errors(&rec, MetricId::MESSAGE_ACK, ErrorClass::WsClosed)
        ),
        (1, 1)
    );
    let ws = metric(&plan, "ws");
    assert_eq!(errors(&rec, ws, ErrorClass::WsClosed), 1, "the drop, once");
    assert_eq!(rec.metric(ws).reconnects, 0, "no reconnect policy");
}

#[test]
fn without_an_ack_rule_nothing_is_an_ack_error() {
    // The same drop as above, on a socket whose rules declare no ack: the message is sent and
    // tracked (its loss is judged by delivery), and nothing is a `message_ack` error.
    let steps = SOCKET
        .replace("MODE", "silent")
        .replace("REPEAT", "1")
        .replace(
            r#"on_frame = [ { match = { "$.type" = "ack" }, acked = "$.id" } ]"#,
            "",
        );
    let (_, _, rec) = run_one(&steps);
    assert_eq!(rec.counter(Counter::MessagesSent), 1);
    let ack = rec.metric(MetricId::MESSAGE_ACK);
    assert_eq!((ack.count(), ack.error_count()), (0, 0));
}

#[test]
fn msg_id_in_a_request_makes_it_a_message_its_response_the_ack() {
    let (plan, ended, rec) = run_one(
        r#"
[[flows.f.steps]]
name = "post"
http = "GET /status/200"
json = { id = "{{ msg.id }}" }
ack = "response"

[[flows.f.steps]]
name = "plain"
http = "GET /status/200"
query = { id = "{{ msg.id }}" }

[[flows.f.steps]]
name = "refused"
http = "GET /status/500"
body = "{{ msg.id }}"
"#,
    );
    assert!(!ended.completed, "the last request fails");
    // Two accepted (one acked by its response), the refused one is the step's error only.
    assert_eq!(rec.counter(Counter::MessagesSent), 2);
    assert_eq!(rec.counter(Counter::MessagesAcked), 1);
    let ack = rec.metric(MetricId::MESSAGE_ACK);
    assert_eq!((ack.count(), ack.error_count()), (1, 0));
    // The ack is the request's own round trip: no longer than the step.
    let post = rec.metric(metric(&plan, "post"));
    assert!(ack.latency.max() <= post.latency.max() + 1000);
    assert_eq!(
        errors(&rec, metric(&plan, "refused"), ErrorClass::HttpStatus),
        1
    );
}

#[test]
fn a_send_to_nobody_online_is_skipped_and_counted_as_skipped() {
    let (plan, ended, rec) = run_one(
        r#"
[[flows.f.steps]]
name = "me"
http = "GET /status/200"
capture = { user_id = "$.ok" }
publish = ["user_id"]

[[flows.f.steps]]
name = "ask_peer"
http = "GET /status/200"
query = { to = "{{ swarm.online.user_id }}" }

[[flows.f.steps]]
name = "after"
http = "GET /status/200"
"#,
    );
    assert!(ended.completed, "the flow goes on");
    assert_eq!(rec.counter(Counter::SendsSkipped), 1);
    let skipped = rec.metric(metric(&plan, "ask_peer"));
    assert_eq!(
        (skipped.count(), skipped.error_count()),
        (0, 0),
        "neither a success nor an error"
    );
    assert_eq!(rec.metric(metric(&plan, "after")).count(), 1);
}

#[test]
fn a_retry_goes_on_through_the_drain_and_the_drains_end_cuts_it_off_without_an_error() {
    // 503, 503, then 200, 100 ms apart; the schedule ends 50 ms in, during the first backoff.
    let flaky = r#"
[[flows.f.steps]]
name = "flaky"
http = "GET /flaky"
retry = { attempts = 5, on = [503], backoff = "100ms", jitter = "none" }
"#;
    let ms = Duration::from_millis;
    // A drain long enough: the retries are the operation in flight, and it succeeds.
    let (plan, ended, rec) = run_draining(flaky, Some((ms(50), ms(2000))));
    assert!(ended.completed);
    let m = rec.metric(metric(&plan, "flaky"));
    assert_eq!((m.count(), m.error_count(), m.attempts), (1, 0, 3));
    // No drain: the wait is cut off. The 503 was not the operation's outcome (the policy would
    // have tried again): no sample, no error; the user is cut off, not failed.
    let always = flaky.replace("/flaky", "/status/503");
    let (plan, ended, rec) = run_draining(&always, Some((ms(50), Duration::ZERO)));
    assert!(!ended.completed);
    let m = rec.metric(metric(&plan, "flaky"));
    assert_eq!((m.count(), m.error_count(), m.attempts), (0, 0, 1));
}

#[test]
fn only_the_final_attempts_checks_count_and_every_attempts_bytes_do() {
    let (plan, ended, rec) = run_one(
        r#"
[[flows.f.steps]]
name = "flaky"
http = "GET /flaky"
retry = { attempts = 3, on = [503], backoff = "10ms", jitter = "none" }
expect = { status = 200 }

[[flows.f.steps]]
name = "ok"
http = "GET /status/200"
expect = { status = [200, 201], json = { "$.ok" = false }, exists = ["$.ok"] }
"#,
    );
    assert!(!ended.completed, "`$.ok == false` fails the second step");
    assert_eq!(
        plan.catalog.checks(),
        [
            "flaky status == 200",
            "ok status in [200, 201]",
            "ok $.ok == false",
            "ok $.ok exists"
        ]
    );
    // The two 503s were retried, not counted; the final 200 passed.
    assert_eq!(rec.check_counts(0), [1, 0]);
    // Every condition of the answer is judged, the ones after the failed one too.
    assert_eq!(rec.check_counts(1), [1, 0]);
    assert_eq!(rec.check_counts(2), [0, 1]);
    assert_eq!(rec.check_counts(3), [1, 0]);
    let flaky = rec.metric(metric(&plan, "flaky"));
    let ok = rec.metric(metric(&plan, "ok"));
    // Three requests went out for `flaky`, each at least its request line.
    let line = "GET /flaky HTTP/1.1\r\n".len() as u64;
    assert!(flaky.bytes_sent >= 3 * line, "{}", flaky.bytes_sent);
    assert!(ok.bytes_received > r#"{"ok":true}"#.len() as u64);
    assert_eq!(
        rec.counter(Counter::BytesSent),
        flaky.bytes_sent + ok.bytes_sent
    );
    assert_eq!(
        rec.counter(Counter::BytesReceived),
        flaky.bytes_received + ok.bytes_received
    );
}

/// The run's state changes on the control thread, so it can change while a user's task is
/// being polled. A user who had just seen the drain begin once missed the run's end that way and
/// stayed connected: the run never ended. Users now see the worker's copy of the state, which
/// changes only when the worker's follower task runs, between two polls, and wakes every waiting
/// user then: a change during a user's poll is not seen in that poll, and the user is woken for
/// it afterwards.
#[test]
fn a_change_of_the_run_state_during_a_poll_has_the_user_look_again() {
    use crate::swarm::run_state::{Aborted, Reached, RunStateCopy};
    use std::future::Future;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::{Context, Wake, Waker};

    #[derive(Default)]
    struct Wakes(AtomicUsize);
    impl Wake for Wakes {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    let wakes = Arc::new(Wakes::default());
    let waker = Waker::from(wakes.clone());
    let mut cx = Context::from_waker(&waker);
    let woken = || wakes.0.load(Ordering::SeqCst);
    let noop = Waker::noop();
    let mut follower_cx = Context::from_waker(noop);

    let (tx, rx) = tokio::sync::watch::channel(RunState::Running);
    let copy = RunStateCopy::new(RunState::Running);
    let mut follow = std::pin::pin!(copy.follow(rx));
    assert!(follow.as_mut().poll(&mut follower_cx).is_pending());
    let mut abort = std::pin::pin!(Reached::<Aborted>::new(&copy));
    assert!(abort.as_mut().poll(&mut cx).is_pending());
    // The drain begins: the follower runs, the user's task is woken, and the user looks.
    tx.send_replace(RunState::Stopping);
    assert!(follow.as_mut().poll(&mut follower_cx).is_pending());
    assert_eq!(woken(), 1);
    let seen = copy.changes();
    assert_eq!(copy.get(), RunState::Stopping);
    // The drain ends during the user's poll: the user's view does not move under it.
    tx.send_replace(RunState::Ended);
    assert_eq!(copy.get(), RunState::Stopping);
    assert!(abort.as_mut().poll(&mut cx).is_pending());
    // Once the follower runs, the user is woken and sees the end.
    assert!(follow.as_mut().poll(&mut follower_cx).is_pending());
    assert_eq!(woken(), 2, "the task is polled again after the change");
    assert_ne!(copy.changes(), seen);
    assert_eq!(copy.get(), RunState::Ended);
    assert!(
        abort.as_mut().poll(&mut cx).is_pending(),
        "an end is not an abort"
    );
    // The abort itself ends the wait.
    tx.send_replace(RunState::Aborted);
    assert!(follow.as_mut().poll(&mut follower_cx).is_pending());
    assert!(abort.as_mut().poll(&mut cx).is_ready());
}
