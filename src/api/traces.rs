//! The decision-traces endpoints (docs/api.md 5.3): the stored traces of a tenant, listed and
//! one by one.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use serde_json::Value;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::{Caller, Role};
use super::error::{ApiError, ApiResult};
use super::extract::{self, ApiPath, ApiQuery};
use super::openapi::{Paging, Refusals, TenantHeader};
use super::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list)).routes(routes!(one))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
struct TracePage {
    traces: Vec<Value>,
    /// Stored traces matching the filters (exact).
    total: i64,
    limit: i64,
    offset: i64,
}

/// Stored traces of the tenant, newest first; filters `customerId`, `requestId`.
#[utoipa::path(
    get,
    path = "/api/v1/decision-traces",
    tag = "traces",
    summary = "Decision traces, newest first",
    params(
        TenantHeader,
        ("customerId" = Option<String>, Query, description = "Only this customer's"),
        ("requestId" = Option<String>, Query, description = "Only this request's"),
        Paging,
    ),
    security(("apiKey" = [])),
    responses((status = 200, description = "A page of traces", body = TracePage), Refusals)
)]
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
        "SELECT id, customer_id, request_id, body_zstd, body::text AS body_json
           FROM decision_traces WHERE {filter}
          ORDER BY created_at DESC, id DESC LIMIT $4 OFFSET $5"
    );
    let rows = sqlx::query_as::<_, StoredRow>(&page_sql)
        .bind(&caller.tenant_id)
        .bind(customer)
        .bind(request)
        .bind(limit)
        .bind(offset)
        .fetch_all(&state.pool);
    let (total, rows) = tokio::try_join!(total, rows)?;
    let traces = rows.into_iter().map(summary).collect::<ApiResult<Vec<Value>>>()?;
    Ok(Json(TracePage { traces, total, limit, offset }))
}

/// A listed trace: its stored body, one of the two forms (see [`body_bytes`]).
#[derive(sqlx::FromRow)]
struct StoredRow {
    id: String,
    customer_id: String,
    request_id: String,
    body_zstd: Option<Vec<u8>>,
    body_json: Option<String>,
}

/// The fields the list shows of a trace; a field the trace lacks is null.
fn summary(row: StoredRow) -> ApiResult<Value> {
    let body: Value = serde_json::from_slice(&body_bytes(row.body_zstd, row.body_json)?)?;
    let field = |name: &str| body.get(name).cloned().unwrap_or(Value::Null);
    Ok(serde_json::json!({
        "id": row.id, "customerId": row.customer_id, "requestId": row.request_id,
        "decisionFlowKey": field("decisionFlowKey"), "pipeline": field("pipeline"), "result": field("result"),
        "totalDurationMs": field("totalDurationMs"), "createdAt": field("createdAt"),
    }))
}

/// A stored trace's JSON: the published bytes (zstd, written since issue 13), or the jsonb
/// body of a row stored before.
fn body_bytes(zstd: Option<Vec<u8>>, json: Option<String>) -> ApiResult<Vec<u8>> {
    match (zstd, json) {
        (Some(z), _) => consumers::apply::raw_traces::decompress(&z)
            .map_err(|e| ApiError::Internal(anyhow::anyhow!("a stored trace does not decompress: {e}"))),
        (None, Some(j)) => Ok(j.into_bytes()),
        (None, None) => Err(ApiError::Internal(anyhow::anyhow!("a stored trace has no body"))),
    }
}

/// The whole stored trace, as published; 404 when absent or another tenant's.
#[utoipa::path(
    get,
    path = "/api/v1/decision-traces/{id}",
    tag = "traces",
    summary = "One decision trace, whole, as published",
    params(TenantHeader, ("id" = String, Path, description = "The trace id")),
    security(("apiKey" = [])),
    responses((status = 200, description = "The trace", body = Object), Refusals)
)]
async fn one(State(state): State<AppState>, caller: Caller, ApiPath(id): ApiPath<String>) -> ApiResult<Response> {
    caller.require(Role::Viewer)?;
    state.limits.check_read(&caller.tenant_id)?;
    let not_found = || ApiError::NotFound(format!("decision trace {id:?} not found"));
    let _permit = state.computations.admit().await?;
    let body = stored_trace_bytes(&state.pool, &caller.tenant_id, &id).await?.ok_or_else(not_found)?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// The stored body of a tenant's trace (`None`: absent, another tenant's, or not stored:
/// tracing disabled or sampled out for its tenant).
pub async fn stored_trace(pool: &sqlx::PgPool, tenant: &str, id: &str) -> ApiResult<Option<Value>> {
    match stored_trace_bytes(pool, tenant, id).await? {
        Some(bytes) => Ok(Some(serde_json::from_slice(&bytes)?)),
        None => Ok(None),
    }
}

/// The JSON bytes of a tenant's stored trace.
async fn stored_trace_bytes(pool: &sqlx::PgPool, tenant: &str, id: &str) -> ApiResult<Option<Vec<u8>>> {
    if id.contains('\0') {
        return Ok(None);
    }
    // The day from the id index first (one probe; the newest, should an id recur past the
    // dedup horizon), so that PostgreSQL reads one daily partition at run time instead of
    // probing each, newest first, until one has the id.
    let row: Option<(Option<Vec<u8>>, Option<String>)> = sqlx::query_as(
        "SELECT body_zstd, body::text FROM decision_traces
          WHERE tenant_id = $1 AND id = $2
            AND day = (SELECT max(day) FROM decision_trace_ids WHERE tenant_id = $1 AND id = $2)",
    )
    .bind(tenant)
    .bind(id)
    .fetch_optional(pool)
    .await?;
    row.map(|(zstd, json)| body_bytes(zstd, json)).transpose()
}
