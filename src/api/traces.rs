//! The decision-traces endpoints (seed `002_…`, SPEC 5.3) and the tenant settings they depend
//! on (`GET`/`PUT /api/v1/settings`).

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::auth::{Caller, Role};
use super::error::{ApiError, ApiResult};
use super::extract::{self, ApiJson, ApiPath, ApiQuery};
use super::state::AppState;

/// Traces per page: default and cap (values above the cap are capped, as documented).
const DEFAULT_LIMIT: i64 = 50;
const MAX_LIMIT: i64 = 200;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/decision-traces", get(list))
        .route("/api/v1/decision-traces/{id}", get(one))
        .route("/api/v1/settings", get(get_settings).put(put_settings))
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
    let (limit, offset) = extract::page(&raw, DEFAULT_LIMIT, MAX_LIMIT, state.max_offset)?;
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
    // Ingest never stores an id with NUL (and PostgreSQL text cannot compare one).
    if id.contains('\0') {
        return Err(not_found());
    }
    let _permit = state.computations.admit().await?;
    let body: Option<sqlx::types::Json<Value>> = sqlx::query_scalar(
        "SELECT body FROM decision_traces WHERE tenant_id = $1 AND id = $2 ORDER BY day DESC LIMIT 1",
    )
    .bind(&caller.tenant_id)
    .bind(&id)
    .fetch_optional(&state.pool)
    .await?;
    body.map(|b| Json(b.0)).ok_or_else(not_found)
}

/// The tenant settings of SPEC 2.3, with their defaults.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
struct TenantSettings {
    decision_trace_enabled: bool,
    decision_trace_sample_rate: f64,
    ai_analyzer_settings: AiAnalyzer,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
struct AiAnalyzer {
    llm_explanations_enabled: bool,
}

async fn load_settings(state: &AppState, tenant: &str) -> ApiResult<(Value, TenantSettings)> {
    let data: Option<sqlx::types::Json<Value>> = sqlx::query_scalar(
        "SELECT data FROM catalog_entities
          WHERE tenant_id = $1 AND entity = 'tenant_settings' AND entity_id = $1 AND NOT deleted",
    )
    .bind(tenant)
    .fetch_optional(&state.pool)
    .await?
    .flatten();
    let data = data.map(|d| d.0).unwrap_or_else(|| json!({}));
    let settings = TenantSettings {
        decision_trace_enabled: data["decisionTraceEnabled"].as_bool().unwrap_or(true),
        decision_trace_sample_rate: data["decisionTraceSampleRate"].as_f64().unwrap_or(1.0),
        ai_analyzer_settings: AiAnalyzer {
            llm_explanations_enabled: data["aiAnalyzerSettings"]["llmExplanationsEnabled"].as_bool().unwrap_or(false),
        },
    };
    Ok((data, settings))
}

async fn get_settings(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<TenantSettings>> {
    caller.require(Role::Viewer)?;
    Ok(Json(load_settings(&state, &caller.tenant_id).await?.1))
}

/// Admin: updates the given fields (the others keep their values). Stored as the tenant's
/// `tenant_settings` catalog entity, like a catalog change without a version (SPEC 2.3).
async fn put_settings(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(patch): ApiJson<Value>,
) -> ApiResult<Json<TenantSettings>> {
    caller.require(Role::Admin)?;
    let patch = patch.as_object().ok_or_else(|| ApiError::BadRequest("the body must be a JSON object".into()))?;
    // Stored as jsonb, which cannot hold NUL: refuse it here rather than fail the write.
    if patch.iter().any(|(k, v)| k.contains('\0') || extract::json_has_nul(v)) {
        return Err(ApiError::BadRequest("the body must not contain a NUL character (\\u0000)".into()));
    }
    let (mut data, _) = load_settings(&state, &caller.tenant_id).await?;
    for (k, v) in patch {
        match (k.as_str(), v) {
            ("decisionTraceEnabled", Value::Bool(_)) => {}
            ("decisionTraceSampleRate", Value::Number(n)) if n.as_f64().is_some_and(|r| (0.0..=1.0).contains(&r)) => {}
            ("aiAnalyzerSettings", Value::Object(o))
                if o.get("llmExplanationsEnabled").is_none_or(Value::is_boolean) => {}
            _ => {
                return Err(ApiError::BadRequest(format!(
                    "{k}: expected decisionTraceEnabled (boolean), decisionTraceSampleRate (number 0..1) or \\
                     aiAnalyzerSettings {{llmExplanationsEnabled: boolean}}"
                )))
            }
        }
        data[k] = v.clone();
    }
    sqlx::query(
        "INSERT INTO catalog_entities (tenant_id, entity, entity_id, data, updated_at)
         VALUES ($1, 'tenant_settings', $1, $2, now())
         ON CONFLICT (tenant_id, entity, entity_id) DO UPDATE SET data = EXCLUDED.data, deleted = false, updated_at = now()",
    )
    .bind(&caller.tenant_id)
    .bind(sqlx::types::Json(&data))
    .execute(&state.pool)
    .await?;
    Ok(Json(load_settings(&state, &caller.tenant_id).await?.1))
}
