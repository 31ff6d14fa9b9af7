//! Compiles `[flows.*]` and `[[cohorts]]` into executable flows, collecting every problem with
//! its position: unknown step kinds, unknown variables, bad JSON paths and regexes.

use std::collections::HashSet;
use std::ops::Range;
use std::time::Duration;

use indexmap::IndexMap;
use regex::Regex;
use toml::Spanned;

use crate::compiled::flow::jsonpath;
use crate::compiled::flow::template::{self, Escape, Resolver, Segment, TemplateError, Value};
use crate::compiled::flow::*;
use crate::compiled::Dist;
use crate::metrics::{Catalog, MetricId};
use crate::scenario::flow::{self as spec, CaptureSpec, FlowSpec, StepSpec};
use crate::scenario::{DistSpec, Problems};

/// Every flow and cohort of a scenario, with the metric catalog their steps define.
#[derive(Debug, Clone)]
pub struct FlowSet {
    pub flows: Vec<Flow>,
    pub cohorts: Vec<Cohort>,
    pub catalog: Catalog,
    pub feeders: Vec<crate::compiled::flow::feeder::Feeder>,
}

impl FlowSet {
    /// The cohort (and its flow) that a uniform `draw` in [0, 1) falls into, by share.
    pub fn pick(&self, draw: f64) -> (usize, usize) {
        let total: f64 = self.cohorts.iter().map(|c| c.share).sum();
        let mut acc = 0.0;
        for (i, c) in self.cohorts.iter().enumerate() {
            acc += c.share / total;
            if draw < acc {
                return (i, c.flow);
            }
        }
        let last = self.cohorts.len().saturating_sub(1);
        (last, self.cohorts.last().map_or(0, |c| c.flow))
    }
}

/// Names a flow can refer to, collected before compiling its steps.
struct Scope {
    vars: IndexMap<String, usize>,
    published: HashSet<String>,
    /// Feeder names and their columns.
    feeders: Vec<(String, Vec<String>)>,
    /// Cohort names, in order.
    cohorts: Vec<String>,
}

const BUILTINS: &str =
    "seq, nul, user.index, user.phone, msg.id, env.NAME, feed.<feeder>.<column>, uuid(), \
random_int(lo, hi), random_string(n), timestamp_ms(), base64(x), swarm.online.<var>, \
swarm.cohort('name').online.<var>, swarm.sample(n).<var>, swarm.sampled.<var>, fake.phones(n)";

impl Resolver for Scope {
    type Expr = Expr;

    fn literal(&mut self, value: Value) -> Expr {
        Expr::Lit(value)
    }

    fn concat(&mut self, parts: Vec<Expr>) -> Expr {
        Expr::Concat(parts)
    }

    fn path(&mut self, segments: &[Segment], mut args: Vec<Vec<Expr>>) -> Result<Expr, String> {
        let names: Vec<&str> = segments.iter().map(|s| s.name.as_str()).collect();
        let called: Vec<bool> = segments.iter().map(|s| s.args.is_some()).collect();
        let mut arg = |i: usize, n: usize, what: &str| -> Result<Vec<Expr>, String> {
            let a = std::mem::take(&mut args[i]);
            if a.len() == n {
                Ok(a)
            } else {
                Err(format!("{what} takes {n} argument(s), got {}", a.len()))
            }
        };
        let published = |this: &Scope, var: &str| {
            if this.published.contains(var) {
                Ok(())
            } else {
                let mut known: Vec<&str> = this.published.iter().map(String::as_str).collect();
                known.sort();
                Err(format!(
                    "no flow publishes `{var}` (published: {}); add `publish = [\"{var}\"]` to the step that captures it",
                    if known.is_empty() { "nothing".to_string() } else { known.join(", ") }
                ))
            }
        };
        let boxed = |mut v: Vec<Expr>| Box::new(v.remove(0));
        match (names.as_slice(), called.as_slice()) {
            (["seq"], [false]) => Ok(Expr::Seq),
            (["nul"], [false]) => Ok(Expr::Lit(Value::Str("\0".into()))),
            (["user", "index"], [false, false]) => Ok(Expr::UserIndex),
            (["user", "phone"], [false, false]) => Ok(Expr::UserPhone),
            (["msg", "id"], [false, false]) => Ok(Expr::MsgId),
            (["env", name], [false, false]) => std::env::var(name)
                .map(|v| Expr::Lit(Value::Str(v)))
                .map_err(|_| format!("environment variable `{name}` is not set")),
            (["uuid"], [true]) => arg(0, 0, "uuid()").map(|_| Expr::Uuid),
            (["timestamp_ms"], [true]) => arg(0, 0, "timestamp_ms()").map(|_| Expr::TimestampMs),
            (["random_int"], [true]) => {
                let mut a = arg(0, 2, "random_int(lo, hi)")?;
                let hi = a.pop().map(Box::new);
                let lo = a.pop().map(Box::new);
                match (lo, hi) {
                    (Some(lo), Some(hi)) => Ok(Expr::RandomInt(lo, hi)),
                    _ => Err("random_int(lo, hi) takes 2 arguments".into()),
                }
            }
            (["random_string"], [true]) => arg(0, 1, "random_string(n)").map(|a| Expr::RandomString(boxed(a))),
            (["base64"], [true]) => arg(0, 1, "base64(x)").map(|a| Expr::Base64(boxed(a))),
            (["swarm", "online", var], [false, false, false]) => {
                published(self, var)?;
                Ok(Expr::SwarmOnline(var.to_string()))
            }
            (["swarm", "cohort", "online", var], [false, true, false, false]) => {
                published(self, var)?;
                let name = match arg(1, 1, "swarm.cohort(name)")?.pop() {
                    Some(Expr::Lit(Value::Str(s))) => s,
                    _ => return Err("swarm.cohort takes a cohort name in quotes".into()),
                };
                let cohort = self.cohorts.iter().position(|c| *c == name).ok_or_else(|| {
                    format!("unknown cohort `{name}`: [[cohorts]] defines {}", self.cohorts.join(", "))
                })?;
                Ok(Expr::SwarmOnlineIn(cohort, var.to_string()))
            }
            (["swarm", "sample", var], [false, true, false]) => {
                published(self, var)?;
                let n = arg(1, 1, "swarm.sample(n)")?;
                Ok(Expr::SwarmSample(boxed(n), var.to_string()))
            }
            (["swarm", "sampled", var], [false, false, false]) => {
                published(self, var)?;
                Ok(Expr::SwarmSampled(var.to_string()))
            }
            (["feed", feeder, column], [false, false, false]) => {
                let (f, (_, columns)) = self
                    .feeders
                    .iter()
                    .enumerate()
                    .find(|(_, (name, _))| name == feeder)
                    .ok_or_else(|| {
                        let known: Vec<&str> = self.feeders.iter().map(|(n, _)| n.as_str()).collect();
                        format!(
                            "unknown feeder `{feeder}`: [feeders] defines {}",
                            if known.is_empty() { "none".to_string() } else { known.join(", ") }
                        )
                    })?;
                let c = columns.iter().position(|c| c == column).ok_or_else(|| {
                    format!("feeder `{feeder}` has no column `{column}` (it has {})", columns.join(", "))
                })?;
                Ok(Expr::Feed { feeder: f, column: c })
            }
            (["fake", "phones"], [false, true]) => arg(1, 1, "fake.phones(n)").map(|a| Expr::FakePhones(boxed(a))),
            ([name], [false]) => self
                .vars
                .get(*name)
                .map(|slot| Expr::Var(*slot))
                .ok_or_else(|| {
                    let captured: Vec<&str> = self.vars.keys().map(String::as_str).collect();
                    format!(
                        "unknown variable `{name}`: this flow captures {}; built-ins are {BUILTINS}",
                        if captured.is_empty() { "nothing".to_string() } else { captured.join(", ") }
                    )
                }),
            _ => Err(format!("unknown expression `{}`: known are {BUILTINS}", names.join("."))),
        }
    }
}

/// Where inside a TOML string an offset of its content lies (the opening quote is one char).
fn at(span: &Range<usize>, offset: usize) -> Range<usize> {
    let start = span.start + 1 + offset;
    start..start
}

struct Compiler<'p, 'a> {
    problems: &'p mut Problems<'a>,
    scope: Scope,
    metrics: Vec<String>,
    counters: Vec<String>,
    default_timeout: Duration,
}

impl Compiler<'_, '_> {
    fn text(&mut self, s: &Spanned<String>, escape: Escape) -> Option<Text> {
        self.text_at(s.get_ref(), s.span(), escape)
    }

    fn text_at(&mut self, s: &str, span: Range<usize>, escape: Escape) -> Option<Text> {
        match template::compile(s, escape, &mut self.scope) {
            Ok(t) => Some(t),
            Err(TemplateError { offset, message }) => {
                // Point at the expression: find the string inside the span it came from.
                let start = self.problems.locate(&span, s);
                let at = if start == span.start {
                    at(&span, offset)
                } else {
                    (start + offset)..(start + offset)
                };
                self.problems.add(at, message);
                None
            }
        }
    }

    fn path(&mut self, s: &str, span: Range<usize>) -> Option<jsonpath::JsonPath<Expr>> {
        match jsonpath::parse(s, &mut self.scope) {
            Ok(p) => Some(p),
            Err(e) => {
                self.problems
                    .add(span, format!("JSON path `{s}`: {}", e.message));
                None
            }
        }
    }

    fn regex(&mut self, s: &str, span: Range<usize>) -> Option<Regex> {
        match Regex::new(s) {
            Ok(r) => Some(r),
            Err(e) => {
                let e = e.to_string().replace('\n', " ");
                self.problems.add(span, format!("regex `{s}`: {e}"));
                None
            }
        }
    }

    fn metric(&mut self, name: &str) -> MetricId {
        let i = match self.metrics.iter().position(|m| m == name) {
            Some(i) => i,
            None => {
                self.metrics.push(name.to_string());
                self.metrics.len() - 1
            }
        };
        MetricId(MetricId::FIRST_STEP + i as u16)
    }

    fn dist(&mut self, d: &Spanned<DistSpec>) -> Dist {
        crate::compiled::dist(d, self.problems)
    }

    fn json_template(&mut self, v: &toml::Value, span: &Range<usize>) -> JsonTemplate {
        match v {
            toml::Value::String(s) => match self.text_at(s, span.clone(), Escape::None) {
                Some(t) if t.is_constant() => {
                    JsonTemplate::Const(serde_json::Value::String(s.clone()))
                }
                Some(t) => match t.sole_expr() {
                    Some(e) => JsonTemplate::Expr(e.clone()),
                    None => JsonTemplate::Text(t),
                },
                None => JsonTemplate::Const(serde_json::Value::Null),
            },
            toml::Value::Array(items) => {
                JsonTemplate::Array(items.iter().map(|i| self.json_template(i, span)).collect())
            }
            toml::Value::Table(t) => JsonTemplate::Object(
                t.iter()
                    .map(|(k, v)| (k.clone(), self.json_template(v, span)))
                    .collect(),
            ),
            other => JsonTemplate::Const(toml_to_json(other)),
        }
    }

    fn frame(&mut self, v: &Spanned<toml::Value>) -> Frame {
        self.frame_at(v.get_ref(), v.span())
    }

    fn frame_at(&mut self, v: &toml::Value, span: Range<usize>) -> Frame {
        match v {
            toml::Value::String(s) => {
                Frame::Text(self.text_at(s, span, Escape::None).unwrap_or_else(|| {
                    template::Template {
                        parts: Vec::new(),
                        escape: Escape::None,
                    }
                }))
            }
            other => Frame::Json(self.json_template(other, &span)),
        }
    }

    fn matcher(
        &mut self,
        json: &IndexMap<String, toml::Value>,
        regex: Option<&str>,
        span: Range<usize>,
    ) -> Matcher {
        let json = json
            .iter()
            .filter_map(|(p, v)| Some((self.path(p, span.clone())?, toml_to_json(v))))
            .collect();
        let regex = regex.and_then(|r| self.regex(r, span));
        Matcher { json, regex }
    }

    fn expect(&mut self, e: &Spanned<spec::ExpectSpec>) -> (Expect, Matcher) {
        let span = e.span();
        let e = e.get_ref();
        let mut checks = Vec::new();
        match &e.status {
            Some(spec::StatusSpec::One(s)) => checks.push(Check::Status(vec![*s])),
            Some(spec::StatusSpec::Many(s)) => checks.push(Check::Status(s.clone())),
            None => {}
        }
        let equalities: Vec<_> = e
            .json
            .iter()
            .flatten()
            .filter_map(|(p, v)| Some((self.path(p, span.clone())?, toml_to_json(v))))
            .collect();
        for (path, want) in &equalities {
            checks.push(Check::JsonEquals(path.clone(), want.clone()));
        }
        for (p, v) in e.json_contains.iter().flatten() {
            if let Some(path) = self.path(p, span.clone()) {
                checks.push(Check::JsonContains(path, toml_to_json(v)));
            }
        }
        for p in e.exists.iter().flatten() {
            if let Some(path) = self.path(p, span.clone()) {
                checks.push(Check::JsonExists(path));
            }
        }
        if let Some(c) = &e.contains {
            checks.push(Check::Contains(c.clone()));
        }
        let regex = e.regex.as_deref().and_then(|r| self.regex(r, span.clone()));
        if let Some(r) = &regex {
            checks.push(Check::Regex(r.clone()));
        }
        let within = e
            .within
            .as_deref()
            .and_then(|w| match crate::duration::parse_duration(w) {
                Ok(d) => Some(d),
                Err(m) => {
                    self.problems.add(span.clone(), format!("within: {m}"));
                    None
                }
            });
        let contains_all = e.contains_all.as_ref().and_then(|c| {
            let path = self.path(&c.path, span.clone())?;
            let values = self.text_at(&c.values, span.clone(), Escape::None)?;
            let values_expr = values.sole_expr().cloned();
            Some(ContainsAll {
                path,
                values,
                values_expr,
            })
        });
        // The frame matcher of a receive: the same JSON equalities and regex.
        let matcher = Matcher {
            json: equalities,
            regex,
        };
        (
            Expect {
                checks,
                contains_all,
                within,
            },
            matcher,
        )
    }

    fn capture(&mut self, c: &Spanned<CaptureSpec>) -> Option<Capture> {
        let span = c.span();
        match c.get_ref() {
            CaptureSpec::Path(p) => self.path(p, span).map(Capture::Json),
            CaptureSpec::Detailed(d) => match (&d.json, &d.regex, &d.header, d.status) {
                (Some(p), None, None, None) => self.path(p, span).map(Capture::Json),
                (None, Some(r), None, None) => {
                    let re = self.regex(r, span)?;
                    let group = d.group.unwrap_or(if re.captures_len() > 1 { 1 } else { 0 });
                    Some(Capture::Regex(re, group))
                }
                (None, None, Some(h), None) => Some(Capture::Header(h.to_ascii_lowercase())),
                (None, None, None, Some(true)) => Some(Capture::Status),
                _ => {
                    self.problems.add(
                        span,
                        "a capture takes exactly one of json, regex, header or status = true",
                    );
                    None
                }
            },
        }
    }

    fn rules(&mut self, rules: &Spanned<Vec<Spanned<spec::FrameRuleSpec>>>) -> Vec<FrameRule> {
        let mut out = Vec::new();
        for r in rules.get_ref() {
            let span = r.span();
            let r = r.get_ref();
            let matcher = self.matcher(&r.match_.json, r.match_.regex.as_deref(), span.clone());
            let mut actions = Vec::new();
            let id_source = |c: &mut Self, s: &str| {
                if s.starts_with('$') {
                    c.path(s, span.clone()).map(IdSource::Json)
                } else {
                    c.regex(s, span.clone()).map(IdSource::Regex)
                }
            };
            if let Some(p) = &r.delivered {
                actions.extend(id_source(self, p).map(RuleAction::Delivered));
            }
            if let Some(p) = &r.acked {
                actions.extend(id_source(self, p).map(RuleAction::Acked));
            }
            if let Some(p) = &r.rejected {
                actions.extend(id_source(self, p).map(RuleAction::Rejected));
            }
            if let Some(v) = &r.reply {
                actions.push(RuleAction::Reply(self.frame_at(v, span.clone())));
            }
            if let Some(name) = &r.count {
                let i = match self.counters.iter().position(|c| c == name) {
                    Some(i) => i,
                    None => {
                        self.counters.push(name.clone());
                        self.counters.len() - 1
                    }
                };
                actions.push(RuleAction::Count(i));
            }
            if actions.is_empty() {
                self.problems.add(
                    span,
                    "a frame rule needs delivered, acked, rejected, reply or count",
                );
            }
            out.push(FrameRule { matcher, actions });
        }
        out
    }

    fn steps(&mut self, steps: &[Spanned<StepSpec>]) -> Vec<Step> {
        steps.iter().filter_map(|s| self.step(s)).collect()
    }

    fn step(&mut self, spanned: &Spanned<StepSpec>) -> Option<Step> {
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
                let (x, m) = self.expect(e);
                (Some(x), Some(m))
            }
            None => (None, None),
        };
        let action = match present.first().copied() {
            Some("http") => self.http(s, span.clone())?,
            Some("ws") => {
                let url = s.ws.as_ref()?;
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
            Some("loop") => {
                let l = s.loop_.as_ref()?;
                let lspan = l.span();
                let l = l.get_ref();
                let max = l
                    .max
                    .as_ref()
                    .map_or(1000, |m| (*m.get_ref()).max(1) as u64);
                let kind = match (&l.times, &l.for_, &l.until) {
                    (Some(n), None, None) => LoopKind::Times((*n.get_ref()).max(0) as u64),
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
                Action::Loop(kind, self.steps(l.steps.get_ref()))
            }
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
        let is_think = matches!(action, Action::Think(_));
        let think_before = match (&s.think, is_think) {
            (Some(t), false) => Some(self.dist(t)),
            _ => None,
        };
        // A transaction's metric comes before its steps' metrics in reports.
        let transaction = s.transaction.as_ref().map(|t| self.metric(t.get_ref()));
        let metric = s.name.as_ref().map(|n| self.metric(n.get_ref()));
        let captures = s
            .capture
            .iter()
            .flat_map(|c| c.get_ref().iter())
            .filter_map(|(name, c)| Some((*self.scope.vars.get(name)?, self.capture(c)?)))
            .collect();
        let publish = s
            .publish
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
            .collect();
        // Whatever can fail must have a metric to count the failure in.
        let can_fail = matches!(
            action,
            Action::Http(_) | Action::WsConnect { .. } | Action::Receive
        ) || matches!(action, Action::Send(_)) && s.expect.is_some();
        if can_fail && metric.is_none() && transaction.is_none() {
            self.problems.add(
                span.clone(),
                "give this step a `name`: its latency and failures are reported under it",
            );
        }
        let repeat = s
            .repeat
            .as_ref()
            .map_or(1, |r| (*r.get_ref()).max(0) as u64);
        let when = match &s.when {
            Some(w) => Some(self.until(w)?),
            None => None,
        };
        let retryable = matches!(action, Action::Http(_) | Action::WsConnect { .. });
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
            captures,
            publish,
            retry,
            reconnect,
        })
    }

    fn until(&mut self, u: &Spanned<spec::ConditionSpec>) -> Option<Until> {
        let c = u.get_ref();
        let Some(slot) = self.scope.vars.get(&c.var).copied() else {
            self.problems.add(
                u.span(),
                format!("unknown variable `{}`: no step captures it", c.var),
            );
            return None;
        };
        match (&c.equals, &c.not_equals, c.exists) {
            (Some(v), None, None) => Some(Until::Equals(slot, Value::from_json(&toml_to_json(v)))),
            (None, Some(v), None) => {
                Some(Until::NotEquals(slot, Value::from_json(&toml_to_json(v))))
            }
            (None, None, Some(e)) => Some(Until::Exists(slot, e)),
            _ => {
                self.problems.add(
                    u.span(),
                    "until needs exactly one of equals, not_equals or exists",
                );
                None
            }
        }
    }

    fn headers(&mut self, s: &StepSpec) -> Vec<(String, Text)> {
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

    fn http(&mut self, s: &StepSpec, span: Range<usize>) -> Option<Action> {
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
        let method = match hyper::Method::from_bytes(method.to_ascii_uppercase().as_bytes()) {
            Ok(m) => m,
            Err(_) => {
                self.problems
                    .add(line.span(), format!("`{method}` is not an HTTP method"));
                return None;
            }
        };
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
                        Some((k.clone(), self.text_at(v, qspan.clone(), Escape::Url)?))
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
                        Some((k.clone(), self.text_at(v, fspan.clone(), Escape::Url)?))
                    })
                    .collect(),
            )
        } else {
            Body::None
        };
        Some(Action::Http(Box::new(Http {
            method,
            target,
            query,
            headers,
            body,
        })))
    }
}

pub fn toml_to_json(v: &toml::Value) -> serde_json::Value {
    match v {
        toml::Value::String(s) => serde_json::Value::String(s.clone()),
        toml::Value::Integer(i) => serde_json::Value::from(*i),
        toml::Value::Float(f) => serde_json::Number::from_f64(*f)
            .map_or(serde_json::Value::Null, serde_json::Value::Number),
        toml::Value::Boolean(b) => serde_json::Value::Bool(*b),
        toml::Value::Datetime(d) => serde_json::Value::String(d.to_string()),
        toml::Value::Array(a) => serde_json::Value::Array(a.iter().map(toml_to_json).collect()),
        toml::Value::Table(t) => serde_json::Value::Object(
            t.iter()
                .map(|(k, v)| (k.clone(), toml_to_json(v)))
                .collect(),
        ),
    }
}

/// Every variable a flow captures, in order of appearance (loops included).
fn collect_captures(steps: &[Spanned<StepSpec>], out: &mut IndexMap<String, usize>) {
    for s in steps {
        let s = s.get_ref();
        for name in s.capture.iter().flat_map(|c| c.get_ref().keys()) {
            let next = out.len();
            out.entry(name.clone()).or_insert(next);
        }
        if let Some(l) = &s.loop_ {
            collect_captures(l.get_ref().steps.get_ref(), out);
        }
    }
}

/// The index of the flow a cohort or a return names; an unknown name is a problem at its place.
fn flow_index(
    name: &Spanned<String>,
    flows: &IndexMap<String, Spanned<FlowSpec>>,
    problems: &mut Problems,
) -> Option<usize> {
    let found = flows.get_index_of(name.get_ref());
    if found.is_none() {
        let known: Vec<&str> = flows.keys().map(String::as_str).collect();
        problems.add(
            name.span(),
            format!(
                "unknown flow `{}`: the scenario defines {}",
                name.get_ref(),
                known.join(", ")
            ),
        );
    }
    found
}

/// `returns = { share, after, flow }` of a cohort.
fn compile_returns(
    spec: &Spanned<spec::ReturnsSpec>,
    flows: &IndexMap<String, Spanned<FlowSpec>>,
    problems: &mut Problems,
) -> Option<Returns> {
    let r = spec.get_ref();
    let share = *r.share.get_ref();
    if !(share.is_finite() && (0.0..=1.0).contains(&share)) {
        problems.add(
            r.share.span(),
            "returns.share is a probability between 0 and 1",
        );
    }
    let away = crate::compiled::dist(&r.after, problems);
    let flow = flow_index(&r.flow, flows, problems)?;
    Some(Returns {
        share: share.clamp(0.0, 1.0),
        away,
        flow,
    })
}

fn collect_published(steps: &[Spanned<StepSpec>], out: &mut HashSet<String>) {
    for s in steps {
        let s = s.get_ref();
        for p in s.publish.iter().flat_map(|p| p.get_ref().iter()) {
            let p = p.get_ref();
            out.insert(p.rsplit('.').next().unwrap_or(p).to_string());
        }
        if let Some(l) = &s.loop_ {
            collect_published(l.get_ref().steps.get_ref(), out);
        }
    }
}

/// Compiles the flows and cohorts of a scenario.
pub fn compile(
    flows: &IndexMap<String, Spanned<FlowSpec>>,
    cohorts: &[Spanned<spec::CohortSpec>],
    feeders: Vec<crate::compiled::flow::feeder::Feeder>,
    default_timeout: Duration,
    problems: &mut Problems,
) -> FlowSet {
    let feeder_names: Vec<(String, Vec<String>)> = feeders
        .iter()
        .map(|f| (f.name.clone(), f.columns.clone()))
        .collect();
    let mut published = HashSet::new();
    for f in flows.values() {
        collect_published(f.get_ref().steps.get_ref(), &mut published);
    }
    let mut metrics = Vec::new();
    let mut counters = Vec::new();
    let mut compiled = Vec::new();
    for (name, f) in flows {
        let mut vars = IndexMap::new();
        // A flow that users come back to sees the variables its users captured before
        // (a login uses the token the signup captured); they come first, in the origin's order.
        for c in cohorts.iter().map(|c| c.get_ref()) {
            let returns_here = c
                .returns
                .as_ref()
                .is_some_and(|r| r.get_ref().flow.get_ref() == name);
            if let (true, Some(origin)) = (returns_here, flows.get(c.flow.get_ref())) {
                collect_captures(origin.get_ref().steps.get_ref(), &mut vars);
            }
        }
        collect_captures(f.get_ref().steps.get_ref(), &mut vars);
        let var_names: Vec<String> = vars.keys().cloned().collect();
        let slots = vars.len();
        let mut c = Compiler {
            problems,
            scope: Scope {
                vars,
                published: published.clone(),
                feeders: feeder_names.clone(),
                cohorts: cohorts
                    .iter()
                    .map(|c| c.get_ref().name.get_ref().clone())
                    .collect(),
            },
            metrics: std::mem::take(&mut metrics),
            counters: std::mem::take(&mut counters),
            default_timeout,
        };
        let steps = c.steps(f.get_ref().steps.get_ref());
        metrics = c.metrics;
        counters = c.counters;
        if steps.is_empty() {
            problems.add(f.span(), format!("flow `{name}` has no steps"));
        }
        compiled.push(Flow {
            name: name.clone(),
            steps,
            slots,
            vars: var_names,
        });
    }
    let mut out_cohorts = Vec::new();
    for c in cohorts {
        let c = c.get_ref();
        let Some(flow) = flow_index(&c.flow, flows, problems) else {
            continue;
        };
        let share = *c.share.get_ref();
        if !(share.is_finite() && share > 0.0) {
            problems.add(c.share.span(), "share must be a positive number");
        }
        let returns = c
            .returns
            .as_ref()
            .and_then(|r| compile_returns(r, flows, problems));
        out_cohorts.push(Cohort {
            name: c.name.get_ref().clone(),
            share,
            flow,
            returns,
        });
    }
    if cohorts.is_empty() && compiled.len() == 1 {
        out_cohorts.push(Cohort {
            name: compiled[0].name.clone(),
            share: 1.0,
            flow: 0,
            returns: None,
        });
    } else if cohorts.is_empty() && compiled.len() > 1 {
        problems.add(
            0..0,
            "several flows need [[cohorts]] saying which users run which flow",
        );
    }
    FlowSet {
        flows: compiled,
        cohorts: out_cohorts,
        catalog: Catalog::new(metrics).with_counters(counters),
        feeders,
    }
}
