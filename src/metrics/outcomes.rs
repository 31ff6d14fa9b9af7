//! How each started user's flow ended: it completed, it failed (a failed operation ended it), or
//! it was cut off (still mid-flow when the run stopped it: the schedule's end stopped new
//! operations, the drain ran out, or the run was interrupted), with the step it was in.
//!
//! Every started user ends in exactly one of the three, recorded once when its flow returns, so
//! over a run (and per region) `started = completed + failed + cut_off`. A user is counted in the
//! interval it ended in: a phase's or an interval's outcomes are those of the users that ended
//! there, so the identity holds for the run's totals, not within a phase its users outlived.

/// How one user's flow ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Completed,
    /// A failed operation ended the flow (its error is counted under the step's metric).
    Failed,
    /// The run stopped the flow before its end.
    CutOff,
}

/// Started users by how their flow ended: plain counts in a worker's recorder, summed by the
/// collector like every other count.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcomes {
    pub completed: u64,
    pub failed: u64,
    pub cut_off: u64,
    /// `cut_off` by the step the users were in (waiting for it or doing it), by its label: a
    /// handful of steps per run, so a short list that allocates once per label and interval,
    /// never per user.
    pub cut_off_in: Vec<(Box<str>, u64)>,
}

impl Outcomes {
    /// One user's flow ended with `outcome`; `step` labels where a cut-off user was.
    pub fn add(&mut self, outcome: Outcome, step: &str) {
        match outcome {
            Outcome::Completed => self.completed += 1,
            Outcome::Failed => self.failed += 1,
            Outcome::CutOff => {
                self.cut_off += 1;
                self.add_cut_off_in(step, 1);
            }
        }
    }

    fn add_cut_off_in(&mut self, step: &str, n: u64) {
        match self.cut_off_in.iter_mut().find(|(s, _)| &**s == step) {
            Some((_, count)) => *count += n,
            None => self.cut_off_in.push((step.into(), n)),
        }
    }

    /// Users whose flow ended, whichever way.
    pub fn ended(&self) -> u64 {
        self.completed + self.failed + self.cut_off
    }

    pub fn merge(&mut self, other: &Outcomes) {
        self.completed += other.completed;
        self.failed += other.failed;
        self.cut_off += other.cut_off;
        for (step, n) in &other.cut_off_in {
            self.add_cut_off_in(step, *n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_user_counts_once_and_the_cut_off_ones_by_step() {
        let mut a = Outcomes::default();
        a.add(Outcome::Completed, "chat");
        a.add(Outcome::Failed, "chat");
        a.add(Outcome::CutOff, "chat");
        a.add(Outcome::CutOff, "f step 3 (think)");
        a.add(Outcome::CutOff, "chat");
        assert_eq!((a.completed, a.failed, a.cut_off, a.ended()), (1, 1, 3, 5));
        let mut total = Outcomes::default();
        total.merge(&a);
        total.merge(&a);
        assert_eq!(total.ended(), 10);
        assert_eq!(
            total.cut_off_in,
            vec![("chat".into(), 4), ("f step 3 (think)".into(), 2)]
        );
        let by_step: u64 = total.cut_off_in.iter().map(|(_, n)| n).sum();
        assert_eq!(by_step, total.cut_off);
    }
}
