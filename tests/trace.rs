//! `inrush run --trace N` against the built-in messenger: the traced users' requests, responses
//! and frames are in trace.jsonl in the order they happened, the other users are not, and a
//! value the scenario took from the environment never appears (nor its base64 form).

mod common;

use std::collections::BTreeMap;
use std::process::Command;

use common::{Scenario, Scratch};
use serde_json::Value;

const KEY: &str = "INRUSH_TRACE_TEST_KEY";
/// What the environment holds; the test looks for it in the trace, as it is and as a URL, a
/// JSON string or base64 would write it.
const SECRET: &str = "tr4ce s3cret\"7Qx";
const FORMS: [&str; 5] = [
    SECRET,
    "tr4ce%20s3cret%227Qx",
    "tr4ce s3cret\\\"7Qx",
    "dHI0Y2UgczNjcmV0IjdReA==", // base64(SECRET)
    "dTp0cjRjZSBzM2NyZXQiN1F4", // base64("u:" + SECRET)
];

/// 4 users, one every 250 ms: each signs up (the secret in a header, the query and the body),
/// opens its socket and sends one message to itself, awaiting the ack.
fn scenario() -> Scenario {
    Scenario::new("traced", 3).timeout("5s").with(format!(
        r#"
[load]
arrivals = "uniform"
phases = [ {{ name = "only", duration = "1s", rate = 4 }} ]

[[flows.f.steps]]
name = "register"
http = "POST /v1/register"
headers = {{ x-api-key = "{{{{ env.{KEY} }}}}", x-b64 = "{{{{ base64(env.{KEY}) }}}}", authorization = "Basic {{{{ base64('u:' + env.{KEY}) }}}}" }}
json = {{ phone = "{{{{ user.phone }}}}", note = "key {{{{ env.{KEY} }}}}" }}
expect.status = 202
capture.verification = "$.verification_id"

[[flows.f.steps]]
name = "sms_code"
http = "GET /v1/test/sms/{{{{ user.phone }}}}"
query = {{ wait_ms = "5000", k = "{{{{ env.{KEY} }}}}" }}
expect = {{ status = 200 }}
capture.code = "$.code"

[[flows.f.steps]]
name = "verify"
http = "POST /v1/verify"
json = {{ verification_id = "{{{{ verification }}}}", code = "{{{{ code }}}}" }}
expect = {{ status = 201 }}
capture = {{ user_id = "$.user_id", token = "$.token" }}

[[flows.f.steps]]
name = "ws"
ws = "/v1/ws?token={{{{ token }}}}"

[[flows.f.steps]]
name = "chat"
send = {{ type = "send", id = "m{{{{ user.index }}}}", to = "{{{{ user_id }}}}", body = "hello" }}
expect = {{ json = {{ "$.type" = "ack" }} }}
"#
    ))
}

#[test]
fn a_traced_run_has_the_sampled_users_requests_and_frames_in_order_with_secrets_masked() {
    let scratch = Scratch::new();
    let file = scratch.scenario("traced", scenario());
    let out = scratch.out("run");
    let (_, summary) = run_with_secret(&file, &out, &["--quiet", "--trace", "2"], 0);

    // Every user ran the flow; only the first two are traced.
    assert_eq!(summary["metrics"]["chat"]["count"], 4);
    assert_eq!(summary["metrics"]["chat"]["errors"], 0);

    let text = std::fs::read_to_string(out.join("trace.jsonl")).expect("trace.jsonl");
    for form in FORMS {
        assert!(!text.contains(form), "{form} in {text}");
    }
    let events: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    for e in &events {
        assert_no_secret(e);
    }
    let mut by_user: BTreeMap<u64, Vec<&Value>> = BTreeMap::new();
    for e in &events {
        by_user
            .entry(e["user"].as_u64().expect("a user index"))
            .or_default()
            .push(e);
    }
    assert_eq!(by_user.keys().copied().collect::<Vec<_>>(), [0, 1]);

    for (user, events) in &by_user {
        // Each event says when it happened: since the run's start and since the user's
        // intended arrival (user i arrives at i × 250 ms), both in order.
        let mut last = 0.0;
        for e in events {
            let (t, since) = (e["t_ms"].as_f64().unwrap(), e["user_ms"].as_f64().unwrap());
            assert!(t >= last && since >= 0.0 && since <= t, "{e}");
            assert!(t - since >= *user as f64 * 250.0 - 1.0, "{e}");
            last = t;
        }
        let seq: Vec<(&str, &str)> = events
            .iter()
            .map(|e| (e["step"].as_str().unwrap(), e["event"].as_str().unwrap()))
            .collect();
        let http = |step| {
            [
                (step, "step_start"),
                (step, "request"),
                (step, "response"),
                (step, "step_end"),
            ]
        };
        let mut want: Vec<(&str, &str)> = Vec::new();
        want.extend(http("register"));
        want.extend(http("sms_code"));
        want.extend(http("verify"));
        want.extend([
            ("ws", "step_start"),
            ("ws", "ws_connect"),
            ("ws", "ws_open"),
            ("ws", "step_end"),
            ("chat", "step_start"),
            ("chat", "frame_out"),
        ]);
        assert_eq!(&seq[..want.len()], &want[..], "user {user}: {seq:?}");
        // The ack ends the step; the message itself is relayed back to the sender, before or
        // after its ack, then the socket closes as the user leaves.
        let rest = &seq[want.len()..];
        let ack = events[want.len()..]
            .iter()
            .position(|e| e["event"] == "frame_in" && e["body"].as_str().unwrap().contains("ack"))
            .expect("the ack came in");
        assert_eq!(rest[ack + 1], ("chat", "step_end"), "{rest:?}");
        assert_eq!(rest.last(), Some(&("chat", "ws_close")), "{rest:?}");
        for e in events.iter().filter(|e| e["event"] == "step_end") {
            assert_eq!(e["outcome"], "ok", "{e}");
        }

        let find = |step: &str, event: &str| {
            events
                .iter()
                .find(|e| e["step"] == step && e["event"] == event)
                .copied()
                .unwrap_or_else(|| panic!("{step} {event}"))
        };
        let register = find("register", "request");
        assert_eq!(register["method"], "POST");
        assert_eq!(register["path"], "/v1/register");
        let headers: Vec<(&str, &str)> = register["headers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| (h[0].as_str().unwrap(), h[1].as_str().unwrap()))
            .collect();
        assert!(headers.contains(&("x-api-key", "[masked env.INRUSH_TRACE_TEST_KEY]")));
        assert!(headers.contains(&("x-b64", "[masked base64(env.INRUSH_TRACE_TEST_KEY)]")));
        assert!(headers.contains(&(
            "authorization",
            "Basic [masked base64(… env.INRUSH_TRACE_TEST_KEY …)]"
        )));
        assert!(headers.contains(&("content-type", "application/json")));
        let body: Value =
            serde_json::from_str(register["body"].as_str().unwrap()).expect("the JSON body");
        assert_eq!(body["note"], "key [masked env.INRUSH_TRACE_TEST_KEY]");
        assert_eq!(find("register", "response")["status"], 202);
        let sms = find("sms_code", "request")["path"].as_str().unwrap();
        assert!(
            sms.ends_with("?wait_ms=5000&k=[masked env.INRUSH_TRACE_TEST_KEY]"),
            "{sms}"
        );
        let sent: Value = serde_json::from_str(find("chat", "frame_out")["body"].as_str().unwrap())
            .expect("the JSON frame");
        assert_eq!(sent["id"], format!("m{user}"));
    }
}

/// Runs `file` into `out` with the secret in the environment and `args` besides, expecting
/// exit `code`: what it printed, and its summary.json.
fn run_with_secret(
    file: &std::path::Path,
    out: &std::path::Path,
    args: &[&str],
    code: i32,
) -> (std::process::Output, Value) {
    // A loaded machine's generator lag is exit 4's business (tests/overload.rs), not the trace's.
    let run = Command::new(env!("CARGO_BIN_EXE_inrush"))
        .args(["run", "--accept-overload", "--workers", "1"])
        .args(args)
        .arg("--out")
        .arg(out)
        .arg(file)
        .env(KEY, SECRET)
        .output()
        .expect("inrush runs");
    assert_eq!(
        run.status.code(),
        Some(code),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let summary = serde_json::from_str(
        &std::fs::read_to_string(out.join("summary.json")).expect("summary.json"),
    )
    .expect("summary parses");
    (run, summary)
}

/// No string in `v` holds the secret, as it is or URL- or JSON-encoded.
fn assert_no_secret(v: &Value) {
    match v {
        Value::String(s) => {
            for form in &FORMS[..3] {
                assert!(!s.contains(form), "{form} in {s}");
            }
        }
        Value::Array(items) => items.iter().for_each(assert_no_secret),
        Value::Object(fields) => fields.values().for_each(assert_no_secret),
        _ => {}
    }
}

/// A check that compares a response with a secret fails: its reason (the error example) says
/// which value was expected, masked, in every file of the run and on the terminal — as the
/// trace is. Without masking, summary.json, index.html, junit.xml and the terminal held the key.
#[test]
fn a_failed_checks_reason_never_shows_the_secret_it_compared_with() {
    let scratch = Scratch::new();
    let file = scratch.scenario(
        "checked",
        Scenario::new("checked", 3).with(format!(
            r#"
[load]
arrivals = "uniform"
phases = [ {{ name = "only", duration = "500ms", rate = 4 }} ]

[[flows.f.steps]]
name = "health"
http = "GET /healthz"
expect = {{ status = 200, json = {{ "$.status" = "{{{{ env.{KEY} }}}}" }} }}
"#
        )),
    );
    let out = scratch.out("run");
    // Every check failed (the target says "ok"): the run fails, exit 1.
    let (run, summary) = run_with_secret(&file, &out, &[], 1);
    let example = summary["metrics"]["health"]["error_examples"]["check_failed"]
        .as_str()
        .expect("the check's reason is kept");
    assert!(
        example.contains(&format!("[masked env.{KEY}]")),
        "{example}"
    );
    let mut texts = vec![
        String::from_utf8_lossy(&run.stdout).to_string(),
        String::from_utf8_lossy(&run.stderr).to_string(),
    ];
    for entry in std::fs::read_dir(&out).expect("the run directory") {
        let path = entry.expect("an entry").path();
        if let Ok(text) = std::fs::read_to_string(&path) {
            texts.push(text);
        }
    }
    assert!(texts.len() > 4, "the run's files were read");
    for text in &texts {
        for form in &FORMS[..3] {
            assert!(!text.contains(form), "{form} in {text}");
        }
    }
}
