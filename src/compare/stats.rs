//! The few tests `compare` needs, small enough to read: Mann–Whitney U (normal approximation
//! with tie and continuity correction), Fisher's exact test on two proportions, and a test of two
//! Poisson counts. Every p-value here is one-sided.

/// Result of a one-sided Mann–Whitney U test that `new` is stochastically larger than `base`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MannWhitney {
    /// U of `new`: the number of (base, new) pairs where new is larger, ties counting one half.
    pub u: f64,
    /// Standardised U (tie- and continuity-corrected); 0 when every value is tied.
    pub z: f64,
    /// P(U ≥ observed) under "both samples come from one distribution".
    pub p: f64,
}

/// One-sided Mann–Whitney U test (alternative: `new` tends to be larger than `base`).
///
/// Normal approximation: mean n₁n₂/2, variance n₁n₂/12 · ((N+1) − Σ(t³−t)/(N(N−1))) where t runs
/// over the sizes of groups of tied values, and a continuity correction of ½. With no usable
/// variance (an empty side, or every value tied) there is no evidence of a shift: p = 1.
pub fn mann_whitney_greater(base: &[f64], new: &[f64]) -> MannWhitney {
    let (n1, n2) = (base.len() as f64, new.len() as f64);
    let mut all: Vec<(f64, bool)> = base
        .iter()
        .map(|&v| (v, false))
        .chain(new.iter().map(|&v| (v, true)))
        .collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    // Average ranks (1-based) over runs of tied values; Σ(t³ − t) for the variance.
    let (mut rank_sum_new, mut ties) = (0.0, 0.0);
    let mut i = 0;
    while i < all.len() {
        let mut j = i;
        while j + 1 < all.len() && all[j + 1].0 == all[i].0 {
            j += 1;
        }
        let t = (j - i + 1) as f64;
        let rank = (i + j) as f64 / 2.0 + 1.0;
        rank_sum_new += rank * all[i..=j].iter().filter(|x| x.1).count() as f64;
        ties += t * t * t - t;
        i = j + 1;
    }
    let u = rank_sum_new - n2 * (n2 + 1.0) / 2.0;
    let n = n1 + n2;
    let variance = if n > 1.0 {
        n1 * n2 / 12.0 * ((n + 1.0) - ties / (n * (n - 1.0)))
    } else {
        0.0
    };
    if n1 == 0.0 || n2 == 0.0 || variance <= 0.0 {
        return MannWhitney { u, z: 0.0, p: 1.0 };
    }
    let z = (u - n1 * n2 / 2.0 - 0.5) / variance.sqrt();
    MannWhitney {
        u,
        z,
        p: upper_tail(z),
    }
}

/// P(Z > z) for a standard normal Z.
pub fn upper_tail(z: f64) -> f64 {
    0.5 * erfc(z / std::f64::consts::SQRT_2)
}

/// Complementary error function, relative error below 1.2e-7 everywhere (Chebyshev fit from
/// Numerical Recipes, `erfcc`).
pub fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let r = t * (-z * z + poly).exp();
    if x >= 0.0 {
        r
    } else {
        2.0 - r
    }
}

/// Fisher's exact test, one-sided: p of seeing at least `new_errors` of the `base_errors +
/// new_errors` errors in NEW if both runs had the same error probability (the hypergeometric
/// tail, conditional on the total). Exact where the two-proportion z-test is poor: errors are
/// rare, so their counts are small.
pub fn fisher_greater(base_errors: u64, base_n: u64, new_errors: u64, new_n: u64) -> f64 {
    let k = base_errors + new_errors;
    if k == 0 || base_n == 0 || new_n == 0 {
        return 1.0;
    }
    let (k, n1, n2, x) = (k as f64, base_n as f64, new_n as f64, new_errors as f64);
    let lo = (k - n1).max(0.0);
    let hi = k.min(n2);
    // Log weights of P(X = x) up to a constant, from the ratio of consecutive terms.
    let mut weights = Vec::with_capacity((hi - lo) as usize + 1);
    let mut w = 0.0;
    let mut at = lo;
    loop {
        weights.push((at, w));
        if at >= hi {
            break;
        }
        w += ((k - at) * (n2 - at)).ln() - ((at + 1.0) * (n1 - k + at + 1.0)).ln();
        at += 1.0;
    }
    let top = weights
        .iter()
        .map(|p| p.1)
        .fold(f64::NEG_INFINITY, f64::max);
    let total: f64 = weights.iter().map(|p| (p.1 - top).exp()).sum();
    let tail: f64 = weights
        .iter()
        .filter(|p| p.0 >= x)
        .map(|p| (p.1 - top).exp())
        .sum();
    (tail / total).min(1.0)
}

/// Two Poisson counts over spans `t_base` and `t_new` (seconds): p of NEW's count being this low
/// or lower if both ran at one rate. Conditional on the total, NEW's count is binomial with
/// p = t_new/(t_base+t_new); normal approximation with continuity correction. Conservative for
/// evenly spaced arrivals, whose counts vary less than Poisson ones.
pub fn poisson_rate_lower(base_count: u64, t_base: f64, new_count: u64, t_new: f64) -> f64 {
    let n = (base_count + new_count) as f64;
    if n == 0.0 || t_base <= 0.0 || t_new <= 0.0 {
        return 1.0;
    }
    let share = t_new / (t_base + t_new);
    let sd = (n * share * (1.0 - share)).sqrt();
    let z = (new_count as f64 + 0.5 - n * share) / sd;
    1.0 - upper_tail(z)
}
