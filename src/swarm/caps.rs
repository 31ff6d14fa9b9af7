//! The caps decision, one rule for the run's workers and for the dry run's model of them: a
//! worker refuses to start a user once its even share of `max_users` (active users) or of
//! `max_inflight` (timed operations in flight) is reached.

use crate::compiled::Plan;

/// Which cap refused a start (counted as a drop of that kind).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cap {
    MaxUsers,
    MaxInflight,
}

/// One worker's load as the caps see it. Read only when the matching cap is set: the dry run's
/// reads move its queues forward in time, so they must happen exactly as often as before.
pub trait Occupancy {
    /// Users active on this worker now.
    fn active_users(&mut self) -> u64;
    /// Timed operations in flight on this worker now.
    fn inflight(&mut self) -> u64;
}

/// Why a worker (one of `workers`) cannot start a user now, if a cap stops it. Each worker
/// keeps `cap / workers` rounded up: no coordination between workers, and never below one.
pub fn refused(plan: &Plan, workers: u64, worker: &mut impl Occupancy) -> Option<Cap> {
    if plan
        .max_users
        .is_some_and(|c| worker.active_users() >= worker_share(c, workers))
    {
        return Some(Cap::MaxUsers);
    }
    if plan
        .max_inflight
        .is_some_and(|c| worker.inflight() >= worker_share(c, workers))
    {
        return Some(Cap::MaxInflight);
    }
    None
}

/// What each of `workers` workers keeps of a cap: an even share rounded up, never below one.
pub fn worker_share(cap: u64, workers: u64) -> u64 {
    cap.div_ceil(workers.max(1))
}

/// A run's worker: its live counters.
impl Occupancy for &super::WorkerCtx {
    fn active_users(&mut self) -> u64 {
        self.active_users.get()
    }
    fn inflight(&mut self) -> u64 {
        self.inflight.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed(u64, u64);
    impl Occupancy for Fixed {
        fn active_users(&mut self) -> u64 {
            self.0
        }
        fn inflight(&mut self) -> u64 {
            self.1
        }
    }

    #[test]
    fn each_worker_keeps_its_share_rounded_up() {
        let text = "name = \"t\"\n[target]\nbuiltin = {}\n[load]\nmax_users = 5\nmax_inflight = 3\nphases = [ { name = \"a\", duration = \"1s\", rate = 1 } ]\n";
        let plan = crate::compiled::compile(std::path::Path::new("t.toml"), text, Some(1))
            .expect("valid scenario");
        // Two workers: 3 users and 2 operations each.
        assert_eq!(refused(&plan, 2, &mut Fixed(2, 1)), None);
        assert_eq!(refused(&plan, 2, &mut Fixed(3, 0)), Some(Cap::MaxUsers));
        assert_eq!(refused(&plan, 2, &mut Fixed(0, 2)), Some(Cap::MaxInflight));
        // The users cap is asked first.
        assert_eq!(refused(&plan, 2, &mut Fixed(3, 2)), Some(Cap::MaxUsers));
    }
}
