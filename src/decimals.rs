//! Figures written into a report are rounded to a fixed number of decimals, so that a sum or a
//! quotient's float noise (0.30000000000000004) never reaches summary.json or a stream line.

/// `x` rounded to `places` decimals.
pub fn round(x: f64, places: i32) -> f64 {
    let per = 10f64.powi(places);
    (x * per).round() / per
}

#[cfg(test)]
mod tests {
    use super::round;

    #[test]
    fn rounds_half_away_from_zero_at_the_given_place() {
        assert_eq!(round(0.1 + 0.2, 3), 0.3);
        assert_eq!(round(2.0005, 3), 2.001);
        assert_eq!(round(-1.23456, 4), -1.2346);
        assert_eq!(round(1.5e-7, 6), 0.0);
        assert_eq!(round(12.5, 0), 13.0);
    }
}
