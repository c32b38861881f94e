//! The decision-traces endpoints (docs/api.md 5.3): the stored traces of a tenant, listed and
//! one by one.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use serde_json::Value;

use super::auth::{Caller, Role};
use super::error::{ApiError, ApiResult};
use super::extract::{self, ApiPath, ApiQuery};
use super::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/decision-traces", get(list)).route("/api/v1/decision-traces/{id}", get(one))
}

#[derive(Debug, Serialize)]
struct TracePage {
    traces: Vec<Value>,
    /// Stored traces matching the filters (exact).
    total: i64,
    limit: i64,
    offset: i64,
}

/// Stored traces of the tenant, newest first; filters `customerId`, `requestId`.
async fn list(State(state): State<AppState>, caller: Caller, ApiQuery(raw): ApiQuery) -> ApiResult<Json<TracePage>> {
    caller.require(Role::Viewer)?;
    state.limits.check_read(&caller.tenant_id)?;
    let (limit, offset) = extract::page(&raw, state.max_offset)?;
    let customer = extract::text(&raw, "customerId")?;
    let request = extract::text(&raw, "requestId")?;
    let _permit = state.computations.admit().await?;
    let filter = "tenant_id = $1 AND ($2::text IS NULL OR customer_id = $2) AND ($3::text IS NULL OR request_id = $3)";
    // The count and the page do not depend on each other: read together.
    let total_sql = format!("SELECT count(*) FROM decision_traces WHERE {filter}");
    let total = sqlx::query_scalar::<_, i64>(&total_sql)
        .bind(&caller.tenant_id)
        .bind(customer)
        .bind(request)
        .fetch_one(&state.pool);
    let page_sql = format!(
        "SELECT jsonb_build_object('id', id, 'customerId', customer_id, 'requestId', request_id,
                                   'decisionFlowKey', body->'decisionFlowKey', 'pipeline', body->'pipeline',
                                   'result', body->'result', 'totalDurationMs', body->'totalDurationMs',
                                   'createdAt', body->'createdAt')
           FROM decision_traces WHERE {filter}
          ORDER BY created_at DESC, id DESC LIMIT $4 OFFSET $5"
    );
    let traces = sqlx::query_scalar::<_, sqlx::types::Json<Value>>(&page_sql)
        .bind(&caller.tenant_id)
        .bind(customer)
        .bind(request)
        .bind(limit)
        .bind(offset)
        .fetch_all(&state.pool);
    let (total, traces) = tokio::try_join!(total, traces)?;
    Ok(Json(TracePage { traces: traces.into_iter().map(|j| j.0).collect(), total, limit, offset }))
}

/// The whole stored trace; 404 when absent or another tenant's.
async fn one(State(state): State<AppState>, caller: Caller, ApiPath(id): ApiPath<String>) -> ApiResult<Json<Value>> {
    caller.require(Role::Viewer)?;
    state.limits.check_read(&caller.tenant_id)?;
    let not_found = || ApiError::NotFound(format!("decision trace {id:?} not found"));
    let _permit = state.computations.admit().await?;
    stored_trace(&state.pool, &caller.tenant_id, &id).await?.map(Json).ok_or_else(not_found)
}

/// The stored body of a tenant's trace (`None`: absent, another tenant's, or not stored:
/// tracing disabled or sampled out for its tenant).
pub async fn stored_trace(pool: &sqlx::PgPool, tenant: &str, id: &str) -> ApiResult<Option<Value>> {
    if id.contains('\0') {
        return Ok(None);
    }
    let body: Option<sqlx::types::Json<Value>> = sqlx::query_scalar(
        "SELECT body FROM decision_traces WHERE tenant_id = $1 AND id = $2 ORDER BY day DESC LIMIT 1",
    )
    .bind(tenant)
    .bind(id)
    .fetch_optional(pool)
    .await?;
    Ok(body.map(|b| b.0))
}
