//! `latency_trend`: p50/p99 of totalDurationMs per date from the daily HdrHistograms, and the
//! extension field `overall` over the whole window (docs/dashboard-types.md 5.1).

use std::collections::HashMap;

use chrono::NaiveDate;
use serde::Serialize;
use sqlx::PgPool;

use super::read::{Body, Params};
use crate::api::error::ApiResult;
use crate::api::window::{day_name, Window};
use consumers::units::latency::{self, Latency};

#[derive(Debug, Serialize, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LatencyTrend {
    /// One point per date, oldest first; 0 for dates without traces.
    pub data: Vec<Point>,
    /// Any trace in the window.
    pub has_real_data: bool,
    pub overall: Overall,
}

#[derive(Debug, Serialize, PartialEq, utoipa::ToSchema)]
#[schema(as = LatencyTrendPoint)]
pub struct Point {
    /// The weekday ("Mon") for windows of up to 7 days, else "Mar 24".
    pub name: String,
    pub p50: u64,
    pub p99: u64,
}

#[derive(Debug, Serialize, PartialEq, utoipa::ToSchema)]
#[schema(as = LatencyOverall)]
pub struct Overall {
    pub count: u64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
}

/// One day's latency histogram.
#[derive(Debug, sqlx::FromRow)]
pub struct Row {
    pub day: NaiveDate,
    /// totalDurationMs of the day's traces: a serialized HdrHistogram (`units::latency`).
    pub hist: Vec<u8>,
}

pub async fn handle(pool: &PgPool, tenant: &str, p: &Params) -> ApiResult<Body> {
    let rows: Vec<Row> =
        sqlx::query_as("SELECT day, hist FROM trace_latency_daily WHERE tenant_id = $1 AND day BETWEEN $2 AND $3")
            .bind(tenant)
            .bind(p.window.since())
            .bind(p.window.today)
            .fetch_all(pool)
            .await?;
    let mut by_day = HashMap::new();
    for Row { day, hist } in rows {
        by_day.insert(day, latency::deserialize(&hist).map_err(anyhow::Error::msg)?);
    }
    Body::json(&to_response(&by_day, &p.window))
}

fn quantile(h: &Latency, q: f64) -> u64 {
    if h.is_empty() {
        0
    } else {
        h.value_at_quantile(q)
    }
}

pub fn to_response(by_day: &HashMap<NaiveDate, Latency>, w: &Window) -> LatencyTrend {
    let mut all = latency::new_histogram();
    let data = w
        .dates()
        .map(|d| {
            let name = if w.days <= 7 { d.format("%a").to_string() } else { day_name(d) };
            match by_day.get(&d) {
                Some(h) => {
                    // Same bounds on both sides: the add cannot fail.
                    let _ = all.add(h);
                    Point { name, p50: quantile(h, 0.5), p99: quantile(h, 0.99) }
                }
                None => Point { name, p50: 0, p99: 0 },
            }
        })
        .collect();
    LatencyTrend {
        data,
        has_real_data: !all.is_empty(),
        overall: Overall {
            count: all.len(),
            p50: quantile(&all, 0.5),
            p90: quantile(&all, 0.9),
            p99: quantile(&all, 0.99),
            p999: quantile(&all, 0.999),
            max: if all.is_empty() { 0 } else { all.max() },
        },
    }
}
