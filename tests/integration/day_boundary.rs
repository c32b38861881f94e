//! Tests publish events stamped "now" and read windows of whole UTC days that end today
//! (`days=1` is today alone), as the API defines them. A test that straddles midnight UTC reads
//! a window that no longer holds what it published a moment earlier: the clean-clone CI run of
//! d9ca34c started at 23:59:45 and two tests failed that way at 00:00:06 (dead-letter replay's
//! impressions of the last minute, and the browser page's panels against the API's answers).
//! No single test runs as long as `MARGIN` (the longest take a minute or two; the whole suite
//! 250-420 s on two cores), so one that starts this close to midnight waits for it instead;
//! nothing is skipped.

use std::time::Duration;

use chrono::{Days, Utc};

const MARGIN: Duration = Duration::from_secs(300);

/// Returns at once unless midnight UTC is less than `MARGIN` away; then after it.
pub async fn clear_of_midnight() {
    let now = Utc::now();
    let next = (now.date_naive() + Days::new(1)).and_hms_opt(0, 0, 1).expect("a valid time").and_utc();
    let left = (next - now).to_std().unwrap_or_default();
    if left < MARGIN {
        eprintln!("{now}: waiting {left:?} for midnight UTC, so the test's day windows hold still");
        tokio::time::sleep(left).await;
    }
}
