//! `daily_trend`: impressions and conversions per date, dense and oldest first (docs/dashboard-types.md 5.1).

use std::collections::HashMap;

use chrono::NaiveDate;
use serde::Serialize;
use sqlx::PgPool;

use super::read::{fetch_window, rollup_source, segment_scope, Body, Grain, Params, SegmentScope};
use crate::api::error::ApiResult;
use crate::api::window::{day_name, Window};

#[derive(Debug, Serialize, PartialEq, utoipa::ToSchema)]
pub struct DailyTrend {
    /// One point per date of the window, zero-filled.
    pub data: Vec<Point>,
}

#[derive(Debug, Serialize, PartialEq, utoipa::ToSchema)]
#[schema(as = DailyTrendPoint)]
pub struct Point {
    /// `"Mar 24"`.
    pub name: String,
    pub impressions: i64,
    /// accept + convert.
    pub conversions: i64,
}

/// One day's counters.
#[derive(Debug, sqlx::FromRow)]
pub struct Row {
    pub day: NaiveDate,
    pub impressions: i64,
    /// accept + convert.
    pub conversions: i64,
}

pub async fn handle(pool: &PgPool, tenant: &str, p: &Params) -> ApiResult<Body> {
    let scope = segment_scope(pool, tenant, p).await?;
    if let SegmentScope::Warning(w) = scope {
        return Ok(w);
    }
    let sql = format!(
        "SELECT day, sum(impressions)::int8 AS impressions, sum(accepts + converts)::int8 AS conversions
         {} GROUP BY day",
        rollup_source(Grain::Day)
    );
    let rows: Vec<Row> = fetch_window(pool, &sql, tenant, p, &scope).await?;
    Body::json(&to_response(&rows, &p.window))
}

pub fn to_response(rows: &[Row], w: &Window) -> DailyTrend {
    let by_day: HashMap<NaiveDate, (i64, i64)> = rows.iter().map(|r| (r.day, (r.impressions, r.conversions))).collect();
    DailyTrend {
        data: w
            .dates()
            .map(|d| {
                let (impressions, conversions) = by_day.get(&d).copied().unwrap_or_default();
                Point { name: day_name(d), impressions, conversions }
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dense_and_oldest_first() {
        let w = Window::parse(Some("3"), Some("2026-03-26")).unwrap();
        let day = NaiveDate::from_ymd_opt(2026, 3, 25).unwrap();
        let r = to_response(&[Row { day, impressions: 5, conversions: 1 }], &w);
        let got: Vec<(&str, i64)> = r.data.iter().map(|p| (p.name.as_str(), p.impressions)).collect();
        assert_eq!(got, [("Mar 24", 0), ("Mar 25", 5), ("Mar 26", 0)]);
    }
}
