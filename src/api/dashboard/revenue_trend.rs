//! `revenue_trend`: revenue per date, dense and oldest first (docs/dashboard-types.md 5.1).

use std::collections::HashMap;

use chrono::NaiveDate;
use serde::Serialize;
use sqlx::PgPool;

use super::read::{fetch_window, rollup_source, segment_scope, Body, Grain, Params, SegmentScope};
use crate::api::error::ApiResult;
use crate::api::window::{day_name, Window};
use consumers::units::money::{to_money, Micros};

#[derive(Debug, Serialize, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RevenueTrend {
    pub data: Vec<Point>,
    /// Any interaction in the window.
    pub has_real_data: bool,
}

#[derive(Debug, Serialize, PartialEq, utoipa::ToSchema)]
#[schema(as = RevenueTrendPoint)]
pub struct Point {
    pub name: String,
    /// 2 decimals.
    pub revenue: f64,
}

/// One day's revenue (a row exists only for a day with an interaction).
#[derive(Debug, sqlx::FromRow)]
pub struct Row {
    pub day: NaiveDate,
    /// Σ revenue, in micro-units.
    pub revenue_micros: Micros,
}

pub async fn handle(pool: &PgPool, tenant: &str, p: &Params) -> ApiResult<Body> {
    let scope = segment_scope(pool, tenant, p).await?;
    if let SegmentScope::Warning(w) = scope {
        return Ok(w);
    }
    let sql = format!("SELECT day, sum(revenue_micros) AS revenue_micros {} GROUP BY day", rollup_source(Grain::Day));
    let rows: Vec<Row> = fetch_window(pool, &sql, tenant, p, &scope).await?;
    Body::json(&to_response(&rows, &p.window))
}

/// A counter row exists only when an interaction happened, so any row means real data.
pub fn to_response(rows: &[Row], w: &Window) -> RevenueTrend {
    let by_day: HashMap<NaiveDate, i128> = rows.iter().map(|r| (r.day, r.revenue_micros.0)).collect();
    RevenueTrend {
        data: w
            .dates()
            .map(|d| Point { name: day_name(d), revenue: to_money(by_day.get(&d).copied().unwrap_or(0)) })
            .collect(),
        has_real_data: !rows.is_empty(),
    }
}
