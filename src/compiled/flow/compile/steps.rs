//! Steps: one step spec becomes one action with its metric, checks, captures and policies.

use std::ops::Range;

use toml::Spanned;

use super::Compiler;
use crate::compiled::flow::template::Escape;
use crate::compiled::flow::*;
use crate::compiled::retry::{Override, ReconnectPolicy, RetryPolicy};
use crate::scenario::flow::{self as spec, StepSpec};

/// HTTP's methods (RFC 9110, PATCH from RFC 5789) and WebDAV's (RFC 4918, 3253, 5323).
const KNOWN_METHODS: &[&str] = &[
    "GET",
    "HEAD",
    "POST",
    "PUT",
    "DELETE",
    "CONNECT",
    "OPTIONS",
    "TRACE",
    "PATCH",
    "PROPFIND",
    "PROPPATCH",
    "MKCOL",
    "COPY",
    "MOVE",
    "LOCK",
    "UNLOCK",
    "REPORT",
    "SEARCH",
];

/// The count that failures of unnamed, untimed requests go to (`counts.unnamed_errors`).
pub const UNNAMED_ERRORS: &str = "unnamed_errors";

impl Compiler<'_, '_> {
    /// The index of a named count (`counts.<name>`), registered on first use.
    pub(super) fn counter(&mut self, name: &str) -> usize {
        match self.counters.iter().position(|c| c == name) {
            Some(i) => i,
            None => {
                self.counters.push(name.to_string());
                self.counters.len() - 1
            }
        }
    }

    pub(super) fn steps(&mut self, steps: &[Spanned<StepSpec>]) -> Vec<Step> {
        steps.iter().filter_map(|s| self.step(s)).collect()
    }

    pub(super) fn step(&mut self, spanned: &Spanned<StepSpec>) -> Option<Step> {
        let span = spanned.span();
        let s = spanned.get_ref();
        let kinds = [
            ("http", s.http.is_some()),
            ("ws", s.ws.is_some()),
            ("send", s.send.is_some()),
            ("close", s.close.is_some()),
            ("stay_online", s.stay_online.is_some()),
            ("loop", s.loop_.is_some()),
        ];
        let present: Vec<&str> = kinds.iter().filter(|(_, p)| *p).map(|(k, _)| *k).collect();
        if present.len() > 1 {
            self.problems.add(
                span,
                format!(
                    "a step does one thing; this one has {}",
                    present.join(" and ")
                ),
            );
            return None;
        }
        let timeout = match &s.timeout {
            Some(t) => crate::compiled::positive_duration(t, "timeout", self.problems),
            None => self.default_timeout,
        };
        let (expect, matcher) = match &s.expect {
            Some(e) => {
                // How the step's checks are named: its name, its transaction's, or the request.
                let label = s
                    .name
                    .as_ref()
                    .or(s.transaction.as_ref())
                    .or(s.http.as_ref());
                let label = label.map_or("expect", |l| l.get_ref().as_str());
                let (x, m) = self.expect(e, label);
                (Some(x), Some(m))
            }
            None => (None, None),
        };
        let fail_on = s.fail_on.as_ref().map(|f| self.fail_on(f));
        // Before the action: a step whose action is wrong still has its captures checked, so
        // that one `validate` names every mistake.
        let captures: Vec<_> = s
            .capture
            .iter()
            .flat_map(|c| c.get_ref().iter())
            .filter_map(|(name, c)| Some((*self.scope.vars.get(name)?, self.capture(c)?)))
            .collect();
        let action = self.action(s, span.clone(), present.first().copied())?;
        // A wait for frames asks for its own length: it wins over the run's default timeout
        // (which would otherwise end the wait first), and a step's own shorter timeout is a
        // contradiction to point at. A request has no frames to wait for.
        let within = expect.as_ref().and_then(|e| e.within);
        let within_at = || s.expect.as_ref().map_or(span.clone(), |e| e.span());
        let timeout = match (within, &s.timeout) {
            (Some(_), _) if matches!(action, Action::Http(_)) => {
                self.problems.add(
                    within_at(),
                    "`within` is how long a socket step waits for a matching frame; a request's \
                     wait is its `timeout`",
                );
                timeout
            }
            // The wait's deadline starts after the step's send (or connect): the step's own
            // timeout leaves that part its usual time, so the wait gets all of `within`.
            (Some(w), None) if w > timeout => w + timeout,
            (Some(w), Some(_)) if w > timeout => {
                self.problems.add(
                    within_at(),
                    format!(
                        "within = {w:?} is longer than this step's timeout ({timeout:?}): the \
                         timeout would end the wait first; raise `timeout` or shorten `within`"
                    ),
                );
                timeout
            }
            _ => timeout,
        };
        let is_think = matches!(action, Action::Think(_));
        let think_before = match (&s.think, is_think) {
            (Some(t), false) => Some(self.dist(t)),
            _ => None,
        };
        // A transaction's metric comes before its steps' metrics in reports.
        let transaction = s.transaction.as_ref().map(|t| self.metric(t.get_ref()));
        let metric = s.name.as_ref().map(|n| self.metric(n.get_ref()));
        let mut action = action;
        if let (Some(t), Action::Loop { steps, .. }) = (transaction, &mut action) {
            inherit_transaction(steps, t);
        }
        let publish = self.publish(s);
        // Whatever can fail must have a metric to count the failure in; an unnamed request (a
        // long-poll nobody wants timed) counts its failures under `counts.unnamed_errors`.
        let can_fail = action.can_fail(s.expect.is_some());
        let http = matches!(action, Action::Http(_));
        let unnamed_errors = (http && metric.is_none() && transaction.is_none())
            .then(|| self.counter(UNNAMED_ERRORS));
        if can_fail && !http && metric.is_none() && transaction.is_none() {
            self.problems.add(
                span.clone(),
                "give this step a `name`: its latency and failures are reported under it",
            );
        }
        let repeat = match &s.repeat {
            Some(r) => self.count(r, "repeat", 0)?,
            None => 1,
        };
        let when = match &s.when {
            Some(w) => Some(self.until(w)?),
            None => None,
        };
        let (retry, reconnect) = self.policies(s, &action);
        let tracked = action.sends_msg_id();
        self.message_keys(s, &action, tracked);
        self.long_poll_key(s, &action, timeout);
        Some(Step {
            metric,
            transaction,
            action,
            think_before,
            repeat,
            when,
            timeout,
            expect,
            matcher,
            fail_on,
            captures,
            publish,
            retry,
            reconnect,
            tracked,
            unnamed_errors,
        })
    }

    /// `ack` and `deliveries` belong to `http` steps, and `ack` to one that sends a message.
    fn message_keys(&mut self, s: &StepSpec, action: &Action, tracked: bool) {
        let http = matches!(action, Action::Http(_));
        if let (Some(a), false) = (&s.ack, http) {
            self.problems.add(
                a.span(),
                "ack applies to `http` steps (a socket's acks are `on_frame` rules)",
            );
        }
        if let (Some(a), true, false) = (&s.ack, http, tracked) {
            self.problems.add(
                a.span(),
                "ack = \"response\" acknowledges the message this request sends, but it does not use {{ msg.id }}",
            );
        }
        if let (Some(d), false) = (&s.deliveries, http) {
            self.problems.add(
                d.span(),
                "deliveries applies to `http` steps (a socket's deliveries are `on_frame` rules)",
            );
        }
    }

    /// `long_poll` belongs to `http` steps, and a poll the server may hold that long needs a
    /// longer timeout: otherwise every quiet poll would end as a `timeout` error.
    fn long_poll_key(&mut self, s: &StepSpec, action: &Action, timeout: std::time::Duration) {
        let Some(l) = &s.long_poll else {
            return;
        };
        match action {
            Action::Http(h) => {
                if h.long_poll.is_some_and(|hold| hold >= timeout) {
                    self.problems.add(
                        l.span(),
                        format!(
                            "long_poll = {:?} is not shorter than the step's timeout ({}): a poll \
                             the server holds that long would time out; give the step a longer \
                             `timeout`",
                            l.get_ref(),
                            humantime::format_duration(timeout)
                        ),
                    );
                }
            }
            _ => self.problems.add(
                l.span(),
                "long_poll applies to `http` steps (how long the server holds the request)",
            ),
        }
    }

    /// What the step does: exactly one kind (checked by the caller), or a receive (`expect`
    /// alone), or a think (`think` alone).
    fn action(&mut self, s: &StepSpec, span: Range<usize>, kind: Option<&str>) -> Option<Action> {
        let action = match kind {
            Some("http") => self.http(s, span.clone())?,
            Some("ws") => {
                let url = s.ws.as_ref()?;
                if !self.sendable_path(url.get_ref(), url.get_ref(), url.span()) {
                    return None;
                }
                let target = self.text(url, Escape::None)?;
                let headers = self.headers(s);
                let rules = s
                    .on_frame
                    .as_ref()
                    .map(|r| self.rules(r))
                    .unwrap_or_default();
                let subprotocols = s
                    .subprotocols
                    .as_ref()
                    .map(|p| p.get_ref().clone())
                    .unwrap_or_default();
                Action::WsConnect {
                    target,
                    headers,
                    subprotocols,
                    rules,
                    json_keys: Default::default(),
                }
            }
            Some("send") => match (self.frame(s.send.as_ref()?), &s.binary) {
                (Frame::Text(t), Some(b)) if *b.get_ref() => Action::Send(Frame::Binary(t)),
                (_, Some(b)) if *b.get_ref() => {
                    self.problems
                        .add(b.span(), "binary = true takes a text `send`, not a table");
                    return None;
                }
                (frame, _) => Action::Send(frame),
            },
            Some("close") => Action::Close,
            Some("stay_online") => Action::StayOnline(self.dist(s.stay_online.as_ref()?)),
            Some("loop") => self.loop_action(s.loop_.as_ref()?)?,
            _ if s.expect.is_some() => Action::Receive,
            _ if s.think.is_some() => Action::Think(self.dist(s.think.as_ref()?)),
            _ => {
                self.problems.add(
                    span,
                    "unknown step kind: a step needs one of http, ws, send, expect, close, think, stay_online or loop",
                );
                return None;
            }
        };
        Some(action)
    }

    /// A count the file gives (`repeat`, a loop's `times` or `max`): `at_least` or more, else a
    /// problem at its place. A value out of range was once clamped without a word (`repeat = -1`
    /// ran nothing, `max = 0` ran once).
    fn count(&mut self, n: &Spanned<i64>, what: &str, at_least: i64) -> Option<u64> {
        let v = *n.get_ref();
        if v < at_least {
            self.problems.add(
                n.span(),
                format!("{what} must be {at_least} or more, not {v}"),
            );
            return None;
        }
        Some(v as u64)
    }

    /// `loop = { times | for | until, max, steps }`.
    fn loop_action(&mut self, l: &Spanned<spec::LoopSpec>) -> Option<Action> {
        let lspan = l.span();
        let l = l.get_ref();
        let max = match &l.max {
            Some(m) => self.count(m, "a loop's max", 1)?,
            None => 1000,
        };
        let kind = match (&l.times, &l.for_, &l.until) {
            (Some(n), None, None) => LoopKind::Times(self.count(n, "a loop's times", 0)?),
            (None, Some(d), None) => LoopKind::For(
                crate::compiled::positive_duration(d, "loop for", self.problems),
                max,
            ),
            (None, None, Some(u)) => LoopKind::Until(self.until(u)?, max),
            _ => {
                self.problems
                    .add(lspan, "a loop needs exactly one of times, for or until");
                return None;
            }
        };
        let online = l.online.as_ref().is_some_and(|o| *o.get_ref());
        Some(Action::Loop {
            kind,
            steps: self.steps(l.steps.get_ref()),
            online,
        })
    }

    /// `publish = [...]`: the values other users see while this user is online, each a captured
    /// variable or `user.phone`.
    fn publish(&mut self, s: &StepSpec) -> Vec<(String, Expr)> {
        s.publish
            .iter()
            .flat_map(|p| p.get_ref().iter())
            .filter_map(|p| {
                let var = p.get_ref().as_str();
                let expr = if var == "user.phone" {
                    Expr::UserPhone
                } else {
                    match self.scope.vars.get(var) {
                        Some(slot) => Expr::Var(*slot),
                        None => {
                            self.problems.add(
                                p.span(),
                                format!("cannot publish `{var}`: no step captures it"),
                            );
                            return None;
                        }
                    }
                };
                Some((var.rsplit('.').next().unwrap_or(var).to_string(), expr))
            })
            .collect()
    }

    /// The step's retry and reconnect policies; each applies only to the actions it can act on.
    fn policies(
        &mut self,
        s: &StepSpec,
        action: &Action,
    ) -> (Override<RetryPolicy>, Override<ReconnectPolicy>) {
        let retryable = action.retried();
        if let (Some(r), false) = (&s.retry, retryable) {
            self.problems
                .add(r.span(), "retry applies to `http` and `ws` steps only");
        }
        let retry = crate::compiled::retry::retry_override(s.retry.as_ref(), self.problems);
        if let (Some(r), false) = (&s.reconnect, matches!(action, Action::WsConnect { .. })) {
            self.problems
                .add(r.span(), "reconnect applies to `ws` steps only");
        }
        let reconnect =
            crate::compiled::retry::reconnect_override(s.reconnect.as_ref(), self.problems);
        (retry, reconnect)
    }

    pub(super) fn headers(&mut self, s: &StepSpec) -> Vec<(String, Text)> {
        let Some(h) = &s.headers else {
            return Vec::new();
        };
        let span = h.span();
        h.get_ref()
            .iter()
            .filter_map(|(k, v)| {
                Some((
                    k.to_ascii_lowercase(),
                    self.text_at(v, span.clone(), Escape::None)?,
                ))
            })
            .collect()
    }

    pub(super) fn http(&mut self, s: &StepSpec, span: Range<usize>) -> Option<Action> {
        let line = s.http.as_ref()?;
        let (method, target) = match line.get_ref().trim().split_once(' ') {
            Some((m, t)) => (m, t.trim()),
            None => {
                self.problems.add(
                    line.span(),
                    "http needs a method and a path, e.g. \"POST /v1/register\"",
                );
                return None;
            }
        };
        let upper = method.to_ascii_uppercase();
        // HTTP takes any token as a method; a typo (`PUSH` for `PUT`) would reach the server as
        // a request it answers 405 or 501 to. Known methods only: HTTP's own and WebDAV's.
        let known = KNOWN_METHODS.contains(&upper.as_str());
        let method = match http::Method::from_bytes(upper.as_bytes()) {
            Ok(m) if known => m,
            _ => {
                self.problems.add(
                    line.span(),
                    format!(
                        "`{method}` is not an HTTP method: expected GET, POST, PUT, PATCH, \
                         DELETE, HEAD, OPTIONS (or CONNECT, TRACE, a WebDAV method)"
                    ),
                );
                return None;
            }
        };
        if !self.sendable_path(line.get_ref(), target, line.span()) {
            return None;
        }
        let offset = line.get_ref().find(target).unwrap_or(0);
        let tspan = (line.span().start + offset)..line.span().end;
        // Path parts are URL-encoded on insertion: a phone's `+` must arrive as `%2B`.
        let target = self.text_at(target, tspan, Escape::Url)?;
        let query = match &s.query {
            Some(q) => {
                let qspan = q.span();
                q.get_ref()
                    .iter()
                    .filter_map(|(k, v)| {
                        let t = self.text_at(v, qspan.clone(), Escape::Url)?;
                        Some((k.clone(), encode_literals(t)))
                    })
                    .collect()
            }
            None => Vec::new(),
        };
        let headers = self.headers(s);
        let bodies = [s.json.is_some(), s.body.is_some(), s.form.is_some()];
        if bodies.iter().filter(|b| **b).count() > 1 {
            self.problems
                .add(span, "a request has one body: json, body or form");
        }
        let body = if let Some(j) = &s.json {
            Body::Json(self.json_template(j.get_ref(), &j.span()))
        } else if let Some(b) = &s.body {
            Body::Text(self.text(b, Escape::None)?)
        } else if let Some(f) = &s.form {
            let fspan = f.span();
            Body::Form(
                f.get_ref()
                    .iter()
                    .filter_map(|(k, v)| {
                        let t = self.text_at(v, fspan.clone(), Escape::Url)?;
                        Some((k.clone(), encode_literals(t)))
                    })
                    .collect(),
            )
        } else {
            Body::None
        };
        let ack = match &s.ack {
            None => false,
            Some(a) if a.get_ref() == "response" => true,
            Some(a) => {
                self.problems.add(
                    a.span(),
                    format!(
                        "ack = {:?}: an http step's message is acknowledged by its \"response\"",
                        a.get_ref()
                    ),
                );
                false
            }
        };
        let deliveries = s.deliveries.as_ref().and_then(|d| self.deliveries(d));
        let long_poll = s
            .long_poll
            .as_ref()
            .map(|l| crate::compiled::positive_duration(l, "long_poll", self.problems));
        Some(Action::Http(Box::new(Http {
            method,
            target,
            query,
            headers,
            body,
            ack,
            deliveries,
            long_poll,
        })))
    }
}

/// A query or form value is a value, not URL syntax: its literal text is URL-encoded too (once,
/// here), as its `{{ }}` output is when it is rendered — `"a b&c"` goes out as `a%20b%26c`.
fn encode_literals(mut t: Text) -> Text {
    for part in &mut t.parts {
        if let template::Part::Text(text) = part {
            let mut encoded = String::with_capacity(text.len());
            template::percent_encode(text, &mut encoded);
            *text = encoded;
        }
    }
    t
}

/// The steps of a loop that is part of a transaction are part of it too (unless they name
/// their own), so the transaction spans the whole loop and closes after it ends.
fn inherit_transaction(steps: &mut [Step], t: crate::metrics::MetricId) {
    for step in steps {
        if step.transaction.is_some() {
            continue;
        }
        step.transaction = Some(t);
        // Its failures are the transaction's now.
        step.unnamed_errors = None;
        if let Action::Loop { steps, .. } = &mut step.action {
            inherit_transaction(steps, t);
        }
    }
}
