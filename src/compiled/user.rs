//! `[user]`: the numbers of the built-in signup-and-chat user, and the built-in flow they
//! configure (compiled like any scenario flow).

use std::path::Path;
use std::time::Duration;

use toml::Spanned;

use super::dist::{dist, Dist};
use crate::scenario::{self, Problems};

#[derive(Debug, Clone, PartialEq)]
pub struct UserPlan {
    pub contacts_known: usize,
    pub contacts_unknown: usize,
    pub messages: u32,
    pub think: Dist,
    pub stay_online: Dist,
    pub phone_prefix: String,
    /// Probability that a user who left comes back (logs in, reconnects, chats again).
    pub returning: f64,
    /// Time offline before a returning user comes back.
    pub away: Dist,
}

/// `[user]`, every number checked against its range.
pub(super) fn compile(u: &scenario::UserSection, problems: &mut Problems) -> UserPlan {
    let count = |v: &Spanned<i64>, max: i64, what: &str, problems: &mut Problems| {
        let n = *v.get_ref();
        if !(0..=max).contains(&n) {
            problems.add(v.span(), format!("{what} must be between 0 and {max}"));
            0
        } else {
            n
        }
    };
    let contacts_known = count(&u.contacts_known, 1000, "contacts_known", problems) as usize;
    let contacts_unknown = count(&u.contacts_unknown, 1000, "contacts_unknown", problems) as usize;
    if contacts_known + contacts_unknown > 1000 {
        problems.add(
            u.contacts_unknown.span(),
            "contacts_known + contacts_unknown must be at most 1000 (one upload)",
        );
    }
    let messages = count(&u.messages, 1_000_000, "messages", problems) as u32;
    let prefix = u.phone_prefix.get_ref();
    let digits = prefix.len().saturating_sub(1);
    if !prefix.starts_with('+')
        || !prefix[1..].chars().all(|c| c.is_ascii_digit())
        || !(1..=5).contains(&digits)
    {
        problems.add(
            u.phone_prefix.span(),
            "phone_prefix must be `+` followed by 1 to 5 digits, e.g. \"+1555\"",
        );
    }
    UserPlan {
        contacts_known,
        contacts_unknown,
        messages,
        think: dist(&u.think, problems),
        stay_online: dist(&u.stay_online, problems),
        phone_prefix: prefix.clone(),
        returning: {
            let r = *u.returning.get_ref();
            if !(r.is_finite() && (0.0..=1.0).contains(&r)) {
                problems.add(
                    u.returning.span(),
                    "returning is a probability between 0 and 1",
                );
            }
            r.clamp(0.0, 1.0)
        },
        away: dist(&u.away, problems),
    }
}

/// The built-in flow: its scenario-language text with `[user]`'s numbers, compiled like any flow.
pub(super) fn builtin_flows(
    user: &UserPlan,
    timeout: Duration,
    at: &Spanned<i64>,
    problems: &mut Problems,
) -> crate::compiled::flow::compile::FlowSet {
    #[derive(serde::Deserialize)]
    struct Flows {
        flows: indexmap::IndexMap<String, Spanned<crate::scenario::flow::FlowSpec>>,
        #[serde(default)]
        cohorts: Vec<Spanned<crate::scenario::flow::CohortSpec>>,
    }
    let text = crate::compiled::flow::builtin::flow_text(user);
    let file = Path::new("<built-in flow>");
    let mut inner = Problems::new(file, &text);
    let set = match toml::from_str::<Flows>(&text) {
        Ok(f) => crate::compiled::flow::compile::compile(
            &f.flows,
            &f.cohorts,
            Default::default(),
            timeout,
            &Default::default(),
            &mut inner,
        ),
        Err(e) => {
            inner.add(e.span().unwrap_or(0..0), e.message().to_string());
            let none = indexmap::IndexMap::new();
            crate::compiled::flow::compile::compile(
                &none,
                &[],
                Default::default(),
                timeout,
                &Default::default(),
                &mut inner,
            )
        }
    };
    // The text is generated from checked numbers; a problem here is a bug, reported at [user].
    if let Err(e) = inner.into_result() {
        problems.add(
            at.span(),
            format!("the built-in flow does not compile: {e}"),
        );
    }
    set
}
