//! The search policy, pure: which rate to try next given the judgements so far, and when the
//! search is over. No I/O and no clock, so every rule is unit-tested with a fake judge.
//!
//! 1. **Doubling** from `from` (capped at `max`) until a rate fails.
//! 2. **Bisection** of [last pass, first fail] (the arithmetic midpoint) until
//!    `first fail ≤ last pass × (1 + precision)`.
//! 3. **Confirmation**: a fail is believed only when the same rate fails again. A fail then a
//!    pass at one rate (noise on a shared machine, or a rate on the edge) goes to a third step,
//!    and the majority of the three decides. A single noisy fail therefore never lowers the
//!    answer, and a real fail costs one extra step.
//! 4. **Inconclusive** steps (the generator could not keep up, or too little evidence) never
//!    count as the target's limit: one is repeated; a second one at the same rate ends the search
//!    as inconclusive, with the bracket found so far.

/// How one step was judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Judged {
    /// Every threshold held on the measured window.
    Pass,
    /// At least one threshold failed (or every operation failed).
    Fail,
    /// The measurement says nothing about the target: the generator fell behind, or too few
    /// samples.
    Inconclusive,
}

/// The bounds of the search, as the command line gives them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// The first rate tried, users per second.
    pub from: f64,
    /// No rate above this is tried.
    pub max: f64,
    /// Relative width of the final bracket, e.g. 0.1 for 10 %.
    pub precision: f64,
}

/// What to do next.
#[derive(Debug, Clone, PartialEq)]
pub enum Next {
    /// Run a step at this rate (users per second).
    Run(f64),
    /// The search is over.
    Done(End),
}

/// How a search ended.
#[derive(Debug, Clone, PartialEq)]
pub enum End {
    /// Every threshold held at `pass` and failed (confirmed) at `fail`, within the precision.
    Bracket { pass: f64, fail: f64 },
    /// Every rate up to `max` held: the target holds at least `pass` (= `max`).
    HoldsMax { pass: f64 },
    /// Even the lowest rate tried failed, confirmed.
    FailsLowest { fail: f64 },
    /// A rate stayed inconclusive after its repeat: the bracket so far, nothing concluded at
    /// `rate`.
    Inconclusive {
        rate: f64,
        pass: Option<f64>,
        fail: Option<f64>,
    },
}

/// The state of a search: the bracket so far and the judgements at the rate being tried.
#[derive(Debug, Clone)]
pub struct Search {
    limits: Limits,
    pass: Option<f64>,
    fail: Option<f64>,
    /// The rate being tried and its judgements so far (repeats included).
    current: Option<(f64, Vec<Judged>)>,
    ended: Option<End>,
}

/// What a rate's judgements so far decide.
#[derive(Debug, PartialEq)]
enum Decision {
    Decided(Judged),
    Repeat,
    GiveUp,
}

/// The confirmation rule (module docs, 3 and 4) on one rate's judgements, in order.
fn decide(judged: &[Judged]) -> Decision {
    let inconclusive = judged
        .iter()
        .filter(|j| **j == Judged::Inconclusive)
        .count();
    if inconclusive >= 2 {
        return Decision::GiveUp;
    }
    let conclusive: Vec<Judged> = judged
        .iter()
        .copied()
        .filter(|j| *j != Judged::Inconclusive)
        .collect();
    let fails = conclusive.iter().filter(|j| **j == Judged::Fail).count();
    let passes = conclusive.len() - fails;
    match (passes, fails) {
        (0, 0) | (0, 1) | (1, 1) => Decision::Repeat,
        (p, f) if p > f => Decision::Decided(Judged::Pass),
        _ => Decision::Decided(Judged::Fail),
    }
}

impl Search {
    pub fn new(limits: Limits) -> Search {
        Search {
            limits,
            pass: None,
            fail: None,
            current: None,
            ended: None,
        }
    }

    /// The bracket so far: the highest rate decided as passing, the lowest decided as failing.
    pub fn bracket(&self) -> (Option<f64>, Option<f64>) {
        (self.pass, self.fail)
    }

    /// The next step, or the end of the search.
    pub fn next(&self) -> Next {
        if let Some(end) = &self.ended {
            return Next::Done(end.clone());
        }
        if let Some((rate, _)) = &self.current {
            return Next::Run(*rate);
        }
        let Limits {
            from,
            max,
            precision,
        } = self.limits;
        match (self.pass, self.fail) {
            (None, None) => Next::Run(from.min(max)),
            (Some(pass), None) if pass >= max => Next::Done(End::HoldsMax { pass }),
            (Some(pass), None) => Next::Run((pass * 2.0).min(max)),
            (None, Some(fail)) => Next::Done(End::FailsLowest { fail }),
            (Some(pass), Some(fail)) if fail <= pass * (1.0 + precision) => {
                Next::Done(End::Bracket { pass, fail })
            }
            (Some(pass), Some(fail)) => Next::Run(round_rate((pass + fail) / 2.0)),
        }
    }

    /// Records the judgement of a step at `rate` (the rate [`Search::next`] asked for).
    pub fn record(&mut self, rate: f64, judged: Judged) {
        let mut list = match self.current.take() {
            Some((r, list)) if r == rate => list,
            _ => Vec::new(),
        };
        list.push(judged);
        match decide(&list) {
            Decision::Repeat => self.current = Some((rate, list)),
            Decision::GiveUp => {
                self.ended = Some(End::Inconclusive {
                    rate,
                    pass: self.pass,
                    fail: self.fail,
                })
            }
            Decision::Decided(Judged::Pass) => {
                self.pass = Some(self.pass.map_or(rate, |p| p.max(rate)))
            }
            Decision::Decided(_) => self.fail = Some(self.fail.map_or(rate, |f| f.min(rate))),
        }
    }
}

/// Rates are shown and run to 0.01/s: a bisected rate like 43.359375 reads as 43.36.
fn round_rate(r: f64) -> f64 {
    (r * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs a search to its end with `judge` deciding each step; returns the end and the rates
    /// run, in order.
    fn search(limits: Limits, mut judge: impl FnMut(f64, usize) -> Judged) -> (End, Vec<f64>) {
        let mut s = Search::new(limits);
        let mut rates = Vec::new();
        loop {
            match s.next() {
                Next::Done(end) => return (end, rates),
                Next::Run(rate) => {
                    let j = judge(rate, rates.len());
                    rates.push(rate);
                    s.record(rate, j);
                    assert!(rates.len() < 100, "the search must end: {rates:?}");
                }
            }
        }
    }

    fn limits(from: f64, max: f64, precision: f64) -> Limits {
        Limits {
            from,
            max,
            precision,
        }
    }

    /// A target that holds every rate up to `capacity` and fails above it.
    fn holds(capacity: f64) -> impl FnMut(f64, usize) -> Judged {
        move |rate, _| {
            if rate <= capacity {
                Judged::Pass
            } else {
                Judged::Fail
            }
        }
    }

    #[test]
    fn doubling_then_bisection_brackets_the_capacity_within_the_precision() {
        for capacity in [13.0, 40.0, 77.0, 145.0, 999.0] {
            let (end, rates) = search(limits(10.0, 10_000.0, 0.1), holds(capacity));
            let Some((pass, fail)) = (match end {
                End::Bracket { pass, fail } => Some((pass, fail)),
                _ => None,
            }) else {
                panic!("{capacity}: {end:?}")
            };
            assert!(
                pass <= capacity && capacity < fail,
                "{capacity}: {pass}..{fail}"
            );
            assert!(fail <= pass * 1.1, "{capacity}: {pass}..{fail}");
            // Doubling takes log2(capacity/from) + 1 steps, bisection log2(1/precision) + 1,
            // each fail one confirmation.
            assert!(rates.len() <= 20, "{capacity}: {rates:?}");
        }
    }

    #[test]
    fn the_doubling_starts_at_from_and_every_fail_is_confirmed_by_a_repeat() {
        let (end, rates) = search(limits(10.0, 1000.0, 0.3), holds(50.0));
        assert_eq!(
            rates,
            vec![10.0, 20.0, 40.0, 80.0, 80.0, 60.0, 60.0, 50.0],
            "{end:?}"
        );
        assert_eq!(
            end,
            End::Bracket {
                pass: 50.0,
                fail: 60.0
            }
        );
    }

    #[test]
    fn a_single_noisy_fail_does_not_lower_the_answer_and_a_split_goes_to_the_majority() {
        // The first try at 40/s fails by noise, its repeat passes, the third passes: 40 holds.
        let (end, rates) = search(limits(10.0, 1000.0, 0.3), |rate, i| {
            if rate > 50.0 || i == 2 {
                Judged::Fail
            } else {
                Judged::Pass
            }
        });
        assert_eq!(&rates[..5], &[10.0, 20.0, 40.0, 40.0, 40.0]);
        assert_eq!(
            end,
            End::Bracket {
                pass: 50.0,
                fail: 60.0
            }
        );
        // Fail, pass, fail: the majority fails.
        let mut s = Search::new(limits(10.0, 100.0, 0.1));
        for j in [Judged::Fail, Judged::Pass, Judged::Fail] {
            assert_eq!(s.next(), Next::Run(10.0));
            s.record(10.0, j);
        }
        assert_eq!(s.next(), Next::Done(End::FailsLowest { fail: 10.0 }));
    }

    #[test]
    fn a_rate_failing_everywhere_ends_at_the_lowest_step_after_its_confirmation() {
        let (end, rates) = search(limits(10.0, 1000.0, 0.1), |_, _| Judged::Fail);
        assert_eq!(rates, vec![10.0, 10.0]);
        assert_eq!(end, End::FailsLowest { fail: 10.0 });
    }

    #[test]
    fn a_target_holding_every_rate_up_to_max_is_said_to_hold_max() {
        let (end, rates) = search(limits(10.0, 50.0, 0.1), holds(1e9));
        assert_eq!(rates, vec![10.0, 20.0, 40.0, 50.0]);
        assert_eq!(end, End::HoldsMax { pass: 50.0 });
    }

    #[test]
    fn a_generator_bound_search_ends_inconclusive_and_never_calls_it_a_fail() {
        // The generator cannot hold more than 30/s: every step above is inconclusive, once
        // and again; the target's limit (100/s) is never reached, never reported.
        let (end, rates) = search(limits(10.0, 1000.0, 0.1), |rate, _| {
            if rate > 30.0 {
                Judged::Inconclusive
            } else if rate > 100.0 {
                Judged::Fail
            } else {
                Judged::Pass
            }
        });
        assert_eq!(rates, vec![10.0, 20.0, 40.0, 40.0]);
        assert_eq!(
            end,
            End::Inconclusive {
                rate: 40.0,
                pass: Some(20.0),
                fail: None
            }
        );
        // One inconclusive step is repeated and the repeat counts.
        let (end, rates) = search(limits(10.0, 20.0, 0.1), |rate, i| match i {
            0 => Judged::Inconclusive,
            _ if rate <= 20.0 => Judged::Pass,
            _ => Judged::Fail,
        });
        assert_eq!(rates, vec![10.0, 10.0, 20.0]);
        assert_eq!(end, End::HoldsMax { pass: 20.0 });
    }

    #[test]
    fn from_above_max_starts_at_max() {
        let (end, rates) = search(limits(80.0, 50.0, 0.1), holds(1e9));
        assert_eq!(rates, vec![50.0]);
        assert_eq!(end, End::HoldsMax { pass: 50.0 });
    }
}
