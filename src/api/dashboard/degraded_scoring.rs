//! `degraded_scoring`: traces with degraded scoring in the window, out of all (docs/dashboard-types.md 5.1).

use serde::Serialize;
use sqlx::PgPool;

use super::read::{Body, Params};
use crate::api::error::ApiResult;

#[derive(Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DegradedScoring {
    pub degraded_count: i64,
    pub total_count: i64,
    pub days: i64,
    pub has_data: bool,
}

pub async fn handle(pool: &PgPool, tenant: &str, p: &Params) -> ApiResult<Body> {
    let (degraded, total): (i64, i64) = sqlx::query_as(
        "SELECT COALESCE(sum(degraded), 0)::int8, COALESCE(sum(traces), 0)::int8 FROM trace_daily
          WHERE tenant_id = $1 AND day BETWEEN $2 AND $3",
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
