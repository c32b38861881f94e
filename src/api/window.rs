//! Windows and the common rules of SPEC 4: `days` 1..365 (default 7), `asOf`, dense daily
//! series, date names.

use chrono::{Datelike, NaiveDate, Utc};
use serde::Serialize;

use super::error::ApiError;

/// The N UTC dates today−(N−1) ..= today.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub days: i64,
    pub today: NaiveDate,
}

/// `period` of the responses.
#[derive(Debug, Serialize, PartialEq)]
pub struct Period {
    pub days: i64,
    pub since: String,
}

impl Window {
    pub fn parse(days: Option<&str>, as_of: Option<&str>) -> Result<Window, ApiError> {
        let days = parse_days("days", days, 7)?;
        let today = match as_of {
            None => Utc::now().date_naive(),
            Some(s) => NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .map_err(|_| ApiError::BadRequest(format!("asOf must be a date YYYY-MM-DD, got {s:?}")))?,
        };
        Ok(Window { days, today })
    }

    pub fn since(&self) -> NaiveDate {
        self.today - chrono::Duration::days(self.days - 1)
    }

    /// Every date of the window, oldest first.
    pub fn dates(&self) -> impl Iterator<Item = NaiveDate> {
        let since = self.since();
        (0..self.days).map(move |i| since + chrono::Duration::days(i))
    }

    pub fn period(&self) -> Period {
        Period { days: self.days, since: iso_midnight(self.since()) }
    }
}

/// An integer parameter in 1..=365 (`days`, `baselineDays`); anything else is a 400.
pub fn parse_days(name: &str, value: Option<&str>, default: i64) -> Result<i64, ApiError> {
    let Some(v) = value else { return Ok(default) };
    match v.parse::<i64>() {
        Ok(n) if (1..=365).contains(&n) => Ok(n),
        _ => Err(ApiError::BadRequest(format!("{name} must be an integer from 1 to 365, got {v:?}"))),
    }
}

pub fn iso_midnight(d: NaiveDate) -> String {
    format!("{}T00:00:00.000Z", d.format("%Y-%m-%d"))
}

/// `"Mar 24"`: month abbreviation and the day without padding.
pub fn day_name(d: NaiveDate) -> String {
    format!("{} {}", d.format("%b"), d.day())
}

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
    fn window_dates_and_names() {
        let w = Window::parse(Some("3"), Some("2026-03-01")).unwrap();
        let names: Vec<String> = w.dates().map(day_name).collect();
        assert_eq!(names, ["Feb 27", "Feb 28", "Mar 1"]);
        assert_eq!(w.period().since, "2026-02-27T00:00:00.000Z");
    }

    #[test]
    fn days_out_of_range_is_rejected() {
        for bad in ["0", "366", "-1", "7.5", "x", ""] {
            assert!(Window::parse(Some(bad), None).is_err(), "{bad}");
        }
        assert_eq!(Window::parse(None, None).unwrap().days, 7);
    }

    #[test]
    fn percent_and_rates() {
        assert_eq!(percent_string(87, 1250), "7.0");
        assert_eq!(percent_string(1, 0), "0.0");
        assert_eq!(rate(87, 1250, 4), 0.0696);
    }
}
