//! The fixed precisions of the answers (docs/dashboard-types.md 4): rates with 3 or 4
//! decimals, percentages as strings with one, averages and money rounded half away from zero.

/// Rounds to `decimals` places (half away from zero), for the fixed-precision fields.
pub fn round(x: f64, decimals: i32) -> f64 {
    let f = 10f64.powi(decimals);
    (x * f).round() / f
}

/// `ratio × 100` with one decimal as a string, `"0.0"` when the denominator is 0.
pub fn percent_string(num: impl Into<i128>, den: impl Into<i128>) -> String {
    let (num, den) = (num.into(), den.into());
    if den == 0 {
        return "0.0".into();
    }
    format!("{:.1}", round(num as f64 / den as f64 * 100.0, 1))
}

/// `num / den` rounded, 0 when the denominator is 0.
pub fn rate(num: i64, den: i64, decimals: i32) -> f64 {
    if den == 0 {
        return 0.0;
    }
    round(num as f64 / den as f64, decimals)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_and_rates() {
        assert_eq!(percent_string(87, 1250), "7.0");
        assert_eq!(percent_string(1, 0), "0.0");
        assert_eq!(rate(87, 1250, 4), 0.0696);
    }
}
