//! The names a flow's templates can refer to (variables, feeders, cohorts, built-ins), and how a
//! template's path resolves to an expression.

use std::collections::HashSet;

use indexmap::IndexMap;

use crate::compiled::flow::template::{Resolver, Segment, Value};
use crate::compiled::flow::*;

/// Names a flow can refer to, collected before compiling its steps.
pub(super) struct Scope {
    pub(super) vars: IndexMap<String, usize>,
    pub(super) published: HashSet<String>,
    /// Feeder names and their columns.
    pub(super) feeders: Vec<(String, Vec<String>)>,
    /// Feeders whose file was refused (said once, where the feeder is defined).
    pub(super) unreadable_feeders: Vec<String>,
    /// Cohort names, in order.
    pub(super) cohorts: Vec<String>,
    /// The `env.*` values the templates took (name, value): secrets a trace must mask.
    pub(super) secrets: Vec<(String, String)>,
    /// While an `on_frame` rule's reply compiles: the named groups of its match regex
    /// (`frame.*` is known only there).
    pub(super) frame: Option<Vec<String>>,
    /// Where `env.*` values come from: `-e` values, then the process environment.
    pub(super) env: crate::compiled::inputs::Env,
}

const BUILTINS: &str =
    "seq, nul, user.index, user.phone, user.uuid, msg.id, env.NAME, frame.<path> (in a rule's reply), \
feed.<feeder>.<column>, uuid(), \
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

    /// A template path (`user.phone`, `swarm.sample(3).token`, a captured variable…) as an
    /// expression. Long on purpose: one flat match with one arm per built-in name reads as the
    /// list of what a template may say; cutting it would scatter that list.
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
            (["user", "uuid"], [false, false]) => Ok(Expr::UserUuid),
            (["msg", "id"], [false, false]) => Ok(Expr::MsgId),
            (["env", name], [false, false]) => {
                let v = self.env.get(name).ok_or_else(|| {
                    format!("environment variable `{name}` is not set (set it, or pass -e {name}=…)")
                })?;
                self.secrets.push((name.to_string(), v.clone()));
                Ok(Expr::Secret {
                    name: name.to_string(),
                    value: Value::Str(v),
                })
            }
            (["frame", path @ ..], _) if !path.is_empty() && called.iter().all(|c| !c) => {
                let Some(groups) = &self.frame else {
                    return Err("frame.* is the frame an on_frame rule answers: it is known only in that rule's reply".into());
                };
                match path {
                    [name] if groups.iter().any(|g| g == name) => Ok(Expr::FrameGroup(name.to_string())),
                    _ => Ok(Expr::FramePath(path.iter().map(|s| s.to_string()).collect())),
                }
            }
            (["uuid"], [true]) => arg(0, 0, "uuid()").map(|_| Expr::Uuid),
            (["timestamp_ms"], [true]) => arg(0, 0, "timestamp_ms()").map(|_| Expr::TimestampMs),
            (["random_int"], [true]) => {
                let mut a = arg(0, 2, "random_int(lo, hi)")?;
                let hi = a.pop().map(Box::new);
                let lo = a.pop().map(Box::new);
                match (lo, hi) {
                    // Known at load, a range the wrong way round is said (at run time, from
                    // values, it gives `lo`).
                    (Some(lo), Some(hi)) => match (&*lo, &*hi) {
                        (Expr::Lit(Value::Num(l)), Expr::Lit(Value::Num(h))) if h < l => Err(
                            format!("random_int({l}, {h}): the lower end is above the upper"),
                        ),
                        _ => Ok(Expr::RandomInt(lo, hi)),
                    },
                    _ => Err("random_int(lo, hi) takes 2 arguments".into()),
                }
            }
            (["random_string"], [true]) => {
                let n = arg(0, 1, "random_string(n)")?;
                match n.first() {
                    // Known at load, a length out of 0–4096 is said (from values, it is clamped).
                    Some(Expr::Lit(Value::Num(len))) if !(0.0..=4096.0).contains(len) => Err(
                        format!("random_string({len}): a length from 0 to 4096"),
                    ),
                    _ => Ok(Expr::RandomString(boxed(n))),
                }
            }
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
                if self.unreadable_feeders.iter().any(|n| n == feeder) {
                    // Its file's problem is the one error; the plan is not used.
                    return Ok(Expr::Lit(Value::Null));
                }
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
