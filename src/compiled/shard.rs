//! `--shard i/N`: one of N generator processes running the same scenario (k6's execution
//! segments are the model). Every shard derives its share from the scenario alone, so shards
//! need no coordinator and no network between them:
//! - open arrival k (the one-process timeline's k-th, same seed) belongs to shard `k mod N`:
//!   interleaved, not time-sliced, so every shard sees the whole load profile at 1/N of the rate;
//! - slot s of a closed phase belongs to shard `s mod N`;
//! - `max_users` and `max_inflight` are split floor/ceil, so the shards' caps sum to the cap;
//! - user indexes stay the global ones, so phones, uuids and `user.index` never collide.
//!
//! Shards are numbered from 0, as a Kubernetes Indexed Job's `JOB_COMPLETION_INDEX` is.

use serde::{Deserialize, Serialize};

/// The most shards a scenario may be split into.
pub const MAX_SHARDS: u64 = 100_000;

/// Shard `index` of `count` (0-based); `0/1` is the whole scenario in one process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Shard {
    pub index: u64,
    pub count: u64,
}

impl Default for Shard {
    fn default() -> Self {
        Shard::WHOLE
    }
}

impl Shard {
    /// The whole scenario: one process.
    pub const WHOLE: Shard = Shard { index: 0, count: 1 };

    /// `i/N` as `--shard` takes it: 0 ≤ i < N, 1 ≤ N ≤ [`MAX_SHARDS`].
    pub fn parse(s: &str) -> Result<Shard, String> {
        let bad = |why: &str| {
            format!("`{s}` is not a shard: {why} (expected i/N with shards numbered from 0, e.g. 0/4 … 3/4)")
        };
        let (i, n) = s.trim().split_once('/').ok_or_else(|| bad("no `/`"))?;
        let index: u64 = i
            .trim()
            .parse()
            .map_err(|_| bad("the index is not a number"))?;
        let count: u64 = n
            .trim()
            .parse()
            .map_err(|_| bad("the count is not a number"))?;
        if count == 0 || count > MAX_SHARDS {
            return Err(bad(&format!("the count must be 1 to {MAX_SHARDS}")));
        }
        if index >= count {
            return Err(bad(&format!(
                "the index must be below the count, 0 to {}",
                count - 1
            )));
        }
        Ok(Shard { index, count })
    }

    /// Whether this is the whole scenario (no `--shard`, or `0/1`).
    pub fn is_whole(self) -> bool {
        self.count <= 1
    }

    /// Whether the k-th item of a sequence the shards deal round-robin (an open arrival, a
    /// closed phase's slot) is this shard's.
    pub fn owns(self, k: u64) -> bool {
        k % self.count.max(1) == self.index
    }

    /// The position of this shard's item `k` among its own items (for dealing them on to
    /// workers): `k / N`.
    pub fn local(self, k: u64) -> u64 {
        k / self.count.max(1)
    }

    /// This shard's part of `total` (a cap): floor or ceil of total / N, the first
    /// `total mod N` shards taking one more, so the parts sum to `total` exactly.
    pub fn share(self, total: u64) -> u64 {
        let n = self.count.max(1);
        total / n + u64::from(self.index < total % n)
    }

    /// `i/N`.
    pub fn label(self) -> String {
        format!("{}/{}", self.index, self.count)
    }
}

/// A scenario's identity for `inrush merge`: shards of one run must have read the same file
/// with the same scales and the same files it names (`file_inputs`). FNV-1a (64 bits) of the
/// text, the command line's overrides and those files' contents, in hex: a check against mixing
/// runs up, not a cryptographic digest.
pub fn fingerprint(text: &str, overrides: &[String], inputs: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    };
    eat(text.as_bytes());
    for o in overrides {
        eat(b"\n--");
        eat(o.as_bytes());
    }
    // Absent for a scenario that names no file: its fingerprint is the one it always had.
    if !inputs.is_empty() {
        eat(b"\n--files\n");
        eat(inputs);
    }
    format!("fnv1a64:{h:016x}")
}

/// What the files a scenario names held, as the plan took them in: a replayed curve's points
/// (they are the schedule) and each feeder's rows (they are the users). Two machines whose
/// `day.csv` differ run different loads from the same text.
pub fn file_inputs(plan: &super::Plan) -> Vec<u8> {
    let mut out = Vec::new();
    for phase in &plan.phases {
        if let super::load::Load::Curve(curve) = &phase.load {
            out.extend_from_slice(b"curve ");
            out.extend_from_slice(phase.name.as_bytes());
            for (t, r) in curve.points.iter() {
                out.extend_from_slice(&t.to_le_bytes());
                out.extend_from_slice(&r.to_le_bytes());
            }
        }
    }
    for feeder in &plan.flows.feeders {
        out.extend_from_slice(b"feeder ");
        out.extend_from_slice(feeder.name.as_bytes());
        for cell in feeder.columns.iter().chain(feeder.rows.iter().flatten()) {
            out.push(0);
            out.extend_from_slice(cell.as_bytes());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_zero_based_and_refuses_the_rest() {
        assert_eq!(Shard::parse("0/1"), Ok(Shard::WHOLE));
        assert_eq!(Shard::parse("3/4"), Ok(Shard { index: 3, count: 4 }));
        for bad in [
            "3/2", "0/0", "4/4", "x", "1", "a/2", "1/b", "-1/2", "1/2/3", "",
        ] {
            assert!(Shard::parse(bad).is_err(), "{bad}");
        }
        let why = Shard::parse("3/2").expect_err("out of range");
        assert!(why.contains("`3/2`") && why.contains("from 0"), "{why}");
    }

    #[test]
    fn shares_sum_exactly_and_differ_by_at_most_one() {
        for total in [0u64, 1, 5, 7, 100, 101] {
            for n in 1..=9u64 {
                let parts: Vec<u64> = (0..n)
                    .map(|i| Shard { index: i, count: n }.share(total))
                    .collect();
                assert_eq!(parts.iter().sum::<u64>(), total, "{total} over {n}");
                let (lo, hi) = (parts.iter().min(), parts.iter().max());
                assert!(hi.zip(lo).is_some_and(|(h, l)| h - l <= 1), "{parts:?}");
            }
        }
    }

    #[test]
    fn every_item_has_exactly_one_owner() {
        for n in 1..=5u64 {
            for k in 0..50u64 {
                let owners = (0..n)
                    .filter(|&i| Shard { index: i, count: n }.owns(k))
                    .count();
                assert_eq!(owners, 1);
            }
        }
    }

    #[test]
    fn the_fingerprint_follows_the_text_and_the_scales() {
        let a = fingerprint("name = \"a\"", &[], &[]);
        assert_eq!(a, fingerprint("name = \"a\"", &[], &[]));
        assert_ne!(a, fingerprint("name = \"b\"", &[], &[]));
        assert_ne!(
            a,
            fingerprint("name = \"a\"", &["rate scale 2".into()], &[])
        );
        assert_ne!(a, fingerprint("name = \"a\"", &[], b"curve c"));
    }
}
