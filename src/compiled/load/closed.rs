//! A closed phase: a fixed number of users kept active, each starting again when its previous
//! iteration ends, instead of arrivals at a rate.

use std::time::Duration;

use toml::Spanned;

use crate::duration::parse_duration;
use crate::scenario::{self, Problems};

/// A closed-model phase: `users` kept active, their first starts spread evenly over `ramp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Closed {
    pub users: u64,
    pub ramp: Duration,
}

impl Closed {
    /// When this worker's users first start: the phase's `users` are slots 0..N, slot s starting
    /// at `start + ramp·s/N` (evenly spread), dealt round-robin to shards (slot s to shard
    /// s mod shards, as open arrivals) and a shard's slots round-robin to its workers.
    pub fn first_starts(
        self,
        start: Duration,
        shard: crate::compiled::shard::Shard,
        worker: u64,
        workers: u64,
    ) -> impl Iterator<Item = Duration> {
        let (ramp, n) = (self.ramp, self.users);
        (shard.index..n)
            .step_by(shard.count.max(1) as usize)
            .skip(worker as usize)
            .step_by(workers.max(1) as usize)
            .map(move |s| start + ramp.mul_f64(s as f64 / n as f64))
    }

    /// The validate description's rate and volume columns, for a shard's part of the users
    /// (all of them unsharded): a shard runs every N-th slot, as `first_starts` deals them.
    pub fn describe(&self, shard: crate::compiled::shard::Shard) -> (String, String) {
        let users = shard.share(self.users);
        let of = if shard.is_whole() {
            String::new()
        } else {
            format!(" of {}", self.users)
        };
        (
            format!("closed: {users}{of} users"),
            format!(
                "{users} users, first starts over {:.1}s",
                self.ramp.as_secs_f64()
            ),
        )
    }
}

/// A closed phase brings no open arrivals: its users loop instead.
impl super::LoadShape for Closed {
    fn arrival_pieces(&self, _start: Duration, _duration: Duration) -> Vec<super::Piece> {
        Vec::new()
    }
    fn expected_arrivals(&self, _start: Duration, _duration: Duration) -> f64 {
        0.0
    }
    fn describe_columns(&self, _expected: f64) -> (String, String) {
        self.describe(crate::compiled::shard::Shard::WHOLE)
    }
    fn scaled(&self, factor: f64) -> super::Load {
        super::Load::Closed(Closed {
            // Never below one user: a phase that keeps nobody would walk nothing.
            users: ((self.users as f64 * factor).round() as u64).max(1),
            ramp: self.ramp,
        })
    }

    fn stretched(&self, factor: f64) -> super::Load {
        super::Load::Closed(Closed {
            users: self.users,
            ramp: Duration::from_secs_f64(self.ramp.as_secs_f64() * factor),
        })
    }

    fn over_limit(&self) -> Option<String> {
        (self.users > super::MAX_CLOSED_USERS).then(|| {
            format!(
                "would keep {} users active, over the limit of {} for a closed phase",
                self.users,
                super::MAX_CLOSED_USERS
            )
        })
    }
}

/// `users = N` (with an optional `ramp`): a closed phase. None for an open phase (and then a
/// stray `ramp` is an error), or when the closed phase is invalid (its problems are reported).
pub(super) fn compile(
    spec: &Spanned<scenario::PhaseSpec>,
    duration: Duration,
    problems: &mut Problems,
) -> Option<Closed> {
    let p = spec.get_ref();
    let Some(users) = &p.users else {
        if let Some(ramp) = &p.ramp {
            problems.add(
                ramp.span(),
                "`ramp` spreads the starts of a closed phase: it needs `users = N`",
            );
        }
        return None;
    };
    let n = *users.get_ref();
    if !(1..=super::MAX_CLOSED_USERS as i64).contains(&n) {
        problems.add(
            users.span(),
            format!(
                "users must be between 1 and {} (a closed phase keeps that many users active)",
                super::MAX_CLOSED_USERS
            ),
        );
    }
    for (what, field) in [
        ("rate", p.rate.as_ref().map(Spanned::span)),
        ("ramp_to", p.ramp_to.as_ref().map(Spanned::span)),
        ("grow_to", p.grow_to.as_ref().map(Spanned::span)),
    ] {
        if let Some(span) = field {
            problems.add(
                span,
                format!(
                    "a phase has either `users` (closed model) or `{what}` (arrivals), not both"
                ),
            );
        }
    }
    // By default the first starts are spread over one second so they do not land in one burst.
    let ramp = match &p.ramp {
        Some(r) => match parse_duration(r.get_ref()) {
            Ok(d) if d > duration => {
                problems.add(r.span(), "ramp must not be longer than the phase");
                d
            }
            Ok(d) => d,
            Err(e) => {
                problems.add(r.span(), e);
                Duration::ZERO
            }
        },
        None => Duration::from_secs(1).min(duration),
    };
    Some(Closed {
        users: n.max(0) as u64,
        ramp,
    })
}
