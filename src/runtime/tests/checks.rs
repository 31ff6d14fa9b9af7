//! Checks and `fail_on` on what the target answers, end to end against the small server of
//! `runtime::tests`: awaited frames, `contains` and `json_contains` templates rendered for the
//! user, XML paths, and `fail_on`'s quotes of the target's text.

use super::*;

#[test]
fn an_awaited_frame_checked_by_contains_or_exists_skips_unrelated_frames() {
    for expect in [
        r#"{ contains = "ack" }"#,
        r#"{ exists = ["$.id"] }"#,
        r#"{ json_contains = { "$.type" = "ack" } }"#,
    ] {
        // The server sends a presence frame before each ack: the step waits past it (to the
        // background rules, which count it) for the frame its checks describe.
        let (plan, ended, rec) = run_one(&format!(
            r#"
[[flows.f.steps]]
name = "ws"
ws = "/ws/chatty"
on_frame = [ {{ match = {{ "$.type" = "presence" }}, count = "presence" }} ]

[[flows.f.steps]]
name = "chat"
send = {{ type = "send", id = "m1" }}
expect = {expect}
"#
        ));
        assert!(ended.completed, "{expect}");
        let chat = rec.metric(metric(&plan, "chat"));
        assert_eq!((chat.count(), chat.error_count()), (1, 0), "{expect}");
        // The scenario's only named count.
        assert_eq!(rec.named.first().copied(), Some(1), "{expect}");
    }
}

/// `steps` run after a first step that captures `me` = "ann" (from the echo server), for
/// templates to name.
fn run_as_ann(steps: &str) -> (Plan, Ended, Recorder) {
    run_one(&format!("{ANN}{steps}"))
}

const ANN: &str = r#"
[[flows.f.steps]]
name = "me"
http = "POST /echo"
json = { name = "ann" }
capture = { me = "$.name" }
"#;

/// The example of a step's error of `class`, if it had one.
fn example(rec: &Recorder, plan: &Plan, step: &str, class: ErrorClass) -> Option<Box<str>> {
    rec.metric(metric(plan, step)).examples[class as usize].clone()
}

#[test]
fn a_contains_template_is_rendered_for_the_user() {
    // The answers carry the rendered text ("ann"): the check holds on a response and on a frame.
    let (plan, ended, rec) = run_as_ann(
        r#"
[[flows.f.steps]]
name = "hello"
http = "POST /echo"
body = "hello ann"
expect = { contains = "hello {{ me }}" }

[[flows.f.steps]]
name = "ws"
ws = "/ws/echo"

[[flows.f.steps]]
name = "hi"
send = "hi ann"
expect = { contains = "hi {{ me }}" }
"#,
    );
    assert!(ended.completed);
    for step in ["hello", "hi"] {
        let m = rec.metric(metric(&plan, step));
        assert_eq!((m.count(), m.error_count()), (1, 0), "{step}");
    }
    // The answer carries only the template's text (`{{ '{{' }}` sends a literal `{{`): the
    // check fails, saying the text it looked for.
    let (plan, ended, rec) = run_as_ann(
        r#"
[[flows.f.steps]]
name = "hello"
http = "POST /echo"
body = "hello {{ '{{' }} me }}"
expect = { contains = "hello {{ me }}" }
"#,
    );
    assert!(!ended.completed);
    assert_eq!(
        example(&rec, &plan, "hello", ErrorClass::CheckFailed).as_deref(),
        Some("the answer does not contain `hello ann`")
    );
}

#[test]
fn a_json_contains_template_is_rendered_for_the_user() {
    let (plan, ended, rec) = run_as_ann(
        r#"
[[flows.f.steps]]
name = "tags"
http = "POST /echo"
json = { tags = ["x", "ann"] }
expect = { json_contains = { "$.tags" = "{{ me }}" } }
"#,
    );
    assert!(ended.completed);
    let tags = rec.metric(metric(&plan, "tags"));
    assert_eq!((tags.count(), tags.error_count()), (1, 0));
    let (plan, ended, rec) = run_as_ann(
        r#"
[[flows.f.steps]]
name = "tags"
http = "POST /echo"
json = { tags = ["x", "{{ '{{' }} me }}"] }
expect = { json_contains = { "$.tags" = "{{ me }}" } }
"#,
    );
    assert!(!ended.completed);
    assert_eq!(
        example(&rec, &plan, "tags", ErrorClass::CheckFailed).as_deref(),
        Some("no selected JSON value contains \"ann\"")
    );
}

#[test]
fn a_fail_on_contains_template_is_rendered_for_the_user() {
    // The template's text does not fire it; the rendered text does.
    let (plan, ended, rec) = run_as_ann(
        r#"
[[flows.f.steps]]
name = "literal"
http = "POST /echo"
body = "bye {{ '{{' }} me }}"
fail_on = { contains = "bye {{ me }}" }

[[flows.f.steps]]
name = "rendered"
http = "POST /echo"
body = "bye ann"
fail_on = { contains = "bye {{ me }}" }
"#,
    );
    assert!(!ended.completed);
    let literal = rec.metric(metric(&plan, "literal"));
    assert_eq!((literal.count(), literal.error_count()), (1, 0));
    assert_eq!(
        example(&rec, &plan, "rendered", ErrorClass::CheckFailed).as_deref(),
        Some("fail_on: the answer contains `bye ann`")
    );
}

#[test]
fn xml_paths_check_a_response_and_fail_on_fails_it_with_what_matched() {
    let (plan, ended, rec) = run_one(
        r#"
[[flows.f.steps]]
name = "code"
http = "GET /xml"
expect = { xml = { "//error/@code" = "503", "/iq/error/text" = "busy" } }

[[flows.f.steps]]
name = "iq"
http = "GET /xml"
fail_on = { xml = { "/iq/@type" = "error" } }
"#,
    );
    assert!(!ended.completed);
    let code = rec.metric(metric(&plan, "code"));
    assert_eq!((code.count(), code.error_count()), (1, 0));
    let iq = metric(&plan, "iq");
    assert_eq!(errors(&rec, iq, ErrorClass::CheckFailed), 1);
    let example = rec.metric(iq).examples[ErrorClass::CheckFailed as usize].clone();
    assert_eq!(example.as_deref(), Some("fail_on: /iq/@type is \"error\""));
}

#[test]
fn fail_on_quotes_the_targets_match_bounded_and_without_control_characters() {
    let long = "x".repeat(300);
    let (plan, _, rec) = run_one(&format!(
        r#"
[[flows.f.steps]]
name = "ws"
ws = "/ws/echo"
[[flows.f.steps]]
name = "echo"
send = "err \u001b]0;PWNED\u0007\r\nfake {long}"
expect = {{ contains = "never" }}
fail_on = {{ regex = "err[^z]*" }}
"#
    ));
    let echo = metric(&plan, "echo");
    let example = rec.metric(echo).examples[ErrorClass::CheckFailed as usize].clone();
    let want = format!(
        "fail_on: /err[^z]*/ matched `err  ]0;PWNED   fake {}…`",
        &long[..43]
    );
    assert_eq!(example.as_deref(), Some(want.as_str()));
}

#[test]
fn fail_on_ends_a_wait_for_a_frame_at_once_and_xml_matches_the_awaited_one() {
    let started = std::time::Instant::now();
    let (plan, ended, rec) = run_one(
        r#"
[[flows.f.steps]]
name = "ws"
ws = "/ws/echo"

[[flows.f.steps]]
name = "ping"
send = "<iq type='get' id='2'><ping/></iq>"
expect = { xml = { "/iq/@id" = "2", "/iq/ping" = "" } }

[[flows.f.steps]]
name = "refused"
send = "<iq type='error' id='3'/>"
expect = { xml = { "/iq/@type" = "result" } }
fail_on = { regex = "type='error'[^>]*" }
"#,
    );
    assert!(!ended.completed);
    let ping = rec.metric(metric(&plan, "ping"));
    assert_eq!((ping.count(), ping.error_count()), (1, 0));
    let refused = metric(&plan, "refused");
    assert_eq!(errors(&rec, refused, ErrorClass::CheckFailed), 1);
    assert_eq!(errors(&rec, refused, ErrorClass::Timeout), 0);
    let example = rec.metric(refused).examples[ErrorClass::CheckFailed as usize].clone();
    assert_eq!(
        example.as_deref(),
        Some("fail_on: /type='error'[^>]*/ matched `type='error' id='3'/`")
    );
    // At once, not after the step's 2 s timeout (the whole user took a few ms on loopback; the
    // bound leaves a loaded machine most of a second).
    assert!(
        started.elapsed() < std::time::Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
}
