//! Pure decisions about axes: which scale and which range.

/// How a y axis maps values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum YScale {
    Linear,
    Log10,
}

/// Above this max/min ratio of the positive values, a panel uses a logarithmic y axis.
pub const LOG_RATIO_THRESHOLD: f64 = 50.0;

/// Log scale when the positive, finite values span more than [`LOG_RATIO_THRESHOLD`]×; linear
/// otherwise (including when there are fewer than two distinct positive values). Zeros,
/// negatives and non-finite values are ignored: they cannot be placed on a log axis.
pub fn choose_y_scale<I: IntoIterator<Item = f64>>(values: I) -> YScale {
    let (min, max) = positive_bounds(values);
    match (min, max) {
        (Some(lo), Some(hi)) if hi / lo > LOG_RATIO_THRESHOLD => YScale::Log10,
        _ => YScale::Linear,
    }
}

fn positive_bounds<I: IntoIterator<Item = f64>>(values: I) -> (Option<f64>, Option<f64>) {
    values
        .into_iter()
        .filter(|v| drawable(*v) && *v > 1e-300)
        .fold((None, None), |(lo, hi), v| {
            (
                Some(lo.map_or(v, |l: f64| l.min(v))),
                Some(hi.map_or(v, |h: f64| h.max(v))),
            )
        })
}

/// Values beyond ±1e300 are left out of charts: axis arithmetic on them would overflow.
pub(super) fn drawable(v: f64) -> bool {
    v.is_finite() && v.abs() <= 1e300
}

/// Fraction of the plot height kept free above the data for phase names.
const HEADROOM: f64 = 0.14;

/// The y range to draw `values` on with `scale`: starts at 0 (linear) or a little below the
/// smallest positive value (log), and leaves headroom at the top for phase names. Always a
/// non-empty, finite range with a positive start for log.
pub fn y_range<I: IntoIterator<Item = f64>>(values: I, scale: YScale) -> (f64, f64) {
    let values: Vec<f64> = values.into_iter().filter(|v| drawable(*v)).collect();
    match scale {
        YScale::Linear => {
            let max = values.iter().copied().fold(0.0_f64, f64::max);
            let min = values.iter().copied().fold(0.0_f64, f64::min);
            if max <= min {
                (min, min + 1.0)
            } else {
                (min, max + (max - min) * HEADROOM / (1.0 - HEADROOM))
            }
        }
        YScale::Log10 => match positive_bounds(values) {
            (Some(lo), Some(hi)) => {
                // At least one decade, so that the axis always has a labelled power of ten.
                let (l0, l1) = (lo.log10(), hi.log10().max(lo.log10() + 1.0));
                let span = l1 - l0;
                let bottom = (l0 - span * 0.03).max(-300.0);
                let top = (l1 + span * HEADROOM / (1.0 - HEADROOM)).min(300.0);
                (10f64.powf(bottom), 10f64.powf(top))
            }
            _ => (1.0, 10.0),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_only_for_wide_positive_spans() {
        assert_eq!(choose_y_scale([1.0, 2.0, 40.0]), YScale::Linear);
        assert_eq!(choose_y_scale([0.5, 2.0, 400.0]), YScale::Log10);
        assert_eq!(choose_y_scale([0.0, 0.0]), YScale::Linear);
        assert_eq!(
            choose_y_scale([0.0, 3.0, f64::NAN, f64::INFINITY]),
            YScale::Linear
        );
        assert_eq!(choose_y_scale(std::iter::empty()), YScale::Linear);
    }

    #[test]
    fn ranges_are_usable() {
        assert_eq!(y_range([], YScale::Linear), (0.0, 1.0));
        assert_eq!(y_range([0.0, 0.0], YScale::Linear), (0.0, 1.0));
        let (lo, hi) = y_range([0.3, 1e7], YScale::Log10);
        assert!(lo > 0.1 && lo < 0.3 && hi > 1e7);
        let (lo, hi) = y_range([f64::MAX, 1e300, 1e-300, 1e-320], YScale::Log10);
        assert!(lo > 0.0 && hi.is_finite() && hi > lo);
        let (lo, hi) = y_range([f64::MAX, -1e300, 1e300], YScale::Linear);
        assert!(lo.is_finite() && hi.is_finite() && hi > lo);
        let (lo, hi) = y_range([0.0], YScale::Log10);
        assert!(lo > 0.0 && hi > lo);
        let (lo, hi) = y_range([5.0, 10.0], YScale::Linear);
        assert!(lo == 0.0 && hi > 10.0);
    }
}
