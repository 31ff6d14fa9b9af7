//! The built-in signup-and-chat flow is not code: it is this scenario-language text, with the
//! numbers of the scenario's `[user]` section filled in. `scenarios/signup-chat-flow.toml` shows
//! the same flow written out in a file.

use std::fmt::Write;
use std::time::Duration;

use crate::compiled::{Dist, UserPlan};

fn duration(d: Duration) -> String {
    format!("{}us", d.as_micros())
}

fn dist(d: &Dist) -> String {
    match d {
        Dist::Constant(x) => format!("{{ constant = \"{}\" }}", duration(*x)),
        Dist::Uniform(lo, hi) => format!(
            "{{ uniform = [\"{}\", \"{}\"] }}",
            duration(*lo),
            duration(*hi)
        ),
        Dist::Exponential(m) => format!("{{ exponential = \"{}\" }}", duration(*m)),
        Dist::Normal(m, sd) => format!(
            "{{ normal = [\"{}\", \"{}\"] }}",
            duration(*m),
            duration(*sd)
        ),
    }
}

/// The flow's text for `[user]`'s parameters.
pub fn flow_text(u: &UserPlan) -> String {
    let mut t = String::from(
        r#"
[[flows.signup_and_chat.steps]]
name = "register"
http = "POST /v1/register"
json = { phone = "{{ user.phone }}" }
expect.status = 202
capture.verification = "$.verification_id"

[[flows.signup_and_chat.steps]]
name = "sms_code"
http = "GET /v1/test/sms/{{ user.phone }}"
expect = { status = 200, regex = '"code":"[0-9]{6}"' }
capture.code = "$.code"

[[flows.signup_and_chat.steps]]
name = "verify"
http = "POST /v1/verify"
json = { verification_id = "{{ verification }}", code = "{{ code }}" }
expect = { status = 201, exists = ["$.user_id", "$.token"] }
capture = { user_id = "$.user_id", token = "$.token" }
publish = ["user_id", "user.phone"]
"#,
    );
    if u.contacts_known + u.contacts_unknown > 0 {
        let _ = write!(
            t,
            r#"
[[flows.signup_and_chat.steps]]
name = "contacts_sync"
http = "POST /v1/contacts/sync"
headers = {{ authorization = "Bearer {{{{ token }}}}" }}
json = {{ phones = "{{{{ swarm.sample({known}).phone + fake.phones({unknown}) }}}}" }}
expect = {{ status = 200, contains_all = {{ path = "$.found[*].phone", values = "{{{{ swarm.sampled.phone }}}}" }} }}
"#,
            known = u.contacts_known,
            unknown = u.contacts_unknown
        );
    }
    chat_steps(&mut t, "signup_and_chat", u);
    if u.returning > 0.0 {
        // Users who left come back: they log in with the token they kept, reconnect (the target
        // hands over what it held for them), chat and leave again.
        let _ = write!(
            t,
            r#"
[[cohorts]]
name = "signup_and_chat"
share = 1.0
flow = "signup_and_chat"
returns = {{ share = {share:?}, after = {away}, flow = "returning" }}

[[flows.returning.steps]]
name = "login"
http = "POST /v1/login"
headers = {{ authorization = "Bearer {{{{ token }}}}" }}
expect = {{ status = 200, exists = ["$.user_id"] }}
"#,
            share = u.returning,
            away = dist(&u.away)
        );
        chat_steps(&mut t, "returning", u);
    }
    t
}

/// Opens the socket, chats and stays online: the end of the signup flow and of the return flow.
fn chat_steps(t: &mut String, flow: &str, u: &UserPlan) {
    let _ = write!(
        t,
        r#"
[[flows.{flow}.steps]]
name = "ws_connect"
ws = "/v1/ws?token={{{{ token }}}}"
on_frame = [
  {{ match = {{ "$.type" = "message" }}, delivered = "$.id" }},
  {{ match = {{ "$.type" = "ack" }}, acked = "$.id" }},
  {{ match = {{ "$.type" = "error" }}, rejected = "$.id" }},
]
"#
    );
    if u.messages > 0 {
        let _ = write!(
            t,
            r#"
[[flows.{flow}.steps]]
repeat = {}
think = {}
send = {{ type = "send", id = "{{{{ msg.id }}}}", to = "{{{{ swarm.online.user_id }}}}", body = "hi {{{{ seq }}}}" }}
"#,
            u.messages,
            dist(&u.think),
            flow = flow
        );
    }
    let _ = write!(
        t,
        r#"
[[flows.{flow}.steps]]
stay_online = {}
"#,
        dist(&u.stay_online),
        flow = flow
    );
}
