//! One traced user's events (`--trace N`): the user's side of `swarm::trace`. A user that is not
//! traced holds `None`, and every event site is one branch on it; the event's fields are built
//! only for a traced user.

use std::time::Duration;

use serde_json::{json, Map, Value};

use crate::clients::connection::Frame;
use crate::clients::OpError;
use crate::compiled::flow::{Action, Step};
use crate::runtime::User;
use crate::swarm::trace::{Mask, Tracer, EVENTS_PER_USER};

/// A traced user: who it is and how much it has written.
pub(super) struct UserTrace<'a> {
    tracer: &'a Tracer,
    index: u64,
    visit: u32,
    /// The user's intended arrival: each event also says how long after it it happened.
    arrived: Duration,
    events: u32,
    /// The step running now, as events name it.
    step: &'a str,
}

impl<'a> UserTrace<'a> {
    pub(super) fn new(tracer: &'a Tracer, index: u64, visit: u32, arrived: Duration) -> Self {
        UserTrace {
            tracer,
            index,
            visit,
            arrived,
            events: 0,
            step: "",
        }
    }

    fn write(&mut self, now: Duration, event: &str, fields: Value) {
        if self.events > EVENTS_PER_USER {
            return;
        }
        self.events += 1;
        let (event, fields) = if self.events > EVENTS_PER_USER {
            (
                "truncated",
                json!({ "reason": format!("more than {EVENTS_PER_USER} events") }),
            )
        } else {
            (event, fields)
        };
        let mut line = Map::new();
        line.insert("user".into(), self.index.into());
        line.insert("visit".into(), self.visit.into());
        line.insert("t_ms".into(), ms(now).into());
        line.insert(
            "user_ms".into(),
            ms(now.saturating_sub(self.arrived)).into(),
        );
        line.insert("step".into(), self.step.into());
        line.insert("event".into(), event.into());
        if let Value::Object(fields) = fields {
            line.extend(fields);
        }
        self.tracer.write(&Value::Object(line));
    }
}

/// Milliseconds with microsecond precision.
fn ms(d: Duration) -> f64 {
    (d.as_micros() as f64) / 1000.0
}

/// Headers as `[[name, value], …]`, values masked.
fn headers<'h>(t: &Mask, headers: impl Iterator<Item = (&'h str, &'h str)>) -> Value {
    headers
        .map(|(n, v)| json!([n, t.mask(v)]))
        .collect::<Vec<_>>()
        .into()
}

/// A body or frame: its text (masked, cut) and its size before the cut.
fn body(t: &Mask, text: &str) -> (Value, Value) {
    let (text, size) = t.body(text);
    (text.into(), size.into())
}

impl<'a> User<'a> {
    /// Writes an event of a traced user; `fields` (an object) is built only for one.
    pub(super) fn trace(&mut self, event: &str, fields: impl FnOnce(&Mask) -> Value) {
        // The one branch an untraced user pays: not even the clock is read.
        if let Some(t) = &mut self.trace {
            let now = self.ctx.now();
            let derived = self
                .scope
                .derived_secrets
                .as_ref()
                .map_or(&[][..], |d| &d.0[..]);
            let f = fields(&t.tracer.masker(derived));
            t.write(now, event, f);
        }
    }

    /// A timed step starts: it names the events until the next one. Inlined, as the other
    /// per-request events: an untraced user pays one branch, not a call (~20 instructions each,
    /// four per request).
    #[inline]
    pub(super) fn trace_step_start(&mut self, step: &Step) {
        if self.trace.is_some() {
            self.traced_step_start(step);
        }
    }

    fn traced_step_start(&mut self, step: &Step) {
        let ctx: &'a crate::swarm::WorkerCtx = self.ctx;
        let name = match step.metric.or(step.transaction) {
            Some(m) => ctx.plan().catalog.name(m),
            None => match &step.action {
                Action::Http(_) => "(http)",
                Action::WsConnect { .. } => "(ws)",
                Action::Send(_) => "(send)",
                Action::Receive => "(receive)",
                _ => "(step)",
            },
        };
        if let Some(t) = &mut self.trace {
            t.step = name;
        }
        let intended = self.intended;
        self.trace("step_start", |_| json!({ "intended_ms": ms(intended) }));
    }

    /// A timed step ended: `ok`, `skipped` (nobody online to send to) or `error` with its class
    /// and reason.
    #[inline]
    pub(super) fn trace_step_end(&mut self, outcome: Result<&str, &OpError>) {
        if self.trace.is_some() {
            self.traced_step_end(outcome);
        }
    }

    fn traced_step_end(&mut self, outcome: Result<&str, &OpError>) {
        self.trace("step_end", |t| match outcome {
            Ok(outcome) => json!({ "outcome": outcome }),
            Err(e) => json!({
                "outcome": "error",
                "error": { "class": e.class.name(), "reason": t.mask(&e.reason) },
            }),
        });
    }

    /// An HTTP request as it goes out (`path` below the target's base URL).
    #[inline]
    pub(super) fn trace_request(
        &mut self,
        method: &http::Method,
        path: &str,
        hdrs: &[(String, String)],
        sent: Option<&(&str, Vec<u8>)>,
    ) {
        if self.trace.is_some() {
            self.traced_request(method, path, hdrs, sent);
        }
    }

    fn traced_request(
        &mut self,
        method: &http::Method,
        path: &str,
        hdrs: &[(String, String)],
        sent: Option<&(&str, Vec<u8>)>,
    ) {
        let endpoint = &self.ctx.shared.endpoint;
        let (host, prefix) = (endpoint.authority.as_str(), endpoint.prefix.as_str());
        self.trace("request", |t| {
            // A flow's own Host replaces the target's on the wire (clients/request.rs).
            let own_host = hdrs.iter().any(|(n, _)| n.eq_ignore_ascii_case("host"));
            let mut all = if own_host {
                vec![]
            } else {
                vec![("host", host)]
            };
            all.extend(hdrs.iter().map(|(n, v)| (n.as_str(), v.as_str())));
            let has_type = hdrs
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case("content-type"));
            if let (Some((kind, _)), false) = (sent, has_type) {
                all.push(("content-type", kind));
            }
            let mut f = json!({
                "method": method.as_str(),
                "path": t.mask(&format!("{prefix}{path}")),
                "headers": headers(t, all.into_iter()),
            });
            if let Some((_, bytes)) = sent {
                let (text, size) = body(t, &String::from_utf8_lossy(bytes));
                f["body"] = text;
                f["body_bytes"] = size;
            }
            f
        });
    }

    /// An HTTP response.
    #[inline]
    pub(super) fn trace_response(&mut self, resp: &crate::clients::http::Response) {
        if self.trace.is_some() {
            self.traced_response(resp);
        }
    }

    fn traced_response(&mut self, resp: &crate::clients::http::Response) {
        self.trace("response", |t| {
            let (text, size) = body(t, &String::from_utf8_lossy(&resp.body));
            // Names lowercased here, for a traced user only (the client keeps them as sent).
            let hs: Vec<(String, &str)> = resp
                .headers
                .iter()
                .map(|(n, v)| {
                    let v = crate::clients::response::text(v).unwrap_or("<not text>");
                    (n.to_ascii_lowercase(), v)
                })
                .collect();
            json!({
                "status": resp.status,
                "headers": headers(t, hs.iter().map(|(n, v)| (n.as_str(), *v))),
                "body": text,
                "body_bytes": size,
            })
        });
    }

    /// A frame in (`frame_in`) or out (`frame_out`).
    pub(super) fn trace_frame(&mut self, event: &str, frame: &Frame) {
        self.trace(event, |t| {
            let (text, size) = body(t, &frame.to_text());
            json!({
                "kind": if matches!(frame, Frame::Binary(_)) { "binary" } else { "text" },
                "body": text,
                "body_bytes": size,
            })
        });
    }
}
