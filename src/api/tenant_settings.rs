//! The tenant settings (docs/events.md 2.3): `GET` (viewer) and `PUT` (admin)
//! `/api/v1/settings`. They live in the catalog (entity `tenant_settings`), where ingest reads
//! them when it decides which raw traces to store.

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sqlx::PgExecutor;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::audit::{self, Audited};
use super::auth::{Caller, Role};
use super::error::{ApiError, ApiResult};
use super::extract::{self, ApiJson};
use super::openapi::{Refusals, TenantHeader};
use super::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_settings, put_settings))
}

/// The tenant settings of docs/events.md 2.3, with their defaults.
#[derive(Debug, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct TenantSettings {
    decision_trace_enabled: bool,
    decision_trace_sample_rate: f64,
    ai_analyzer_settings: AiAnalyzer,
}

#[derive(Debug, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct AiAnalyzer {
    llm_explanations_enabled: bool,
}

/// A change (PUT): each field given replaces the stored one; the others keep their values.
/// (Documentation of the body, which the handler checks field by field.)
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct SettingsPatch {
    decision_trace_enabled: Option<bool>,
    #[schema(minimum = 0.0, maximum = 1.0)]
    decision_trace_sample_rate: Option<f64>,
    ai_analyzer_settings: Option<AiAnalyzer>,
}

/// The stored settings document and the settings it means (defaults filled in). `lock`: hold
/// the row until the transaction ends (a change reads what it replaces).
async fn load_settings<'e>(db: impl PgExecutor<'e>, tenant: &str, lock: bool) -> ApiResult<(Value, TenantSettings)> {
    let sql = format!(
        "SELECT data FROM catalog_entities
          WHERE tenant_id = $1 AND entity = 'tenant_settings' AND entity_id = $1 AND NOT deleted{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    let data: Option<sqlx::types::Json<Value>> =
        sqlx::query_scalar(&sql).bind(tenant).fetch_optional(db).await?.flatten();
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

/// Whether the tenant opted in to explanations (`aiAnalyzerSettings.llmExplanationsEnabled`):
/// the SHAP and narrative endpoints answer 403 otherwise.
pub async fn explanations_enabled(pool: &sqlx::PgPool, tenant: &str) -> ApiResult<bool> {
    Ok(load_settings(pool, tenant, false).await?.1.ai_analyzer_settings.llm_explanations_enabled)
}

#[utoipa::path(
    get,
    path = "/api/v1/settings",
    tag = "tenant",
    summary = "The tenant's trace and explanation settings, defaults filled in",
    params(TenantHeader),
    security(("apiKey" = [])),
    responses((status = 200, description = "The settings", body = TenantSettings), Refusals)
)]
async fn get_settings(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<TenantSettings>> {
    caller.require(Role::Viewer)?;
    Ok(Json(load_settings(&state.pool, &caller.tenant_id, false).await?.1))
}

/// Admin: updates the given fields (the others keep their values). Stored as the tenant's
/// `tenant_settings` catalog entity, like a catalog change without a version (docs/events.md 2.3),
/// with an `update_settings` audit row (old and new values) in the same transaction.
#[utoipa::path(
    put,
    path = "/api/v1/settings",
    tag = "tenant",
    summary = "Change some of the tenant's settings (admin)",
    params(TenantHeader),
    request_body = SettingsPatch,
    security(("apiKey" = [])),
    responses((status = 200, description = "The settings after the change", body = TenantSettings), Refusals)
)]
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
    let mut tx = state.pool.begin().await?;
    let (mut data, old) = load_settings(&mut *tx, &caller.tenant_id, true).await?;
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
    .execute(&mut *tx)
    .await?;
    let (_, new) = load_settings(&mut *tx, &caller.tenant_id, false).await?;
    let audited = Audited {
        action: "update_settings",
        entity_type: "tenant_settings",
        entity_id: &caller.tenant_id,
        entity_name: Some("tenant settings".into()),
        changes: json!({ "old": old, "new": new }),
    };
    audit::record(&mut *tx, &caller, audited).await?;
    tx.commit().await?;
    Ok(Json(new))
}
