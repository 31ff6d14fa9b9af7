//! Pure scheduling: a plan and a seed in, intended start times out. No I/O and no clocks, so the
//! same scenario and seed always give the same arrival timeline.

use std::time::Duration;

use rand::{RngExt, SeedableRng};

use crate::compiled::load::Piece;
use crate::compiled::shard::Shard;
use crate::compiled::{Arrivals, Phase, Plan};

/// The intended arrival times of every user, in order, as offsets from the start of the run.
/// Lazy: memory stays flat however many users the plan has.
pub struct Timeline {
    /// The phases cut into pieces of one linear or exponential shape each (a recorded curve is
    /// many linear pieces), so the inversion below stays closed-form.
    pieces: Vec<Piece>,
    kind: Arrivals,
    rng: rand::rngs::SmallRng,
    /// Index of the piece holding the next arrival.
    piece: usize,
    /// Expected arrivals before the current piece starts (the cumulative intensity).
    mass_before: f64,
    /// Cumulative intensity of the next arrival.
    next_mass: f64,
    index: u64,
}

/// Seeds that keep independent random streams apart for the same scenario seed.
pub const ARRIVAL_STREAM: u64 = 0x6172_7269_7661_6c73;

pub fn arrivals(plan: &Plan) -> Timeline {
    let mut rng = rand::rngs::SmallRng::seed_from_u64(plan.seed ^ ARRIVAL_STREAM);
    let first = next_arrival_mass(plan.arrivals, &mut rng, None);
    Timeline {
        pieces: plan.phases.iter().flat_map(Phase::pieces).collect(),
        kind: plan.arrivals,
        rng,
        piece: 0,
        mass_before: 0.0,
        next_mass: first,
        index: 0,
    }
}

/// This process's arrivals: the one-process timeline's (same seed), those of `plan.shard` —
/// arrival k goes to shard `k mod N`, so the shards' union is exactly [`arrivals`]. Every
/// shard walks the whole timeline and keeps its own: no coordination, and the indexes stay
/// the global ones (identities never collide between shards).
pub fn shard_arrivals(plan: &Plan) -> impl Iterator<Item = (u64, Duration)> {
    let shard = plan.shard;
    arrivals(plan).filter(move |(i, _)| shard.owns(*i))
}

/// The worker (of this shard's `workers`) that starts user `index`, and runs its returns:
/// the shard's users dealt round-robin.
pub fn worker_of(shard: Shard, index: u64, workers: u64) -> u64 {
    shard.local(index) % workers.max(1)
}

/// The cumulative intensity of the next arrival: the previous one plus Exp(1) for a Poisson
/// process (time-rescaling theorem), plus 1 for evenly spaced arrivals (the first one half a
/// step in).
fn next_arrival_mass(kind: Arrivals, rng: &mut rand::rngs::SmallRng, previous: Option<f64>) -> f64 {
    match (kind, previous) {
        (Arrivals::Poisson, p) => {
            let u: f64 = rng.random();
            p.unwrap_or(0.0) - (1.0 - u).ln()
        }
        (Arrivals::Uniform, None) => 0.5,
        (Arrivals::Uniform, Some(p)) => p + 1.0,
    }
}

impl Iterator for Timeline {
    /// (user index, intended arrival time)
    type Item = (u64, Duration);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let piece = self.pieces.get(self.piece)?;
            let mass = piece.mass();
            let within = self.next_mass - self.mass_before;
            if within < mass {
                let t = piece.start + Duration::from_secs_f64(piece.invert(within));
                let item = (self.index, t);
                self.index += 1;
                self.next_mass = next_arrival_mass(self.kind, &mut self.rng, Some(self.next_mass));
                return Some(item);
            }
            self.mass_before += mass;
            self.piece += 1;
        }
    }
}

/// The first user index of closed-phase users (0 without closed phases): above every index the
/// open timeline can give, so that closed users' identities collide with no open arrival's.
/// The timeline's count is its expected arrivals `m` (evenly spaced: at most `m + 1`; Poisson:
/// `m` give or take `sqrt(m)`), so `m + 20·sqrt(m) + 20` is above it for any seed (a Poisson
/// count 20 standard deviations out is beyond any chance), without walking a timeline that may
/// hold billions of arrivals.
pub fn first_closed_index(plan: &Plan) -> u64 {
    if plan.phases.iter().any(|p| p.closed().is_some()) {
        let m: f64 = plan.phases.iter().map(Phase::mass).sum();
        (m + 20.0 * m.sqrt() + 20.0).ceil() as u64
    } else {
        0
    }
}

/// The user index of the k-th closed-phase user a worker of `shard` starts: after the `base`
/// indexes of the open timeline, interleaved by worker and then by shard so that no two users
/// share one, whatever number of workers each shard runs.
pub fn closed_index(base: u64, k: u64, worker: u64, workers: u64, shard: Shard) -> u64 {
    base + (k * workers + worker) * shard.count.max(1) + shard.index
}

/// Interval boundaries shared by every worker, so their snapshots line up: every whole second,
/// plus every phase boundary (an interval never straddles two phases); after the plan's end,
/// every second counted from the end.
pub fn next_boundary(plan: &Plan, after: Duration) -> Duration {
    let end = plan.duration();
    if after >= end {
        let past = (after - end).as_secs() + 1;
        return end + Duration::from_secs(past);
    }
    let next_second = Duration::from_secs(after.as_secs() + 1);
    plan.phases
        .iter()
        .map(Phase::end)
        .filter(|&e| e > after)
        .fold(next_second, Duration::min)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compiled::{Curve, Dist, Load, Ramp, Shape, Target, UserPlan};
    use crate::target::Knobs;

    fn plan(kind: Arrivals, seed: u64, phases: &[(f64, f64, u64)]) -> Plan {
        let mut start = Duration::ZERO;
        let phases = phases
            .iter()
            .enumerate()
            .map(|(i, &(from_rate, to_rate, secs))| {
                let p = Phase {
                    name: format!("p{i}"),
                    start,
                    duration: Duration::from_secs(secs),
                    load: Load::Ramp(Ramp {
                        from: from_rate,
                        to: to_rate,
                        shape: Shape::Linear,
                    }),
                };
                start += p.duration;
                p
            })
            .collect();
        Plan {
            name: "t".into(),
            description: String::new(),
            source: "t.toml".into(),
            seed,
            target: Target::Builtin(Knobs::default()),
            tls: Default::default(),
            arrivals: kind,
            phases,
            max_users: None,
            max_inflight: None,
            user: UserPlan {
                contacts_known: 0,
                contacts_unknown: 0,
                messages: 0,
                think: Dist::Constant(Duration::ZERO),
                stay_online: Dist::Constant(Duration::ZERO),
                phone_prefix: "+1".into(),
                returning: 0.0,
                away: Dist::Constant(Duration::ZERO),
            },
            timeout: Duration::from_secs(1),
            drain: Duration::ZERO,
            delivery_deadline: None,
            max_start_lag: None,
            overload: Default::default(),
            retry: None,
            reconnect: None,
            source_addresses: Vec::new(),
            connections: Default::default(),
            thresholds: Vec::new(),
            catalog: crate::metrics::Catalog::new(["register"]),
            regions: Default::default(),
            capacity: Default::default(),
            overrides: Vec::new(),
            shard: crate::compiled::shard::Shard::WHOLE,
            fingerprint: String::new(),
            flows: std::sync::Arc::new(crate::compiled::flow::compile::FlowSet {
                flows: Vec::new(),
                cohorts: Vec::new(),
                catalog: crate::metrics::Catalog::new(["register"]),
                feeders: Vec::new(),
                secrets: Vec::new(),
            }),
        }
    }

    /// Makes a ramp phase grow exponentially.
    fn grow(p: &mut Phase) {
        if let Load::Ramp(r) = &mut p.load {
            r.shape = Shape::Exponential;
        }
    }

    #[test]
    fn uniform_arrivals_match_the_integral_exactly() {
        // 10/s for 10 s, then a ramp 10 → 30 over 10 s (200 more), then 0 for 5 s.
        let p = plan(
            Arrivals::Uniform,
            1,
            &[(10.0, 10.0, 10), (10.0, 30.0, 10), (0.0, 0.0, 5)],
        );
        let times: Vec<Duration> = arrivals(&p).map(|(_, t)| t).collect();
        assert_eq!(times.len(), 300);
        assert!(times.windows(2).all(|w| w[0] <= w[1]));
        assert!(times.iter().all(|&t| t < Duration::from_secs(20)));
        // Within the ramp, the count before time t is ∫ rate = 10t + t²: at t = 5 s, 75.
        let in_first_half = times
            .iter()
            .filter(|&&t| t >= Duration::from_secs(10) && t < Duration::from_secs(15))
            .count();
        assert!((74..=76).contains(&in_first_half), "{in_first_half}");
    }

    #[test]
    fn poisson_counts_and_dispersion_match_theory() {
        // 200/s for 100 s: 20 000 expected; a Poisson count has sd √20000 ≈ 141.
        let p = plan(Arrivals::Poisson, 42, &[(200.0, 200.0, 100)]);
        let times: Vec<f64> = arrivals(&p).map(|(_, t)| t.as_secs_f64()).collect();
        let n = times.len() as f64;
        assert!((n - 20_000.0).abs() < 5.0 * 141.0, "count {n}");
        // Inter-arrival times are exponential: mean 5 ms and coefficient of variation 1.
        let gaps: Vec<f64> = times.windows(2).map(|w| w[1] - w[0]).collect();
        let mean = gaps.iter().sum::<f64>() / gaps.len() as f64;
        let var = gaps.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / gaps.len() as f64;
        assert!((mean - 0.005).abs() < 0.0002, "mean {mean}");
        let cv = var.sqrt() / mean;
        assert!((cv - 1.0).abs() < 0.05, "cv {cv}");
        // Counts per second are Poisson: variance / mean (index of dispersion) ≈ 1.
        let mut per_second = [0u32; 100];
        for t in &times {
            per_second[(*t as usize).min(99)] += 1;
        }
        let m = per_second.iter().sum::<u32>() as f64 / 100.0;
        let v = per_second
            .iter()
            .map(|&c| (c as f64 - m).powi(2))
            .sum::<f64>()
            / 99.0;
        assert!((v / m - 1.0).abs() < 0.4, "dispersion {}", v / m);
    }

    #[test]
    fn exponential_growth_matches_its_integral() {
        // 10/s growing to 1000/s over 20 s: rate 10·100^(t/20), integral (1000 − 10)·20/ln 100
        // ≈ 4 299.4 arrivals, and the rate doubles every 20·ln 2/ln 100 ≈ 3.01 s.
        let mut p = plan(Arrivals::Uniform, 1, &[(10.0, 1000.0, 20)]);
        grow(&mut p.phases[0]);
        let expected = 990.0 * 20.0 / 100f64.ln();
        assert!((p.phases[0].mass() - expected).abs() < 1e-6);
        let times: Vec<f64> = arrivals(&p).map(|(_, t)| t.as_secs_f64()).collect();
        assert!(
            (times.len() as f64 - expected).abs() / expected < 0.01,
            "{}",
            times.len()
        );
        // Arrivals in [0, t) follow Λ(t) = 10/k·(e^(kt) − 1): check at 10 s (≈ 42.99·(10 − 1) = 386.9).
        let k = 100f64.ln() / 20.0;
        let at_10 = 10.0 / k * ((k * 10.0).exp() - 1.0);
        let counted = times.iter().filter(|&&t| t < 10.0).count() as f64;
        assert!(
            (counted - at_10).abs() / at_10 < 0.01,
            "{counted} vs {at_10}"
        );
        // Poisson arrivals: within 1 % of the integral too. At ~430 000 arrivals a Poisson count
        // has sd √430000 ≈ 0.15 %, so 1 % is over six standard deviations.
        let mut q = plan(Arrivals::Poisson, 3, &[(1_000.0, 100_000.0, 20)]);
        grow(&mut q.phases[0]);
        let n = arrivals(&q).count() as f64;
        let expected = q.phases[0].mass();
        assert!((n - expected).abs() / expected < 0.01, "{n} vs {expected}");
    }

    #[test]
    fn a_recorded_curve_is_replayed_piece_by_piece() {
        // 0 → 100/s over 10 s, then 100 → 20/s over 10 s: 500 + 600 = 1 100 arrivals.
        let mut p = plan(Arrivals::Uniform, 1, &[(0.0, 0.0, 20)]);
        p.phases[0].load = Load::Curve(Curve {
            points: vec![(0.0, 0.0), (10.0, 100.0), (20.0, 20.0)].into(),
        });
        assert!((p.phases[0].mass() - 1100.0).abs() < 1e-9);
        let times: Vec<f64> = arrivals(&p).map(|(_, t)| t.as_secs_f64()).collect();
        assert_eq!(times.len(), 1100);
        let first_half = times.iter().filter(|&&t| t < 10.0).count();
        assert_eq!(first_half, 500);
    }

    #[test]
    fn same_seed_same_timeline_other_seed_other_timeline() {
        let a = plan(Arrivals::Poisson, 7, &[(50.0, 100.0, 5)]);
        let b = plan(Arrivals::Poisson, 7, &[(50.0, 100.0, 5)]);
        let c = plan(Arrivals::Poisson, 8, &[(50.0, 100.0, 5)]);
        let ta: Vec<_> = arrivals(&a).collect();
        assert_eq!(ta, arrivals(&b).collect::<Vec<_>>());
        assert_ne!(ta, arrivals(&c).collect::<Vec<_>>());
    }

    #[test]
    fn closed_users_start_evenly_and_are_dealt_to_workers() {
        let mut p = plan(Arrivals::Uniform, 1, &[(5.0, 5.0, 2), (0.0, 0.0, 10)]);
        let closed = crate::compiled::Closed {
            users: 10,
            ramp: Duration::from_secs(2),
        };
        p.phases[1].load = Load::Closed(closed);
        // The open timeline brings nobody during a closed phase.
        assert_eq!(arrivals(&p).count(), 10);
        // One worker: slot s at 2 s + 200 ms·s.
        let whole = Shard::WHOLE;
        let all: Vec<Duration> = closed
            .first_starts(p.phases[1].start, whole, 0, 1)
            .collect();
        let expected: Vec<Duration> = (0..10)
            .map(|s| Duration::from_secs(2) + Duration::from_millis(200 * s))
            .collect();
        assert_eq!(all, expected);
        // Three workers share the same ten slots, round-robin, none twice.
        let mut dealt: Vec<Duration> = (0..3)
            .flat_map(|w| closed.first_starts(p.phases[1].start, whole, w, 3))
            .collect();
        assert_eq!(
            closed.first_starts(p.phases[1].start, whole, 0, 3).count(),
            4
        );
        assert_eq!(
            closed.first_starts(p.phases[1].start, whole, 2, 3).count(),
            3
        );
        dealt.sort();
        assert_eq!(dealt, expected);
        // Three shards of two workers each: the same ten slots again, 4 + 3 + 3.
        let mut sharded = Vec::new();
        for i in 0..3 {
            let shard = Shard { index: i, count: 3 };
            let mine: Vec<Duration> = (0..2)
                .flat_map(|w| closed.first_starts(p.phases[1].start, shard, w, 2))
                .collect();
            assert_eq!(mine.len() as u64, shard.share(10));
            sharded.extend(mine);
        }
        sharded.sort();
        assert_eq!(sharded, expected);
    }

    #[test]
    fn the_first_closed_index_is_above_every_open_arrival_for_any_seed() {
        for kind in [Arrivals::Poisson, Arrivals::Uniform] {
            for seed in 0..200 {
                let mut p = plan(kind, seed, &[(3.0, 3.0, 2), (5.0, 9.0, 3)]);
                let end = p.duration();
                p.phases.push(Phase {
                    name: "soak".into(),
                    start: end,
                    duration: Duration::from_secs(1),
                    load: Load::Closed(crate::compiled::Closed {
                        users: 2,
                        ramp: Duration::ZERO,
                    }),
                });
                let open = arrivals(&p).count() as u64;
                let base = first_closed_index(&p);
                assert!(
                    open <= base,
                    "{kind:?} seed {seed}: {open} arrivals, base {base}"
                );
                // Not wastefully far either: the expected 27 plus 20·sqrt(27) + 20.
                assert!(base <= 27 + 124, "base {base}");
            }
        }
        // Without closed phases nothing is reserved.
        assert_eq!(
            first_closed_index(&plan(Arrivals::Poisson, 1, &[(3.0, 3.0, 2)])),
            0
        );
    }

    #[test]
    fn closed_indexes_follow_the_open_ones_and_never_collide() {
        let (base, workers) = (1_000, 3);
        let mut seen = std::collections::HashSet::new();
        for w in 0..workers {
            for k in 0..500 {
                let i = closed_index(base, k, w, workers, Shard::WHOLE);
                assert!(i >= base);
                assert!(seen.insert(i), "index {i} twice");
            }
        }
        // Dense: 1 500 users take exactly the 1 500 indexes after the open ones.
        assert_eq!(seen.iter().max(), Some(&(base + 1_499)));
        // Shards with different numbers of workers never collide either.
        let mut seen = std::collections::HashSet::new();
        for (i, workers) in [(0, 1), (1, 2), (2, 5)] {
            let shard = Shard { index: i, count: 3 };
            for w in 0..workers {
                for k in 0..100 {
                    let index = closed_index(base, k, w, workers, shard);
                    assert!(index >= base && seen.insert(index), "index {index} twice");
                }
            }
        }
    }

    #[test]
    fn the_shards_arrivals_are_exactly_the_one_process_timeline() {
        for kind in [Arrivals::Poisson, Arrivals::Uniform] {
            let mut p = plan(kind, 11, &[(20.0, 60.0, 5), (40.0, 40.0, 3)]);
            let whole: Vec<(u64, Duration)> = arrivals(&p).collect();
            for n in [1u64, 2, 3, 4, 7] {
                let mut union = Vec::new();
                for i in 0..n {
                    p.shard = Shard { index: i, count: n };
                    let mine: Vec<(u64, Duration)> = shard_arrivals(&p).collect();
                    // Interleaved, not time-sliced: every shard spans the whole profile.
                    assert!(mine.iter().all(|(k, _)| k % n == i));
                    assert_eq!(mine.len() as u64, p.shard.share(whole.len() as u64));
                    union.extend(mine);
                }
                union.sort_by_key(|(k, _)| *k);
                assert_eq!(union, whole, "{kind:?}, {n} shards");
            }
        }
    }

    #[test]
    fn a_shards_users_are_dealt_evenly_to_its_workers() {
        let shard = Shard { index: 1, count: 4 };
        let mut per_worker = [0u32; 3];
        for k in (0..1200u64).filter(|&k| shard.owns(k)) {
            per_worker[worker_of(shard, k, 3) as usize] += 1;
        }
        assert_eq!(per_worker, [100, 100, 100]);
    }

    #[test]
    fn boundaries_are_whole_seconds_and_phase_ends() {
        let mut p = plan(Arrivals::Uniform, 1, &[(1.0, 1.0, 2)]);
        p.phases[0].duration = Duration::from_millis(1500);
        let b = |ms: u64| next_boundary(&p, Duration::from_millis(ms)).as_millis();
        assert_eq!(b(0), 1000);
        assert_eq!(b(1000), 1500);
        assert_eq!(b(1500), 2500);
        assert_eq!(b(2500), 3500);
    }
}
