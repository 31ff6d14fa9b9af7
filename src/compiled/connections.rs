//! `[run] connections`: whether each user opens its own HTTP connection (`"per_user"`, the
//! default: a real new user's phone opens one) or all users share a kept-alive pool of at most N
//! (`{ pool = N }`: API load at a request rate, as oha's or wrk's connections are shared).
//!
//! The pool is split over the run's worker threads, each holding its own part (no lock between
//! workers, none per request): worker i of W holds ⌊N/W⌋ connections, one more when i < N mod W,
//! so the shares add up to N exactly and differ by at most one. A pool smaller than the number
//! of workers would leave a worker without connections, so such a run uses N workers.

use toml::Spanned;

use crate::scenario::{ConnectionsSpec, Problems};

/// The largest pool a scenario may ask for: far beyond one machine's open files, so a bigger
/// number is a typo.
const MAX_POOL: i64 = 1_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Connections {
    /// Each user opens, keeps alive and reopens its own connection.
    #[default]
    PerUser,
    /// All users share at most this many kept-alive connections.
    Pool(u64),
}

impl Connections {
    /// How many connections worker `worker` of `workers` may hold: `None` when each user has
    /// its own.
    pub fn share(&self, worker: usize, workers: usize) -> Option<usize> {
        match *self {
            Connections::PerUser => None,
            Connections::Pool(n) => {
                let (n, w) = (n as usize, workers.max(1));
                Some(n / w + usize::from(worker < n % w))
            }
        }
    }

    /// How many workers a run that wants `wanted` may use: every worker needs a connection of
    /// its own, so a pool of N uses at most N.
    pub fn workers(&self, wanted: usize) -> usize {
        match *self {
            Connections::PerUser => wanted,
            Connections::Pool(n) => wanted.min(n as usize),
        }
        .max(1)
    }

    /// The most HTTP connections the run holds at once, when the pool bounds it.
    pub fn bound(&self) -> Option<u64> {
        match *self {
            Connections::PerUser => None,
            Connections::Pool(n) => Some(n),
        }
    }
}

pub(super) fn compile(
    spec: &Option<Spanned<ConnectionsSpec>>,
    problems: &mut Problems,
) -> Connections {
    let Some(spec) = spec else {
        return Connections::PerUser;
    };
    match spec.get_ref() {
        ConnectionsSpec::Named(name) if name == "per_user" => Connections::PerUser,
        ConnectionsSpec::Named(other) => {
            problems.add(
                spec.span(),
                format!(
                    "connections = {other:?}: expected \"per_user\" or {{ pool = N }} (a shared \
                     pool of N kept-alive connections)"
                ),
            );
            Connections::PerUser
        }
        ConnectionsSpec::Pool(p) if (1..=MAX_POOL).contains(&p.pool) => {
            Connections::Pool(p.pool as u64)
        }
        ConnectionsSpec::Pool(p) => {
            problems.add(
                spec.span(),
                format!(
                    "connections = {{ pool = {} }}: the pool holds 1 to {MAX_POOL} connections",
                    p.pool
                ),
            );
            Connections::PerUser
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compiled(run: &str) -> Result<Connections, String> {
        let text = format!(
            "name = \"t\"\n[target]\nurl = \"http://127.0.0.1:9\"\n[load]\n\
             phases = [ {{ name = \"a\", duration = \"1s\", rate = 1 }} ]\n[run]\n{run}\n"
        );
        crate::compiled::compile(std::path::Path::new("s.toml"), &text, None)
            .map(|p| p.connections)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn reads_per_user_and_a_pool_and_says_where_a_wrong_one_is() {
        assert_eq!(compiled(""), Ok(Connections::PerUser));
        assert_eq!(
            compiled("connections = \"per_user\""),
            Ok(Connections::PerUser)
        );
        assert_eq!(
            compiled("connections = { pool = 64 }"),
            Ok(Connections::Pool(64))
        );
        let e = compiled("connections = \"shared\"").expect_err("unknown");
        assert!(
            e.contains("s.toml:7:15") && e.contains("\"per_user\" or { pool = N }"),
            "{e}"
        );
        let e = compiled("connections = { pool = 0 }").expect_err("empty pool");
        assert!(
            e.contains("s.toml:7:15") && e.contains("1 to 1000000"),
            "{e}"
        );
    }

    #[test]
    fn shares_add_up_to_the_pool_and_differ_by_at_most_one() {
        for n in 1..40u64 {
            for workers in 1..9usize {
                let c = Connections::Pool(n);
                let used = c.workers(workers);
                let shares: Vec<usize> = (0..used).filter_map(|i| c.share(i, used)).collect();
                assert_eq!(shares.iter().sum::<usize>() as u64, n, "{n} over {used}");
                let (lo, hi) = (shares.iter().min(), shares.iter().max());
                assert!(matches!((lo, hi), (Some(&l), Some(&h)) if h - l <= 1 && l >= 1));
            }
        }
        assert_eq!(Connections::Pool(64).share(0, 2), Some(32));
        assert_eq!(Connections::Pool(5).share(0, 2), Some(3));
        assert_eq!(Connections::Pool(5).share(1, 2), Some(2));
        assert_eq!(Connections::PerUser.share(0, 2), None);
    }

    #[test]
    fn a_pool_smaller_than_the_workers_uses_fewer_workers() {
        assert_eq!(Connections::Pool(1).workers(2), 1);
        assert_eq!(Connections::Pool(3).workers(2), 2);
        assert_eq!(Connections::PerUser.workers(8), 8);
        assert_eq!(Connections::PerUser.workers(0), 1);
    }
}
