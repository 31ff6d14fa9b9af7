//! How a user's flow ended, recorded once per started user (`metrics::outcomes`), and the label
//! of the step a cut-off user was in: its name, or else its place in the flow.

use crate::compiled::flow::{Action, Flow, Step};
use crate::metrics::outcomes::Outcome;
use crate::metrics::Catalog;
use crate::runtime::{Stop, User};

impl User<'_> {
    /// Counts how the user's flow ended: completed, failed, or cut off in the step it was in.
    pub(super) fn record_outcome(&self, flow: &Flow, ended: Result<(), Stop>) {
        let outcome = match ended {
            Ok(()) => Outcome::Completed,
            Err(Stop::Failed) => Outcome::Failed,
            Err(Stop::CutOff) => Outcome::CutOff,
        };
        // Built only for a cut-off user (once in its life): the others need no label.
        let label = match (outcome, self.at) {
            (Outcome::CutOff, Some(step)) => step_label(&self.ctx.plan().catalog, flow, step),
            (Outcome::CutOff, None) => format!("{} before its first step", flow.name),
            _ => String::new(),
        };
        self.ctx
            .record_in(self.region, |r| r.user_ended(outcome, &label));
    }
}

/// How reports name `step` of `flow`: its metric's name if it has one (`name = "chat"`), else
/// its place, counted from 1 in file order, nested loops joined by dots, and its kind:
/// `signup step 7 (think)`, `chat step 3.2 (send)`.
pub fn step_label(catalog: &Catalog, flow: &Flow, step: &Step) -> String {
    if let Some(m) = step.metric {
        return catalog.name(m).to_string();
    }
    let mut path = Vec::new();
    let place = if find(&flow.steps, step, &mut path) {
        let numbers: Vec<String> = path.iter().map(|i| (i + 1).to_string()).collect();
        numbers.join(".")
    } else {
        "?".to_string()
    };
    format!("{} step {place} ({})", flow.name, kind(&step.action))
}

/// Whether `step` is in `steps` (or in a loop among them), its indexes pushed onto `path`.
fn find(steps: &[Step], step: &Step, path: &mut Vec<usize>) -> bool {
    for (i, s) in steps.iter().enumerate() {
        path.push(i);
        if std::ptr::eq(s, step) {
            return true;
        }
        if let Action::Loop { steps: inner, .. } = &s.action {
            if find(inner, step, path) {
                return true;
            }
        }
        path.pop();
    }
    false
}

/// The step's kind, as its key in the scenario file.
fn kind(action: &Action) -> &'static str {
    match action {
        Action::Http(_) => "http",
        Action::WsConnect { .. } => "ws",
        Action::Send(_) => "send",
        Action::Receive => "expect",
        Action::Close => "close",
        Action::Think(_) => "think",
        Action::StayOnline(_) => "stay_online",
        Action::Loop { .. } => "loop",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::tests::{metric, run_one, run_until};
    use std::time::Duration;

    #[test]
    fn a_flow_that_ends_is_completed_and_one_a_failure_ends_is_failed() {
        let (_, _, rec) = run_one("[[flows.f.steps]]\nname = \"ok\"\nhttp = \"GET /status/200\"\n");
        let u = &rec.users;
        assert_eq!((u.completed, u.failed, u.cut_off), (1, 0, 0));
        let (_, _, rec) = run_one("[[flows.f.steps]]\nname = \"no\"\nhttp = \"GET /status/503\"\n");
        let u = &rec.users;
        assert_eq!((u.completed, u.failed, u.cut_off), (0, 1, 0));
    }

    #[test]
    fn a_user_the_run_stops_mid_flow_is_cut_off_in_the_step_it_was_in() {
        // The run stops 300 ms in, during the 10 s think of step 2.
        let (_, ended, rec) = run_until(
            r#"
[[flows.f.steps]]
name = "first"
http = "GET /status/200"

[[flows.f.steps]]
think = { constant = "10s" }

[[flows.f.steps]]
name = "never"
http = "GET /status/200"
"#,
            Some(Duration::from_millis(300)),
        );
        assert!(!ended.completed);
        let u = &rec.users;
        assert_eq!((u.completed, u.failed, u.cut_off), (0, 0, 1));
        assert_eq!(u.cut_off_in, vec![("f step 2 (think)".into(), 1)]);
    }

    #[test]
    fn plain_sends_and_their_echoes_are_counted_on_the_socket_step() {
        // Three unnamed, untracked sends (no metric of their own) to a peer that echoes them.
        let (plan, ended, rec) = run_one(
            r#"
[[flows.f.steps]]
name = "ws"
ws = "/ws/echo"

[[flows.f.steps]]
repeat = 3
send = { type = "hello" }

[[flows.f.steps]]
stay_online = { constant = "300ms" }
"#,
        );
        assert!(ended.completed);
        let ws = rec.metric(metric(&plan, "ws"));
        assert_eq!((ws.frames_sent, ws.frames_received), (3, 3));
        assert_eq!(rec.users.completed, 1);
    }

    #[test]
    fn a_step_is_named_by_its_name_or_its_place_in_the_flow() {
        let text = r#"
name = "t"
[target]
builtin = {}
[load]
phases = [ { name = "a", duration = "1s", rate = 1 } ]
[[flows.f.steps]]
name = "open"
ws = "/ws"
[[flows.f.steps]]
think = { constant = "1s" }
[[flows.f.steps]]
loop = { times = 2, steps = [
  { send = { type = "ping" } },
  { name = "pong", expect = { json = { "$.type" = "pong" } } },
] }
"#;
        let plan = crate::compiled::compile(std::path::Path::new("t.toml"), text, Some(1))
            .unwrap_or_else(|e| panic!("valid scenario: {e:?}"));
        let flow = &plan.flows.flows[0];
        let label = |s: &Step| step_label(&plan.catalog, flow, s);
        assert_eq!(label(&flow.steps[0]), "open");
        assert_eq!(label(&flow.steps[1]), "f step 2 (think)");
        let Action::Loop { steps, .. } = &flow.steps[2].action else {
            panic!("a loop")
        };
        assert_eq!(label(&flow.steps[2]), "f step 3 (loop)");
        assert_eq!(label(&steps[0]), "f step 3.1 (send)");
        assert_eq!(label(&steps[1]), "pong");
        // A step of another flow is not placed in this one.
        let other = flow.steps[1].clone();
        assert_eq!(label(&other), "f step ? (think)");
    }
}
