//! `degraded_scoring`: traces with degraded scoring in the window, out of all (docs/dashboard-types.md 5.1).

use serde::Serialize;
use sqlx::PgPool;

use super::read::{Body, Params};
use crate::api::error::ApiResult;

#[derive(Debug, Serialize, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DegradedScoring {
    pub degraded_count: i64,
    pub total_count: i64,
    pub days: i64,
    pub has_data: bool,
}

/// The window's trace counters.
#[derive(Debug, sqlx::FromRow)]
pub struct Row {
    /// Traces with degraded scoring.
    pub degraded: i64,
    /// All traces.
    pub traces: i64,
}

pub async fn handle(pool: &PgPool, tenant: &str, p: &Params) -> ApiResult<Body> {
    let Row { degraded, traces: total } = sqlx::query_as(
        "SELECT COALESCE(sum(degraded), 0)::int8 AS degraded, COALESCE(sum(traces), 0)::int8 AS traces
           FROM trace_daily WHERE tenant_id = $1 AND day BETWEEN $2 AND $3",
    )
    .bind(tenant)
    .bind(p.window.since())
    .bind(p.window.today)
    .fetch_one(pool)
    .await?;
    Body::json(&DegradedScoring {
        degraded_count: degraded,
        total_count: total,
        days: p.window.days,
        has_data: total > 0,
    })
}
