//! Response checks and frame matching: `expect`, `capture`, `on_frame` rules and conditions.

use std::ops::Range;

use indexmap::IndexMap;
use toml::Spanned;

use super::{toml_to_json, Compiler};
use crate::compiled::flow::template::Escape;
use crate::compiled::flow::*;
use crate::scenario::flow::{self as spec, CaptureSpec};

impl Compiler<'_, '_> {
    pub(super) fn matcher(
        &mut self,
        json: &IndexMap<String, toml::Value>,
        regex: Option<&str>,
        xml: Option<&IndexMap<String, toml::Value>>,
        span: Range<usize>,
    ) -> Matcher {
        let json = json
            .iter()
            .filter_map(|(p, v)| Some((self.path(p, span.clone())?, self.want(v, span.clone())?)))
            .collect();
        let xml = self.xml_wants(xml, span.clone());
        let regex = regex.and_then(|r| self.regex(r, span));
        Matcher {
            json,
            xml,
            regex,
            content: Vec::new(),
        }
    }

    /// XML paths and the values they must select.
    fn xml_wants(
        &mut self,
        xml: Option<&IndexMap<String, toml::Value>>,
        span: Range<usize>,
    ) -> Vec<(xmlpath::XmlPath, Want)> {
        let mut out = Vec::new();
        for (p, v) in xml.into_iter().flatten() {
            match xmlpath::XmlPath::parse(p) {
                Ok(path) => out.extend(self.want(v, span.clone()).map(|w| (path, w))),
                Err(m) => self.problems.add(span.clone(), m),
            }
        }
        out
    }

    /// `fail_on`: a response, or a frame while the step waits, that must not come.
    pub(super) fn fail_on(&mut self, f: &Spanned<spec::FailOnSpec>) -> FailOn {
        let span = f.span();
        let f = f.get_ref();
        let json = f.json.clone().unwrap_or_default();
        let m = self.matcher(&json, f.regex.as_deref(), f.xml.as_ref(), span.clone());
        let fail_on = FailOn {
            regex: m.regex,
            // A template (with `{{`) rendered for the user, as a `json` value is.
            contains: f
                .contains
                .as_ref()
                .and_then(|c| self.want(&toml::Value::String(c.clone()), span.clone())),
            json: m.json,
            xml: m.xml,
        };
        // The written `contains`, not the compiled one: a template that did not compile is its
        // own error, not also "fail_on needs …".
        if fail_on.regex.is_none()
            && f.contains.is_none()
            && fail_on.json.is_empty()
            && fail_on.xml.is_empty()
            && f.regex.is_none()
        {
            self.problems
                .add(span, "fail_on needs regex, contains, json or xml");
        }
        fail_on
    }

    /// The index of a check's name among the flows' checks, registered on first use (steps of
    /// the same name in several flows with the same condition count as one check).
    fn check_index(&mut self, name: &str) -> usize {
        match self.checks.iter().position(|c| c == name) {
            Some(i) => i,
            None => {
                self.checks.push(name.to_string());
                self.checks.len() - 1
            }
        }
    }

    /// A value to compare with: a string with `{{ }}` is a template, evaluated when compared;
    /// anything else a constant.
    pub(super) fn want(&mut self, v: &toml::Value, span: Range<usize>) -> Option<Want> {
        match v {
            toml::Value::String(s) if s.contains("{{") => {
                self.text_at(s, span, Escape::None).map(Want::Text)
            }
            v => Some(Want::Const(toml_to_json(v))),
        }
    }

    /// `expect`: its checks, each counted under `<label> <condition>` (`label`: the step's
    /// name, its transaction's, or its request line), and the frame matcher of a receive.
    pub(super) fn expect(
        &mut self,
        e: &Spanned<spec::ExpectSpec>,
        label: &str,
    ) -> (Expect, Matcher) {
        let span = e.span();
        let e = e.get_ref();
        let mut checks = Vec::new();
        let mut names = Vec::new();
        match &e.status {
            Some(spec::StatusSpec::One(s)) => {
                checks.push(Check::Status(vec![*s]));
                names.push(format!("status == {s}"));
            }
            Some(spec::StatusSpec::Many(s)) => {
                checks.push(Check::Status(s.clone()));
                let list: Vec<String> = s.iter().map(u16::to_string).collect();
                names.push(format!("status in [{}]", list.join(", ")));
            }
            None => {}
        }
        let mut equalities = Vec::new();
        for (p, v) in e.json.iter().flatten() {
            if let (Some(path), Some(want)) =
                (self.path(p, span.clone()), self.want(v, span.clone()))
            {
                checks.push(Check::JsonEquals(path.clone(), want.clone()));
                names.push(format!("{p} == {}", toml_to_json(v)));
                equalities.push((path, want));
            }
        }
        let xml = self.xml_wants(e.xml.as_ref(), span.clone());
        // In the file's order (a path that does not parse fails the load, so none is missing).
        for ((path, want), (_, v)) in xml.iter().zip(e.xml.iter().flatten()) {
            checks.push(Check::XmlEquals(path.clone(), want.clone()));
            names.push(format!("{} == {}", path.source, toml_to_json(v)));
        }
        for (p, v) in e.json_contains.iter().flatten() {
            if let (Some(path), Some(want)) =
                (self.path(p, span.clone()), self.want(v, span.clone()))
            {
                checks.push(Check::JsonContains(path, want));
                names.push(format!("{p} contains {}", toml_to_json(v)));
            }
        }
        for p in e.exists.iter().flatten() {
            if let Some(path) = self.path(p, span.clone()) {
                checks.push(Check::JsonExists(path));
                names.push(format!("{p} exists"));
            }
        }
        if let Some(c) = &e.contains {
            // Compiled as a `json` value is: a template when it has `{{`, rendered for the user.
            let text = toml::Value::String(c.clone());
            if let Some(want) = self.want(&text, span.clone()) {
                checks.push(Check::Contains(want));
                names.push(format!("contains {}", serde_json::Value::String(c.clone())));
            }
        }
        let regex = e.regex.as_deref().and_then(|r| self.regex(r, span.clone()));
        if let Some(r) = &regex {
            checks.push(Check::Regex(r.clone()));
            names.push(format!("matches /{}/", r.as_str()));
        }
        let ids = names
            .iter()
            .map(|n| self.check_index(&format!("{label} {n}")))
            .collect();
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
        // The frame matcher of a receive: every check on the frame's content (not the status,
        // which a frame has none of), so that unrelated frames are skipped while it waits.
        let content = checks
            .iter()
            .filter(|c| {
                matches!(
                    c,
                    Check::Contains(_) | Check::JsonExists(_) | Check::JsonContains(..)
                )
            })
            .cloned()
            .collect();
        let matcher = Matcher {
            json: equalities,
            xml,
            regex,
            content,
        };
        (
            Expect {
                checks,
                ids,
                contains_all,
                within,
            },
            matcher,
        )
    }

    pub(super) fn capture(&mut self, c: &Spanned<CaptureSpec>) -> Option<Capture> {
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

    /// A message id's source: a JSON path (starting with `$`) or a regex.
    fn id_source(&mut self, s: &str, span: Range<usize>) -> Option<IdSource> {
        if s.starts_with('$') {
            self.path(s, span).map(IdSource::Json)
        } else {
            self.regex(s, span).map(IdSource::Regex)
        }
    }

    /// `deliveries = "$.events[*].id"` (or a regex), or `{ each, id, match }`.
    pub(super) fn deliveries(&mut self, d: &Spanned<spec::DeliveriesSpec>) -> Option<Deliveries> {
        let span = d.span();
        match d.get_ref() {
            spec::DeliveriesSpec::Ids(s) => Some(Deliveries {
                each: None,
                filter: Vec::new(),
                ids: self.id_source(s, span)?,
            }),
            spec::DeliveriesSpec::Each(e) => {
                let each = self.path(&e.each, span.clone());
                let filter = self.matcher(&e.match_, None, None, span.clone()).json;
                if !e.id.starts_with('$') {
                    self.problems.add(
                        span,
                        format!(
                            "deliveries.id `{}`: a JSON path into each element, starting with `$`",
                            e.id
                        ),
                    );
                    return None;
                }
                let ids = self.id_source(&e.id, span)?;
                Some(Deliveries {
                    each: Some(each?),
                    filter,
                    ids,
                })
            }
        }
    }

    pub(super) fn rules(
        &mut self,
        rules: &Spanned<Vec<Spanned<spec::FrameRuleSpec>>>,
    ) -> Vec<FrameRule> {
        let mut out = Vec::new();
        for r in rules.get_ref() {
            let span = r.span();
            let r = r.get_ref();
            let m = &r.match_;
            let matcher = self.matcher(&m.json, m.regex.as_deref(), m.xml.as_ref(), span.clone());
            let mut actions = Vec::new();
            if let Some(captures) = &r.capture {
                actions.push(RuleAction::Capture(self.rule_captures(captures)));
            }
            let id_source = |c: &mut Self, s: &str| c.id_source(s, span.clone());
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
                // `frame.*` names what the rule answers: a named group of its match regex, or a
                // path into the frame's JSON.
                let groups = matcher.regex.as_ref().map_or_else(Vec::new, |re| {
                    re.capture_names().flatten().map(str::to_string).collect()
                });
                self.scope.frame = Some(groups);
                let frame = self.frame_at(v, span.clone());
                self.scope.frame = None;
                let json = frame_reads_json(&frame);
                actions.push(RuleAction::Reply { frame, json });
            }
            if let Some(name) = &r.count {
                let i = self.counter(name);
                actions.push(RuleAction::Count(i));
            }
            if actions.is_empty() {
                self.problems.add(
                    span,
                    "a frame rule needs delivered, acked, rejected, reply, count or capture",
                );
            }
            out.push(FrameRule { matcher, actions });
        }
        out
    }

    /// A frame rule's captures: JSON paths and regexes (a frame has no header or status).
    fn rule_captures(
        &mut self,
        captures: &IndexMap<String, Spanned<spec::CaptureSpec>>,
    ) -> Vec<(usize, Capture)> {
        let mut out = Vec::new();
        for (name, c) in captures {
            let Some(cap) = self.capture(c) else { continue };
            if matches!(cap, Capture::Header(_) | Capture::Status) {
                self.problems.add(
                    c.span(),
                    "a frame has no header or status: capture with a JSON path or a regex",
                );
                continue;
            }
            // Collected with the flow's variables, so it has a slot.
            if let Some(slot) = self.scope.vars.get(name) {
                out.push((*slot, cap));
            }
        }
        out
    }

    pub(super) fn until(&mut self, u: &Spanned<spec::ConditionSpec>) -> Option<Until> {
        let c = u.get_ref();
        let Some(slot) = self.scope.vars.get(&c.var).copied() else {
            self.problems.add(
                u.span(),
                format!("unknown variable `{}`: no step captures it", c.var),
            );
            return None;
        };
        match (&c.equals, &c.not_equals, c.exists) {
            (Some(v), None, None) => Some(Until::Equals(slot, self.want(v, u.span())?)),
            (None, Some(v), None) => Some(Until::NotEquals(slot, self.want(v, u.span())?)),
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
}

#[cfg(test)]
mod tests {
    use crate::compiled::flow::{Action, Capture, Expr, RuleAction};

    const HEAD: &str = r#"
name = "t"
[target]
builtin = {}
[load]
phases = [ { name = "a", duration = "1s", rate = 1 } ]
"#;

    fn compile(steps: &str) -> Result<crate::compiled::Plan, Vec<(usize, String)>> {
        let text = format!("{HEAD}{steps}");
        crate::compiled::compile(std::path::Path::new("t.toml"), &text, Some(1)).map_err(|e| {
            e.0.iter()
                .map(|p| (p.line, p.message.clone()))
                .collect::<Vec<_>>()
        })
    }

    #[test]
    fn a_reply_reads_the_frame_by_named_group_or_path_and_a_rule_captures() {
        let plan = compile(
            r#"
[[flows.f.steps]]
name = "ws"
ws = "/ws"
on_frame = [
  { match = { regex = "<iq type='get' id='(?P<id>[^']+)'" }, reply = "<iq type='result' id='{{ frame.id }}'/>" },
  { match = { "$.type" = "msg" }, capture = { from = "$.from", n = { regex = "n=(\\d+)" } }, reply = { to = "{{ frame.from.jid }}" } },
]
"#,
        )
        .expect("valid");
        let Action::WsConnect { rules, .. } = &plan.flows.flows[0].steps[0].action else {
            panic!("a ws step")
        };
        let RuleAction::Reply { frame, json } = &rules[0].actions[0] else {
            panic!("a reply")
        };
        assert!(!json && !rules[0].needs_json());
        let crate::compiled::flow::Frame::Text(t) = frame else {
            panic!("a text frame")
        };
        assert!(t.parts.iter().any(|p| matches!(
            p,
            crate::compiled::flow::template::Part::Expr(Expr::FrameGroup(g)) if g == "id"
        )));
        // Captures come first, so the reply and later steps see them.
        let RuleAction::Capture(caps) = &rules[1].actions[0] else {
            panic!("captures first")
        };
        assert!(matches!(
            caps[..],
            [(_, Capture::Json(_)), (_, Capture::Regex(..))]
        ));
        assert!(matches!(
            rules[1].actions[1],
            RuleAction::Reply { json: true, .. }
        ));
        assert!(rules[1].needs_json());
    }

    #[test]
    fn an_unknown_name_in_a_contains_template_is_an_error_where_it_is_as_in_json() {
        let text = format!(
            "{HEAD}{}",
            r#"
[[flows.f.steps]]
name = "a"
http = "GET /a"
expect = { json = { "$.id" = "{{ noone }}" }, json_contains = { "$.tags" = "{{ nothing }}" } }
fail_on = { contains = "bye {{ ghost }}" }

[[flows.f.steps]]
name = "b"
http = "GET /b"
expect = { contains = "hi {{ nobody }}" }
"#
        );
        let errs = crate::compiled::compile(std::path::Path::new("t.toml"), &text, Some(1))
            .expect_err("unknown names")
            .0;
        // Each at the unknown name: its line, and its column (1-based, as the file's).
        let at = |name: &str| {
            text.lines()
                .enumerate()
                .find_map(|(i, l)| {
                    l.find(name)
                        .map(|c| format!("t.toml:{}:{}: ", i + 1, c + 1))
                })
                .unwrap_or_else(|| panic!("{name} in the scenario"))
        };
        let said: Vec<String> = errs.iter().map(ToString::to_string).collect();
        assert_eq!(said.len(), 4, "{said:?}");
        for name in ["noone", "nothing", "ghost", "nobody"] {
            let want = format!("{}unknown variable `{name}`", at(name));
            assert!(
                said.iter().any(|s| s.starts_with(&want)),
                "{want} in {said:?}"
            );
        }
        // No "fail_on needs …" besides: the fail_on has a contains, whose template is wrong.
        assert!(
            !said.iter().any(|s| s.contains("fail_on needs")),
            "{said:?}"
        );
    }

    #[test]
    fn frame_values_outside_a_reply_and_headers_in_a_rule_are_errors_with_positions() {
        let errs = compile(
            r#"
[[flows.f.steps]]
name = "ws"
ws = "/ws"
on_frame = [ { match = { regex = "x" }, capture = { h = { header = "x-id" } } } ]

[[flows.f.steps]]
name = "send"
send = "id={{ frame.id }}"
"#,
        )
        .expect_err("invalid");
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert_eq!(errs[0].0, 11);
        assert!(errs[0].1.contains("a frame has no header"), "{errs:?}");
        assert_eq!(errs[1].0, 15);
        assert!(
            errs[1].1.contains("known only in that rule's reply"),
            "{errs:?}"
        );
    }
}
