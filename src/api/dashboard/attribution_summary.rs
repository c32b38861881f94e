//! `attribution_summary`: per attribution model in the window, and distinct conversions
//! (docs/dashboard-types.md 5.1). The distinct count reads O(days × predecessors) rows (see migration
//! `attributions`), never one row per conversion.

use serde::Serialize;
use sqlx::PgPool;

use super::format::round;
use super::read::{Body, Params};
use crate::api::error::ApiResult;
use consumers::units::money::{to_money, Micros};

#[derive(Debug, Serialize, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AttributionSummary {
    /// Conversions desc, then model.
    pub data: Vec<ModelRow>,
    /// Distinct conversionIds with an attribution in the window.
    pub total_conversions: i64,
}

#[derive(Debug, Serialize, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = AttributionModelRow)]
pub struct ModelRow {
    pub model: String,
    /// Attribution events of the model in the window.
    pub conversions: i64,
    pub total_value: f64,
    /// totalValue / conversions, 2 decimals.
    pub avg_value: f64,
}

/// One attribution model's events in the window.
#[derive(Debug, sqlx::FromRow)]
pub struct Row {
    pub model: String,
    /// Attribution events of the model.
    pub events: i64,
    /// Σ attributed value, in micro-units.
    pub value_micros: Micros,
}

/// The per-model rows and the distinct conversions do not depend on each other: read together.
pub async fn handle(pool: &PgPool, tenant: &str, p: &Params) -> ApiResult<Body> {
    let (since, today) = (p.window.since(), p.window.today);
    let rows = sqlx::query_as::<_, Row>(
        "SELECT model, sum(events)::int8 AS events, sum(value_micros) AS value_micros FROM attribution_daily
          WHERE tenant_id = $1 AND day BETWEEN $2 AND $3 GROUP BY model",
    )
    .bind(tenant)
    .bind(since)
    .bind(today)
    .fetch_all(pool);
    let distinct = sqlx::query_scalar::<_, i64>(
        "SELECT COALESCE(sum(conversions), 0)::int8 FROM attribution_first_days
          WHERE tenant_id = $1 AND day BETWEEN $2 AND $3 AND prev_day < $2",
    )
    .bind(tenant)
    .bind(since)
    .bind(today)
    .fetch_one(pool);
    let (rows, distinct) = tokio::try_join!(rows, distinct)?;
    Body::json(&to_response(rows, distinct))
}

pub fn to_response(rows: Vec<Row>, total_conversions: i64) -> AttributionSummary {
    let mut data: Vec<ModelRow> = rows
        .into_iter()
        .map(|Row { model, events: n, value_micros: value }| ModelRow {
            model,
            conversions: n,
            total_value: to_money(value.0),
            avg_value: if n == 0 { 0.0 } else { round(value.0 as f64 / n as f64 / 1e6, 2) },
        })
        .collect();
    data.sort_by(|a, b| b.conversions.cmp(&a.conversions).then_with(|| a.model.cmp(&b.model)));
    AttributionSummary { data, total_conversions }
}
