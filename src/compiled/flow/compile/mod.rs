//! Compiles `[flows.*]` and `[[cohorts]]` into executable flows, collecting every problem with
//! its position: unknown step kinds, unknown variables, bad JSON paths and regexes.

use std::collections::HashSet;
use std::ops::Range;
use std::time::Duration;

use indexmap::IndexMap;
use regex::Regex;
use toml::Spanned;

use crate::compiled::flow::jsonpath;
use crate::compiled::flow::template::{self, Escape, TemplateError};
use crate::compiled::flow::*;
use crate::compiled::Dist;
use crate::metrics::{Catalog, MetricId};
use crate::scenario::flow::{self as spec, FlowSpec, StepSpec};
use crate::scenario::{DistSpec, Problems};

mod checks;
mod paths;
mod scope;
mod steps;

use scope::Scope;
pub use steps::UNNAMED_ERRORS;

/// Every flow and cohort of a scenario, with the metric catalog their steps define.
#[derive(Debug, Clone)]
pub struct FlowSet {
    pub flows: Vec<Flow>,
    pub cohorts: Vec<Cohort>,
    pub catalog: Catalog,
    pub feeders: Vec<crate::compiled::flow::feeder::Feeder>,
    /// Every `env.*` value a template took, by name: never to appear in a trace.
    pub secrets: Vec<(String, String)>,
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
    /// The checks' names (`<step> <condition>`), by index.
    checks: Vec<String>,
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
        // A socket's frame rules capture into the same variables as steps do.
        let rules = s.on_frame.iter().flat_map(|r| r.get_ref());
        let rule_captures = rules.flat_map(|r| r.get_ref().capture.iter().flat_map(|c| c.keys()));
        for name in s
            .capture
            .iter()
            .flat_map(|c| c.get_ref().keys())
            .chain(rule_captures)
        {
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
    feeders: crate::compiled::flow::feeder::Loaded,
    default_timeout: Duration,
    env: &crate::compiled::inputs::Env,
    problems: &mut Problems,
) -> FlowSet {
    let unreadable_feeders = feeders.unreadable;
    let feeders = feeders.feeders;
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
    let mut checks = Vec::new();
    let mut compiled = Vec::new();
    let mut secrets: Vec<(String, String)> = Vec::new();
    for (name, f) in flows {
        let vars = flow_vars(name, f, flows, cohorts);
        let var_names: Vec<String> = vars.keys().cloned().collect();
        let slots = vars.len();
        let mut c = Compiler {
            problems,
            scope: Scope {
                vars,
                published: published.clone(),
                feeders: feeder_names.clone(),
                unreadable_feeders: unreadable_feeders.clone(),
                cohorts: cohorts
                    .iter()
                    .map(|c| c.get_ref().name.get_ref().clone())
                    .collect(),
                secrets: Vec::new(),
                frame: None,
                env: env.clone(),
            },
            metrics: std::mem::take(&mut metrics),
            counters: std::mem::take(&mut counters),
            checks: std::mem::take(&mut checks),
            default_timeout,
        };
        let steps = c.steps(f.get_ref().steps.get_ref());
        metrics = c.metrics;
        counters = c.counters;
        checks = c.checks;
        for s in c.scope.secrets {
            if !secrets.contains(&s) {
                secrets.push(s);
            }
        }
        // Steps that failed to compile have said why; only a flow written without any has none.
        if f.get_ref().steps.get_ref().is_empty() {
            problems.add(f.span(), format!("flow `{name}` has no steps"));
        }
        compiled.push(Flow {
            name: name.clone(),
            steps,
            slots,
            vars: var_names,
        });
    }
    let out_cohorts = compile_cohorts(cohorts, flows, &compiled, problems);
    FlowSet {
        flows: compiled,
        cohorts: out_cohorts,
        catalog: Catalog::new(metrics)
            .with_counters(counters)
            .with_checks(checks),
        feeders,
        secrets,
    }
}

/// The variables of flow `name`, in slot order: those a returning user brings from the flow it
/// first ran (the origin's captures come first), then the flow's own captures.
fn flow_vars(
    name: &str,
    f: &Spanned<FlowSpec>,
    flows: &IndexMap<String, Spanned<FlowSpec>>,
    cohorts: &[Spanned<spec::CohortSpec>],
) -> IndexMap<String, usize> {
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
    vars
}

/// `[[cohorts]]`: each names a flow and a share; without cohorts, a single flow is run by
/// everyone (several flows need cohorts).
fn compile_cohorts(
    cohorts: &[Spanned<spec::CohortSpec>],
    flows: &IndexMap<String, Spanned<FlowSpec>>,
    compiled: &[Flow],
    problems: &mut Problems,
) -> Vec<Cohort> {
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
    out_cohorts
}
