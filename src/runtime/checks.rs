//! Checks on what came back (an HTTP response, a frame) and captures out of it: which answers
//! pass, which error class a failure is counted under, and what a step keeps in its variables.
//!
//! Pure functions of the answer and the user's [`Scope`]: no worker, no network.

use std::borrow::Cow;
use std::collections::HashSet;

use crate::clients::http::Response;
use crate::clients::OpError;
use crate::compiled::flow::jsonpath::JsonPath;
use crate::compiled::flow::template::Value;
use crate::compiled::flow::xmlpath::{parse_doc, XmlPath};
use crate::compiled::flow::{Capture, Check, Expect, Expr, FailOn, Matcher, Want};
use crate::metrics::ErrorClass;
use crate::runtime::eval::{Scope, World};
use crate::runtime::message_id::IdText;

/// What an `expect.contains_all` found: how many values were expected, how many were missing
/// (counted as the run's contacts expected / missing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ContactsSeen {
    pub expected: u64,
    pub missing: u64,
}

/// The checks an answer was judged by, each passed or failed (by the catalog's check index):
/// kept until the step's final attempt records them, so a retried attempt's checks are not
/// counted, as its error is not. Reused from step to step (it allocates once per user).
#[derive(Debug, Default)]
pub(super) struct Tally(Vec<(usize, bool)>);

impl Tally {
    fn note(&mut self, id: Option<&usize>, passed: bool) {
        if let Some(id) = id {
            self.0.push((*id, passed));
        }
    }

    pub fn clear(&mut self) {
        self.0.clear();
    }

    /// The evaluations noted since the last clear, leaving the tally empty.
    pub fn take(&mut self) -> impl Iterator<Item = (usize, bool)> + '_ {
        self.0.drain(..)
    }
}

/// Whether a frame matches a background rule or an `expect`: its regex, then every JSON path.
pub(super) fn matches(
    m: &Matcher,
    text: &str,
    json: Option<&serde_json::Value>,
    scope: &mut Scope,
    w: &World<'_>,
) -> bool {
    if let Some(re) = &m.regex {
        if !re.is_match(text) {
            return false;
        }
    }
    if !m.xml.is_empty() {
        let Some(doc) = parse_doc(text) else {
            return false;
        };
        if !m
            .xml
            .iter()
            .all(|(p, want)| xml_selects(p, want, &doc, scope, w))
        {
            return false;
        }
    }
    if !m.json.is_empty() {
        let Some(json) = json else { return false };
        if !m
            .json
            .iter()
            .all(|(path, want)| selects(path, want, json, scope, w))
        {
            return false;
        }
    }
    m.content.iter().all(|c| check_one(c, text, json, scope, w))
}

/// Whether the XML path selects a value equal (as text) to `want`.
fn xml_selects(
    path: &XmlPath,
    want: &Want,
    doc: &roxmltree::Document,
    scope: &mut Scope,
    w: &World<'_>,
) -> bool {
    let want = scope.want_text(want, w);
    path.select(doc).contains(&want)
}

/// The most of a regex's match a `fail_on` error quotes, as the WebSocket handshake quotes.
const MATCH_AT_MOST: usize = 64;

/// The error a `fail_on` fails the step with, when one of its conditions holds for this
/// answer: its reason says what matched (a regex's match, the text, a selected value).
pub(super) fn failed_on(
    f: &FailOn,
    text: &str,
    json: Option<&serde_json::Value>,
    scope: &mut Scope,
    w: &World<'_>,
) -> Option<OpError> {
    let matched = if let Some(m) = f.regex.as_ref().and_then(|re| re.find(text)) {
        // The match is the target's text: quoted bounded and without control characters.
        let (quoted, cut) = crate::clients::quote::target_text(m.as_str(), MATCH_AT_MOST);
        let more = if cut { "…" } else { "" };
        Some(format!(
            "/{}/ matched `{quoted}{more}`",
            f.regex.as_ref()?.as_str(),
        ))
    } else if let Some(c) = f
        .contains
        .as_ref()
        .map(|c| want_str(c, scope, w))
        .filter(|c| text.contains(c.as_ref()))
    {
        Some(format!("the answer contains `{c}`"))
    } else if let Some(j) = json.filter(|_| !f.json.is_empty()) {
        let hit = f
            .json
            .iter()
            .find(|(p, want)| selects(p, want, j, scope, w));
        hit.map(|(_, want)| format!("a JSON value is {}", show(want, scope, w)))
    } else {
        None
    };
    let matched = matched.or_else(|| {
        let doc = parse_doc(text).filter(|_| !f.xml.is_empty())?;
        let (p, want) = f
            .xml
            .iter()
            .find(|(p, want)| xml_selects(p, want, &doc, scope, w))?;
        Some(format!("{} is {}", p.source, show(want, scope, w)))
    })?;
    Some(OpError::new(
        ErrorClass::CheckFailed,
        format!("fail_on: {matched}"),
    ))
}

/// A text to look for (`contains`): a constant string as it is (no copy), a template rendered.
fn want_str<'a>(want: &'a Want, scope: &mut Scope, w: &World<'_>) -> Cow<'a, str> {
    match want {
        Want::Const(serde_json::Value::String(s)) => Cow::Borrowed(s),
        want => Cow::Owned(scope.want_text(want, w)),
    }
}

/// An expected value as an error message shows it.
fn show(want: &Want, scope: &mut Scope, w: &World<'_>) -> String {
    match want {
        Want::Const(c) => c.to_string(),
        Want::Text(_) => format!("\"{}\"", scope.want_text(want, w)),
    }
}

/// Whether `path` selects a value in `json` equal to `want`: a constant by JSON equality, a
/// template by its text now (a found string as is, a number or boolean as JSON writes it).
pub(super) fn selects(
    path: &JsonPath<Expr>,
    want: &Want,
    json: &serde_json::Value,
    scope: &mut Scope,
    w: &World<'_>,
) -> bool {
    let id;
    let text: Option<Cow<'_, [u8]>> = match want {
        Want::Const(_) => None,
        // The step's own message id (an awaited echo's `expect`): written on the stack, as
        // `msg.id` renders it (digits and dashes, which no escape changes).
        Want::Text(t) if matches!(t.sole_expr(), Some(Expr::MsgId)) => {
            let (seq, intended) = scope.msg(w);
            id = IdText::new(scope.index, seq, intended);
            Some(Cow::Borrowed(id.as_bytes()))
        }
        Want::Text(_) => Some(Cow::Owned(scope.want_text(want, w).into_bytes())),
    };
    let holds = |v: &serde_json::Value| is_wanted(v, want, text.as_deref());
    if path.is_multi() {
        path.select(json, |e| scope.eval(e, w).to_text())
            .into_iter()
            .any(holds)
    } else {
        path.first(json, |e| scope.eval(e, w).to_text())
            .is_some_and(holds)
    }
}

/// Whether a found JSON value is `want`: a constant by JSON equality, a template by `text`, its
/// rendering now (a found string as it is, a number or boolean as JSON writes it).
fn is_wanted(v: &serde_json::Value, want: &Want, text: Option<&[u8]>) -> bool {
    match (want, text) {
        (Want::Const(c), _) => json_eq(v, c),
        // Compared as bytes: text equal as bytes is equal as text. A string compares as it is
        // (its text is itself): no copy of it.
        (_, Some(t)) => match v {
            serde_json::Value::String(s) => s.as_bytes() == t,
            v => Value::from_json(v).to_text().as_bytes() == t,
        },
        _ => false,
    }
}

/// Checks an HTTP response's status: the expected ones, else any 2xx.
pub(super) fn check_status(expect: Option<&Expect>, status: u16) -> Result<(), OpError> {
    let expected_status = expect.and_then(|e| {
        e.checks.iter().find_map(|c| match c {
            Check::Status(s) => Some(s),
            _ => None,
        })
    });
    let status_ok = match expected_status {
        Some(s) => s.contains(&status),
        None => (200..300).contains(&status),
    };
    if status_ok {
        return Ok(());
    }
    let expected = expected_status.map_or("2xx".to_string(), |s| {
        s.iter()
            .map(u16::to_string)
            .collect::<Vec<_>>()
            .join(" or ")
    });
    Err(OpError::new(
        ErrorClass::HttpStatus,
        format!("expected HTTP {expected}, got {status}"),
    ))
}

/// Checks an HTTP response; returns its body as JSON when it is JSON, and what a
/// `contains_all` found. Every check is evaluated and noted in `tally` (as k6 runs every
/// check), the body's even when the status failed; the error is the status's, else the
/// first failed check's.
pub(super) fn check_response(
    expect: Option<&Expect>,
    resp: &Response,
    reads_json: bool,
    scope: &mut Scope,
    w: &World<'_>,
    tally: &mut Tally,
) -> Result<(Option<serde_json::Value>, Option<ContactsSeen>), OpError> {
    let status = check_status(expect, resp.status);
    if let Some(e) = expect {
        if let Some(i) = e.checks.iter().position(|c| matches!(c, Check::Status(_))) {
            tally.note(e.ids.get(i), status.is_ok());
        }
    }
    // Only when something reads it: parsing a body nobody looks into would cost more than the
    // rest of the response (bench/README.md, "A lean HTTP/1.1 client").
    let json: Option<serde_json::Value> = reads_json
        .then(|| serde_json::from_slice(&resp.body).ok())
        .flatten();
    // The body as text only for a check that reads it (a status-only or no `expect` reads
    // none): the UTF-8 scan was ~1 % of a kept-alive request.
    let reads_body =
        expect.is_some_and(|e| e.checks.iter().any(|c| !matches!(c, Check::Status(_))));
    let text = if reads_body {
        String::from_utf8_lossy(&resp.body)
    } else {
        std::borrow::Cow::Borrowed("")
    };
    let contacts = check_text(expect, &text, json.as_ref(), scope, w, tally);
    status?;
    Ok((json, contacts?))
}

/// Whether a step's captures read its response body as text (a regex): only then is the body's
/// UTF-8 checked, which for a large body is a cost per request.
pub(super) fn reads_text(captures: &[(usize, Capture)]) -> bool {
    captures
        .iter()
        .any(|(_, c)| matches!(c, Capture::Regex(..)))
}

/// Whether a step's checks or captures read its response as JSON (its deliveries may: they are
/// given it whenever a step has them).
pub(super) fn reads_json(
    expect: Option<&Expect>,
    captures: &[(usize, Capture)],
    deliveries: bool,
) -> bool {
    deliveries
        || captures.iter().any(|(_, c)| matches!(c, Capture::Json(_)))
        || expect.is_some_and(|e| {
            e.contains_all.is_some()
                || e.checks.iter().any(|c| {
                    matches!(
                        c,
                        Check::JsonEquals(..) | Check::JsonExists(_) | Check::JsonContains(..)
                    )
                })
        })
}

/// Checks an answer's text and JSON against the step's `expect` (status checks aside: the
/// caller judges and notes those), noting each in `tally`. A JSON check on an answer that is
/// not JSON is a protocol error; any other failure a failed check; the first is the error.
pub(super) fn check_text(
    expect: Option<&Expect>,
    text: &str,
    json: Option<&serde_json::Value>,
    scope: &mut Scope,
    w: &World<'_>,
    tally: &mut Tally,
) -> Result<Option<ContactsSeen>, OpError> {
    let Some(expect) = expect else {
        return Ok(None);
    };
    let mut first_failure = None;
    for (i, c) in expect.checks.iter().enumerate() {
        if matches!(c, Check::Status(_)) {
            continue;
        }
        let passed = check_one(c, text, json, scope, w);
        tally.note(expect.ids.get(i), passed);
        if !passed && first_failure.is_none() {
            let reason = match c {
                Check::JsonEquals(_, want @ Want::Text(_)) => {
                    format!("a JSON value is not \"{}\"", scope.want_text(want, w))
                }
                Check::XmlEquals(p, want @ Want::Text(_)) => {
                    format!("{} is not \"{}\"", p.source, scope.want_text(want, w))
                }
                Check::JsonContains(_, want @ Want::Text(_)) => format!(
                    "no selected JSON value contains \"{}\"",
                    scope.want_text(want, w)
                ),
                Check::Contains(want) => {
                    format!("the answer does not contain `{}`", want_str(want, scope, w))
                }
                c => failed_check(c),
            };
            let class = if json.is_none()
                && matches!(
                    c,
                    Check::JsonEquals(..) | Check::JsonExists(_) | Check::JsonContains(..)
                ) {
                ErrorClass::Protocol
            } else {
                ErrorClass::CheckFailed
            };
            first_failure = Some(OpError::new(class, reason));
        }
    }
    if let Some(e) = first_failure {
        return Err(e);
    }
    let (Some(all), Some(json)) = (&expect.contains_all, json) else {
        return Ok(None);
    };
    let wanted: Vec<String> = match &all.values_expr {
        Some(e) => match scope.eval(e, w) {
            Value::List(items) => items.iter().map(Value::to_text).collect(),
            v => vec![v.to_text()],
        },
        None => vec![all.values.render_with(|e| scope.eval(e, w))],
    };
    let found: HashSet<String> = all
        .path
        .select(json, |e| scope.eval(e, w).to_text())
        .iter()
        .map(|v| Value::from_json(v).to_text())
        .collect();
    let missing = wanted.iter().filter(|w| !found.contains(*w)).count();
    Ok(Some(ContactsSeen {
        expected: wanted.len() as u64,
        missing: missing as u64,
    }))
}

fn check_one(
    c: &Check,
    text: &str,
    json: Option<&serde_json::Value>,
    scope: &mut Scope,
    w: &World<'_>,
) -> bool {
    match c {
        Check::Status(_) => true,
        Check::JsonEquals(path, want) => json.is_some_and(|j| selects(path, want, j, scope, w)),
        Check::JsonContains(path, want) => json.is_some_and(|j| {
            // A template is rendered once for all the selected values and compared as text,
            // as `selects` compares.
            let text = match want {
                Want::Const(_) => None,
                Want::Text(_) => Some(scope.want_text(want, w)),
            };
            let holds =
                |v: &serde_json::Value| is_wanted(v, want, text.as_deref().map(str::as_bytes));
            path.select(j, |e| scope.eval(e, w).to_text())
                .iter()
                .any(|v| match v {
                    serde_json::Value::Array(items) => items.iter().any(holds),
                    v => holds(v),
                })
        }),
        Check::JsonExists(path) => {
            json.is_some_and(|j| !path.select(j, |e| scope.eval(e, w).to_text()).is_empty())
        }
        Check::Contains(want) => text.contains(want_str(want, scope, w).as_ref()),
        Check::Regex(re) => re.is_match(text),
        Check::XmlEquals(path, want) => {
            parse_doc(text).is_some_and(|doc| xml_selects(path, want, &doc, scope, w))
        }
    }
}

/// What a failed check says.
fn failed_check(c: &Check) -> String {
    match c {
        Check::Status(_) => "status".to_string(),
        Check::JsonEquals(_, Want::Const(want)) => format!("a JSON value is not {want}"),
        Check::JsonEquals(_, Want::Text(_)) => "a JSON value is not the templated one".into(),
        Check::JsonExists(_) => "a JSON path selects nothing".to_string(),
        Check::JsonContains(_, Want::Const(want)) => {
            format!("no selected JSON value contains {want}")
        }
        Check::JsonContains(_, Want::Text(_)) => {
            "no selected JSON value contains the templated one".into()
        }
        Check::Contains(_) => "the answer does not contain the text".into(),
        Check::Regex(re) => format!("the answer does not match /{}/", re.as_str()),
        Check::XmlEquals(p, Want::Const(want)) => format!("{} is not {want}", p.source),
        Check::XmlEquals(p, Want::Text(_)) => format!("{} is not the templated value", p.source),
    }
}

/// Keeps what a step captures in the user's variables (a capture that finds nothing clears
/// its variable).
pub(super) fn capture(
    captures: &[(usize, Capture)],
    resp: Option<&Response>,
    text: &str,
    json: Option<&serde_json::Value>,
    scope: &mut Scope,
    w: &World<'_>,
) {
    for (slot, cap) in captures {
        let value = match cap {
            Capture::Json(path) => json.and_then(|j| {
                let found = path.select(j, |e| scope.eval(e, w).to_text());
                match found.as_slice() {
                    [] => None,
                    [one] if !path.is_multi() => Some(Value::from_json(one)),
                    many => Some(Value::List(
                        many.iter().map(|v| Value::from_json(v)).collect(),
                    )),
                }
            }),
            Capture::Regex(re, group) => re
                .captures(text)
                .and_then(|c| c.get(*group))
                .map(|m| Value::Str(m.as_str().to_string())),
            Capture::Header(name) => resp
                .and_then(|r| r.headers.get_str(name))
                .map(|v| Value::Str(v.to_string())),
            Capture::Status => resp.map(|r| Value::Num(r.status as f64)),
        };
        if let Some(v) = scope.vars.get_mut(*slot) {
            *v = value;
        }
    }
}

/// JSON equality where numbers compare by value (1 == 1.0).
pub(super) fn json_eq(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    match (a, b) {
        (serde_json::Value::Number(x), serde_json::Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compiled::flow::jsonpath::{parse, JsonPath};
    use crate::compiled::flow::template::{Resolver, Segment};
    use crate::compiled::flow::Expr;
    use crate::runtime::eval::tests::{scope, TestWorld};
    use serde_json::json;
    use std::time::Duration;

    /// Paths with literal parts only.
    struct Literals;
    impl Resolver for Literals {
        type Expr = Expr;
        fn literal(&mut self, v: Value) -> Expr {
            Expr::Lit(v)
        }
        fn concat(&mut self, parts: Vec<Expr>) -> Expr {
            Expr::Concat(parts)
        }
        fn path(&mut self, _: &[Segment], _: Vec<Vec<Expr>>) -> Result<Expr, String> {
            Err("no variables in these tests".into())
        }
    }

    fn path(p: &str) -> JsonPath<Expr> {
        parse(p, &mut Literals).expect("valid path")
    }

    fn expect(checks: Vec<Check>) -> Expect {
        Expect {
            checks,
            ..Expect::default()
        }
    }

    fn response(status: u16, body: &str) -> Response {
        let headers = [("X-Token", "t1")].into_iter().collect();
        Response {
            status,
            headers,
            body: body.as_bytes().to_vec(),
        }
    }

    fn class_of(e: &Expect, text: &str) -> Option<ErrorClass> {
        let tw = TestWorld::new();
        let json: Option<serde_json::Value> = serde_json::from_str(text).ok();
        let mut s = scope(1);
        check_text(
            Some(e),
            text,
            json.as_ref(),
            &mut s,
            &tw.world(Duration::ZERO),
            &mut Tally::default(),
        )
        .err()
        .map(|e| e.class)
    }

    #[test]
    fn statuses_pass_2xx_or_the_expected_ones() {
        assert!(check_status(None, 204).is_ok());
        let e = check_status(None, 302).expect_err("a redirect is not 2xx");
        assert_eq!(e.class, ErrorClass::HttpStatus);
        assert_eq!(e.reason, "expected HTTP 2xx, got 302");
        let want = expect(vec![Check::Status(vec![409, 201])]);
        assert!(check_status(Some(&want), 409).is_ok());
        let e = check_status(Some(&want), 200).expect_err("200 was not expected");
        assert_eq!(e.reason, "expected HTTP 409 or 201, got 200");
        let tw = TestWorld::new();
        let mut s = scope(1);
        let w = tw.world(Duration::ZERO);
        let mut t = Tally::default();
        let e = check_response(Some(&want), &response(500, "{}"), true, &mut s, &w, &mut t)
            .expect_err("a failed status");
        assert_eq!(e.class, ErrorClass::HttpStatus);
        let (json, seen) = check_response(
            Some(&want),
            &response(201, r#"{"a":1}"#),
            true,
            &mut s,
            &w,
            &mut t,
        )
        .expect("ok");
        assert_eq!(json, Some(json!({"a": 1})));
        assert_eq!(seen, None);
        // Nothing of the step reads JSON: the body is not parsed.
        let (json, _) = check_response(
            Some(&want),
            &response(201, r#"{"a":1}"#),
            false,
            &mut s,
            &w,
            &mut t,
        )
        .expect("ok");
        assert_eq!(json, None);
        assert!(!reads_json(Some(&want), &[], false));
        assert!(reads_json(Some(&want), &[], true), "deliveries");
        assert!(reads_json(None, &[(0, Capture::Json(path("$.a")))], false));
        let jsonish = expect(vec![Check::JsonExists(path("$.a"))]);
        assert!(reads_json(Some(&jsonish), &[(0, Capture::Status)], false));
    }

    #[test]
    fn a_failed_check_gets_its_class() {
        let body = r#"{"user": {"id": 7, "tags": ["a", "b"]}}"#;
        let passes = [
            Check::JsonEquals(path("$.user.id"), Want::Const(json!(7.0))),
            Check::JsonContains(path("$.user.tags"), Want::Const(json!("b"))),
            Check::JsonExists(path("$.user")),
            Check::Contains(Want::Const(json!("tags"))),
            Check::Regex(regex::Regex::new(r#""id": \d+"#).expect("valid regex")),
            Check::Status(vec![500]),
        ];
        for c in passes {
            assert_eq!(class_of(&expect(vec![c.clone()]), body), None, "{c:?}");
        }
        let fails = [
            Check::JsonEquals(path("$.user.id"), Want::Const(json!(8))),
            Check::JsonContains(path("$.user.tags"), Want::Const(json!("c"))),
            Check::JsonExists(path("$.user.name")),
            Check::Contains(Want::Const(json!("nope"))),
            Check::Regex(regex::Regex::new("^x").expect("valid regex")),
        ];
        for c in fails {
            assert_eq!(
                class_of(&expect(vec![c.clone()]), body),
                Some(ErrorClass::CheckFailed),
                "{c:?}"
            );
        }
        // A JSON check on an answer that is not JSON: the protocol broke, not the check.
        for c in [
            Check::JsonEquals(path("$.a"), Want::Const(json!(1))),
            Check::JsonExists(path("$.a")),
            Check::JsonContains(path("$.a"), Want::Const(json!(1))),
        ] {
            assert_eq!(
                class_of(&expect(vec![c.clone()]), "not json"),
                Some(ErrorClass::Protocol),
                "{c:?}"
            );
        }
        assert_eq!(
            class_of(
                &expect(vec![Check::Contains(Want::Const(json!("x")))]),
                "not json"
            ),
            Some(ErrorClass::CheckFailed)
        );
        // No expect: anything passes.
        let tw = TestWorld::new();
        let mut s = scope(1);
        let none = check_text(
            None,
            "",
            None,
            &mut s,
            &tw.world(Duration::ZERO),
            &mut Tally::default(),
        );
        assert_eq!(none, Ok(None));
    }

    #[test]
    fn every_check_is_noted_and_the_first_failure_is_the_error() {
        let tw = TestWorld::new();
        let w = tw.world(Duration::ZERO);
        let mut s = scope(1);
        let e = Expect {
            checks: vec![
                Check::Status(vec![200]),
                Check::Contains(Want::Const(json!("x"))),
                Check::JsonExists(path("$.a")),
                Check::Contains(Want::Const(json!("a"))),
            ],
            ids: vec![7, 3, 5, 6],
            ..Expect::default()
        };
        let mut t = Tally::default();
        // The status fails, and the body's checks are still judged (k6 runs every check).
        let err = check_response(
            Some(&e),
            &response(503, r#"{"a": 1}"#),
            true,
            &mut s,
            &w,
            &mut t,
        )
        .expect_err("503 is not 200");
        assert_eq!(err.class, ErrorClass::HttpStatus);
        let noted: Vec<_> = t.take().collect();
        assert_eq!(noted, [(7, false), (3, false), (5, true), (6, true)]);
        // The status passes: the first failed check is the error, the later ones still noted.
        let err = check_response(
            Some(&e),
            &response(200, r#"{"b": 1}"#),
            true,
            &mut s,
            &w,
            &mut t,
        )
        .expect_err("no x, no $.a");
        assert_eq!(err.reason, "the answer does not contain `x`");
        let noted: Vec<_> = t.take().collect();
        assert_eq!(noted, [(7, true), (3, false), (5, false), (6, false)]);
        assert_eq!(t.take().count(), 0, "taken once");
        // Checks without ids (built by hand) are judged, not noted.
        let bare = expect(vec![Check::Contains(Want::Const(json!("x")))]);
        let r = check_response(Some(&bare), &response(200, "x"), false, &mut s, &w, &mut t);
        assert!(r.is_ok());
        assert_eq!(t.take().count(), 0);
    }

    #[test]
    fn contains_all_counts_missing_values() {
        let tw = TestWorld::new();
        let w = tw.world(Duration::ZERO);
        let mut s = scope(1);
        let all = crate::compiled::flow::ContainsAll {
            path: path("$.found[*].phone"),
            values: crate::compiled::flow::template::Template {
                parts: Vec::new(),
                escape: crate::compiled::flow::template::Escape::None,
            },
            values_expr: Some(Expr::Lit(Value::List(vec![
                Value::Str("+1".into()),
                Value::Str("+2".into()),
                Value::Str("+3".into()),
            ]))),
        };
        let e = Expect {
            contains_all: Some(all),
            ..Expect::default()
        };
        let body = json!({"found": [{"phone": "+1"}, {"phone": "+3"}, {"phone": "+9"}]});
        let seen = check_text(Some(&e), "", Some(&body), &mut s, &w, &mut Tally::default())
            .expect("not a failure");
        assert_eq!(
            seen,
            Some(ContactsSeen {
                expected: 3,
                missing: 1
            })
        );
    }

    #[test]
    fn captures_fill_and_clear_variables() {
        let tw = TestWorld::new();
        let w = tw.world(Duration::ZERO);
        let mut s = scope(1);
        s.vars[3] = Some(Value::Str("stale".into()));
        let resp = response(201, r#"{"id": "u1", "xs": [1, 2]}"#);
        let json: serde_json::Value = serde_json::from_slice(&resp.body).expect("json");
        let captures = vec![
            (0, Capture::Json(path("$.id"))),
            (1, Capture::Json(path("$.xs[*]"))),
            (2, Capture::Header("x-token".into())),
            (
                3,
                Capture::Regex(regex::Regex::new("nothing").expect("re"), 0),
            ),
            (9, Capture::Status),
        ];
        capture(&captures, Some(&resp), "", Some(&json), &mut s, &w);
        assert_eq!(s.vars[0], Some(Value::Str("u1".into())));
        assert_eq!(
            s.vars[1],
            Some(Value::List(vec![Value::Num(1.0), Value::Num(2.0)])),
            "a wildcard keeps a list"
        );
        assert_eq!(s.vars[2], Some(Value::Str("t1".into())));
        assert_eq!(s.vars[3], None, "a capture that finds nothing clears");
        capture(
            &[
                (
                    0,
                    Capture::Regex(regex::Regex::new(r"id=(\w+)").expect("re"), 1),
                ),
                (1, Capture::Status),
            ],
            None,
            "id=abc",
            None,
            &mut s,
            &w,
        );
        assert_eq!(s.vars[0], Some(Value::Str("abc".into())));
        assert_eq!(s.vars[1], None, "no response, no status");
    }

    #[test]
    fn matchers_need_the_regex_and_every_json_value() {
        let tw = TestWorld::new();
        let w = tw.world(Duration::ZERO);
        let mut s = scope(1);
        let m = Matcher {
            json: vec![
                (path("$.type"), Want::Const(json!("ack"))),
                (path("$.n"), Want::Const(json!(2))),
            ],
            xml: vec![],
            regex: Some(regex::Regex::new("ack").expect("re")),
            content: vec![],
        };
        let yes = json!({"type": "ack", "n": 2.0});
        let no = json!({"type": "ack", "n": 3});
        assert!(matches(&m, "ack", Some(&yes), &mut s, &w));
        assert!(!matches(&m, "ack", Some(&no), &mut s, &w));
        assert!(!matches(&m, "nak", Some(&yes), &mut s, &w), "the regex");
        assert!(!matches(&m, "ack", None, &mut s, &w), "not JSON");
        assert!(matches(&Matcher::default(), "anything", None, &mut s, &w));
        assert!(json_eq(&json!(1), &json!(1.0)));
        assert!(!json_eq(&json!("1"), &json!(1)));
    }
}

#[cfg(test)]
mod templated {
    use super::*;
    use crate::compiled::flow::template::{compile, Escape, Resolver, Segment};
    use crate::runtime::eval::tests::{scope, TestWorld};
    use serde_json::json;
    use std::time::Duration;

    /// Literals and variable slot 0 (`v`).
    struct OneVar;
    impl Resolver for OneVar {
        type Expr = Expr;
        fn literal(&mut self, v: Value) -> Expr {
            Expr::Lit(v)
        }
        fn concat(&mut self, parts: Vec<Expr>) -> Expr {
            Expr::Concat(parts)
        }
        fn path(&mut self, s: &[Segment], _: Vec<Vec<Expr>>) -> Result<Expr, String> {
            match s {
                [one] if one.name == "v" => Ok(Expr::Var(0)),
                _ => Err("only v".into()),
            }
        }
    }

    fn want(t: &str) -> Want {
        Want::Text(compile(t, Escape::None, &mut OneVar).expect("a template"))
    }

    #[test]
    fn templated_json_expectations_are_evaluated_and_compared_as_text() {
        let tw = TestWorld::new();
        let w = tw.world(Duration::ZERO);
        let mut s = scope(1);
        let path = crate::compiled::flow::jsonpath::parse("$.code", &mut OneVar).expect("path");
        let e = Expect {
            checks: vec![Check::JsonEquals(path, want("{{ '200' }}"))],
            ..Expect::default()
        };
        let check = |body: serde_json::Value, s: &mut crate::runtime::eval::Scope| {
            check_text(
                Some(&e),
                &body.to_string(),
                Some(&body),
                s,
                &w,
                &mut Tally::default(),
            )
        };
        // The issue's case: `{{ '200' }}` matched neither "200" nor 200 as literal text.
        assert!(check(json!({"code": 200}), &mut s).is_ok());
        assert!(check(json!({"code": "200"}), &mut s).is_ok());
        let err = check(json!({"code": 201}), &mut s).expect_err("201 is not 200");
        assert_eq!(err.class, ErrorClass::CheckFailed);
        assert_eq!(err.reason, "a JSON value is not \"200\"");
        // A variable, read when the check runs: a recipient waiting for a given message id.
        let m = Matcher {
            json: vec![(
                crate::compiled::flow::jsonpath::parse("$.id", &mut OneVar).expect("path"),
                want("{{ v }}"),
            )],
            xml: vec![],
            regex: None,
            content: vec![],
        };
        let frame = json!({"type": "message", "id": "m-7"});
        s.vars[0] = Some(Value::Str("m-6".into()));
        assert!(!matches(&m, "", Some(&frame), &mut s, &w));
        s.vars[0] = Some(Value::Str("m-7".into()));
        assert!(matches(&m, "", Some(&frame), &mut s, &w));
    }

    #[test]
    fn templated_contains_json_contains_and_fail_on_compare_the_rendered_text() {
        let tw = TestWorld::new();
        let w = tw.world(Duration::ZERO);
        let mut s = scope(1);
        s.vars[0] = Some(Value::Str("ann".into()));
        let tags = crate::compiled::flow::jsonpath::parse("$.tags", &mut OneVar).expect("path");
        let e = Expect {
            checks: vec![
                Check::Contains(want("hi {{ v }}")),
                Check::JsonContains(tags, want("{{ v }}")),
            ],
            ..Expect::default()
        };
        let check = |body: &str, s: &mut crate::runtime::eval::Scope| {
            let json: Option<serde_json::Value> = serde_json::from_str(body).ok();
            let mut t = Tally::default();
            check_text(Some(&e), body, json.as_ref(), s, &w, &mut t).map(|_| ())
        };
        assert!(check(r#"{"say": "hi ann", "tags": ["x", "ann"]}"#, &mut s).is_ok());
        // The template's own text is not what the user looks for.
        let err = check(r#"{"say": "hi {{ v }}", "tags": ["ann"]}"#, &mut s).expect_err("literal");
        assert_eq!(err.reason, "the answer does not contain `hi ann`");
        let err = check(r#"{"say": "hi ann", "tags": ["{{ v }}"]}"#, &mut s).expect_err("literal");
        assert_eq!(err.reason, "no selected JSON value contains \"ann\"");
        // A number found compares by its text, as in `json`.
        s.vars[0] = Some(Value::Num(7.0));
        assert!(check(r#"{"say": "hi 7", "tags": [7]}"#, &mut s).is_ok());
        s.vars[0] = Some(Value::Str("ann".into()));
        let f = FailOn {
            contains: Some(want("bye {{ v }}")),
            ..FailOn::default()
        };
        assert!(failed_on(&f, "bye {{ v }}", None, &mut s, &w).is_none());
        let err = failed_on(&f, "so bye ann", None, &mut s, &w).expect("fires");
        assert_eq!(err.class, ErrorClass::CheckFailed);
        assert_eq!(err.reason, "fail_on: the answer contains `bye ann`");
    }
}
