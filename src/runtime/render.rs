//! Rendering what a step sends from its templates, with the user's [`Scope`]: frames, JSON
//! bodies (written straight into text), HTTP requests.

use std::borrow::Cow;

use crate::clients::connection;
use crate::compiled::flow::template::{percent_encode, Part, Value};
use crate::compiled::flow::{Body, Expr, Frame, Http, JsonTemplate};
use crate::runtime::eval::{Scope, World};
use crate::runtime::message_id::write_message_id;

/// Appends `s` as a JSON string: quoted, with `"`, `\\` and control characters escaped as
/// serde_json escapes them (short forms where JSON has one, else `\u00XX`).
pub(crate) fn push_json_str(out: &mut String, s: &str) {
    out.push('"');
    let mut plain = 0;
    for (i, b) in s.bytes().enumerate() {
        let short = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0..=0x1f => "",
            _ => continue,
        };
        out.push_str(&s[plain..i]);
        plain = i + 1;
        if short.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.push_str("\\u00");
            out.push(HEX[(b >> 4) as usize] as char);
            out.push(HEX[(b & 0xf) as usize] as char);
        } else {
            out.push_str(short);
        }
    }
    out.push_str(&s[plain..]);
    out.push('"');
}

impl Scope {
    /// The frame a `send` (or a rule's `reply`) puts on the wire.
    pub fn render_frame(&mut self, frame: &Frame, w: &World<'_>) -> connection::Frame {
        match frame {
            Frame::Text(t) => connection::Frame::text(t.render_with(|e| self.eval(e, w))),
            Frame::Binary(t) => {
                connection::Frame::binary(t.render_with(|e| self.eval(e, w)).into_bytes())
            }
            // Written into the worker's buffer, then copied into one allocation of the frame's
            // size: a frame's bytes that fill their allocation are taken over as they are, while
            // a larger one costs the frame a second allocation (`Bytes`' shared header).
            Frame::Json(j) => {
                let mut out = w.scratch.rendered.take();
                out.clear();
                self.write_json(j, &mut out, w);
                let frame = connection::Frame::text(out.as_str().to_owned());
                // Kept unless a rare large frame grew it: a worker holds one.
                if out.capacity() <= 64 * 1024 {
                    w.scratch.rendered.set(out);
                }
                frame
            }
        }
    }

    /// Writes a JSON template straight into text, without building a JSON tree first (this is
    /// on every message's path: strings are escaped in place, a message id written digit by
    /// digit, nothing allocated on the way for a frame of constants and `msg.id`).
    pub fn write_json(&mut self, j: &JsonTemplate, out: &mut String, w: &World<'_>) {
        match j {
            JsonTemplate::Const(serde_json::Value::String(s)) => push_json_str(out, s),
            JsonTemplate::Const(v) => out.push_str(&v.to_string()),
            JsonTemplate::Text(t) => {
                let text = t.render_with(|e| self.eval(e, w));
                push_json_str(out, &text);
            }
            // Digits and dashes: nothing to escape.
            JsonTemplate::Expr(Expr::MsgId) => {
                let (seq, intended) = self.msg(w);
                out.push('"');
                write_message_id(out, self.index, seq, intended);
                out.push('"');
            }
            JsonTemplate::Expr(e) => match self.eval(e, w) {
                Value::Str(s) => push_json_str(out, &s),
                other => out.push_str(&other.to_json().to_string()),
            },
            JsonTemplate::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    self.write_json(item, out, w);
                }
                out.push(']');
            }
            JsonTemplate::Object(fields) => {
                out.push('{');
                for (i, (k, v)) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    push_json_str(out, k);
                    out.push(':');
                    self.write_json(v, out, w);
                }
                out.push('}');
            }
        }
    }

    /// An HTTP step's request as it goes out: path with query, headers, body with its type.
    /// A path of constant text alone (no expression, no query) is the step's own, borrowed:
    /// rendering it would allocate a copy per request.
    pub fn render_request<'h>(&mut self, h: &'h Http, w: &World<'_>) -> RenderedRequest<'h> {
        let path = match (&h.target.parts[..], h.query.is_empty()) {
            ([Part::Text(t)], true) => Cow::Borrowed(t.as_str()),
            _ => Cow::Owned(self.render_path(h, w)),
        };
        let headers = self.render_headers(&h.headers, w);
        let body = match &h.body {
            Body::None => None,
            Body::Json(j) => {
                let mut out = String::with_capacity(256);
                self.write_json(j, &mut out, w);
                Some(("application/json", out.into_bytes()))
            }
            Body::Text(t) => Some((
                "text/plain; charset=utf-8",
                t.render_with(|e| self.eval(e, w)).into_bytes(),
            )),
            Body::Form(fields) => {
                let mut s = String::new();
                for (i, (k, v)) in fields.iter().enumerate() {
                    if i > 0 {
                        s.push('&');
                    }
                    percent_encode(k, &mut s);
                    s.push('=');
                    s.push_str(&v.render_with(|e| self.eval(e, w)));
                }
                Some(("application/x-www-form-urlencoded", s.into_bytes()))
            }
        };
        RenderedRequest {
            path,
            headers,
            body,
        }
    }

    /// The path with its query, rendered.
    fn render_path(&mut self, h: &Http, w: &World<'_>) -> String {
        let mut path = h.target.render_with(|e| self.eval(e, w));
        for (i, (k, v)) in h.query.iter().enumerate() {
            path.push(if i == 0 && !path.contains('?') {
                '?'
            } else {
                '&'
            });
            percent_encode(k, &mut path);
            path.push('=');
            path.push_str(&v.render_with(|e| self.eval(e, w)));
        }
        path
    }

    pub fn render_headers(
        &mut self,
        headers: &[(String, crate::compiled::flow::Text)],
        w: &World<'_>,
    ) -> Vec<(String, String)> {
        headers
            .iter()
            .map(|(k, v)| (k.clone(), v.render_with(|e| self.eval(e, w))))
            .collect()
    }
}

/// An HTTP request rendered from its step (`'h`: the step's, for a constant path).
pub(super) struct RenderedRequest<'h> {
    pub path: Cow<'h, str>,
    pub headers: Vec<(String, String)>,
    /// The body and its content type.
    pub body: Option<(&'static str, Vec<u8>)>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compiled::flow::template::{Escape, Part, Template};
    use crate::compiled::flow::Expr;
    use crate::runtime::eval::tests::{scope, TestWorld};
    use std::time::Duration;

    fn text(parts: Vec<Part<Expr>>, escape: Escape) -> crate::compiled::flow::Text {
        Template { parts, escape }
    }

    #[test]
    fn strings_are_escaped_as_serde_json_escapes_them() {
        for s in [
            "",
            "plain",
            "quote \" and \\ backslash",
            "lines\nand\r\ttabs",
            "\u{0}\u{1}\u{8}\u{c}\u{1f}\u{7f}",
            "héllo — ✓ 😀",
            "\"\"",
        ] {
            let mut out = String::new();
            push_json_str(&mut out, s);
            assert_eq!(
                out,
                serde_json::to_string(s).expect("a string serialises"),
                "{s:?}"
            );
        }
    }

    #[test]
    fn a_message_id_in_a_frame_is_the_steps_one_message() {
        let tw = TestWorld::new();
        let w = tw.world(Duration::from_micros(1_500));
        let mut s = scope(1);
        let json = JsonTemplate::Object(vec![
            (
                "type".into(),
                JsonTemplate::Const(serde_json::json!("m\"x")),
            ),
            ("id".into(), JsonTemplate::Expr(Expr::MsgId)),
            ("again".into(), JsonTemplate::Expr(Expr::MsgId)),
        ]);
        let frame = s.render_frame(&Frame::Json(json), &w);
        let want = r#"{"type":"m\"x","id":"3-0-1500","again":"3-0-1500"}"#;
        assert_eq!(frame, connection::Frame::text(want.into()));
        // The same message as `msg.id` evaluated anywhere else in the step.
        assert_eq!(s.eval(&Expr::MsgId, &w), Value::Str("3-0-1500".into()));
        assert_eq!(s.step.msg, Some((0, Duration::from_micros(1_500))));
    }

    #[test]
    fn json_frames_are_written_as_valid_json() {
        let tw = TestWorld::new();
        let w = tw.world(Duration::ZERO);
        let mut s = scope(1);
        s.vars[0] = Some(Value::Str("1".into()));
        let json = JsonTemplate::Object(vec![
            ("to".into(), JsonTemplate::Expr(Expr::Var(0))),
            ("n".into(), JsonTemplate::Expr(Expr::UserIndex)),
            (
                "xs".into(),
                JsonTemplate::Array(vec![JsonTemplate::Const(serde_json::json!({"a": "\""}))]),
            ),
        ]);
        let frame = s.render_frame(&Frame::Json(json), &w);
        assert_eq!(
            frame,
            connection::Frame::text(r#"{"to":"1","n":3,"xs":[{"a":"\""}]}"#.into())
        );
        let back: serde_json::Value =
            serde_json::from_str(&frame.to_text()).expect("rendered JSON parses");
        assert_eq!(back["to"], "1");
        let binary = Frame::Binary(text(vec![Part::Expr(Expr::UserIndex)], Escape::None));
        assert_eq!(
            s.render_frame(&binary, &w),
            connection::Frame::binary(b"3".to_vec())
        );
    }

    #[test]
    fn requests_carry_an_encoded_query_headers_and_a_typed_body() {
        let tw = TestWorld::new();
        let w = tw.world(Duration::ZERO);
        let mut s = scope(1);
        s.vars[1] = Some(Value::Str("a b&c".into()));
        let var = || text(vec![Part::Expr(Expr::Var(1))], Escape::Url);
        let mut h = Http {
            method: http::Method::POST,
            target: text(vec![Part::Text("/v1/users?x=1".into())], Escape::None),
            query: vec![("q r".into(), var())],
            headers: vec![(
                "x-user".into(),
                text(vec![Part::Expr(Expr::UserIndex)], Escape::None),
            )],
            body: Body::Form(vec![("name".into(), var()), ("n".into(), var())]),
            ack: false,
            deliveries: None,
            long_poll: None,
        };
        let req = s.render_request(&h, &w);
        assert_eq!(req.path, "/v1/users?x=1&q%20r=a%20b%26c");
        assert_eq!(req.headers, vec![("x-user".to_string(), "3".to_string())]);
        let (kind, body) = req.body.expect("a form body");
        assert_eq!(kind, "application/x-www-form-urlencoded");
        assert_eq!(body, b"name=a%20b%26c&n=a%20b%26c");
        h.target = text(vec![Part::Text("/plain".into())], Escape::None);
        h.body = Body::Text(text(vec![Part::Text("hi".into())], Escape::None));
        let req = s.render_request(&h, &w);
        assert_eq!(
            req.path, "/plain?q%20r=a%20b%26c",
            "the first parameter opens the query"
        );
        assert_eq!(
            req.body,
            Some(("text/plain; charset=utf-8", b"hi".to_vec()))
        );
        h.body = Body::Json(JsonTemplate::Const(serde_json::json!([1])));
        assert_eq!(
            s.render_request(&h, &w).body,
            Some(("application/json", b"[1]".to_vec()))
        );
        h.body = Body::None;
        assert_eq!(s.render_request(&h, &w).body, None);
    }

    #[test]
    fn literal_query_and_form_text_is_encoded_like_template_output() {
        let text = r#"
name = "t"
[target]
builtin = {}
[load]
phases = [ { name = "a", duration = "1s", rate = 1 } ]

[[flows.f.steps]]
name = "search"
http = "POST /v1/search?fixed=a+b"
query = { q = "a b&c={{ 'x y' }}", "the key" = "100%" }
form = { note = "1+1=2 {{ user.index }}" }

[[flows.f.steps]]
name = "raw"
http = "POST /v1/raw"
body = '{"a":{"b":{{ user.index }}}}'
"#;
        let plan = crate::compiled::compile(std::path::Path::new("t.toml"), text, Some(1))
            .expect("valid: a literal `}}` is text");
        let tw = TestWorld::new();
        let w = tw.world(Duration::ZERO);
        let mut s = scope(1);
        let steps = &plan.flows.flows[0].steps;
        let crate::compiled::flow::Action::Http(h) = &steps[0].action else {
            panic!("an http step")
        };
        let req = s.render_request(h, &w);
        // The path is URL syntax as written; query and form values are values, encoded whole.
        assert_eq!(
            req.path,
            "/v1/search?fixed=a+b&q=a%20b%26c%3Dx%20y&the%20key=100%25"
        );
        assert_eq!(req.body.expect("a form").1, b"note=1%2B1%3D2%203".to_vec());
        let crate::compiled::flow::Action::Http(h) = &steps[1].action else {
            panic!("an http step")
        };
        assert_eq!(
            s.render_request(h, &w).body.expect("a body").1,
            br#"{"a":{"b":3}}"#.to_vec()
        );
    }
}
