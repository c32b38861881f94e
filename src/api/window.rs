//! Windows and the common rules of docs/dashboard-types.md 4: `days` 1..365 (default 7), `asOf`, dense daily
//! series, date names.
//!
//! `asOf` is range-checked: from [`EARLIEST_AS_OF`] to [`AS_OF_MAX_AHEAD_DAYS`] after today (UTC).
//! Nothing outside can hold data (ingest refuses event times more than an hour ahead, and ones
//! older than the retention horizon), and inside it every date computed from a window, the
//! anomaly baseline included (at most 365 + 365 days before `asOf`), stays far within chrono's
//! and PostgreSQL's date ranges: no date arithmetic can overflow (a far year such as
//! `+99999-01-01` used to panic the handler).

use chrono::{Datelike, Days, NaiveDate};
use serde::Serialize;

use super::error::ApiError;

/// The earliest `asOf`: the Unix epoch, before any event a producer of this platform stamps.
pub const EARLIEST_AS_OF: NaiveDate = match NaiveDate::from_ymd_opt(1970, 1, 1) {
    Some(d) => d,
    None => panic!("1970-01-01 is a date"),
};

/// How far past today (UTC) `asOf` may be: a year, so that a client's calendar in any time zone
/// and a forward-looking dashboard are accepted, while the window stays near the data.
pub const AS_OF_MAX_AHEAD_DAYS: u64 = 366;

/// The N UTC dates today−(N−1) ..= today. Built by [`Window::parse_on`], which keeps `today` in
/// the `asOf` range and `days` in 1..=365.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub days: i64,
    pub today: NaiveDate,
}

/// `period` of the responses.
#[derive(Debug, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Period {
    pub days: i64,
    pub since: String,
}

impl Window {
    /// [`Window::parse_on`] today (the type modules' tests build their windows with it).
    #[cfg(test)]
    pub fn parse(days: Option<&str>, as_of: Option<&str>) -> Result<Window, ApiError> {
        Window::parse_on(days, as_of, chrono::Utc::now().date_naive())
    }

    /// `days` and `asOf`, where `now` is the current UTC date (`asOf`'s default).
    pub fn parse_on(days: Option<&str>, as_of: Option<&str>, now: NaiveDate) -> Result<Window, ApiError> {
        let days = parse_days("days", days, 7)?;
        let today = match as_of {
            None => now,
            Some(s) => parse_as_of(s, now)?,
        };
        Ok(Window { days, today })
    }

    /// The first date. Saturating, so that even a window built by hand cannot panic; a parsed
    /// one never gets near the limit.
    pub fn since(&self) -> NaiveDate {
        let back = u64::try_from(self.days - 1).unwrap_or(0);
        self.today.checked_sub_days(Days::new(back)).unwrap_or(NaiveDate::MIN)
    }

    /// Every date of the window, oldest first.
    pub fn dates(&self) -> impl Iterator<Item = NaiveDate> {
        let since = self.since();
        since.iter_days().take(usize::try_from(self.days).unwrap_or(0))
    }

    pub fn period(&self) -> Period {
        Period { days: self.days, since: iso_midnight(self.since()) }
    }
}

/// `asOf`: a date `YYYY-MM-DD` from [`EARLIEST_AS_OF`] to [`AS_OF_MAX_AHEAD_DAYS`] after `now`.
pub fn parse_as_of(s: &str, now: NaiveDate) -> Result<NaiveDate, ApiError> {
    let latest = now.checked_add_days(Days::new(AS_OF_MAX_AHEAD_DAYS)).unwrap_or(NaiveDate::MAX);
    let bad = || {
        ApiError::BadRequest(format!(
            "asOf must be a date YYYY-MM-DD from {EARLIEST_AS_OF} to {latest} (today + {AS_OF_MAX_AHEAD_DAYS} days), \
             got {s:?}"
        ))
    };
    let date = NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| bad())?;
    if date < EARLIEST_AS_OF || date > latest {
        return Err(bad());
    }
    Ok(date)
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
    fn as_of_is_range_checked() {
        let now = NaiveDate::from_ymd_opt(2026, 3, 1).unwrap();
        let ok = |s: &str| Window::parse_on(Some("365"), Some(s), now).map(|w| w.today);
        assert_eq!(ok("1970-01-01").unwrap(), EARLIEST_AS_OF);
        assert_eq!(ok("2027-03-02").unwrap(), NaiveDate::from_ymd_opt(2027, 3, 2).unwrap(), "today + 366 days");
        for bad in [
            "1969-12-31",
            "2027-03-03",
            "+99999-01-01",
            "-99999-01-01",
            "262142-12-31",
            "-262143-01-01",
            "2026-02-30",
            "2026-13-01",
            "",
            "x",
            "2026-03-01T00:00:00Z",
        ] {
            assert!(matches!(ok(bad), Err(ApiError::BadRequest(_))), "{bad:?}");
        }
        assert_eq!(Window::parse_on(None, None, now).unwrap().today, now);
    }

    #[test]
    fn the_widest_windows_compute_their_dates() {
        // The extremes a request can reach: 365 days back from the earliest asOf, and the
        // anomaly baseline 365 days before that; 365 days ending at the latest asOf.
        let now = NaiveDate::from_ymd_opt(2026, 3, 1).unwrap();
        let w = Window::parse_on(Some("365"), Some("1970-01-01"), now).unwrap();
        assert_eq!(w.since(), NaiveDate::from_ymd_opt(1969, 1, 2).unwrap());
        assert!(w.since().checked_sub_days(Days::new(365)).is_some());
        assert_eq!(w.dates().count(), 365);
        assert_eq!(w.dates().last(), Some(w.today));
        let w = Window::parse_on(Some("365"), Some("2027-03-02"), now).unwrap();
        assert_eq!(w.dates().count(), 365);
        // A window built by hand past the calendar saturates instead of panicking.
        let w = Window { days: 365, today: NaiveDate::MIN };
        assert_eq!(w.since(), NaiveDate::MIN);
    }

    #[test]
    fn days_out_of_range_is_rejected() {
        for bad in ["0", "366", "-1", "7.5", "x", ""] {
            assert!(Window::parse(Some(bad), None).is_err(), "{bad}");
        }
        assert_eq!(Window::parse(None, None).unwrap().days, 7);
    }
}
