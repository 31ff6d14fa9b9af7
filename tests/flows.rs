//! The scenario language end to end: a flow written in TOML signs users up, reuses captured
//! tokens in headers and WebSocket URLs, correlates chat messages between users through the
//! built-in messenger's relay, and loops until an awaited value arrives. Validation errors point
//! at file, line and column.

mod common;

use std::process::Command;

use common::{run_quiet, run_quiet_on_schedule, Scenario, Scratch};

/// The 1-based line of the first occurrence of `needle`.
fn line_of(text: &str, needle: &str) -> usize {
    let at = text.find(needle).expect("needle in text");
    text[..at].matches('\n').count() + 1
}

fn inrush() -> Command {
    Command::new(env!("CARGO_BIN_EXE_inrush"))
}

/// 20 users/s for 3 s, evenly spaced: exactly 60 users, who get their SMS code after 20 ms.
fn head() -> Scenario {
    Scenario::new("flow", 4)
        .builtin(r#"sms_delay = "20ms""#)
        .timeout("5s")
        .drain("1500ms")
        .with(
            r#"
[load]
arrivals = "uniform"
phases = [ { name = "only", duration = "3s", rate = 20 } ]
"#,
        )
}

const SIGNUP: &str = r#"
[[flows.chat.steps]]
name = "register"
transaction = "signup"
http = "POST /v1/register"
json = { phone = "{{ user.phone }}" }
expect.status = 202
capture.verification = "$.verification_id"

[[flows.chat.steps]]
name = "sms_code"
transaction = "signup"
http = "GET /v1/test/sms/{{ user.phone }}"
query = { wait_ms = "5000" }
expect = { status = 200, regex = '"code":"[0-9]{6}"' }
capture.code = "$.code"

[[flows.chat.steps]]
name = "verify"
transaction = "signup"
http = "POST /v1/verify"
json = { verification_id = "{{ verification }}", code = "{{ code }}" }
expect = { status = 201, exists = ["$.token"] }
capture = { user_id = "$.user_id", token = "$.token", token_again = { regex = '"token":"([0-9a-f]+)"' } }
publish = ["user_id", "user.phone"]

[[flows.chat.steps]]
name = "contacts_sync"
http = "POST /v1/contacts/sync"
headers = { authorization = "Bearer {{ token_again }}" }
json = { phones = "{{ swarm.sample(5).phone + fake.phones(2) }}" }
expect.contains_all = { path = "$.found[*].phone", values = "{{ swarm.sampled.phone }}" }

[[flows.chat.steps]]
name = "ws_connect"
ws = "/v1/ws?token={{ token }}"
on_frame = [
  { match = { "$.type" = "message" }, delivered = "$.id" },
  { match = { "$.type" = "ack" }, acked = "$.id" },
  { match = { "$.type" = "error" }, rejected = "$.id" },
]
"#;

#[test]
fn a_flow_signs_up_and_chats_with_correlated_delivery() {
    let scenario = head().with(SIGNUP).with(
        r#"
[[flows.chat.steps]]
repeat = 3
think = { constant = "100ms" }
send = { type = "send", id = "{{ msg.id }}", to = "{{ swarm.online.user_id }}", body = "hi {{ seq }}" }

[[flows.chat.steps]]
stay_online = { constant = "60s" }
"#,
    );
    // Every one of the 60 users counts: again when the machine held the generator back.
    let (outcome, _scratch) = run_quiet_on_schedule(&scenario);
    let s = &outcome.summary;
    let names: Vec<&str> = s.metrics.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "signup",
            "register",
            "sms_code",
            "verify",
            "contacts_sync",
            "ws_connect",
            "message_ack",
            "message_delivery"
        ]
    );
    for (name, m) in &s.metrics {
        assert!(m.count > 0, "{name}: {m:?}");
        assert_eq!(m.errors, 0, "{name}: {:?}", m.error_examples);
    }
    assert_eq!(s.metrics["register"].count, 60);
    // The transaction spans its three steps, so it is at least as slow as the SMS delay.
    let signup = s.metrics["signup"].latency_ms.expect("signup latency");
    assert!(signup.min >= 20.0, "{signup:?}");
    let m = &s.messages;
    assert!(m.sent > 100, "{m:?}");
    assert_eq!(
        (m.acked, m.delivered, m.lost, m.pending, m.duplicated),
        (m.sent, m.sent, Some(0), Some(0), 0)
    );
    assert!(s.contacts.expected > 0);
    assert_eq!(s.contacts.missing, 0);
}

#[test]
fn a_long_poll_loop_ends_when_the_awaited_message_arrives() {
    // The SMS gateway delivers each code 300 ms after registration; users poll the SMS sink with
    // short waits (404 until then) and leave the loop as soon as the code is there.
    let scratch = Scratch::new();
    let scenario = Scenario::new("poll", 5)
        .builtin(r#"sms_delay = "300ms""#)
        .timeout("5s")
        .with(
            r#"
[load]
arrivals = "uniform"
phases = [ { name = "only", duration = "2s", rate = 10 }, { name = "settle", duration = "2s", rate = 0 } ]

[[flows.poll.steps]]
name = "register"
http = "POST /v1/register"
json = { phone = "{{ user.phone }}" }
capture.verification = "$.verification_id"

[[flows.poll.steps]]
name = "await_sms"
loop = { until = { var = "status", equals = 200 }, max = 200, steps = [
  { name = "poll", http = "GET /v1/test/sms/{{ user.phone }}?wait_ms=20", expect.status = [200, 404], capture = { status = { status = true }, code = "$.code" } },
] }

[[flows.poll.steps]]
name = "verify"
http = "POST /v1/verify"
json = { verification_id = "{{ verification }}", code = "{{ code }}" }
expect.status = 201
"#,
        );
    let outcome = run_quiet(scratch.scenario("poll", scenario), scratch.out("run"), None);
    let s = &outcome.summary;
    let users = s.metrics["register"].count;
    assert_eq!(users, 20);
    // Every loop ended on the awaited code, and the code it captured verified the phone. Users
    // arrive at 0.05, 0.15, … 1.95 s and get their code 300 ms later; the schedule goes on for
    // 2 s without arrivals (`settle`), so even the last user's loop and verify end long before
    // the stop, whatever a loaded machine delays: every user finishes.
    let finished = s.metrics["await_sms"].count;
    assert_eq!(finished, users);
    assert_eq!(
        s.metrics["await_sms"].errors, 0,
        "{:?}",
        s.metrics["await_sms"].error_examples
    );
    assert_eq!(
        s.metrics["verify"].errors, 0,
        "{:?}",
        s.metrics["verify"].error_examples
    );
    assert_eq!(s.metrics["verify"].count, finished);
    // ~300 ms of 20 ms polls: several per user, far fewer than the limit of 200.
    let polls = s.metrics["poll"].count;
    assert!(
        polls >= 3 * users && polls < 100 * users,
        "{polls} polls for {users} users"
    );
    let waited = s.metrics["await_sms"].latency_ms.expect("loop latency");
    assert!(
        waited.min >= 250.0,
        "the loop cannot end before the SMS exists: {waited:?}"
    );
}

#[test]
fn validate_points_at_unknown_variables_kinds_paths_and_regexes() {
    let scratch = Scratch::new();
    let text = head()
        .with(
            r#"
[[flows.bad.steps]]
name = "one"
http = "POST /v1/register"
json = { phone = "{{ user.phon }}" }

[[flows.bad.steps]]
name = "two"
teleport = "now"

[[flows.bad.steps]]
name = "three"
http = "GET /x"
capture.v = "$.items[oops]"
expect.regex = "(unclosed"

[[flows.bad.steps]]
name = "four"
http = "GET /v1/{{ tokn }}"

[[flows.bad.steps]]
name = "five"
http = "PUSH /v1/profile"
"#,
        )
        .to_string();
    let path = scratch.scenario("bad", &text);
    let out = inrush().arg("validate").arg(&path).output().expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Unknown fields are a syntax-level error reported alone; check it first.
    assert!(stderr.contains("teleport"), "{stderr}");
    let file = path.display().to_string();
    let at = format!("{file}:{}:1:", line_of(&text, "teleport"));
    assert!(stderr.contains(&at), "{at} in {stderr}");

    let fixed = text.replace("teleport = \"now\"", "think = { constant = \"1ms\" }");
    let path = scratch.scenario("bad2", &fixed);
    let out = inrush().arg("validate").arg(&path).output().expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let file = path.display().to_string();
    // Template errors point at the expression inside the string.
    let line = line_of(&fixed, "user.phon");
    let column = fixed
        .lines()
        .nth(line - 1)
        .and_then(|l| l.find("user.phon"))
        .expect("col")
        + 1;
    assert!(
        stderr.contains(&format!("{file}:{line}:{column}: unknown")),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("{file}:{}:", line_of(&fixed, "capture.v")))
            && stderr.contains("oops"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("{file}:{}:", line_of(&fixed, "expect.regex")))
            && stderr.contains("(unclosed"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("{file}:{}:", line_of(&fixed, "{{ tokn }}")))
            && stderr.contains("tokn"),
        "{stderr}"
    );
    // A method typo is refused with the methods it could have meant.
    assert!(
        stderr.contains(&format!("{file}:{}:", line_of(&fixed, "PUSH /v1")))
            && stderr.contains("`PUSH` is not an HTTP method: expected GET, POST, PUT"),
        "{stderr}"
    );
}

#[test]
fn cohorts_split_users_by_share_and_message_a_chosen_cohort() {
    // Three quarters sign up and wait online; a quarter sign up and message only the first
    // cohort. Regular users have no `delivered` rule, so a message that reached one of them would
    // show as undelivered: delivered == sent proves every recipient was a newcomer.
    let scratch = Scratch::new();
    let signup = |flow: &str| {
        format!(
            r#"
[[flows.{flow}.steps]]
name = "{flow}_register"
http = "POST /v1/register"
json = {{ phone = "{{{{ user.phone }}}}" }}
capture.verification = "$.verification_id"

[[flows.{flow}.steps]]
name = "{flow}_code"
http = "GET /v1/test/sms/{{{{ user.phone }}}}"
capture.code = "$.code"

[[flows.{flow}.steps]]
name = "{flow}_verify"
http = "POST /v1/verify"
json = {{ verification_id = "{{{{ verification }}}}", code = "{{{{ code }}}}" }}
capture = {{ user_id = "$.user_id", token = "$.token" }}
publish = ["user_id"]
"#
        )
    };
    let scenario = Scenario::new("cohorts", 6)
        .drain("1s")
        .with(
            r#"
[load]
arrivals = "uniform"
phases = [ { name = "arrive", duration = "4s", rate = 20 }, { name = "settle", duration = "2s", rate = 0 } ]

[[cohorts]]
name = "newcomer"
share = 3
flow = "newcomer"

[[cohorts]]
name = "regular"
share = 1
flow = "regular"
"#,
        )
        .with(signup("newcomer"))
        .with(
            r#"
[[flows.newcomer.steps]]
name = "newcomer_ws"
ws = "/v1/ws?token={{ token }}"
on_frame = [ { match = { "$.type" = "message" }, delivered = "$.id" } ]

[[flows.newcomer.steps]]
stay_online = { constant = "60s" }
"#,
        )
        .with(signup("regular"))
        .with(
            r#"
[[flows.regular.steps]]
name = "regular_ws"
ws = "/v1/ws?token={{ token }}"
on_frame = [ { match = { "$.type" = "ack" }, acked = "$.id" } ]

[[flows.regular.steps]]
repeat = 3
think = { constant = "100ms" }
send = { type = "send", id = "{{ msg.id }}", to = "{{ swarm.cohort('newcomer').online.user_id }}", body = "welcome" }

[[flows.regular.steps]]
stay_online = { constant = "60s" }
"#,
        );
    let outcome = run_quiet(
        scratch.scenario("cohorts", scenario),
        scratch.out("run"),
        None,
    );
    let s = &outcome.summary;
    let (newcomers, regulars) = (
        s.metrics["newcomer_register"].count,
        s.metrics["regular_register"].count,
    );
    assert_eq!(newcomers + regulars, 80);
    // Binomial(80, 1/4): mean 20, sd 3.9; allow 3 sd.
    assert!((8..=32).contains(&regulars), "{regulars} regulars of 80");
    let m = &s.messages;
    assert!(m.sent > 0, "{m:?}");
    assert_eq!(
        (m.acked, m.delivered, m.lost),
        (m.sent, m.sent, Some(0)),
        "{m:?}"
    );
}
